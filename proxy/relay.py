"""Answers from the node, turned into answers to the client: streamed, rewritten, or re-raised as our errors."""
from __future__ import annotations

from datetime import datetime, timezone

from aiohttp import web
from multidict import CIMultiDict

from proxy.call import Call
from proxy.errors import S3Error
from proxy.listing import MAX_XML_BYTES, parse_xml, rewrite_result
from nodeclient.pool import NodeError, NodeResponse, can_splice, splice_body
from proxy.resources import UPSTREAM

__all__ = ["xml_response", "iso_time", "backend_error", "raise_for_backend", "relay", "rewritten", "small_body",
           "HOP_BY_HOP", "STREAM_CHUNK"]

XML_HEADERS = {"Content-Type": "application/xml"}
HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade",
                        "proxy-authenticate", "server", "date", "x-amz-request-id", "x-amz-id-2"})
STREAM_CHUNK = 1 << 20
SMALL_RESPONSE = 64 << 10     # bodies up to this size go out in one write with the head
_DEFAULT_CODES = {404: "NoSuchKey", 403: "AccessDenied", 412: "PreconditionFailed", 416: "InvalidRange",
                  409: "OperationAborted", 400: "InvalidRequest", 411: "MissingContentLength"}


def xml_response(body: str, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=('<?xml version="1.0" encoding="UTF-8"?>\n' + body).encode(), status=status,
                        headers={**XML_HEADERS, **(headers or {})})


def iso_time(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


async def backend_error(resp: NodeResponse) -> S3Error:
    """Re-raise a backend error as our own S3 error: its code and status, our message, no physical names."""
    body = await resp.read(64 << 10) if resp.method != "HEAD" else b""
    code = ""
    if body:
        try:
            code = parse_xml(body, "backend error").findtext("Code") or ""
        except S3Error:
            code = ""
    if resp.status >= 500:
        if resp.status == 503 or code == "SlowDown":
            return S3Error("SlowDown", "The storage node is overloaded; please retry", status=503)
        return S3Error("InternalError", "The storage node reported an internal error", status=502)
    if resp.status == 304:
        return S3Error("NotModified", status=304)
    code = code or _DEFAULT_CODES.get(resp.status, "InvalidRequest")
    if code == "NoSuchBucket":  # the root's bucket, not the client's: the workspace exists, the key doesn't
        code = "NoSuchKey"
    return S3Error(code, status=resp.status)


async def raise_for_backend(resp: NodeResponse) -> None:
    if resp.status >= 300 and resp.status != 304:
        try:
            raise await backend_error(resp)
        finally:
            resp.release()


async def relay(call: Call, resp: NodeResponse) -> web.StreamResponse:
    """Send a node's response on to the client.

    Small bodies are read whole and go out with the head in one write (a node failing before then
    becomes an S3 error); large Content-Length bodies move socket to socket with os.splice when both
    connections are plain TCP; anything else streams. A node dying mid-body cuts the client
    connection: never a short 200.
    """
    request = call.request
    try:
        if resp.status >= 400:
            raise await backend_error(resp)
        headers = CIMultiDict((k, v) for k, v in resp.headers.items() if k.lower() not in HOP_BY_HOP)
        length = resp.content_length
        if request.method != "HEAD" and length is not None and length <= SMALL_RESPONSE:
            body = await resp.read()
            call.bytes_out = len(body)
            headers.popall("Content-Length", None)
            out: web.StreamResponse = web.Response(status=resp.status, body=body, headers=headers)
            if "Content-Type" not in headers:
                out.headers.popall("Content-Type", None)   # a node that sent none: add none
            return out
        out = web.StreamResponse(status=resp.status, headers=headers)
        await out.prepare(request)
        if request.method != "HEAD" and resp.status not in (204, 304):
            try:
                if length is not None and resp.socket_fd() is not None and can_splice(request.transport):
                    sent = await splice_body(resp, request.transport, request.app[UPSTREAM].read_timeout)
                else:
                    sent = 0
                    async for chunk in resp.iter_chunks(STREAM_CHUNK):
                        await out.write(chunk)
                        sent += len(chunk)
            except (NodeError, TimeoutError):
                # Never finish a short 200: abort so the client sees a broken transfer, not a truncated object.
                if request.transport is not None:
                    request.transport.abort()
                raise
            call.bytes_out = sent
        await out.write_eof()
        return out
    finally:
        resp.release()


async def small_body(resp: NodeResponse, limit: int = MAX_XML_BYTES) -> bytes:
    """A small node answer (XML), read whole (at most ``limit`` bytes: a node is a user-supplied endpoint)
    and released; an error status raises the node's S3 error, an answer over ``limit`` a 502."""
    try:
        if resp.status >= 400:
            raise await backend_error(resp)
        body = await resp.read(limit + 1)
        if len(body) > limit:
            raise S3Error("InternalError", "The storage node's answer is too large", status=502)
        return body
    finally:
        resp.release()


async def rewritten(call: Call, resp: NodeResponse) -> web.Response:
    """A small XML result from the node, rewritten into the workspace view."""
    body = await small_body(resp)
    headers = {k: v for k, v in resp.headers.items()
               if k.lower() not in HOP_BY_HOP and k.lower() not in ("content-length", "content-type")}
    if body.strip():
        ws = call.authorized_target().ws
        body = rewrite_result(body, workspace=ws.name, physical_prefix=ws.prefix)
    return web.Response(body=body, status=resp.status, headers={**headers, **XML_HEADERS})
