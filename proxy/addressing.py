"""Step 1a of the request path: which bucket and key does a request address?

Both come from ``request.raw_path`` (still percent-encoded) and are never normalized: S3 keys are
opaque byte strings. Virtual-host style is recognised when the Host is ``{bucket}.{WIO_S3_DOMAIN}``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote_to_bytes

from proxy.errors import S3Error

__all__ = ["Address", "parse_address", "decode_key", "MAX_KEY_BYTES"]

MAX_KEY_BYTES = 1024


@dataclass(frozen=True, slots=True)
class Address:
    bucket: str | None     # None for service-level requests (ListBuckets)
    key: str | None        # decoded UTF-8 key; None for bucket-level requests
    virtual_host: bool


def decode_key(raw: str) -> str:
    """Percent-decode one raw key (``+`` stays ``+`` in a path) and check it is a key wio can serve safely."""
    if "%" not in raw and raw.isascii():
        key = raw
    else:
        try:
            key = unquote_to_bytes(raw).decode("utf-8")
        except UnicodeDecodeError:
            raise S3Error("InvalidURI", "The object key is not valid UTF-8") from None
    check_key(key)
    return key


# A key must never address outside its workspace's prefix on a backend that cleans paths: refuse dot
# segments, with '/' or '\\' as separators, and control characters. Empty segments too (a leading '/'
# or '//'): a filer node (SeaweedFS) stores 'a//b' as 'a/b' and '/x' as 'x', so such a key would alias
# another one; MinIO refuses them. wio cannot tell one node from another, so it refuses them on all.
_DOT_SEGMENT = re.compile(r"(?:^|[/\\])\.\.?(?:[/\\]|$)")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def check_key(key: str) -> None:
    if len(key) > MAX_KEY_BYTES // 4 and len(key.encode()) > MAX_KEY_BYTES:
        raise S3Error("KeyTooLongError")
    # a dot segment starts the key or follows a separator: only then is the regex needed
    if "." in key and (key[0] == "." or "/." in key or "\\." in key) and _DOT_SEGMENT.search(key):
        raise S3Error("InvalidArgument", "Object keys with '.' or '..' path segments are not allowed")
    if key[:1] == "/" or "//" in key:
        raise S3Error("InvalidArgument", "Object keys cannot start with '/' or contain '//' (empty path segments): "
                                         "the storage node would store them under another key")
    # control characters are not printable: a printable key has none
    if not key.isprintable() and _CONTROL.search(key):
        raise S3Error("InvalidArgument", "Object keys cannot contain control characters")


def parse_address(raw_path: str, host: str | None, s3_domain: str | None) -> Address:
    path = raw_path.partition("?")[0]
    if path[:1] != "/":
        raise S3Error("InvalidURI", "The request target must be an absolute path")
    if s3_domain:
        hostname = (host or "").rsplit(":", 1)[0].lower() if host and not host.startswith("[") else ""
        if hostname.endswith("." + s3_domain.lower()):
            bucket = hostname[: -len(s3_domain) - 1]
            raw_key = path[1:]
            return Address(bucket, decode_key(raw_key) if raw_key else None, True)
    rest = path[1:]
    if not rest:
        return Address(None, None, False)
    raw_bucket, sep, raw_key = rest.partition("/")
    if "%" in raw_bucket or not raw_bucket.isascii():
        bucket = unquote_to_bytes(raw_bucket).decode("utf-8", "replace")
    else:  # nothing to decode
        bucket = raw_bucket
    if not sep or raw_key == "":
        return Address(bucket, None, False)
    return Address(bucket, decode_key(raw_key), False)
