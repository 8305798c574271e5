"""Object operations: forwarded to ``{ws prefix}{key}`` on the node, with quotas around every write."""
from __future__ import annotations

import asyncio
import base64
import hashlib
from typing import cast
from xml.sax.saxutils import escape

from aiohttp import web

from policy.decide import decide_object
from proxy.addressing import check_key
from proxy.authz import Target
from proxy.body import VerifiedBody, read_verified
from proxy.call import Call, forwarded_headers
from proxy.errors import S3Error
from nodeclient.pool import NodeResponse
from proxy.listing import S3_NS, parse_xml, rewrite_result
from proxy.quota import Reservation, object_identity, seen_through
from proxy.relay import raise_for_backend, relay, rewritten, xml_response
from proxy.resources import QUOTAS, UPSTREAM
from signing import CHECKSUM_HEADERS, make_body_verifier

__all__ = ["forward_object", "put_object", "delete_object", "upload_part", "abort_upload", "complete_upload",
           "create_upload", "delete_objects", "head_object", "head_size", "object_params", "part_number"]

SMALL_BODY = 1 << 20          # bodies up to this size are verified whole before the upstream request starts
MAX_PUT = 5 << 30             # S3's single-PUT limit
MAX_PART = 5 << 30
HEAD_CONCURRENCY = 16


def object_params(call: Call) -> list[tuple[str, str]]:
    return [(k, v) for k, v in call.params if k != "x-id"]


async def head_object(call: Call, target: Target, key: str, params: list[tuple[str, str]] | None = None,
                      conditions: dict[str, str] | None = None) -> tuple[int, str] | None:
    """Size and ETag of ``key`` in ``target`` on its node, or None when there is no such object.

    ``conditions`` (If-Match, If-Modified-Since …) that do not hold raise ``PreconditionFailed``.
    """
    resp = await call.request.app[UPSTREAM].send(target.node, "HEAD", target.ws.bucket, target.ws.prefix + key,
                                                 params or [], conditions or {})
    resp.release()
    if resp.status == 404:
        return None
    if resp.status in (304, 412):
        raise S3Error("PreconditionFailed")
    if resp.status >= 400:
        raise S3Error("ServiceUnavailable", "The storage node could not be asked for the object's size")
    return int(resp.headers.get("Content-Length", "0")), resp.headers.get("ETag", "")


async def head_size(call: Call, target: Target, key: str) -> int | None:
    """Size of ``key`` in ``target`` on its node, or None when there is no such object."""
    found = await head_object(call, target, key)
    return found[0] if found is not None else None


async def _send(call: Call, headers: dict[str, str], body: bytes | VerifiedBody | None,
                payload_hash: str | None) -> NodeResponse:
    target = call.authorized_target()
    try:
        resp = await call.request.app[UPSTREAM].send(target.node, call.request.method, target.ws.bucket,
                                                     call.physical_key, object_params(call), headers, body=body,
                                                     payload_hash=payload_hash)
    except S3Error:
        if isinstance(body, VerifiedBody) and body.error is not None:
            raise body.error from None
        raise
    if isinstance(body, VerifiedBody) and body.error is not None:
        resp.release()
        raise body.error
    return resp


async def _prepare_body(call: Call, headers: dict[str, str], limit: int, *,
                        checksum_of_body: bool = True) -> tuple[bytes | VerifiedBody, str | None, int]:
    """The body to forward (bytes when small, else a verified stream), its payload hash, and its length.

    ``checksum_of_body=False``: the request's x-amz-checksum-* header is not the body's (on
    CompleteMultipartUpload it is the whole object's checksum, for the node to check).
    """
    request_headers = [(name, value) for name, value in call.request.headers.items()
                       if checksum_of_body or name.lower() not in CHECKSUM_HEADERS]
    verifier = make_body_verifier(call.auth, call.signing_ctx, request_headers)
    length = verifier.decoded_length
    body = None
    if length is None:
        if "chunked" not in call.request.headers.get("Transfer-Encoding", "").lower():
            raise S3Error("MissingContentLength")
        # HTTP chunked and no length: the node (and the quota) need the length up front, so a small
        # body is read whole to learn it; a larger one needs its Content-Length, as S3 requires.
        body = await read_verified(call.request, verifier, min(SMALL_BODY, limit), too_large="MissingContentLength")
        length = len(body)
    elif length > limit:
        raise S3Error("EntityTooLarge", f"This upload is limited to {limit} bytes; use multipart upload")
    headers["content-length"] = str(length)
    call.bytes_in = length
    if body is not None:
        return body, None, length
    if length <= SMALL_BODY:
        return await read_verified(call.request, verifier, SMALL_BODY), None, length
    return VerifiedBody(call.request, verifier, max_bytes=length), "UNSIGNED-PAYLOAD", length


async def forward_object(call: Call) -> web.StreamResponse:
    """Reads and other operations that change no usage: GetObject, HeadObject, tagging, attributes."""
    headers = forwarded_headers(call)
    body, payload_hash = None, None
    if call.op.has_body:
        body, payload_hash, _ = await _prepare_body(call, headers, SMALL_BODY)
    resp = await _send(call, headers, body, payload_hash)
    if call.op.name == "ListParts":
        return await rewritten(call, resp)
    return await relay(call, resp)


@seen_through
async def put_object(call: Call) -> web.StreamResponse:
    headers = forwarded_headers(call)
    body, payload_hash, length = await _prepare_body(call, headers, MAX_PUT)
    target, key = call.authorized_target(), call.object_key()
    async with call.request.app[QUOTAS].writing(target.ws, key, lambda: head_size(call, target, key)) as write:
        # Writes of one key may overlap (quota.py): the first reads the old size, each reserves its own
        old = await head_size(call, target, key) if write.leads else None
        await call.request.app[QUOTAS].reserve_write(write, length, old)
        resp = await _send(call, headers, body, payload_hash)
        write.stored = resp.status < 300
    if resp.status < 300:
        call.etag = resp.headers.get("ETag", "")
        call.content_type = headers.get("content-type", "")
    return await relay(call, resp)


@seen_through
async def delete_object(call: Call) -> web.StreamResponse:
    quotas = call.request.app[QUOTAS]
    ws = call.authorized_target().ws
    async with quotas.exclusive(ws, [call.object_key()]) as lock, quotas.reserved(ws, 0, 0) as res:
        old = await head_size(call, call.authorized_target(), call.object_key())
        resp = await _send(call, forwarded_headers(call), None, None)
        if resp.status < 300 and old is not None:
            await quotas.settle(res, -old, -1, unlock=lock)
    return await relay(call, resp)


def part_number(call: Call) -> int:
    try:
        part = int(call.param("partNumber") or "")
    except ValueError:
        part = 0
    if not 1 <= part <= 10000:
        raise S3Error("InvalidArgument", "Part number must be an integer between 1 and 10000")
    return part


@seen_through
async def upload_part(call: Call) -> web.StreamResponse:
    part = part_number(call)
    quotas = call.request.app[QUOTAS]
    await quotas.check_upload(call.authorized_target().ws, call.object_key(), call.required_param("uploadId"))
    headers = forwarded_headers(call)
    body, payload_hash, length = await _prepare_body(call, headers, MAX_PART)
    async with quotas.reserved(call.authorized_target().ws, length, 0) as res:
        resp = await _send(call, headers, body, payload_hash)
        if resp.status < 300:   # the part stays reserved (pending) until the upload is completed or aborted
            await quotas.keep_for_part(res, call.object_key(), call.required_param("uploadId"), part)
    return await relay(call, resp)


@seen_through
async def abort_upload(call: Call) -> web.StreamResponse:
    quotas = call.request.app[QUOTAS]
    await quotas.check_upload(call.authorized_target().ws, call.object_key(), call.required_param("uploadId"))
    resp = await _send(call, forwarded_headers(call), None, None)
    if resp.status < 300 or resp.status == 404:
        await quotas.upload_finished(call.authorized_target().ws, call.object_key(), call.required_param("uploadId"))
    return await relay(call, resp)


@seen_through
async def complete_upload(call: Call) -> web.StreamResponse:
    quotas = call.request.app[QUOTAS]
    ws, key, upload_id = call.authorized_target().ws, call.object_key(), call.required_param("uploadId")
    try:
        await quotas.check_upload(ws, key, upload_id)
        repeated = False
    except S3Error as exc:
        # A completion repeated (a client retrying after a lost answer) goes to the node as S3 answers
        # it; nothing is reserved for it, and usage moves only by what the object's size changed.
        if exc.code != "NoSuchUpload" or not await quotas.was_completed(ws, key, upload_id):
            raise
        repeated = True
    headers = forwarded_headers(call)
    body, payload_hash, _ = await _prepare_body(call, headers, SMALL_BODY, checksum_of_body=False)
    async with quotas.exclusive(call.authorized_target().ws, [call.object_key()]):
        old = await head_size(call, call.authorized_target(), call.object_key())
        new_object = 0 if old is not None else 1
        # The object will hold the parts the request names, as the node stores them; the upload's parts
        # are reserved already, anything beyond is reserved now: over the quota, nothing becomes visible.
        if not isinstance(body, bytes):  # a body within SMALL_BODY is always read whole
            raise S3Error("MalformedXML", "The CompleteMultipartUpload body is too large")
        total = 0 if repeated else await _parts_total(call, body)
        held = 0 if repeated else await quotas.upload_held(ws, key, upload_id)
        async with quotas.reserved(ws, max(0, total - held), new_object) as res:
            resp = await _send(call, headers, body, payload_hash)
            if resp.status >= 300:
                return await rewritten(call, resp)
            # S3 may answer 200 with an error document for CompleteMultipartUpload: read before settling.
            try:
                raw = await resp.read()
            finally:
                resp.release()
            if b"<Error>" in raw[:512]:
                code = parse_xml(raw, "backend response").findtext("Code") or "InternalError"
                raise S3Error(code)
            size = await head_size(call, call.authorized_target(), key) or 0
            if not repeated:
                await quotas.upload_finished(ws, key, upload_id, completed=True)
            await quotas.settle(res, size - (old or 0), new_object)
    call.bytes_in = size
    return web.Response(body=rewrite_result(raw, workspace=ws.name, physical_prefix=ws.prefix),
                        headers={"Content-Type": "application/xml"})


async def _parts_total(call: Call, body: bytes) -> int:
    """Bytes of the parts a CompleteMultipartUpload request names, as the node holds them (ListParts)."""
    root = parse_xml(body)
    ns = f"{{{S3_NS}}}" if root.tag.startswith("{") else ""
    named = {(p.findtext(f"{ns}PartNumber") or "").strip() for p in root.iter(f"{ns}Part")}
    total, marker = 0, "0"
    while True:
        target = call.authorized_target()
        resp = await call.request.app[UPSTREAM].send(
            target.node, "GET", target.ws.bucket, call.physical_key,
            [("uploadId", call.required_param("uploadId")), ("max-parts", "1000"), ("part-number-marker", marker)], {})
        await raise_for_backend(resp)
        try:
            page = parse_xml(await resp.read(), "backend response")
        finally:
            resp.release()
        for part in page.iter(f"{{{S3_NS}}}Part"):
            if (part.findtext(f"{{{S3_NS}}}PartNumber") or "") in named:
                total += int(part.findtext(f"{{{S3_NS}}}Size") or "0")
        marker = page.findtext(f"{{{S3_NS}}}NextPartNumberMarker") or ""
        if page.findtext(f"{{{S3_NS}}}IsTruncated") != "true" or not marker:
            return total


async def create_upload(call: Call) -> web.StreamResponse:
    resp = await _send(call, forwarded_headers(call), None, None)
    out = await rewritten(call, resp)
    upload_id = next((e.text for e in parse_xml(cast(bytes, out.body), "backend response").iter()
                      if e.tag.rpartition("}")[2] == "UploadId" and e.text), None)
    if upload_id is None:
        raise S3Error("InternalError", "The storage node answered without an upload id")
    await call.request.app[QUOTAS].upload_started(call.authorized_target().ws, call.object_key(), upload_id)
    return out


@seen_through
async def delete_objects(call: Call) -> web.Response:
    """DeleteObjects: every key authorized on its own; denied keys are reported per key in the result."""
    verifier = make_body_verifier(call.auth, call.signing_ctx, list(call.request.headers.items()))
    root = parse_xml(await read_verified(call.request, verifier, 2 << 20))
    ns = f"{{{S3_NS}}}" if root.tag.startswith("{") else ""
    quiet = (root.findtext(f"{ns}Quiet") or "").strip().lower() == "true"
    objects = root.findall(f"{ns}Object")
    if not objects or len(objects) > 1000:
        raise S3Error("MalformedXML", "DeleteObjects takes 1 to 1000 keys")
    allowed: list[str] = []
    errors: list[tuple[str, str, str]] = []
    for obj in objects:
        key = obj.findtext(f"{ns}Key") or ""
        try:
            if not key:
                raise S3Error("InvalidArgument", "An empty key cannot be deleted")
            check_key(key)
            if not decide_object(call.authorized_target().grants, "write", key).allowed:
                raise S3Error("AccessDenied")
            allowed.append(key)
        except S3Error as exc:
            errors.append((key, exc.code, exc.message))
    deleted: list[str] = []
    allowed = list(dict.fromkeys(allowed))   # a key named twice is deleted (and its space freed) once
    if allowed:
        quotas = call.request.app[QUOTAS]
        ws = call.authorized_target().ws
        async with quotas.exclusive(ws, allowed), quotas.reserved(ws, 0, 0) as res:
            deleted = await _delete_keys(call, allowed, errors, res)
    parts = [] if quiet else [f"<Deleted><Key>{escape(k)}</Key></Deleted>" for k in deleted]
    parts += [f"<Error><Key>{escape(k)}</Key><Code>{escape(c)}</Code><Message>{escape(m)}</Message></Error>"
              for k, c, m in errors]
    return xml_response(f'<DeleteResult xmlns="{S3_NS}">{"".join(parts)}</DeleteResult>')


async def _delete_keys(call: Call, allowed: list[str], errors: list[tuple[str, str, str]],
                       res: Reservation) -> list[str]:
    """Delete ``allowed`` (distinct, authorized, locked) on the node and settle ``res`` with what they held."""
    sem = asyncio.Semaphore(HEAD_CONCURRENCY)

    async def size_of(key: str) -> int | None:
        async with sem:
            return await head_size(call, call.authorized_target(), key)
    sizes = await asyncio.gather(*(size_of(k) for k in allowed))
    prefix = call.authorized_target().ws.prefix
    payload = (f'<Delete xmlns="{S3_NS}"><Quiet>false</Quiet>' + "".join(
        f"<Object><Key>{escape(prefix + k)}</Key></Object>" for k in allowed) + "</Delete>").encode()
    md5 = base64.b64encode(hashlib.md5(payload).digest()).decode()
    resp = await call.request.app[UPSTREAM].send(
        call.authorized_target().node, "POST", call.authorized_target().ws.bucket, None, [("delete", "")],
        {"content-type": "application/xml", "content-md5": md5}, body=payload)
    await raise_for_backend(resp)
    try:
        result = parse_xml(await resp.read(), "backend response")
    finally:
        resp.release()
    gone = {(d.findtext(f"{{{S3_NS}}}Key") or "")[len(prefix):] for d in result.iter(f"{{{S3_NS}}}Deleted")}
    for err in result.iter(f"{{{S3_NS}}}Error"):
        key = (err.findtext(f"{{{S3_NS}}}Key") or "")[len(prefix):]
        errors.append((key, err.findtext(f"{{{S3_NS}}}Code") or "InternalError",
                       err.findtext(f"{{{S3_NS}}}Message") or ""))
    deleted: list[str] = []
    freed: dict[str, int] = {}   # by object: names the node takes for one object free it once
    for key, size in zip(allowed, sizes, strict=True):
        if key in gone:
            deleted.append(key)
            if size is not None:
                freed[object_identity(key)] = size
    await call.request.app[QUOTAS].settle(res, -sum(freed.values()), -len(freed))
    call.deleted_keys = deleted
    return deleted
