"""CopyObject and UploadPartCopy: read on the source, write on the destination, across workspaces.

When both workspaces live on the same node the node copies server-side; otherwise the proxy streams
the source from one node into the other (never buffering the object). The destination's quota is
reserved for the source's size, so the copy is made conditional on the source's ETag as it was
measured: a source replaced in between (say by a bigger object) fails the copy, never slips past the quota.
"""
from __future__ import annotations

import re
import time
from urllib.parse import quote
from xml.sax.saxutils import escape

from aiohttp import web

from proxy.call import Call, forwarded_headers
from proxy.errors import S3Error
from nodeclient.pool import NodeResponse
from proxy.listing import S3_NS
from proxy.objects import head_object, head_size, object_params, part_number
from proxy.quota import seen_through
from proxy.relay import STREAM_CHUNK, backend_error, iso_time, rewritten, xml_response
from proxy.resources import QUOTAS, UPSTREAM

__all__ = ["copy_object", "upload_part_copy"]

_RANGE_RE = re.compile(r"^bytes=(\d+)-(\d+)$")
_COPIED_HEADERS = ("content-type", "content-encoding", "content-disposition", "content-language", "cache-control",
                   "expires")
_SOURCE_CONDITIONS = {"x-amz-copy-source-if-match": "if-match", "x-amz-copy-source-if-none-match": "if-none-match",
                      "x-amz-copy-source-if-modified-since": "if-modified-since",
                      "x-amz-copy-source-if-unmodified-since": "if-unmodified-since"}


def _same_node(call: Call) -> bool:
    source, _ = call.authorized_source()
    return source.node.endpoint == call.authorized_target().node.endpoint and source.ws.bucket is not None


def _copy_headers(call: Call) -> dict[str, str]:
    headers = forwarded_headers(call)
    signed = set(call.auth.signed_headers) if call.auth is not None else set()
    for lname, value in call.headers.items():
        if lname.startswith("x-amz-copy-source-") and lname in signed:
            headers[lname] = value
    return headers


def _version_params(call: Call) -> list[tuple[str, str]]:
    return [("versionId", call.source_version)] if call.source_version else []


def _source_path(call: Call) -> str:
    src, source_key = call.authorized_source()
    path = "/" + src.ws.bucket + "/" + quote((src.ws.prefix + source_key).encode(), safe="/~")
    if call.source_version:
        path += "?versionId=" + quote(call.source_version, safe="")
    return path


def _copy_range(call: Call, source_size: int) -> tuple[int, int] | None:
    value = call.headers.get("x-amz-copy-source-range")
    if value is None:
        return None
    match = _RANGE_RE.match(value.strip())
    if not match:
        raise S3Error("InvalidArgument", "x-amz-copy-source-range must be bytes=first-last")
    first, last = int(match.group(1)), int(match.group(2))
    if first > last or last >= source_size:
        raise S3Error("InvalidRange", "The copy source range is not satisfiable")
    return first, last


async def _measure_source(call: Call) -> tuple[int, str]:
    """The source's size and ETag, with the caller's x-amz-copy-source-if-* conditions checked on it.

    The copy is then pinned to that ETag alone: the conditions held for exactly the version measured.
    """
    conditions = {_SOURCE_CONDITIONS[k]: v for k, v in call.headers.items() if k in _SOURCE_CONDITIONS}
    found = await head_object(call, *call.authorized_source(), _version_params(call), conditions)
    if found is None:
        raise S3Error("NoSuchKey", "The copy source does not exist")
    return found


async def _server_side_copy(call: Call, etag: str) -> NodeResponse:
    """Both workspaces on one node: the node copies, the proxy only rewrites the source."""
    headers = {k: v for k, v in _copy_headers(call).items() if k not in _SOURCE_CONDITIONS}
    headers["x-amz-copy-source"] = _source_path(call)
    headers["x-amz-copy-source-if-match"] = etag
    dst = call.authorized_target()
    return await call.request.app[UPSTREAM].send(dst.node, "PUT", dst.ws.bucket, call.physical_key,
                                                 object_params(call), headers)


async def _stream_from_source(call: Call, etag: str, size: int, byte_range: tuple[int, int] | None) -> NodeResponse:
    """GET the source object (exactly ``size`` bytes of version ``etag``); the caller releases the response."""
    headers = {"if-match": etag}
    if byte_range is not None:
        headers["range"] = f"bytes={byte_range[0]}-{byte_range[1]}"
    src, source_key = call.authorized_source()
    resp = await call.request.app[UPSTREAM].send(src.node, "GET", src.ws.bucket, src.ws.prefix + source_key,
                                                 _version_params(call), headers)
    if resp.status >= 300:
        try:
            error = await backend_error(resp)
        finally:
            resp.release()
        raise S3Error("PreconditionFailed" if resp.status in (304, 412) else error.code, status=412
                      if resp.status in (304, 412) else error.status)
    if resp.content_length != size:
        resp.release()
        raise S3Error("PreconditionFailed", "The copy source changed while it was copied")
    return resp


async def _streamed_put(call: Call, etag: str, size: int, extra_params: list[tuple[str, str]],
                        byte_range: tuple[int, int] | None, replace_metadata: bool) -> NodeResponse:
    """Cross-node copy: stream the source into the destination; returns the destination's response."""
    source = await _stream_from_source(call, etag, size, byte_range)
    try:
        if replace_metadata:
            headers = {k: v for k, v in forwarded_headers(call).items() if not k.startswith("x-amz-copy-source")}
        else:
            headers = {k: v for k, v in source.headers.items()
                       if k.lower() in _COPIED_HEADERS or k.lower().startswith("x-amz-meta-")}
        headers = {k.lower(): v for k, v in headers.items()}
        headers["content-length"] = str(size)
        dst = call.authorized_target()
        return await call.request.app[UPSTREAM].send(
            dst.node, "PUT", dst.ws.bucket, call.physical_key, extra_params, headers,
            body=source.iter_chunks(STREAM_CHUNK), payload_hash="UNSIGNED-PAYLOAD")
    finally:
        source.release()


@seen_through
async def copy_object(call: Call) -> web.StreamResponse:
    source_size, etag = await _measure_source(call)
    quotas = call.request.app[QUOTAS]
    async with quotas.exclusive(call.authorized_target().ws, [call.object_key()]):
        old = await head_size(call, call.authorized_target(), call.object_key())
        new_object = 0 if old is not None else 1
        async with quotas.reserved(call.authorized_target().ws, source_size, new_object) as res:
            if _same_node(call):
                resp = await _server_side_copy(call, etag)
            else:
                replace = call.headers.get("x-amz-metadata-directive", "COPY").upper() == "REPLACE"
                resp = await _streamed_put(call, etag, source_size, [], None, replace)
            if resp.status >= 300:
                return await rewritten(call, resp)
            await quotas.settle(res, source_size - (old or 0), new_object)
    call.bytes_in = source_size
    if _same_node(call):
        return await rewritten(call, resp)
    etag = resp.headers.get("ETag", "")
    resp.release()
    return xml_response(f'<CopyObjectResult xmlns="{S3_NS}"><ETag>{escape(etag)}</ETag>'
                        f"<LastModified>{iso_time(time.time())}</LastModified></CopyObjectResult>")


@seen_through
async def upload_part_copy(call: Call) -> web.StreamResponse:
    part = part_number(call)
    quotas = call.request.app[QUOTAS]
    await quotas.check_upload(call.authorized_target().ws, call.object_key(), call.required_param("uploadId"))
    source_size, etag = await _measure_source(call)
    byte_range = _copy_range(call, source_size)
    size = byte_range[1] - byte_range[0] + 1 if byte_range else source_size
    async with quotas.reserved(call.authorized_target().ws, size, 0) as res:   # exactly what the node will copy
        if _same_node(call):
            resp = await _server_side_copy(call, etag)
        else:
            params = [("partNumber", str(part)), ("uploadId", call.required_param("uploadId"))]
            resp = await _streamed_put(call, etag, size, params, byte_range, True)
        if resp.status >= 300:
            return await rewritten(call, resp)
        await quotas.keep_for_part(res, call.object_key(), call.required_param("uploadId"), part)
    if _same_node(call):
        return await rewritten(call, resp)
    etag = resp.headers.get("ETag", "")
    resp.release()
    return xml_response(f'<CopyPartResult xmlns="{S3_NS}"><ETag>{escape(etag)}</ETag></CopyPartResult>')
