"""Quotas and usage. Workspace admins set workspace quotas; system admins set user and root quotas.

Usage is kept exact by the proxy in Redis (``wio:use:{w|u|r}:{name}``, see policy/quota.lua) and is
rebuilt from the node by reconciliation, which also picks up data written around wio and gives back
reservations past their deadline (docs/design.md, "Quotas").
"""
from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web
from sqlalchemy import select

from admin_api.context import DB, REDIS, caller, find, json_body, keeping, manages, mutation, read_session
from admin_api.errors import ApiError
from admin_api.users import require_admin
from admin_api.workspaces import node_client, workspace_for
from admin_api.usage import rebuild_usage
from policy.models import Root, User, Workspace
from nodeclient.client import NodeError

__all__ = ["routes", "MAX_QUOTA", "usage_keeper"]

log = logging.getLogger("wio.api")
USAGE_CHECK_SECONDS = 10.0   # how often workspaces with unknown usage or overdue reservations are rebuilt

routes = web.RouteTableDef()
MAX_QUOTA = 1 << 62  # ~4.6 EB: anything larger is a typo, not a plan


async def _requested_limits(request: web.Request) -> dict[str, int | None]:
    """The limits a PUT .../quota body sets (read before the model lock is taken): ``max_bytes`` and/or
    ``max_objects``, each a whole number or null (no limit); a limit the body leaves out is kept."""
    body = await json_body(request)
    limits = {name: body[name] for name in ("max_bytes", "max_objects") if name in body}
    if not limits:
        raise ApiError("MissingField", "give 'max_bytes' and/or 'max_objects' (null removes a limit)")
    for name, value in limits.items():
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool):
            raise ApiError("InvalidField", f"'{name}' must be a whole number or null")
        if value < 0:
            raise ApiError("InvalidField", f"'{name}' cannot be negative")
        if value > MAX_QUOTA:
            raise ApiError("InvalidField", f"'{name}' is larger than any storage wio can manage ({MAX_QUOTA})")
    return limits


def _set_limits(entity, limits: dict[str, int | None], changed: set[str], name: str) -> dict:
    for field_name, value in limits.items():
        setattr(entity, field_name, value)
    changed.add(name)
    return {"max_bytes": entity.max_bytes, "max_objects": entity.max_objects}


async def usage_of(redis, scope: str, name: str, entity) -> dict:
    raw = await redis.hgetall(f"wio:use:{scope}:{name}")
    return {"bytes": int(raw.get("bytes", 0)), "objects": int(raw.get("objects", 0)),
            "pending_bytes": int(raw.get("pbytes", 0)), "pending_objects": int(raw.get("pobjects", 0)),
            **({"known": raw.get("known") == "1"} if scope == "w" else {}),
            "max_bytes": entity.max_bytes, "max_objects": entity.max_objects}


@routes.put("/api/v1/workspaces/{name}/quota")
async def set_workspace_quota(request: web.Request) -> web.Response:
    limits = await _requested_limits(request)
    async with mutation(request.app) as (session, change):
        user = await caller(request, session)
        ws = await workspace_for(session, user, request.match_info["name"], "admin")
        out = _set_limits(ws, limits, change.workspaces, ws.name)
    return web.json_response({"workspace": ws.name, **out})


@routes.put("/api/v1/users/{username}/quota")
async def set_user_quota(request: web.Request) -> web.Response:
    return await _set_quota_as_admin(request, User.username, request.match_info["username"], ApiError("NoSuchUser"))


@routes.put("/api/v1/roots/{name}/quota")
async def set_root_quota(request: web.Request) -> web.Response:
    return await _set_quota_as_admin(request, Root.name, request.match_info["name"], ApiError("NoSuchRoot"))


async def _set_quota_as_admin(request: web.Request, column: Any, name: str, missing: ApiError) -> web.Response:
    """A user's or a root's limits: set by system administrators only."""
    limits = await _requested_limits(request)
    async with mutation(request.app) as (session, change):
        require_admin(await caller(request, session))
        entity = await find(session, column, name, missing)
        changed, label = (change.users, "user") if column.class_ is User else (change.roots, "root")
        out = _set_limits(entity, limits, changed, name)
    return web.json_response({label: name, **out})


@routes.get("/api/v1/workspaces/{name}/usage")
async def workspace_usage(request: web.Request) -> web.Response:
    async with read_session(request.app) as session:
        user = await caller(request, session)
        ws = await workspace_for(session, user, request.match_info["name"], "read")
    return web.json_response({"workspace": ws.name, **await usage_of(request.app[REDIS], "w", ws.name, ws)})


@routes.get("/api/v1/users/{username}/usage")
async def user_usage(request: web.Request) -> web.Response:
    async with read_session(request.app) as session:
        me = await caller(request, session)
        user = await find(session, User.username, request.match_info["username"], ApiError("NoSuchUser"),
                          lambda found: manages(me, found.id))
    return web.json_response({"user": user.username, **await usage_of(request.app[REDIS], "u", user.username, user)})


@routes.get("/api/v1/roots/{name}/usage")
async def root_usage(request: web.Request) -> web.Response:
    async with read_session(request.app) as session:
        me = await caller(request, session)
        root = await find(session, Root.name, request.match_info["name"], ApiError("NoSuchRoot"))
        if not manages(me, root.node.owner_id):
            raise ApiError("Forbidden", "root usage is for system administrators and the node's owner")
    return web.json_response({"root": root.name, **await usage_of(request.app[REDIS], "r", root.name, root)})


@routes.post("/api/v1/workspaces/{name}/usage/reconcile")
async def reconcile_usage(request: web.Request) -> web.Response:
    """Rebuild the workspace's usage from what is really on the node under its prefix.

    Differences go to the workspace, its owner and its root at once, so nothing is counted twice;
    reservations past their deadline are given back (``rebuild_usage``).
    """
    async with read_session(request.app) as session:
        user = await caller(request, session)
        ws = await workspace_for(session, user, request.match_info["name"], "admin")
        node, bucket, prefix, owner, root = ws.root.node, ws.root.bucket, ws.prefix, ws.owner.username, ws.root.name
        client = node_client(request.app, node)
    try:
        total_bytes, total_objects, corrected = await rebuild_usage(request.app[REDIS], client, bucket, prefix,
                                                                    [ws.name, owner, root])
    except NodeError as exc:
        raise ApiError("NodeUnavailable", str(exc)) from None
    delta_bytes, delta_objects, delta_pbytes, delta_pobjects = corrected
    return web.json_response({"workspace": ws.name, "bytes": total_bytes, "objects": total_objects,
                              "corrected_bytes": delta_bytes, "corrected_objects": delta_objects,
                              "corrected_pending_bytes": delta_pbytes, "corrected_pending_objects": delta_pobjects})


async def _rebuild_where_needed(app: web.Application) -> None:
    """Rebuild every workspace whose usage is unknown (Redis lost it, a write outlived its reservation,
    never counted since the upgrade) or that holds a reservation past its deadline (a write cut off
    from Redis before it settled)."""
    redis = app[REDIS]
    async with app[DB]() as session:
        workspaces = (await session.scalars(select(Workspace))).unique().all()
        async with redis.pipeline(transaction=False) as pipe:
            for ws in workspaces:
                pipe.hget(f"wio:use:w:{ws.name}", "known")
                pipe.hvals(f"wio:rsv:{ws.name}")
            answers = await pipe.execute()
        now_ms = time.time() * 1000
        due = [(ws.name, ws.owner.username, ws.root.name, ws.root.bucket, ws.prefix, node_client(app, ws.root.node))
               for ws, known, reservations in zip(workspaces, answers[::2], answers[1::2], strict=True)
               if known != "1" or any(int(r.rsplit(" ", 1)[1]) <= now_ms for r in reservations)]
    for name, owner, root, bucket, prefix, client in due:
        try:
            total_bytes, total_objects, corrected = await rebuild_usage(redis, client, bucket, prefix,
                                                                        [name, owner, root])
        except NodeError as exc:
            log.warning("usage of workspace %s not rebuilt (will retry): %s", name, exc)
            continue
        log.info("usage of workspace %s rebuilt from its node: %d bytes, %d objects (corrected by %s)",
                 name, total_bytes, total_objects, corrected)


async def usage_keeper(app: web.Application) -> AsyncIterator[None]:
    """Rebuild usage from the nodes where it is unknown or overdue, at start-up and every USAGE_CHECK_SECONDS."""
    async with keeping("usage check", lambda: _rebuild_where_needed(app), USAGE_CHECK_SECONDS):
        yield
