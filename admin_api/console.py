"""The console: the browser UI's static assets, its security headers, and the two things only it needs
from the API: presigned S3 requests and share links.

Bytes never pass through the API. The console asks ``POST /api/v1/console/presign`` for presigned
URLs on the S3 proxy and sends them from the browser; the proxy authenticates and authorizes them
exactly like a request from the CLI. They are signed with the caller's *console key*: a key of the
caller's own (unscoped, expiring, named ``wio:console``) that the API creates on first use and
replaces before it expires, so every console request is decided by the caller's grants at the moment
it reaches the proxy.

Share links (``/api/v1/workspaces/{name}/links``) are made with a dedicated key per link, scoped to
read that one object (or folder) and expiring with the link: for an object, a presigned GET URL; for
a folder, a console page whose listings and downloads are presigned with the link's key. Revoking the
link deletes the key, so the next request is refused (403 ``InvalidAccessKeyId`` at the proxy).

Login state stays in the page's memory (a bearer token, never a cookie or web storage), so there is
nothing for a cross-site request to ride on; the Content-Security-Policy allows scripts only from
the API's own origin, connections only to it and to the S3 proxy, and no framing.
"""
from __future__ import annotations

import hashlib
import hmac
from datetime import datetime, timedelta, timezone
from importlib import resources
from urllib.parse import quote, urlsplit

from aiohttp import web
from sqlalchemy import select

from admin_api.context import BOX, SETTINGS, caller, field, iso, json_body, mutation, read_session
from admin_api.errors import ApiError
from admin_api.keys import CONSOLE_KEY, LINK_KEY, issue_key
from admin_api.workspaces import load_workspace, require_on_workspace
from policy.models import AccessKey, User
from signing.sign import presign_url

__all__ = ["routes", "security_headers"]

routes = web.RouteTableDef()

CONSOLE_KEY_SECONDS = 24 * 3600       # a console key lives a day ...
CONSOLE_KEY_MARGIN = 2 * 3600         # ... and is replaced when less than this is left (> PRESIGN_MAX)
PRESIGN_SECONDS, PRESIGN_MAX = 900, 3600
LINK_MAX_SECONDS = 7 * 24 * 3600      # SigV4 presigned URLs live at most 7 days
MAX_PRESIGN_BATCH = 1000
_OPERATIONS = ("ListObjectsV2", "GetObject", "PutObject", "DeleteObject", "CreateMultipartUpload", "UploadPart",
               "CompleteMultipartUpload", "AbortMultipartUpload")
_ASSETS = {"app.js": "text/javascript", "ui.js": "text/javascript", "api.js": "text/javascript", "s3.js": "text/javascript",
           "pages.js": "text/javascript", "admin.js": "text/javascript", "groups.js": "text/javascript",
           "style.css": "text/css"}


# --- static assets and headers -----------------------------------------------------------------------------

def _asset(name: str) -> bytes:
    return resources.files("admin_api").joinpath("web", name).read_bytes()


def _csp(settings) -> str:
    s3 = urlsplit(settings.s3_public_endpoint)
    return ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            f"connect-src 'self' {s3.scheme}://{s3.netloc}; form-action 'self'; base-uri 'none'; "
            "frame-ancestors 'none'")


async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: every answer of the API (pages and JSON) forbids framing and sniffing."""
    response.headers.setdefault("Content-Security-Policy", _csp(request.app[SETTINGS]))
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    response.headers.setdefault("X-Frame-Options", "DENY")


@routes.get("/")
async def index(request: web.Request) -> web.Response:
    return web.Response(body=_asset("index.html"), content_type="text/html", charset="utf-8",
                        headers={"Cache-Control": "no-cache"})


@routes.get("/console/{name}")
async def asset(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if name not in _ASSETS:   # a fixed list: no path from the request ever reaches the file system
        raise ApiError("NotFound", "no such console file")
    return web.Response(body=_asset(name), content_type=_ASSETS[name], charset="utf-8",
                        headers={"Cache-Control": "no-cache"})


# --- presigning -----------------------------------------------------------------------------------------

def _object_url(settings, workspace: str, key: str) -> str:
    path = "/" + quote(workspace, safe="")
    if key:
        path += "/" + quote(key, safe="/-_.~")
    return settings.s3_public_endpoint + path


def _query(pairs: list[tuple[str, str]]) -> str:
    return "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in pairs)


def _text(entry: dict, name: str, *, required: bool = False) -> str:
    value = entry.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value) or len(value) > 1024:
        raise ApiError("InvalidField", f"'{name}' must be a string of 1 to 1024 characters")
    return value


def _disposition(filename: str) -> str:
    return f"attachment; filename*=UTF-8''{quote(filename, safe='')}"


def _request_for(settings, workspace: str, entry: dict) -> tuple[str, str]:
    """(method, unsigned URL) for one console operation."""
    if not isinstance(entry, dict):
        raise ApiError("InvalidField", "each request is an object with 'operation'")
    op = entry.get("operation")
    if op not in _OPERATIONS:
        raise ApiError("InvalidField", f"'operation' must be one of {', '.join(_OPERATIONS)}")
    if op == "ListObjectsV2":
        pairs = [("list-type", "2")]
        for name, param in (("delimiter", "delimiter"), ("prefix", "prefix"), ("continuation_token", "continuation-token")):
            if entry.get(name):
                pairs.append((param, _text(entry, name)))
        return "GET", _object_url(settings, workspace, "") + "?" + _query(pairs)
    key = _text(entry, "key", required=True)
    base = _object_url(settings, workspace, key)
    if op == "GetObject":
        filename = _text(entry, "download_as")
        return "GET", base + ("?" + _query([("response-content-disposition", _disposition(filename))])
                              if filename else "")
    if op in ("PutObject", "DeleteObject"):
        return ("PUT" if op == "PutObject" else "DELETE"), base
    if op == "CreateMultipartUpload":
        return "POST", base + "?uploads"
    upload_id = _text(entry, "upload_id", required=True)
    if op == "UploadPart":
        part = entry.get("part_number")
        if not isinstance(part, int) or isinstance(part, bool) or not 1 <= part <= 10000:
            raise ApiError("InvalidField", "'part_number' must be an integer from 1 to 10000")
        return "PUT", base + "?" + _query([("partNumber", str(part)), ("uploadId", upload_id)])
    if op == "CompleteMultipartUpload":
        return "POST", base + "?" + _query([("uploadId", upload_id)])
    return "DELETE", base + "?" + _query([("uploadId", upload_id)])   # AbortMultipartUpload


async def _console_key(request: web.Request) -> tuple[str, str]:
    """The caller's console key (id, secret): reused while it lives long enough, else a new one."""
    now = datetime.now(timezone.utc)
    async with read_session(request.app) as session:
        user = await caller(request, session)
        keys = (await session.scalars(select(AccessKey).where(
            AccessKey.user_id == user.id, AccessKey.name == CONSOLE_KEY, AccessKey.session_token_hash.is_(None),
            AccessKey.parent_id.is_(None), AccessKey.expires_at > now + timedelta(seconds=CONSOLE_KEY_MARGIN))
            .order_by(AccessKey.expires_at.desc()))).unique().all()
        for key in keys:
            if not key.scope:   # (a JSONB column: "no scope" may be SQL NULL or JSON null)
                return key.access_key_id, request.app[BOX].open(key.secret_enc)
    async with mutation(request.app) as (session, change):
        user = await caller(request, session)
        stale = (await session.scalars(select(AccessKey).where(
            AccessKey.user_id == user.id, AccessKey.name == CONSOLE_KEY, AccessKey.expires_at <= now))).unique().all()
        for old in stale:
            await session.delete(old)
            change.keys.add(old.access_key_id)
        out = await issue_key(session, change, request.app, user, name=CONSOLE_KEY, expires_in=CONSOLE_KEY_SECONDS,
                              scope=None, temporary=False)
    return out["access_key_id"], out["secret_access_key"]


@routes.post("/api/v1/console/presign")
async def presign(request: web.Request) -> web.Response:
    """Presigned proxy URLs for the console's S3 requests on one workspace.

    Body: ``{"workspace", "requests": [{"operation", "key"?, "prefix"?, "delimiter"?, "continuation_token"?,
    "upload_id"?, "part_number"?, "download_as"?}], "expires_in_seconds"?}``. Nothing is decided here: the
    proxy authorizes each request when it arrives, with the caller's grants at that moment."""
    body = await json_body(request)
    workspace = field(body, "workspace", str)
    entries = field(body, "requests", list)
    expires = field(body, "expires_in_seconds", int, default=PRESIGN_SECONDS)
    if not entries or len(entries) > MAX_PRESIGN_BATCH:
        raise ApiError("InvalidField", f"'requests' must hold 1 to {MAX_PRESIGN_BATCH} requests")
    if not 1 <= expires <= PRESIGN_MAX:
        raise ApiError("InvalidField", f"'expires_in_seconds' must be between 1 and {PRESIGN_MAX}")
    settings = request.app[SETTINGS]
    unsigned = [_request_for(settings, workspace, entry) for entry in entries]
    access_key, secret = await _console_key(request)
    now = datetime.now(timezone.utc)
    return web.json_response({"expires_in": expires, "urls": [
        {"method": method, "url": presign_url(method, url, access_key=access_key, secret_key=secret,
                                              region=settings.region, now=now, expires=expires)}
        for method, url in unsigned]})


# --- share links ----------------------------------------------------------------------------------------

def _link_json(key: AccessKey, creator: User) -> dict:
    entry = (key.scope or [{}])[0]
    covered = entry.get("prefix", "")
    kind = "prefix" if covered == "" or covered.endswith("/") else "key"
    return {"id": key.access_key_id, "workspace": entry.get("workspace"), kind: covered,
            "created_by": creator.username, "created_at": iso(key.created_at), "expires_at": iso(key.expires_at)}


def link_token(settings, access_key_id: str) -> str:
    """The secret half of a folder link's address: derived from the server's JWT secret, never stored."""
    return hmac.new(settings.jwt_secret.encode(), f"wio-link:{access_key_id}".encode(), hashlib.sha256).hexdigest()


@routes.post("/api/v1/workspaces/{name}/links")
async def create_link(request: web.Request) -> web.Response:
    """A link anyone can download with, without an account, until it expires or is revoked (workspace admins).

    ``{"key": ...}``: one object; the link is a presigned GET URL on the proxy. ``{"prefix": ...}`` (``""`` or
    ending in ``/``): a folder; the link is a console page (``/#/link/<id>/<token>``) that lists and downloads
    through ``POST /links/{id}/presign``."""
    body = await json_body(request)
    object_key = field(body, "key", str, default=None)
    prefix = field(body, "prefix", str, default=None)
    expires = field(body, "expires_in_seconds", int, default=24 * 3600)
    if (object_key is None) == (prefix is None):
        raise ApiError("InvalidField", "give exactly one of 'key' (one object) or 'prefix' (a folder)")
    if object_key is not None and (not object_key or len(object_key) > 1024 or object_key.endswith("/")):
        raise ApiError("InvalidField", "'key' must name one object")
    if prefix is not None and (len(prefix) > 1024 or prefix.startswith("/") or (prefix and not prefix.endswith("/"))):
        raise ApiError("InvalidPrefix", "'prefix' is empty (the whole workspace) or a folder ending in '/'")
    if not 60 <= expires <= LINK_MAX_SECONDS:
        raise ApiError("InvalidField", f"'expires_in_seconds' must be between 60 and {LINK_MAX_SECONDS}")
    settings = request.app[SETTINGS]
    covered = object_key if object_key is not None else prefix
    async with mutation(request.app) as (session, change):
        user = await caller(request, session)
        ws = await load_workspace(session, request.match_info["name"])
        await require_on_workspace(session, user, ws, "admin", covered)
        # The link's key reads exactly this object or folder; it is the creator's, so it can never read more
        # than they can.
        out = await issue_key(session, change, request.app, user, name=LINK_KEY, expires_in=expires,
                              scope=[{"workspace": ws.name, "permission": "read", "prefix": covered}],
                              temporary=False)
        created = datetime.now(timezone.utc)
    answer = {"id": out["access_key_id"], "workspace": ws.name, "created_by": user.username,
              "expires_at": out["expires_at"]}
    if object_key is None:
        url = f"{settings.api_url.rstrip('/')}/#/link/{out['access_key_id']}/{link_token(settings, out['access_key_id'])}"
        return web.json_response({**answer, "prefix": prefix, "url": url}, status=201)
    filename = object_key.rsplit("/", 1)[-1]
    url = presign_url("GET", _object_url(settings, ws.name, object_key) + "?" +
                      _query([("response-content-disposition", _disposition(filename))]),
                      access_key=out["access_key_id"], secret_key=out["secret_access_key"], region=settings.region,
                      now=created, expires=expires)
    return web.json_response({**answer, "key": object_key, "url": url}, status=201)


@routes.post("/api/v1/links/{link_id}/presign")
async def link_presign(request: web.Request) -> web.Response:
    """For the holder of a folder link (no account): presigned listings and downloads inside its folder.

    Body: ``{"token", "requests": [{"operation": "ListObjectsV2" | "GetObject", ...}]}``, as /console/presign.
    Signed with the link's own key, so the proxy still decides: a revoked or expired link answers 404 here
    and 403 at the proxy for URLs already handed out."""
    body = await json_body(request)
    token = field(body, "token", str)
    entries = field(body, "requests", list)   # empty: just what the link is (workspace, folder, expiry)
    if len(entries) > MAX_PRESIGN_BATCH:
        raise ApiError("InvalidField", f"'requests' holds at most {MAX_PRESIGN_BATCH} requests")
    settings = request.app[SETTINGS]
    link_id = request.match_info["link_id"]
    gone = ApiError("NoSuchLink", "this link does not exist, has expired or was revoked")
    if not hmac.compare_digest(token.encode(), link_token(settings, link_id).encode()):
        raise gone
    async with read_session(request.app) as session:
        key = await session.scalar(select(AccessKey).where(AccessKey.access_key_id == link_id,
                                                           AccessKey.name == LINK_KEY))
        if key is None or not key.scope or (key.expires_at and key.expires_at <= datetime.now(timezone.utc)):
            raise gone
        scope, secret = key.scope[0], request.app[BOX].open(key.secret_enc)
        expires_at = key.expires_at
    folder = scope["prefix"]
    if folder and not folder.endswith("/"):
        raise gone   # an object link is its presigned URL; it has no page
    unsigned = []
    for entry in entries:
        if not isinstance(entry, dict) or entry.get("operation") not in ("ListObjectsV2", "GetObject"):
            raise ApiError("InvalidField", "a link lists (ListObjectsV2) and downloads (GetObject) only")
        inside = entry.get("prefix", "") if entry["operation"] == "ListObjectsV2" else entry.get("key", "")
        if not isinstance(inside, str) or not inside.startswith(folder):
            raise ApiError("Forbidden", "this link covers only its own folder")
        unsigned.append(_request_for(settings, scope["workspace"], entry))
    now = datetime.now(timezone.utc)
    return web.json_response({"workspace": scope["workspace"], "prefix": folder, "expires_at": iso(expires_at),
                              "urls": [{"method": m, "url": presign_url(m, u, access_key=link_id, secret_key=secret,
                                                                        region=settings.region, now=now,
                                                                        expires=PRESIGN_SECONDS)}
                                       for m, u in unsigned]})


async def _links_of(session, workspace: str) -> list[AccessKey]:
    keys = (await session.scalars(select(AccessKey).where(AccessKey.name == LINK_KEY)
                                  .order_by(AccessKey.created_at))).unique().all()
    return [k for k in keys if k.scope and k.scope[0].get("workspace") == workspace]


@routes.get("/api/v1/workspaces/{name}/links")
async def list_links(request: web.Request) -> web.Response:
    """The workspace's live links (its admins). The URLs themselves were shown once, at creation."""
    now = datetime.now(timezone.utc)
    async with read_session(request.app) as session:
        user = await caller(request, session)
        ws = await load_workspace(session, request.match_info["name"])
        await require_on_workspace(session, user, ws, "admin")
        links = [k for k in await _links_of(session, ws.name) if k.expires_at is None or k.expires_at > now]
        return web.json_response({"links": [_link_json(k, k.user) for k in links]})


@routes.delete("/api/v1/workspaces/{name}/links/{link_id}")
async def revoke_link(request: web.Request) -> web.Response:
    """Revoke a link: its key is deleted, so the very next request with the URL is refused."""
    async with mutation(request.app) as (session, change):
        user = await caller(request, session)
        ws = await load_workspace(session, request.match_info["name"])
        link = next((k for k in await _links_of(session, ws.name)
                     if k.access_key_id == request.match_info["link_id"]), None)
        if link is None:
            raise ApiError("NoSuchLink", "no such share link")
        if link.user_id != user.id:
            await require_on_workspace(session, user, ws, "admin", (link.scope or [{}])[0].get("prefix", ""))
        await session.delete(link)
        change.keys.add(link.access_key_id)
    return web.Response(status=204)
