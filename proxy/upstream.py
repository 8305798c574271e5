"""Step 4: forward to the node, re-signed with the node's own credentials, streaming both ways.

Keep-alive connections per node endpoint (``nodeclient.pool``). Backend URLs are built already
encoded (``yarl.URL(..., encoded=True)``) by ``signing.sign_s3_request``, the one S3 request
builder, so a key reaches the backend byte for byte and the request we sign is exactly the one we send.
"""
from __future__ import annotations

import functools
import hashlib
import time
from datetime import datetime, timezone
from typing import AsyncIterable
from yarl import URL

from proxy.authz import NodeView
from proxy.errors import S3Error
from proxy.metrics import backend_failed, observe_backend
from nodeclient.pool import NodeError, NodePool, NodeResponse, NodeTimeout
from signing import sign_s3_request

__all__ = ["Upstream", "EMPTY_SHA256", "UNSIGNED"]

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
UNSIGNED = "UNSIGNED-PAYLOAD"


class Upstream:
    def __init__(self, *, connect_timeout: float = 10, read_timeout: float = 300, head_timeout: float = 15,
                 allow_private: bool = False):
        self.read_timeout = read_timeout
        self.pool = NodePool(connect_timeout=connect_timeout, read_timeout=read_timeout, head_timeout=head_timeout,
                             allow_private=allow_private)

    async def close(self) -> None:
        self.pool.close()

    def build(self, node: NodeView, method: str, bucket: str, key: str | None, params: list[tuple[str, str]],
              headers: dict[str, str], payload_hash: str) -> tuple[URL, dict[str, str]]:
        base = _endpoint(node.endpoint)
        target, headers = sign_s3_request(method, base.raw_authority, bucket, key, params, headers,
                                          payload_hash=payload_hash, access_key=node.access_key,
                                          secret_key=node.secret_key, region=node.region,
                                          now=datetime.now(timezone.utc))
        return URL(str(base.origin()) + target, encoded=True), headers

    async def send(self, node: NodeView, method: str, bucket: str, key: str | None,
                   params: list[tuple[str, str]], headers: dict[str, str], *,
                   body: bytes | AsyncIterable[bytes] | None = None, payload_hash: str | None = None
                   ) -> NodeResponse:
        """Send one request; the caller must ``release()`` the response (its body read or not)."""
        if payload_hash is None:
            if body is None:
                payload_hash = EMPTY_SHA256
            elif isinstance(body, bytes):
                payload_hash = hashlib.sha256(body).hexdigest()
            else:
                payload_hash = UNSIGNED
        if isinstance(body, bytes) or body is None:
            if method in ("PUT", "POST") or body:
                headers = {**headers, "content-length": str(len(body or b""))}
        elif "content-length" not in headers:
            raise ValueError("a streamed body needs its content-length")
        url, headers = self.build(node, method, bucket, key, params, headers, payload_hash)
        started = time.monotonic()
        # A node may think before its first byte about a server-side copy or a multipart assembly (it
        # may copy gigabytes): those get the idle deadline, every other request the first-byte one.
        slow = "x-amz-copy-source" in headers or (method == "POST" and any(k == "uploadId" for k, _ in params))
        try:
            response = await self.pool.request(method, url, headers, body,
                                               head_timeout=self.read_timeout if slow else None)
        except NodeTimeout:
            backend_failed(node.name, "timeout")
            raise S3Error("ServiceUnavailable", f"The storage node '{node.name}' timed out") from None
        except NodeError:
            backend_failed(node.name, "unreachable")
            raise S3Error("ServiceUnavailable", f"The storage node '{node.name}' is unreachable") from None
        observe_backend(node.name, started, response.status)
        return response


@functools.lru_cache(maxsize=64)
def _endpoint(endpoint: str) -> URL:
    return URL(endpoint)
