"""Service- and bucket-level operations: ListBuckets, Create/Delete/HeadBucket, location, versioning, listings."""
from __future__ import annotations

from xml.sax.saxutils import escape

import aiohttp
from aiohttp import web

from proxy.body import read_verified
from proxy.call import Call
from proxy.errors import S3Error
from proxy.listing import S3_NS, parse_xml, rewrite_result
from proxy.relay import iso_time, rewritten, xml_response
from proxy.resources import API_HTTP, BOX, SETTINGS, UPSTREAM, proxy_api_headers
from signing import make_body_verifier

__all__ = ["list_buckets", "create_bucket", "delete_bucket", "head_bucket", "get_bucket_location",
           "get_bucket_versioning", "list_objects"]


async def list_buckets(call: Call, visible) -> web.Response:
    entries = "".join(
        f"<Bucket><Name>{escape(t.ws.name)}</Name><CreationDate>{iso_time(float(created))}</CreationDate></Bucket>"
        for t, created in visible)
    user = escape(call.caller.user)
    return xml_response(f'<ListAllMyBucketsResult xmlns="{S3_NS}"><Owner><ID>{user}</ID><DisplayName>{user}'
                        f"</DisplayName></Owner><Buckets>{entries}</Buckets></ListAllMyBucketsResult>")


async def _api(call: Call, method: str, path: str, json_body: dict | None = None) -> tuple[int, dict]:
    """Workspace creation/deletion go through the admin API: the proxy never writes PostgreSQL.

    The proxy acts for the caller it has just authenticated, with its own credential, which the API
    accepts for these calls only (it holds no JWT secret that could act as anyone on any call).
    """
    settings = call.request.app[SETTINGS]
    try:
        async with call.request.app[API_HTTP].request(method, settings.api_url.rstrip("/") + path, json=json_body,
                                                      headers=proxy_api_headers(settings, call.caller.user)) as resp:
            data = await resp.json(content_type=None) if resp.status != 204 else {}
            return resp.status, data or {}
    except (aiohttp.ClientError, TimeoutError, ValueError):
        raise S3Error("ServiceUnavailable", "The wio admin service is unavailable") from None


_API_ERRORS = {"WorkspaceOwnedByYou": "BucketAlreadyOwnedByYou", "WorkspaceExists": "BucketAlreadyExists",
               "InvalidWorkspaceName": "InvalidBucketName", "WorkspaceNotEmpty": "BucketNotEmpty",
               "NoSuchWorkspace": "NoSuchBucket", "Forbidden": "AccessDenied", "NoDefaultRoot": "InvalidRequest",
               "AccountDisabled": "AccessDenied", "Unauthorized": "AccessDenied"}


def _api_error(status: int, data: dict) -> S3Error:
    error = data.get("error", {}) if isinstance(data, dict) else {}
    code = _API_ERRORS.get(error.get("code", ""), "ServiceUnavailable" if status >= 500 else "InvalidRequest")
    return S3Error(code, error.get("message"))


async def create_bucket(call: Call) -> web.Response:
    verifier = make_body_verifier(call.auth, call.signing_ctx, list(call.request.headers.items()))
    await read_verified(call.request, verifier, 64 << 10)   # CreateBucketConfiguration: the region is wio's
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
    return xml_response(f'<LocationConstraint xmlns="{S3_NS}">{value}</LocationConstraint>')


async def get_bucket_versioning(call: Call) -> web.Response:
    return xml_response(f'<VersioningConfiguration xmlns="{S3_NS}"/>')


def _seal_token(call: Call, token: str) -> str:
    return call.request.app[BOX].seal(f"{call.bucket}\n{token}")


def _open_token(call: Call, token: str) -> str:
    try:
        ws, _, inner = call.request.app[BOX].open(token).partition("\n")
    except Exception:  # noqa: BLE001 - any token we cannot open is simply invalid
        raise S3Error("InvalidArgument", "The continuation token is not valid") from None
    if ws != call.bucket:
        raise S3Error("InvalidArgument", "The continuation token belongs to another bucket")
    return inner


# Listing parameters that name keys: they are moved under the workspace's physical prefix.
_KEY_PARAMS = frozenset({"prefix", "marker", "start-after", "key-marker"})


async def list_objects(call: Call) -> web.Response:
    """ListObjects, ListObjectsV2, ListObjectVersions, ListMultipartUploads under the workspace prefix.

    Continuation tokens are sealed (AES-GCM, bound to the workspace), so the node's tokens, which
    may contain physical keys, never reach the client and cannot be forged to list elsewhere.
    """
    ws = call.target.ws
    params: list[tuple[str, str]] = []
    client_token = None
    for k, v in call.params:
        if k == "x-id":
            continue
        if k in _KEY_PARAMS:
            v = ws.prefix + v
        elif k == "continuation-token":
            client_token, v = v, _open_token(call, v)
        params.append((k, v))
    if not any(k == "prefix" for k, _ in params):
        params.append(("prefix", ws.prefix))
    resp = await call.request.app[UPSTREAM].send(call.target.node, "GET", ws.bucket, None, params, {})
    url_encoded = call.param("encoding-type") == "url"
    if call.op.name != "ListObjectsV2" or resp.status >= 400:
        return await rewritten(call, resp, url_encoded=url_encoded, listing=call.listing)
    try:
        raw = await resp.read()
    finally:
        resp.release()
    tokens = {}
    next_token = parse_xml(raw, "backend response").findtext(f"{{{S3_NS}}}NextContinuationToken")
    if next_token:
        tokens["NextContinuationToken"] = _seal_token(call, next_token)
    if client_token:
        tokens["ContinuationToken"] = client_token
    body = rewrite_result(raw, workspace=call.bucket, physical_prefix=ws.prefix, url_encoded=url_encoded,
                          listing=call.listing, tokens=tokens)
    return web.Response(body=body, headers={"Content-Type": "application/xml"})
