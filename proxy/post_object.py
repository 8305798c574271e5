"""Browser form uploads (POST Object with a SigV4 POST policy).

The form's policy is verified by ``signing.post_policy`` (signature, expiration, every condition,
and that the form cannot redirect the upload to another bucket); then the caller's key must hold
write on the resulting key, like any PutObject. The file part has no length of its own, so the
policy's content-length-range maximum (5 GiB without one) is reserved against the quotas first; then
the file is spooled to a temporary file (never more than was reserved, never held in memory), sent
to the node with a known Content-Length, and the reservation settled to the real size.
"""
from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
from datetime import datetime, timezone
from typing import AsyncIterator, BinaryIO
from xml.sax.saxutils import escape

from aiohttp import BodyPartReader, web

from policy.decide import WorkspaceView, decide_object
from proxy.addressing import check_key
from proxy.call import CALL, Call, PostForm
from proxy.errors import S3Error
from proxy.listing import S3_NS
from proxy.objects import head_size
from proxy.operations import Operation
from proxy.quota import Quotas, Reservation, seen_through
from proxy.relay import backend_error
from proxy.resources import AUTHZ, QUOTAS, SETTINGS, UPSTREAM
from proxy.state import ACCESS_KEY, USER
from signing import SigningError, parse_post_policy, verify_post_policy

__all__ = ["authorize_post", "post_object"]

MAX_FIELDS, MAX_FIELD_BYTES = 64, 64 << 10
MAX_POST = 5 << 30
_KEPT_FIELDS = ("content-type", "cache-control", "content-disposition", "content-encoding", "expires")


async def _read_form(request: web.Request) -> tuple[dict[str, str], BodyPartReader]:
    try:
        reader = await request.multipart()
    except (ValueError, AssertionError):
        raise S3Error("MalformedPOSTRequest") from None
    fields: dict[str, str] = {}
    while True:
        part = await reader.next()
        if part is None:
            raise S3Error("InvalidArgument", "POST requires exactly one file upload per request")
        if not isinstance(part, BodyPartReader) or part.name is None:   # a nested multipart/* part is no field
            raise S3Error("MalformedPOSTRequest")
        if part.name.lower() == "file":
            return fields, part
        if len(fields) >= MAX_FIELDS:
            raise S3Error("MalformedPOSTRequest", "Too many form fields")
        value = await part.read_chunk(MAX_FIELD_BYTES + 1)
        if len(value) > MAX_FIELD_BYTES or not part.at_eof():
            raise S3Error("MaxMessageLengthExceeded", "A form field is too large")
        fields[part.name] = value.decode("utf-8", "replace")


async def _spool(part: BodyPartReader, limit: int) -> tuple[BinaryIO, int]:
    spool = tempfile.TemporaryFile()
    size = 0
    loop = asyncio.get_running_loop()
    while True:
        chunk = await part.read_chunk(1 << 20)
        if not chunk:
            break
        size += len(chunk)
        if size > limit:
            spool.close()
            raise S3Error("EntityTooLarge", "The file is larger than the policy allows")
        await loop.run_in_executor(None, spool.write, chunk)
    spool.seek(0)
    return spool, size


@contextlib.asynccontextmanager
async def _reserved_for_form(quotas: Quotas, ws: WorkspaceView, high: int,
                             unbounded: bool) -> AsyncIterator[Reservation]:
    """The form's largest allowed file (and one object), reserved before a byte of it is spooled."""
    try:
        async with quotas.reserved(ws, high, 1) as res:
            yield res
    except S3Error as exc:
        if exc.code == "QuotaExceeded" and unbounded:
            raise S3Error("QuotaExceeded", f"{exc.message}: a POST policy without content-length-range is "
                                           f"reserved at {MAX_POST} bytes; give it a content-length-range") from None
        raise


async def _spooled_chunks(spool: BinaryIO) -> AsyncIterator[bytes]:
    """The spooled file, read off the event loop, as the upstream request's body."""
    loop = asyncio.get_running_loop()
    while chunk := await loop.run_in_executor(None, spool.read, 1 << 20):
        yield chunk


async def authorize_post(request: web.Request, op: Operation, bucket: str) -> Call:
    """The POST policy door (``Strategy.POST_POLICY``): the form's fields up to its file part, the policy's
    signature and conditions, then write on the key the form names, as for any PutObject."""
    settings = request.app[SETTINGS]
    fields, file_part = await _read_form(request)
    try:
        policy = parse_post_policy(fields, now=datetime.now(timezone.utc), region=settings.region)
    except SigningError as exc:
        raise S3Error.from_signing(exc) from None
    request[ACCESS_KEY] = policy.access_key_id
    caller, (target,) = await request.app[AUTHZ].load(policy.access_key_id, policy.session_token, [bucket])
    request[USER] = caller.user
    try:
        result = verify_post_policy(policy, caller.secret_key, bucket=bucket)
    except SigningError as exc:
        raise S3Error.from_signing(exc) from None
    if target is None:
        raise S3Error("NoSuchBucket")
    key = (result.key or "").replace("${filename}", os.path.basename(file_part.filename or ""))
    if not key:
        raise S3Error("InvalidArgument", "The form must give a key")
    check_key(key)
    call = Call(request=request, op=op, bucket=bucket, key=key, params=[], caller=caller, auth=None, signing_ctx=None,
                target=target, post=PostForm(fields, file_part, result))
    request[CALL] = call
    decision = decide_object(target.grants, op.permission or "write", key)
    if not decision.allowed:
        raise S3Error("AccessDenied", f"Access Denied ({decision.reason})")
    call.decided_by = decision.reason
    return call


@seen_through
async def post_object(call: Call) -> web.StreamResponse:
    request, target, key = call.request, call.authorized_target(), call.object_key()
    form_post = call.authorized_post()
    fields, file_part, result = form_post.fields, form_post.file, form_post.policy
    bucket = call.bucket or ""
    low, high = result.content_length_range or (0, MAX_POST)
    high = min(high, MAX_POST)
    quotas = request.app[QUOTAS]
    async with _reserved_for_form(quotas, target.ws, high, result.content_length_range is None) as res:
        spool, size = await _spool(file_part, high)   # never more than was reserved
        with spool:
            if size < low:
                raise S3Error("EntityTooSmall", "The file is smaller than the policy requires")
            form = {k.lower(): v for k, v in fields.items()}
            headers = {k: form[k] for k in _KEPT_FIELDS if k in form}
            headers.update({k: v for k, v in form.items() if k.startswith("x-amz-meta-")})
            if "content-type" not in headers and file_part.headers.get("Content-Type"):
                headers["content-type"] = file_part.headers["Content-Type"]
            headers["content-length"] = str(size)
            async with quotas.exclusive(target.ws, [key]):
                old = await head_size(call, target, key)
                resp = await request.app[UPSTREAM].send(
                    target.node, "PUT", target.ws.bucket, target.ws.prefix + key, [], headers,
                    body=_spooled_chunks(spool), payload_hash="UNSIGNED-PAYLOAD")
                try:
                    if resp.status >= 300:
                        raise await backend_error(resp)
                    await quotas.settle(res, size - (old or 0), 0 if old is not None else 1)
                    etag = resp.headers.get("ETag", "")
                finally:
                    resp.release()
    call.bytes_in, call.etag, call.content_type = size, etag, headers.get("content-type", "")
    status = form.get("success_action_status", "204")
    if status == "201":
        body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<PostResponse xmlns="{S3_NS}"><Location>/{escape(bucket)}/'
                f"{escape(key)}</Location><Bucket>{escape(bucket)}</Bucket><Key>{escape(key)}</Key>"
                f"<ETag>{escape(etag)}</ETag></PostResponse>")
        return web.Response(status=201, body=body.encode(), headers={"Content-Type": "application/xml", "ETag": etag})
    return web.Response(status=200 if status == "200" else 204, headers={"ETag": etag})
