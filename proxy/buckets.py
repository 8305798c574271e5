"""Service- and bucket-level operations: ListBuckets, Create/Delete/HeadBucket, location, versioning, listings."""
from __future__ import annotations

from typing import Any
from xml.sax.saxutils import escape

import aiohttp
from aiohttp import web

from policy.decide import ListingFilter, WorkspaceView
from proxy.body import read_verified
from proxy.call import Call
from proxy.errors import S3Error
from proxy.listing import S3_NS, ListingView, open_marker, prefix_matches_nothing, rewrite_listing
from proxy.relay import backend_error, iso_time, xml_response
from proxy.resources import API_HTTP, BOX, SETTINGS, UPSTREAM, proxy_api_headers
from signing import make_body_verifier

__all__ = ["list_buckets", "create_bucket", "delete_bucket", "head_bucket", "get_bucket_location",
           "get_bucket_versioning", "list_objects"]


async def list_buckets(call: Call, visible: list[tuple[WorkspaceView, str]]) -> web.Response:
    entries = "".join(
        f"<Bucket><Name>{escape(ws.name)}</Name><CreationDate>{iso_time(float(created))}</CreationDate></Bucket>"
        for ws, created in visible)
    user = escape(call.caller.user)
    return xml_response(f'<ListAllMyBucketsResult xmlns="{S3_NS}"><Owner><ID>{user}</ID><DisplayName>{user}'
                        f"</DisplayName></Owner><Buckets>{entries}</Buckets></ListAllMyBucketsResult>")


async def _api(call: Call, method: str, path: str,
               json_body: dict[str, str | None] | None = None) -> tuple[int, dict[str, Any]]:
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


def _api_error(status: int, data: dict[str, Any]) -> S3Error:
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


# Listing parameters naming a position in the listing: a marker wio sealed opens to its physical
# value; anything else is the client's own workspace-relative key (True) or a node id (False).
_POSITION_PARAMS = {"marker": True, "start-after": True, "key-marker": True, "version-id-marker": False,
                    "upload-id-marker": False}
_ECHOED_PARAMS = frozenset({"prefix", "delimiter", "continuation-token", *_POSITION_PARAMS})


async def list_objects(call: Call) -> web.Response:
    """ListObjects, ListObjectsV2, ListObjectVersions, ListMultipartUploads under the workspace prefix.

    The rules (containment, filtering, sealed markers, encoding) are in proxy/listing.py and
    docs/design.md ("Listings"). The node is asked for raw names; ``encoding-type`` is applied here.
    """
    target, box = call.authorized_target(), call.request.app[BOX]
    ws = target.ws
    view = ListingView(operation=call.op.name, workspace=ws.name, physical_prefix=ws.prefix, owner=ws.owner,
                       box=box, listing=call.listing or ListingFilter())
    params: list[tuple[str, str]] = [("prefix", ws.prefix)]
    seen: set[str] = set()
    for k, v in call.params:
        if k in seen:  # one value each: what was authorized, filtered and forwarded must agree
            raise S3Error("InvalidArgument", f"The query parameter '{k}' is given more than once")
        seen.add(k)
        if k == "x-id":
            continue
        if k == "encoding-type":
            if v != "url":
                raise S3Error("InvalidArgument", "Invalid Encoding Method specified in Request")
            view.url_encoded = True
            continue
        if k in _ECHOED_PARAMS:
            view.echo[k] = v
        if k == "prefix":
            params[0] = (k, ws.prefix + v)
            continue
        if k == "continuation-token":
            if not v:  # an empty token is no token (S3 echoes it and lists from the start)
                continue
            token = open_marker(box, ws.name, k, v)
            if token is None:
                raise S3Error("InvalidArgument", "The continuation token is not valid")
            v = token
        elif k in ("max-keys", "max-uploads") and v.isdigit() and int(v) > 1000:
            v = "1000"   # S3 pages hold at most 1000 entries; some nodes (SeaweedFS) honour more
        elif k in _POSITION_PARAMS:
            opened = open_marker(box, ws.name, k, v)
            v = opened if opened is not None else (ws.prefix + v if _POSITION_PARAMS[k] else v)
        params.append((k, v))
    resp = await call.request.app[UPSTREAM].send(target.node, "GET", ws.bucket, None, params, {})
    try:
        if resp.status >= 400:
            raise await backend_error(resp)
        raw = await resp.read()
    finally:
        resp.release()
    body = rewrite_listing(raw, view, matches_nothing=prefix_matches_nothing(view.prefix))
    return web.Response(body=body, headers={"Content-Type": "application/xml"})
