"""Tasks 2 to 4 of Signature V4: string to sign, signing key, signature.

Follows "Create a string to sign", "Derive a signing key" and "Calculate the signature" in the IAM
user guide (create-signed-request.html), and for the streaming variants the S3 API reference
pages "Signature Calculations for the Authorization Header: Transferring Payload in Multiple
Chunks" (sigv4-streaming.html) and "... Including Trailing Headers" (sigv4-streaming-trailers.html).

Derived keys are cached: a key only depends on (secret, date, region, service), so one HMAC chain
per key per day instead of four HMACs per request.
"""
from __future__ import annotations

import hashlib
import hmac
from functools import lru_cache
from typing import TYPE_CHECKING

from .canonical import EMPTY_SHA256

if TYPE_CHECKING:
    from _hashlib import HASH

__all__ = [
    "ALGORITHM",
    "credential_scope",
    "string_to_sign",
    "chunk_string_to_sign",
    "trailer_string_to_sign",
    "derive_signing_key",
    "signature",
    "sha256_hex",
    "hmac_sha256_hex",
]

ALGORITHM = "AWS4-HMAC-SHA256"
_sha256 = hashlib.sha256


def sha256_hex(data: bytes | str) -> str:
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogateescape")
    return _sha256(data).hexdigest()


def credential_scope(date: str, region: str, service: str) -> str:
    """``yyyymmdd/region/service/aws4_request``."""
    return f"{date}/{region}/{service}/aws4_request"


def string_to_sign(amz_date: str, scope: str, canonical_request: str) -> str:
    """``AWS4-HMAC-SHA256\\n<amz_date>\\n<scope>\\n<hex sha256 of the canonical request>``."""
    return f"{ALGORITHM}\n{amz_date}\n{scope}\n{sha256_hex(canonical_request)}"


def chunk_string_to_sign(amz_date: str, scope: str, previous_signature: str, chunk_sha256: str) -> str:
    """String to sign of one aws-chunked chunk; the fifth line is the hash of the empty string."""
    return (
        f"AWS4-HMAC-SHA256-PAYLOAD\n{amz_date}\n{scope}\n{previous_signature}\n"
        f"{EMPTY_SHA256}\n{chunk_sha256}"
    )


def trailer_string_to_sign(amz_date: str, scope: str, previous_signature: str, trailer_sha256: str) -> str:
    """String to sign of the trailing headers; ``previous_signature`` is the final chunk's."""
    return f"AWS4-HMAC-SHA256-TRAILER\n{amz_date}\n{scope}\n{previous_signature}\n{trailer_sha256}"


@lru_cache(maxsize=2048)
def derive_signing_key(secret_access_key: str, date: str, region: str, service: str) -> bytes:
    """kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request")."""
    key = ("AWS4" + secret_access_key).encode("utf-8")
    for part in (date, region, service, "aws4_request"):
        key = hmac.digest(key, part.encode("utf-8"), "sha256")
    return key


_IPAD = bytes(x ^ 0x36 for x in range(256))
_OPAD = bytes(x ^ 0x5C for x in range(256))


@lru_cache(maxsize=2048)
def _hmac_pads(key: bytes) -> tuple[HASH, HASH]:
    # RFC 2104 with the key's inner and outer pad already hashed: a signing key is used for
    # every request of a day and for every chunk of a body, so only the message is hashed per use
    block = key.ljust(64, b"\0") if len(key) <= 64 else _sha256(key).digest().ljust(64, b"\0")
    return _sha256(block.translate(_IPAD)), _sha256(block.translate(_OPAD))


@lru_cache(maxsize=2048)
def signing_key_and_pads(secret_access_key: str, date: str, region: str, service: str) -> tuple[bytes, HASH, HASH]:
    """``(kSigning, inner, outer)``: the derived key with its HMAC pads already hashed, one cache
    lookup per request instead of two (a pure function of its arguments, like the key itself)."""
    key = derive_signing_key(secret_access_key, date, region, service)
    inner, outer = _hmac_pads(key)
    return key, inner, outer


def hmac_sha256_hex(key: bytes, message: bytes) -> str:
    """Hex HMAC-SHA256, the same as ``hmac.digest(key, message, "sha256").hex()``, faster for a
    key used many times."""
    inner, outer = _hmac_pads(key)
    inner = inner.copy()
    inner.update(message)
    outer = outer.copy()
    outer.update(inner.digest())
    return outer.hexdigest()


def signature(signing_key: bytes, string_to_sign: str) -> str:
    """Lowercase hex HMAC-SHA256 of the string to sign."""
    return hmac_sha256_hex(signing_key, string_to_sign.encode("utf-8"))
