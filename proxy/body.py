"""Request bodies: verified while they stream, the tail held back until every check has passed.

``VerifiedBody`` feeds the client's bytes through ``signing``'s BodyVerifier (payload hash, chunk
signatures, trailing checksums, Content-MD5) and yields the decoded payload to the upstream request.
It always keeps the last piece back until ``finish()`` succeeds; on any failure it raises, so aiohttp
aborts the upstream request before the backend has the full Content-Length, and nothing is stored.
"""
from __future__ import annotations

import asyncio
from typing import AsyncIterator

from aiohttp import web

from proxy.errors import S3Error
from signing import BodyVerifier, SigningError

__all__ = ["VerifiedBody", "read_verified", "body_chunks", "BODY_IDLE_TIMEOUT", "MIN_BODY_RATE"]

# A client that sends nothing for this long is cut off (S3's RequestTimeout), and so is one that
# trickles: after a grace period the body must average at least MIN_BODY_RATE bytes per second. A
# slow body must not hold an upstream request (and its quota reservation) open indefinitely.
BODY_IDLE_TIMEOUT = 15.0
MIN_BODY_RATE, MIN_RATE_GRACE = 1024, 10.0


async def body_chunks(request: web.Request) -> AsyncIterator[bytes]:
    """The raw request body as it arrives, refusing a client that stalls or trickles."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    received = 0
    content = request.content
    while True:
        # Buffered data needs no wait (and no timer); otherwise wait with a deadline that covers
        # only this read, never the consumer's time between chunks (e.g. a node slow to accept).
        data = content.read_nowait()
        if not data and not content.at_eof():
            try:
                async with asyncio.timeout(BODY_IDLE_TIMEOUT):
                    data = await content.readany()
            except TimeoutError:
                raise S3Error("RequestTimeout") from None
        if not data:
            return
        received += len(data)
        elapsed = loop.time() - started
        if elapsed > MIN_RATE_GRACE and received < MIN_BODY_RATE * elapsed:
            raise S3Error("RequestTimeout", "The request body arrives too slowly")
        yield data


class VerifiedBody:
    def __init__(self, request: web.Request, verifier: BodyVerifier, *, max_bytes: int | None = None):
        self.request, self.verifier, self.max_bytes = request, verifier, max_bytes
        self.error: S3Error | None = None
        self.sent = 0
        self.complete = False

    def _fail(self, exc: Exception) -> S3Error:
        if isinstance(exc, SigningError):
            self.error = S3Error.from_signing(exc)
        elif isinstance(exc, S3Error):
            self.error = exc
        else:
            self.error = S3Error("IncompleteBody", "The client connection ended before the body was complete")
        return self.error

    async def __aiter__(self) -> AsyncIterator[bytes]:
        held = b""
        try:
            async for data in body_chunks(self.request):
                out = self.verifier.feed(data)
                if not out:
                    continue
                self.sent += len(out)
                if self.max_bytes is not None and self.sent > self.max_bytes:
                    raise S3Error("EntityTooLarge")
                if held:
                    yield held
                held = out
            self.verifier.finish()
        except Exception as exc:  # noqa: BLE001 - every failure aborts the upstream write
            raise self._fail(exc) from None
        self.complete = True
        if held:
            yield held


async def read_verified(request: web.Request, verifier: BodyVerifier, limit: int,
                        too_large: str = "MaxMessageLengthExceeded") -> bytes:
    """A small body (XML for DeleteObjects, CompleteMultipartUpload, tagging), read whole and verified;
    more than ``limit`` bytes answers the error code ``too_large``."""
    parts: list[bytes] = []
    size = 0
    try:
        async for data in body_chunks(request):
            out = verifier.feed(data)
            size += len(out)
            if size > limit:
                raise S3Error(too_large, f"This request body is limited to {limit} bytes")
            parts.append(out)
        verifier.finish()
    except SigningError as exc:
        raise S3Error.from_signing(exc) from None
    return b"".join(parts)
