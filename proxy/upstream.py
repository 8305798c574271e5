"""Step 4: forward to the node, re-signed with the node's own credentials, streaming both ways.

One ``ClientSession`` per node endpoint, reused (keep-alive). Backend URLs are built already
encoded (``yarl.URL(..., encoded=True)``) from the canonical key encoding, so a key reaches the
backend byte for byte, and the canonical URI we sign is exactly the path we send.
"""
from __future__ import annotations

import asyncio
import hashlib
import time
from datetime import datetime, timezone
from typing import AsyncIterable
from urllib.parse import quote

import aiohttp
from yarl import URL

from proxy.addressing import encode_key
from proxy.authz import NodeView
from proxy.errors import S3Error
from proxy.metrics import backend_failed, observe_backend
from signing import sign_request

__all__ = ["Upstream", "canonical_query", "EMPTY_SHA256", "UNSIGNED"]

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
UNSIGNED = "UNSIGNED-PAYLOAD"
READ_CHUNK = 1 << 20


def canonical_query(params: list[tuple[str, str]]) -> str:
    """RFC 3986 encoding of each name and value, sorted: what SigV4 signs and what we send."""
    return "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in sorted(params))


class Upstream:
    def __init__(self, *, connect_timeout: float = 10, read_timeout: float = 300):
        self._sessions: dict[str, aiohttp.ClientSession] = {}
        self._timeout = aiohttp.ClientTimeout(total=None, connect=connect_timeout, sock_read=read_timeout)

    def session(self, endpoint: str) -> aiohttp.ClientSession:
        session = self._sessions.get(endpoint)
        if session is None or session.closed:
            connector = aiohttp.TCPConnector(limit=256, keepalive_timeout=30, enable_cleanup_closed=True)
            # auto_decompress off: object bytes pass through untouched, whatever their Content-Encoding.
            session = aiohttp.ClientSession(connector=connector, auto_decompress=False, timeout=self._timeout,
                                            skip_auto_headers=("User-Agent", "Accept-Encoding", "Content-Type"))
            self._sessions[endpoint] = session
        return session

    async def close(self) -> None:
        await asyncio.gather(*(s.close() for s in self._sessions.values()))
        self._sessions.clear()

    def build(self, node: NodeView, method: str, bucket: str, key: str | None, params: list[tuple[str, str]],
              headers: dict[str, str], payload_hash: str) -> tuple[URL, dict[str, str]]:
        path = "/" + quote(bucket, safe="") + ("/" + encode_key(key) if key is not None else "")
        raw_query = canonical_query(params)
        base = URL(node.endpoint)
        headers = {**headers, "host": base.raw_authority}
        headers.update(sign_request(method, path, raw_query, headers, payload_hash=payload_hash,
                                    access_key=node.access_key, secret_key=node.secret_key, region=node.region,
                                    now=datetime.now(timezone.utc)))
        url = URL(str(base.origin()) + path + ("?" + raw_query if raw_query else ""), encoded=True)
        return url, headers

    async def send(self, node: NodeView, method: str, bucket: str, key: str | None,
                   params: list[tuple[str, str]], headers: dict[str, str], *,
                   body: bytes | AsyncIterable[bytes] | None = None, payload_hash: str | None = None
                   ) -> aiohttp.ClientResponse:
        """Send one request; the caller must release the response (``async with`` or ``.release()``)."""
        if payload_hash is None:
            if body is None:
                payload_hash = EMPTY_SHA256
            elif isinstance(body, bytes):
                payload_hash = hashlib.sha256(body).hexdigest()
            else:
                payload_hash = UNSIGNED
        if isinstance(body, bytes) or body is None:
            headers = {**headers, "content-length": str(len(body or b""))} if method in ("PUT", "POST") else headers
        url, headers = self.build(node, method, bucket, key, params, headers, payload_hash)
        started = time.monotonic()
        try:
            response = await self.session(node.endpoint).request(method, url, headers=headers, data=body,
                                                                 allow_redirects=False, auto_decompress=False)
        except asyncio.TimeoutError:
            backend_failed(node.name, "timeout")
            raise S3Error("ServiceUnavailable", f"The storage node '{node.name}' timed out") from None
        except aiohttp.ClientConnectionError:
            backend_failed(node.name, "unreachable")
            raise S3Error("ServiceUnavailable", f"The storage node '{node.name}' is unreachable") from None
        observe_backend(node.name, started, response.status)
        return response
