"""Explain a decision: would this user (or this access key) be allowed this operation on this key, and why?

Operators need to answer "why can't Bob read this?" without guessing. The answer is computed with
the same ``policy.decide`` functions the proxy uses, from PostgreSQL (the source of truth).
"""
from __future__ import annotations

from datetime import datetime, timezone

from aiohttp import web

from admin_api.context import caller, field, find, iso, json_body, read_session
from admin_api.errors import ApiError
from admin_api.workspaces import workspace_for
from policy.decide import decide_listing, decide_object
from policy.models import AccessKey, User
from policy.operations import LISTING_OPERATIONS, OPERATION_PERMISSIONS
from policy.queries import grants_on, user_groups

__all__ = ["routes"]

routes = web.RouteTableDef()


@routes.post("/api/v1/explain")
async def explain(request: web.Request) -> web.Response:
    body = await json_body(request)
    operation = field(body, "operation", str)
    key = field(body, "key", str, default="")
    username = field(body, "user", str, default=None)
    access_key_id = field(body, "access_key", str, default=None)
    if operation not in OPERATION_PERMISSIONS or OPERATION_PERMISSIONS[operation] is None and operation != "DeleteObjects":
        raise ApiError("InvalidField", "'operation' must be an S3 object or bucket operation such as GetObject")
    needed = OPERATION_PERMISSIONS[operation] or "write"
    async with read_session(request.app) as session:
        me = await caller(request, session)
        ws = await workspace_for(session, me, field(body, "workspace", str), "admin")
        key_row = None
        if access_key_id is not None:
            key_row = await find(session, AccessKey.access_key_id, access_key_id, ApiError("NoSuchKey"))
            user = key_row.user
        elif username is not None:
            user = await find(session, User.username, username, ApiError("NoSuchUser", f"no user named '{username}'"))
        else:
            raise ApiError("MissingField", "give 'user' or 'access_key'")
        groups = await user_groups(session, user)
        grants = await grants_on(session, user, ws, groups, scope=key_row.scope if key_row else None)
    out = {"user": user.username, "groups": groups, "workspace": ws.name, "operation": operation, "key": key,
           "permission_needed": needed,
           "grants": [{"permission": g.permission, "prefix": g.prefix, "via": g.label} for g in grants]}
    if key_row is not None:
        out["access_key"] = {"access_key_id": key_row.access_key_id, "scope": key_row.scope,
                             "expires_at": iso(key_row.expires_at)}
    if user.disabled:
        return web.json_response({**out, "allowed": False, "decided_by": "user disabled"})
    if key_row is not None and key_row.expires_at and key_row.expires_at <= datetime.now(timezone.utc):
        return web.json_response({**out, "allowed": False, "decided_by": "access key expired"})
    if operation in LISTING_OPERATIONS:
        decision, listing = decide_listing(grants, needed, key)
        out["listing_limited_to"] = None if listing.everything else list(listing.prefixes)
    else:
        decision = decide_object(grants, needed, key)
    return web.json_response({**out, "allowed": decision.allowed, "decided_by": decision.reason})
