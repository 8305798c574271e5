"""Verify a parsed Signature V4 request against the secret; the chain state for its body.

Rebuilds the canonical request from the request as received (canonical.py), the string to sign and
the signature (keys.py), and compares in constant time. The returned ``SigningContext`` holds the
derived key and the seed signature: aws-chunked bodies sign each chunk in a chain that starts from
the seed (S3 API reference, sigv4-streaming.html and sigv4-streaming-trailers.html).
"""
from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .auth import ParsedAuth
from .canonical import (
    EMPTY_SHA256,
    HeaderMap,
    canonical_headers,
    canonical_query,
    canonical_uri,
    collect_headers,
)
from .errors import SigningError
from .keys import ALGORITHM, hmac_sha256_hex, signing_key_and_pads

__all__ = ["SigningContext", "verify_signature", "request_canonical_request"]

_sha256 = hashlib.sha256


@dataclass(frozen=True)
class SigningContext:
    """Key and chain state of a verified (or freshly signed) request, for its chunk signatures."""

    signing_key: bytes = field(repr=False)
    seed_signature: str
    amz_date: str
    scope: str

    @classmethod
    def _build(cls, signing_key: bytes, seed_signature: str, amz_date: str, scope: str) -> SigningContext:
        # cheaper than the frozen __init__ on the per-request path (see ParsedAuth._build)
        ctx = object.__new__(cls)
        ctx.__dict__.update(signing_key=signing_key, seed_signature=seed_signature, amz_date=amz_date, scope=scope)
        return ctx

    def chunk_signature(self, previous_signature: str, chunk_sha256: str) -> str:
        """Signature of one aws-chunked chunk whose data hashes to ``chunk_sha256`` (hex)."""
        sts = (
            f"AWS4-HMAC-SHA256-PAYLOAD\n{self.amz_date}\n{self.scope}\n{previous_signature}\n"
            f"{EMPTY_SHA256}\n{chunk_sha256}"
        )
        return hmac_sha256_hex(self.signing_key, sts.encode("utf-8"))

    def trailer_signature(self, previous_signature: str, canonical_trailers: bytes) -> str:
        """Signature of the trailing headers, chained from the final (empty) chunk's signature."""
        sts = (
            f"AWS4-HMAC-SHA256-TRAILER\n{self.amz_date}\n{self.scope}\n{previous_signature}\n"
            f"{_sha256(canonical_trailers).hexdigest()}"
        )
        return hmac_sha256_hex(self.signing_key, sts.encode("utf-8"))


def request_canonical_request(
    auth: ParsedAuth,
    method: str,
    raw_path: str,
    raw_query: str,
    header_map: HeaderMap,
    *,
    normalize_path: bool = False,
    double_encode_path: bool = False,
) -> str:
    """The canonical request the client must have signed, from the request as received."""
    headers = header_map
    if "expect" in auth.signed_headers and "expect" not in headers:
        # Some HTTP stacks drop "Expect: 100-continue" after answering it; it was signed as sent.
        headers = {**header_map, "expect": ["100-continue"]}
    query = canonical_query(raw_query, exclude="X-Amz-Signature" if auth.kind == "presigned" else None) \
        if raw_query else ""
    uri = canonical_uri(raw_path, normalize=normalize_path, double_encode=double_encode_path)
    # canonical_request(), as one f-string; canonical_headers already ends each line with "\n"
    return (f"{method}\n{uri}\n{query}\n{canonical_headers(headers, auth.signed_headers)}\n"
            f"{auth.signed_headers_raw}\n{auth.payload_hash}")


def verify_signature(
    auth: ParsedAuth,
    secret_access_key: str,
    method: str,
    raw_path: str,
    raw_query: str,
    headers: Mapping[str, str] | Iterable[tuple[str, str]] | Any,
    *,
    normalize_path: bool = False,
    double_encode_path: bool = False,
) -> SigningContext:
    """Check the request's signature with the secret; raise ``SignatureDoesNotMatch`` if wrong.

    Pass the same request pieces that were given to ``parse_request_auth``. The path options are
    for non-S3 services only (the generic test vectors).
    """
    # parse_request_auth already indexed these very headers: reuse its map
    header_map = auth.header_map if headers is auth.headers_source else collect_headers(headers)
    creq = request_canonical_request(
        auth, method, raw_path, raw_query, header_map,
        normalize_path=normalize_path, double_encode_path=double_encode_path,
    )
    scope = f"{auth.scope_date}/{auth.region}/{auth.service}/aws4_request"  # auth.scope
    # string_to_sign() and hmac_sha256_hex(), inlined: the key's pads come hashed from the cache
    sts = f"{ALGORITHM}\n{auth.amz_date}\n{scope}\n{_sha256(creq.encode('utf-8', 'surrogateescape')).hexdigest()}"
    key, inner, outer = signing_key_and_pads(secret_access_key, auth.scope_date, auth.region, auth.service)
    inner = inner.copy()
    inner.update(sts.encode("utf-8"))
    outer = outer.copy()
    outer.update(inner.digest())
    expected = outer.hexdigest()
    if not hmac.compare_digest(expected, auth.signature):
        raise SigningError(
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided. "
            "Check your key and signing method.",
            details={"StringToSign": sts, "CanonicalRequest": creq, "SignatureProvided": auth.signature},
        )
    return SigningContext._build(key, expected, auth.amz_date, scope)
