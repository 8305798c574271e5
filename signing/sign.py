"""Sign requests: Authorization header, presigned URLs, aws-chunked bodies.

The same canonicalisation as verification (canonical.py, keys.py), used by the proxy to re-sign
requests for the backend nodes and by tests and benchmarks to produce client requests. Follows
"Create a signed AWS API request" (IAM user guide) and the S3 API reference pages on header,
query-string and streaming (chunked, trailing-header) authentication.
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timezone
from typing import ParamSpec
from urllib.parse import quote, urlsplit

from .canonical import (HeaderMap, canonical_headers, canonical_query, canonical_query_from_pairs, canonical_request,
                        canonical_uri, collect_headers, uri_encode)
from .checksums import CHECKSUM_HEADERS, Checksum
from .chunked import encode_chunk, encode_last_chunk
from .keys import (ALGORITHM, credential_scope, derive_signing_key, sha256_hex, signature, signing_key_and_pads,
                   string_to_sign)
from .verify import SigningContext

__all__ = [
    "amz_date",
    "sign_request",
    "sign_request_with_context",
    "sign_canonical",
    "s3_request_target",
    "sign_s3_request",
    "presign_query",
    "presign_url",
    "ChunkSigner",
    "UNSIGNED_HEADERS",
]

# Headers a signer leaves out: hop-by-hop ones a proxy or HTTP library may change, and the ones
# botocore leaves out (SIGNED_HEADERS_BLACKLIST).
UNSIGNED_HEADERS = frozenset({
    "authorization", "connection", "expect", "keep-alive", "proxy-authenticate",
    "proxy-authorization", "te", "trailer", "transfer-encoding", "upgrade", "user-agent",
    "x-amzn-trace-id",
})

_P = ParamSpec("_P")


def amz_date(now: datetime) -> str:
    """``yyyymmddTHHMMSSZ`` in UTC (a naive ``now`` is taken as UTC)."""
    if now.tzinfo is not None:
        now = now.astimezone(timezone.utc)
    return now.strftime("%Y%m%dT%H%M%SZ")


def _query_line(query: str | Iterable[tuple[str, str]] | None) -> str:
    if query is None:
        return ""
    if isinstance(query, str):
        return canonical_query(query)
    return canonical_query_from_pairs(query)


def _signed_names(header_map: HeaderMap) -> tuple[list[str], str]:
    """The names of the headers to sign, sorted, and the SignedHeaders line (Host must be one)."""
    if "host" not in header_map:
        raise ValueError("the headers to sign must include Host")
    signed = sorted(header_map)
    return signed, ";".join(signed)


def _sign_canonical_request(
    method: str, raw_path: str, query_line: str, header_map: HeaderMap, signed: list[str], signed_line: str,
    payload_hash: str, *, date: str, scope: str, secret_key: str, region: str, service: str,
    normalize_path: bool, double_encode_path: bool,
) -> tuple[bytes, str]:
    """The signing key and the signature of the canonical request (header and query signing alike)."""
    creq = canonical_request(
        method,
        canonical_uri(raw_path, normalize=normalize_path, double_encode=double_encode_path),
        query_line,
        canonical_headers(header_map, signed),
        signed_line,
        payload_hash,
    )
    key = derive_signing_key(secret_key, date[:8], region, service)
    return key, signature(key, string_to_sign(date, scope, creq))


def sign_request_with_context(
    method: str,
    raw_path: str,
    query: str | Iterable[tuple[str, str]] | None,
    headers: Mapping[str, str] | Iterable[tuple[str, str]],
    *,
    payload_hash: str,
    access_key: str,
    secret_key: str,
    region: str,
    now: datetime,
    service: str = "s3",
    session_token: str | None = None,
    add_content_sha256: bool | None = None,
    normalize_path: bool = False,
    double_encode_path: bool = False,
    headers_to_sign: Iterable[str] | None = None,
) -> tuple[dict[str, str], SigningContext]:
    """Sign a request with an Authorization header; return the headers to add and the ``SigningContext``
    to sign aws-chunked chunks with (``sign_request`` returns the headers only).

    ``raw_path`` is the path as it will be sent (percent-encoded); ``query`` a raw query string
    or decoded ``(name, value)`` pairs; ``headers`` those that will be sent, Host included; all
    but hop-by-hop ones and User-Agent are signed. ``payload_hash`` is a hex SHA-256,
    ``UNSIGNED-PAYLOAD`` or a ``STREAMING-*`` value. Returns ``Authorization``, ``X-Amz-Date``,
    ``X-Amz-Content-SHA256`` (by default only for S3) and ``X-Amz-Security-Token`` (when given).
    """
    date = amz_date(now)
    added = {"X-Amz-Date": date}
    if add_content_sha256 is None:
        add_content_sha256 = service == "s3"
    if add_content_sha256:
        added["X-Amz-Content-SHA256"] = payload_hash
    if session_token:
        added["X-Amz-Security-Token"] = session_token
    replaced = {name.lower() for name in added}
    chosen = None if headers_to_sign is None else {name.lower() for name in headers_to_sign} | {"host"}
    header_map = {
        name: values for name, values in collect_headers(headers).items()
        if name not in replaced and (name not in UNSIGNED_HEADERS if chosen is None else name in chosen)
    }
    for name, value in added.items():
        header_map[name.lower()] = [value]
    signed, signed_line = _signed_names(header_map)
    scope = credential_scope(date[:8], region, service)
    key, sig = _sign_canonical_request(
        method, raw_path, _query_line(query), header_map, signed, signed_line, payload_hash, date=date, scope=scope,
        secret_key=secret_key, region=region, service=service, normalize_path=normalize_path,
        double_encode_path=double_encode_path)
    added["Authorization"] = (
        f"{ALGORITHM} Credential={access_key}/{scope}, SignedHeaders={signed_line}, Signature={sig}"
    )
    return added, SigningContext(signing_key=key, seed_signature=sig, amz_date=date, scope=scope)


def _headers_only(signer: Callable[_P, tuple[dict[str, str], SigningContext]]) -> Callable[_P, dict[str, str]]:
    def sign_request(*args: _P.args, **kwargs: _P.kwargs) -> dict[str, str]:
        """Sign a request with an Authorization header; return the headers to add.

        ``sign_request_with_context`` without the context: the same parameters, documented there.
        """
        return signer(*args, **kwargs)[0]
    return sign_request


sign_request = _headers_only(sign_request_with_context)


def sign_canonical(
    method: str,
    canonical_path: str,
    canonical_query_line: str,
    headers: Mapping[str, str],
    *,
    payload_hash: str,
    access_key: str,
    secret_key: str,
    region: str,
    amz_date: str,
    service: str = "s3",
) -> dict[str, str]:
    """``sign_request`` for a request its sender built canonical: the path already in canonical URI
    form, the query already sorted and encoded, header names lower-case, one value each, Host
    included. The proxy signs every request to a node this way; ``sign_request`` remains the general
    signer (and the tests check both give the same signature)."""
    added = {"x-amz-date": amz_date, "x-amz-content-sha256": payload_hash}
    lines = {name: value for name, value in headers.items() if name not in UNSIGNED_HEADERS}
    lines.update(added)
    signed = sorted(lines)
    signed_line = ";".join(signed)
    block = "".join([f"{name}:{' '.join(lines[name].split())}\n" for name in signed])
    creq = f"{method}\n{canonical_path}\n{canonical_query_line}\n{block}\n{signed_line}\n{payload_hash}"
    date = amz_date[:8]
    scope = f"{date}/{region}/{service}/aws4_request"
    _, inner, outer = signing_key_and_pads(secret_key, date, region, service)
    inner = inner.copy()
    inner.update(f"{ALGORITHM}\n{amz_date}\n{scope}\n{sha256_hex(creq)}".encode())
    outer = outer.copy()
    outer.update(inner.digest())
    added["authorization"] = (f"{ALGORITHM} Credential={access_key}/{scope}, SignedHeaders={signed_line}, "
                              f"Signature={outer.hexdigest()}")
    return added


def s3_request_target(bucket: str, key: str | None, params: Iterable[tuple[str, str]]) -> tuple[str, str]:
    """The canonical path and query of a path-style S3 request (``key=None`` addresses the bucket).

    Both are built canonical, so the request line sent is exactly what is signed: each key byte
    outside the unreserved set percent-encoded once, ``/`` kept; query names and values encoded,
    then sorted (SigV4 sorts the encoded pairs: ``%C3%A9=2`` comes before ``~x=1``).
    """
    path = "/" + uri_encode(bucket.encode(), keep_slash=False)
    if key is not None:
        path += "/" + uri_encode(key.encode("utf-8", "surrogateescape"), keep_slash=True)
    return path, canonical_query_from_pairs(params)


def sign_s3_request(
    method: str,
    host: str,
    bucket: str,
    key: str | None,
    params: Iterable[tuple[str, str]],
    headers: Mapping[str, str],
    *,
    payload_hash: str,
    access_key: str,
    secret_key: str,
    region: str,
    now: datetime,
) -> tuple[str, dict[str, str]]:
    """The one builder of S3 requests to a node (the proxy's re-signing, the node client, the crawler).

    ``headers`` have lower-case names and one value each. Returns the request target
    (``path?query``, already encoded: send it as is) and the headers to send, Host and signature
    included.
    """
    path, query = s3_request_target(bucket, key, params)
    out = {**headers, "host": host}
    out.update(sign_canonical(method, path, query, out, payload_hash=payload_hash, access_key=access_key,
                              secret_key=secret_key, region=region, amz_date=amz_date(now)))
    return (path + "?" + query if query else path), out


def _encode_query_component(text: str) -> str:
    return quote(text, safe="", errors="surrogateescape")


def presign_query(
    method: str,
    raw_path: str,
    query: str | Iterable[tuple[str, str]] | None,
    headers: Mapping[str, str] | Iterable[tuple[str, str]],
    *,
    access_key: str,
    secret_key: str,
    region: str,
    now: datetime,
    expires: int = 3600,
    service: str = "s3",
    session_token: str | None = None,
    payload_hash: str = "UNSIGNED-PAYLOAD",
    normalize_path: bool = False,
    double_encode_path: bool = False,
) -> str:
    """The query string of a presigned request: the given query plus the X-Amz-* parameters.

    ``headers`` are the headers the eventual request will send that should be signed (Host at
    least). The result is raw (percent-encoded) and ends with X-Amz-Signature.
    """
    date = amz_date(now)
    scope = credential_scope(date[:8], region, service)
    header_map = {name: values for name, values in collect_headers(headers).items()
                  if name not in UNSIGNED_HEADERS}
    signed, signed_line = _signed_names(header_map)
    auth_params = [
        ("X-Amz-Algorithm", ALGORITHM),
        ("X-Amz-Credential", f"{access_key}/{scope}"),
        ("X-Amz-Date", date),
        ("X-Amz-Expires", str(expires)),
    ]
    if session_token:
        auth_params.append(("X-Amz-Security-Token", session_token))
    auth_params.append(("X-Amz-SignedHeaders", signed_line))
    encoded_auth = "&".join(
        f"{_encode_query_component(name)}={_encode_query_component(value)}" for name, value in auth_params
    )
    if query is None or isinstance(query, str):
        raw_query = "&".join(part for part in (query or "", encoded_auth) if part)
    else:
        raw_query = "&".join(
            [f"{_encode_query_component(n)}={_encode_query_component(v)}" for n, v in query] + [encoded_auth]
        )
    _, sig = _sign_canonical_request(
        method, raw_path, canonical_query(raw_query), header_map, signed, signed_line, payload_hash, date=date,
        scope=scope, secret_key=secret_key, region=region, service=service, normalize_path=normalize_path,
        double_encode_path=double_encode_path)
    return f"{raw_query}&X-Amz-Signature={sig}"


def presign_url(
    method: str,
    url: str,
    *,
    access_key: str,
    secret_key: str,
    region: str,
    now: datetime,
    expires: int = 3600,
    service: str = "s3",
    session_token: str | None = None,
    headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
) -> str:
    """Presign ``url`` (``scheme://host[:port]/path?query``, path and query already encoded)."""
    parts = urlsplit(url)
    host = parts.netloc
    if (parts.scheme, parts.port) in (("http", 80), ("https", 443)):
        host = parts.hostname or host
    signed_headers = [("host", host)] + [
        (name, value) for name, values in collect_headers(headers or {}).items() if name != "host"
        for value in values
    ]
    query = presign_query(
        method, parts.path or "/", parts.query, signed_headers, access_key=access_key,
        secret_key=secret_key, region=region, now=now, expires=expires, service=service,
        session_token=session_token,
    )
    return f"{parts.scheme}://{parts.netloc}{parts.path or '/'}?{query}"


class ChunkSigner:
    """Produce a signed (or unsigned) aws-chunked body, chunk by chunk.

    ``context`` is the one ``sign_request_with_context`` returned for a request whose payload
    hash was ``STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]``; None gives the unsigned
    ``STREAMING-UNSIGNED-PAYLOAD-TRAILER`` framing. ``trailer`` names the checksum trailer
    (``x-amz-checksum-crc32c`` ...), computed over the chunks as they are framed.
    """

    def __init__(self, context: SigningContext | None, trailer: str | None = None):
        self.context = context
        self.trailer = trailer.lower() if trailer else None
        self._previous = context.seed_signature if context is not None else ""
        self._checksum = Checksum(CHECKSUM_HEADERS[self.trailer]) if self.trailer else None

    def _sign(self, data: bytes) -> str | None:
        if self.context is None:
            return None
        sig = self.context.chunk_signature(self._previous, hashlib.sha256(data).hexdigest())
        self._previous = sig
        return sig

    def chunk(self, data: bytes) -> bytes:
        """One non-empty chunk, framed."""
        if not data:
            raise ValueError("only the last chunk is empty: call final()")
        if self._checksum is not None:
            self._checksum.update(data)
        return encode_chunk(data, self._sign(data))

    def final(self) -> bytes:
        """The last empty chunk, the trailer and its signature, and the closing CRLF."""
        last_signature = self._sign(b"")
        trailers = []
        trailer_signature = None
        if self.trailer and self._checksum is not None:
            trailers.append((self.trailer, self._checksum.b64digest()))
            if self.context is not None:
                canonical = "".join(f"{name}:{value}\n" for name, value in trailers).encode("ascii")
                trailer_signature = self.context.trailer_signature(self._previous, canonical)
        return encode_last_chunk(last_signature, trailers, trailer_signature)
