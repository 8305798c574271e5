"""Streaming checksums S3 accepts for integrity: Content-MD5 and x-amz-checksum-*.

Follows "Checking object integrity" in the S3 user guide: CRC32, CRC32C, CRC64NVME, SHA1 and
SHA256, each sent as the base64 of the big-endian digest, in a header or as a trailing header of
an aws-chunked body. CRC32 comes from zlib; CRC32C and CRC64NVME from ``awscrt.checksums`` (C,
several GB/s) when it is installed, else from the table-driven pure-Python fallback below, which is
correct but slow (a few MB/s) and only there so the package imports without awscrt.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import zlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from _hashlib import HASH

__all__ = [
    "CHECKSUM_ALGORITHMS",
    "CHECKSUM_HEADERS",
    "Checksum",
    "new_checksum",
    "decode_checksum_value",
    "crc32c",
    "crc64nvme",
    "HAVE_AWSCRT",
]


def _reflected_table(poly: int) -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ poly if crc & 1 else crc >> 1
        table.append(crc)
    return table


class _Crc(Protocol):
    def __call__(self, data: bytes, previous: int = 0) -> int: ...


def _make_crc(poly: int, width: int) -> _Crc:
    table = _reflected_table(poly)
    mask = (1 << width) - 1

    def crc(data: bytes, previous: int = 0) -> int:
        value = previous ^ mask
        for byte in bytes(data):
            value = table[(value ^ byte) & 0xFF] ^ (value >> 8)
        return value ^ mask

    return crc


_py_crc32c = _make_crc(0x82F63B78, 32)
_py_crc64nvme = _make_crc(0x9A6C9329AC4BC9B5, 64)

try:  # pragma: no branch - which branch runs depends on the environment
    from awscrt import checksums as _crt

    def crc32c(data: bytes, previous: int = 0) -> int:
        return _crt.crc32c(data, previous)  # type: ignore[no-any-return]  # awscrt ships no type information

    def crc64nvme(data: bytes, previous: int = 0) -> int:
        return _crt.crc64nvme(data, previous)  # type: ignore[no-any-return]  # awscrt ships no type information

    HAVE_AWSCRT = True
except ImportError:  # pragma: no cover
    crc32c = _py_crc32c
    crc64nvme = _py_crc64nvme
    HAVE_AWSCRT = False


class Checksum:
    """A running checksum: ``update(data)`` as bytes pass, ``digest()`` / ``b64digest()`` at the end."""

    __slots__ = ("algorithm", "_hash", "_crc", "_value", "_width")

    def __init__(self, algorithm: str):
        self.algorithm = algorithm
        self._hash: HASH | None = None
        self._crc: Callable[[bytes, int], int] | None = None
        self._value = 0
        self._width = 0
        if algorithm in ("md5", "sha1", "sha256"):
            self._hash = hashlib.new(algorithm)
        elif algorithm == "crc32":
            self._crc, self._width = zlib.crc32, 4
        elif algorithm == "crc32c":
            self._crc, self._width = crc32c, 4
        elif algorithm == "crc64nvme":
            self._crc, self._width = crc64nvme, 8
        else:
            raise ValueError(f"unknown checksum algorithm {algorithm!r}")

    def update(self, data: bytes) -> None:
        if self._hash is not None:
            self._hash.update(data)
        elif self._crc is not None:
            self._value = self._crc(data, self._value)

    def digest(self) -> bytes:
        if self._hash is not None:
            return self._hash.digest()
        return self._value.to_bytes(self._width, "big")

    def b64digest(self) -> str:
        return base64.b64encode(self.digest()).decode("ascii")


# algorithm -> digest size in bytes
CHECKSUM_ALGORITHMS: dict[str, int] = {"crc32": 4, "crc32c": 4, "crc64nvme": 8, "sha1": 20, "sha256": 32}
# header name -> algorithm
CHECKSUM_HEADERS: dict[str, str] = {f"x-amz-checksum-{name}": name for name in CHECKSUM_ALGORITHMS}


def new_checksum(algorithm: str) -> Checksum:
    return Checksum(algorithm)


def decode_checksum_value(algorithm: str, value: str) -> bytes | None:
    """The digest a base64 checksum value stands for, or None if it isn't valid for the algorithm."""
    size = 16 if algorithm == "md5" else CHECKSUM_ALGORITHMS.get(algorithm)
    try:
        raw = base64.b64decode(value.strip().encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        return None
    return raw if len(raw) == size else None
