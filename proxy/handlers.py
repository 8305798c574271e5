"""Step 4-5 per operation. Authorization already happened in ``proxy.app.authorize``; handlers only
translate between the workspace view and the node, and stream."""
from __future__ import annotations

import base64
import binascii
import time
from datetime import datetime, timezone
from xml.sax.saxutils import escape

import aiohttp
import jwt
from aiohttp import web

from policy.decide import decide_object
from proxy.body import VerifiedBody, read_verified
from proxy.call import Call, forwarded_headers
from proxy.errors import S3Error
from proxy.listing import S3_NS, parse_xml, rewrite_result
from proxy.resources import BOX, SETTINGS, UPSTREAM, API_HTTP
from signing import make_body_verifier

__all__ = ["HANDLERS"]

XML_HEADERS = {"Content-Type": "application/xml"}
_HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade",
                         "proxy-authenticate", "server", "date", "x-amz-request-id", "x-amz-id-2"})
SMALL_BODY = 1 << 20
MAX_OBJECT = 5 << 30


def _xml(body: str, status: int = 200) -> web.Response:
    return web.Response(body=('<?xml version="1.0" encoding="UTF-8"?>\n' + body).encode(), status=status,
                        headers=XML_HEADERS)


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


async def _backend_error(resp: aiohttp.ClientResponse) -> S3Error:
    """Re-raise a backend error as our own S3 error (no physical names leak through)."""
    body = await resp.content.read(64 << 10) if resp.method != "HEAD" else b""
    code = ""
    if body:
        try:
            code = parse_xml(body, "backend error").findtext("Code") or ""
        except S3Error:
            code = ""
    if resp.status >= 500:
        code = "SlowDown" if code == "SlowDown" or resp.status == 503 else "InternalError"
        return S3Error(code, "The storage node reported an error", status=503 if code == "SlowDown" else 502)
    defaults = {404: "NoSuchKey", 403: "AccessDenied", 412: "PreconditionFailed", 416: "InvalidRange",
                409: "OperationAborted", 400: "InvalidRequest"}
    code = code or defaults.get(resp.status, "InvalidRequest")
    return S3Error(code, status=resp.status)


async def relay(call: Call, resp: aiohttp.ClientResponse) -> web.StreamResponse:
    """Stream a backend response to the client. Errors become our own S3 errors."""
    try:
        if resp.status >= 400:
            raise await _backend_error(resp)
        out = web.StreamResponse(status=resp.status)
        for name, value in resp.headers.items():
            if name.lower() not in _HOP_BY_HOP:
                out.headers.add(name, value)
        if resp.content_length is not None:
            out.content_length = resp.content_length
        await out.prepare(call.request)
        if call.request.method != "HEAD" and resp.status not in (204, 304):
            received = 0
            try:
                async for chunk in resp.content.iter_chunked(1 << 20):
                    received += len(chunk)
                    await out.write(chunk)
            except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError, TimeoutError):
                # The node died mid-body: never finish a short 200; cut the client connection.
                call.request.transport and call.request.transport.abort()
                raise
            call.extra["bytes_out"] = received
        await out.write_eof()
        return out
    finally:
        resp.release()


async def _rewritten(call: Call, resp: aiohttp.ClientResponse, **kwargs) -> web.Response:
    """A small XML result from the node, rewritten into the workspace view."""
    try:
        if resp.status >= 400:
            raise await _backend_error(resp)
        body = await resp.read()
    finally:
        resp.release()
    headers = {k: v for k, v in resp.headers.items()
               if k.lower() not in _HOP_BY_HOP and k.lower() not in ("content-length", "content-type")}
    if body.strip():
        body = rewrite_result(body, workspace=call.bucket, physical_prefix=call.target.ws.prefix, **kwargs)
    return web.Response(body=body, status=resp.status, headers={**headers, **XML_HEADERS})


def _object_params(call: Call) -> list[tuple[str, str]]:
    return [(k, v) for k, v in call.params if k != "x-id"]


async def forward_object(call: Call) -> web.StreamResponse:
    """GetObject, HeadObject, DeleteObject, tagging, abort, UploadPart … on ws prefix + key."""
    ws, node = call.target.ws, call.target.node
    headers = forwarded_headers(call)
    body = None
    if call.op.has_body:
        verifier = make_body_verifier(call.auth, call.signing_ctx, list(call.request.headers.items()))
        length = verifier.decoded_length
        if length is None:
            raise S3Error("MissingContentLength")
        if length > MAX_OBJECT:
            raise S3Error("EntityTooLarge", "Single uploads are limited to 5 GiB; use multipart upload")
        headers["content-length"] = str(length)
        if length <= SMALL_BODY:
            body = await read_verified(call.request, verifier, SMALL_BODY)
            body_hash = None
        else:
            body = VerifiedBody(call.request, verifier, max_bytes=length)
            body_hash = "UNSIGNED-PAYLOAD"
        call.extra["bytes_in"] = length
    else:
        body_hash = None
    try:
        resp = await call.request.app[UPSTREAM].send(
            node, call.request.method, ws.bucket, call.physical_key, _object_params(call), headers,
            body=body, payload_hash=body_hash)
    except S3Error:
        if isinstance(body, VerifiedBody) and body.error is not None:
            raise body.error from None
        raise
    except aiohttp.ClientError:
        if isinstance(body, VerifiedBody) and body.error is not None:
            raise body.error from None
        raise S3Error("ServiceUnavailable", f"The storage node '{node.name}' failed during the upload") from None
    if isinstance(body, VerifiedBody) and body.error is not None:
        resp.release()
        raise body.error
    if call.op.name == "PutObject":
        call.extra["etag"] = resp.headers.get("ETag", "")
        call.extra["content_type"] = headers.get("content-type", "")
    if call.op.name in ("CompleteMultipartUpload", "ListParts"):
        return await _rewritten(call, resp)
    if call.op.name == "CreateMultipartUpload":
        return await _rewritten(call, resp)
    return await relay(call, resp)


# ---------------------------------------------------------------- service and bucket level

async def list_buckets(call: Call, visible) -> web.Response:
    entries = "".join(
        f"<Bucket><Name>{escape(t.ws.name)}</Name><CreationDate>{_iso(float(created))}</CreationDate></Bucket>"
        for t, created in visible)
    user = escape(call.caller.user)
    return _xml(f'<ListAllMyBucketsResult xmlns="{S3_NS}"><Owner><ID>{user}</ID><DisplayName>{user}'
                f"</DisplayName></Owner><Buckets>{entries}</Buckets></ListAllMyBucketsResult>")


async def _api(call: Call, method: str, path: str, json_body: dict | None = None) -> tuple[int, dict]:
    """Workspace creation/deletion go through the admin API: the proxy never writes PostgreSQL."""
    settings = call.request.app[SETTINGS]
    now = int(time.time())
    token = jwt.encode({"sub": call.caller.user, "iat": now, "exp": now + 60, "typ": "wio-login"},
                       settings.jwt_secret, algorithm="HS256")
    try:
        async with call.request.app[API_HTTP].request(method, settings.api_url.rstrip("/") + path, json=json_body,
                                                      headers={"Authorization": f"Bearer {token}"}) as resp:
            data = await resp.json(content_type=None) if resp.status != 204 else {}
            return resp.status, data or {}
    except (aiohttp.ClientError, TimeoutError, ValueError):
        raise S3Error("ServiceUnavailable", "The wio admin service is unavailable") from None


_API_ERRORS = {"WorkspaceOwnedByYou": "BucketAlreadyOwnedByYou", "WorkspaceExists": "BucketAlreadyExists",
               "InvalidWorkspaceName": "InvalidBucketName", "WorkspaceNotEmpty": "BucketNotEmpty",
               "NoSuchWorkspace": "NoSuchBucket", "Forbidden": "AccessDenied", "NoDefaultRoot": "InvalidRequest",
               "AccountDisabled": "AccessDenied"}


def _api_error(status: int, data: dict) -> S3Error:
    error = data.get("error", {})
    code = _API_ERRORS.get(error.get("code", ""), "ServiceUnavailable" if status >= 500 else "InvalidRequest")
    return S3Error(code, error.get("message"))


async def create_bucket(call: Call) -> web.Response:
    verifier = make_body_verifier(call.auth, call.signing_ctx, list(call.request.headers.items()))
    await read_verified(call.request, verifier, 64 << 10)   # CreateBucketConfiguration: region is wio's choice
    status, data = await _api(call, "POST", "/api/v1/workspaces", {"name": call.bucket})
    if status != 201:
        raise _api_error(status, data)
    return web.Response(status=200, headers={"Location": f"/{call.bucket}"})


async def delete_bucket(call: Call) -> web.Response:
    status, data = await _api(call, "DELETE", f"/api/v1/workspaces/{call.bucket}")
    if status != 204:
        raise _api_error(status, data)
    return web.Response(status=204)


async def head_bucket(call: Call) -> web.Response:
    return web.Response(status=200, headers={"x-amz-bucket-region": call.request.app[SETTINGS].region})


async def get_bucket_location(call: Call) -> web.Response:
    region = call.request.app[SETTINGS].region
    value = "" if region == "us-east-1" else escape(region)
    return _xml(f'<LocationConstraint xmlns="{S3_NS}">{value}</LocationConstraint>')


async def get_bucket_versioning(call: Call) -> web.Response:
    return _xml(f'<VersioningConfiguration xmlns="{S3_NS}"/>')


# ---------------------------------------------------------------- listings

def _seal_token(call: Call, token: str) -> str:
    return call.request.app[BOX].seal(f"{call.bucket}\n{token}")


def _open_token(call: Call, token: str) -> str:
    try:
        ws, _, inner = call.request.app[BOX].open(token).partition("\n")
    except (ValueError, binascii.Error, Exception):  # noqa: BLE001 - any undecodable token is invalid
        raise S3Error("InvalidArgument", "The continuation token is not valid") from None
    if ws != call.bucket:
        raise S3Error("InvalidArgument", "The continuation token belongs to another bucket")
    return inner


async def list_objects(call: Call) -> web.Response:
    ws, prefix = call.target.ws, call.target.ws.prefix
    v2 = call.op.name == "ListObjectsV2"
    params: list[tuple[str, str]] = []
    client_token = None
    for k, v in call.params:
        if k == "x-id":
            continue
        if k in ("prefix", "marker", "start-after"):
            v = prefix + v
        elif k == "continuation-token":
            client_token = v
            v = _open_token(call, v)
        elif k == "key-marker":
            v = prefix + v
        params.append((k, v))
    if not any(k == "prefix" for k, _ in params):
        params.append(("prefix", prefix))
    resp = await call.request.app[UPSTREAM].send(call.target.node, "GET", ws.bucket, None, params, {})
    tokens = {}
    if v2:
        if resp.status < 400:
            raw = await resp.read()
            resp_tokens = parse_xml(raw, "backend response").findtext(f"{{{S3_NS}}}NextContinuationToken")
            if resp_tokens:
                tokens["NextContinuationToken"] = _seal_token(call, resp_tokens)
            if client_token:
                tokens["ContinuationToken"] = client_token
            resp.release()
            body = rewrite_result(raw, workspace=call.bucket, physical_prefix=prefix,
                                  url_encoded=call.param("encoding-type") == "url", listing=call.listing,
                                  tokens=tokens)
            return web.Response(body=body, headers=XML_HEADERS)
    return await _rewritten(call, resp, url_encoded=call.param("encoding-type") == "url", listing=call.listing)


# ---------------------------------------------------------------- multi-object delete

async def delete_objects(call: Call) -> web.Response:
    verifier = make_body_verifier(call.auth, call.signing_ctx, list(call.request.headers.items()))
    body = await read_verified(call.request, verifier, 2 << 20)
    root = parse_xml(body)
    ns = f"{{{S3_NS}}}" if root.tag.startswith("{") else ""
    quiet = (root.findtext(f"{ns}Quiet") or "").strip().lower() == "true"
    objects = root.findall(f"{ns}Object")
    if len(objects) > 1000:
        raise S3Error("MalformedXML", "DeleteObjects takes at most 1000 keys")
    from proxy.addressing import check_key
    allowed, errors = [], []
    for obj in objects:
        key = obj.findtext(f"{ns}Key") or ""
        try:
            check_key(key)
            if not key:
                raise S3Error("InvalidArgument", "An empty key cannot be deleted")
            decision = decide_object(call.target.grants, "write", key)
            if not decision.allowed:
                raise S3Error("AccessDenied")
            allowed.append(key)
        except S3Error as exc:
            errors.append(f"<Error><Key>{escape(key)}</Key><Code>{exc.code}</Code>"
                          f"<Message>{escape(exc.message)}</Message></Error>")
    deleted = []
    if allowed:
        prefix = call.target.ws.prefix
        payload = (f'<Delete xmlns="{S3_NS}"><Quiet>{"true" if quiet else "false"}</Quiet>' + "".join(
            f"<Object><Key>{escape(prefix + k)}</Key></Object>" for k in allowed) + "</Delete>").encode()
        import hashlib
        md5 = base64.b64encode(hashlib.md5(payload).digest()).decode()
        resp = await call.request.app[UPSTREAM].send(
            call.target.node, "POST", call.target.ws.bucket, None, [("delete", "")],
            {"content-type": "application/xml", "content-md5": md5}, body=payload)
        if resp.status >= 400:
            try:
                raise await _backend_error(resp)
            finally:
                resp.release()
        result = rewrite_result(await resp.read(), workspace=call.bucket, physical_prefix=prefix)
        resp.release()
        inner = parse_xml(result)
        for child in inner:
            deleted.append(child)
            if child.tag.endswith("Deleted"):
                call.extra.setdefault("deleted_keys", []).append(child.findtext(f"{{{S3_NS}}}Key") or "")
    import xml.etree.ElementTree as ET
    parts = "".join(ET.tostring(c, encoding="unicode") for c in deleted)
    return _xml(f'<DeleteResult xmlns="{S3_NS}">{parts}{"".join(errors)}</DeleteResult>'.replace(
        f' xmlns="{S3_NS}"', "").replace("<DeleteResult>", f'<DeleteResult xmlns="{S3_NS}">', 1))


# ---------------------------------------------------------------- copies

async def copy_object(call: Call) -> web.StreamResponse:
    src, dst = call.source, call.target
    headers = forwarded_headers(call)
    for name, value in call.request.headers.items():
        if name.lower().startswith("x-amz-copy-source-") and name.lower() in call.auth.signed_headers:
            headers[name.lower()] = value
    if src.node.name != dst.node.name or src.node.endpoint != dst.node.endpoint:
        raise S3Error("NotImplemented", "Copies between workspaces on different storage nodes are not supported yet")
    from urllib.parse import quote
    source = "/" + src.ws.bucket + "/" + quote((src.ws.prefix + call.source_key).encode(), safe="/~")
    if call.source_version:
        source += "?versionId=" + quote(call.source_version, safe="")
    headers["x-amz-copy-source"] = source
    resp = await call.request.app[UPSTREAM].send(dst.node, "PUT", dst.ws.bucket, call.physical_key,
                                                 _object_params(call), headers)
    return await _rewritten(call, resp)


HANDLERS = {
    "GetObject": forward_object, "HeadObject": forward_object, "PutObject": forward_object,
    "DeleteObject": forward_object, "GetObjectTagging": forward_object, "PutObjectTagging": forward_object,
    "DeleteObjectTagging": forward_object, "GetObjectAttributes": forward_object,
    "CreateMultipartUpload": forward_object, "UploadPart": forward_object, "CompleteMultipartUpload": forward_object,
    "AbortMultipartUpload": forward_object, "ListParts": forward_object,
    "CopyObject": copy_object, "UploadPartCopy": copy_object,
    "CreateBucket": create_bucket, "DeleteBucket": delete_bucket, "HeadBucket": head_bucket,
    "GetBucketLocation": get_bucket_location, "GetBucketVersioning": get_bucket_versioning,
    "ListObjects": list_objects, "ListObjectsV2": list_objects,
    "DeleteObjects": delete_objects,
}
