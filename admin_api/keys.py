"""Access keys: long-lived, temporary (session token + expiry), optionally down-scoped."""
from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone

from aiohttp import web
from sqlalchemy import select

from admin_api.context import BOX, VIA_PROXY, caller, field, find, iso, json_body, manages, mutation, read_session
from admin_api.errors import ApiError
from policy.decide import LEVELS
from policy.models import AccessKey, User
from foundation.secrets import new_access_key_id, new_secret_key, new_session_token

__all__ = ["routes", "issue_key", "MAX_KEY_SECONDS", "CONSOLE_KEY", "LINK_KEY"]

routes = web.RouteTableDef()
MAX_KEY_SECONDS = 366 * 24 * 3600
# Names of the keys the API makes for itself (admin_api/console.py); POST /keys refuses the prefix.
RESERVED_KEY_PREFIX = "wio:"
CONSOLE_KEY = "wio:console"   # presigns the console's S3 requests
LINK_KEY = "wio:link"         # one share link


def key_purpose(name: str | None) -> str | None:
    return {CONSOLE_KEY: "console", LINK_KEY: "share-link"}.get(name or "")


def key_json(key: AccessKey) -> dict:
    return {"access_key_id": key.access_key_id, "name": key.name, "created_at": iso(key.created_at),
            "expires_at": iso(key.expires_at), "temporary": key.session_token_hash is not None,
            "scope": key.scope, "purpose": key_purpose(key.name)}


def parse_scope(raw) -> list[dict] | None:
    if raw is None:
        return None
    if not isinstance(raw, list) or not raw or len(raw) > 100:
        raise ApiError("InvalidField", "'scope' must be a non-empty list of {workspace, permission, prefix?}")
    scope = []
    for entry in raw:
        if not isinstance(entry, dict) or not isinstance(entry.get("workspace"), str) \
                or entry.get("permission") not in LEVELS or not isinstance(entry.get("prefix", ""), str):
            raise ApiError("InvalidField",
                           "each scope entry needs 'workspace', 'permission' (read|write|admin), optional 'prefix'")
        scope.append({"workspace": entry["workspace"], "permission": entry["permission"],
                      "prefix": entry.get("prefix", "")})
    return scope


async def issue_key(session, change, app, user: User, *, name: str | None, expires_in: int | None,
                    scope: list[dict] | None, temporary: bool, parent: AccessKey | None = None) -> dict:
    """Create a key for ``user``; returns the one-time JSON with the secret (and session token)."""
    secret, token = new_secret_key(), (new_session_token() if temporary else None)
    key = AccessKey(access_key_id=new_access_key_id(), secret_enc=app[BOX].seal(secret), user=user,
                    user_id=user.id, name=name, scope=scope, parent_id=parent.id if parent is not None else None,
                    session_token_hash=hashlib.sha256(token.encode()).hexdigest() if token else None,
                    expires_at=datetime.now(timezone.utc) + timedelta(seconds=expires_in) if expires_in else None)
    session.add(key)
    await session.flush()
    change.keys.add(key.access_key_id)
    out = {**key_json(key), "secret_access_key": secret}
    if token:
        out["session_token"] = token
    return out


@routes.post("/api/v1/keys")
async def create_key(request: web.Request) -> web.Response:
    body = await json_body(request)
    name = field(body, "name", str, default=None)
    if name is not None and name.startswith(RESERVED_KEY_PREFIX):
        raise ApiError("InvalidField", f"key names starting with '{RESERVED_KEY_PREFIX}' are reserved for wio")
    expires_in = field(body, "expires_in_seconds", int, default=None)
    if expires_in is not None and not 60 <= expires_in <= MAX_KEY_SECONDS:
        raise ApiError("InvalidField", f"'expires_in_seconds' must be between 60 and {MAX_KEY_SECONDS}")
    scope = parse_scope(body.get("scope"))
    parent_id = field(body, "parent", str, default=None)
    if parent_id is not None and expires_in is None:
        raise ApiError("InvalidField", "a key minted from another key ('parent') must be temporary")
    async with mutation(request.app) as (session, change):
        user = await caller(request, session, proxy_may_act=True)   # STS AssumeRole
        if request[VIA_PROXY] and parent_id is None:
            raise ApiError("Forbidden", "the proxy only mints keys from a key it verified ('parent')")
        parent = None
        if parent_id is not None:
            parent = await session.scalar(select(AccessKey).where(AccessKey.access_key_id == parent_id))
            if parent is None or parent.user_id != user.id or parent.session_token_hash is not None:
                raise ApiError("InvalidField", "'parent' must be one of your long-lived keys")
            if parent.scope is not None and scope != parent.scope:
                raise ApiError("InvalidField", "a key minted from a scoped key has exactly that key's scope")
        out = await issue_key(session, change, request.app, user, name=name, expires_in=expires_in, scope=scope,
                              temporary=expires_in is not None, parent=parent)
    return web.json_response(out, status=201)


@routes.get("/api/v1/keys")
async def list_keys(request: web.Request) -> web.Response:
    async with read_session(request.app) as session:
        user = await caller(request, session)
        keys = (await session.scalars(select(AccessKey).where(AccessKey.user_id == user.id)
                                      .order_by(AccessKey.created_at))).unique().all()
    return web.json_response({"keys": [key_json(k) for k in keys]})


@routes.delete("/api/v1/keys/{access_key_id}")
async def delete_key(request: web.Request) -> web.Response:
    async with mutation(request.app) as (session, change):
        user = await caller(request, session)
        key = await find(session, AccessKey.access_key_id, request.match_info["access_key_id"], ApiError("NoSuchKey"),
                         lambda key: manages(user, key.user_id))
        # every key minted from this one goes with it (the foreign key cascades; the projection needs the ids)
        children = (await session.scalars(select(AccessKey.access_key_id)
                                          .where(AccessKey.parent_id == key.id))).all()
        await session.delete(key)
        change.keys.add(key.access_key_id)
        change.keys.update(children)
    return web.Response(status=204)
