"""Workspaces (create, import, list, get, delete) and their shares."""
from __future__ import annotations

import logging
from datetime import datetime, timezone

from aiohttp import web
from sqlalchemy import select

from admin_api.context import (BOX, NODE_HTTP, REDIS, SETTINGS, caller, field, find, insert_unique, iso, json_body,
                               manages, mutation, parse_time, read_session)
from admin_api.errors import ApiError
from admin_api.usage import forget_usage, rebuild_usage
from policy.decide import LEVELS, decide_object
from policy.models import Group, Root, Share, User, Workspace
from policy.names import workspace_name_error
from nodeclient.client import NodeClient, NodeError
from policy.queries import grants_on, visible_workspaces

log = logging.getLogger("wio.api")

__all__ = ["routes", "workspace_json", "load_workspace", "require_on_workspace", "workspace_for", "node_client"]

routes = web.RouteTableDef()


def workspace_json(ws: Workspace, permission: str | None = None) -> dict:
    out = {"name": ws.name, "owner": ws.owner.username, "public": ws.public, "anonymous_read": ws.anonymous_read,
           "root": ws.root.name,
           "node": ws.root.node.name, "root_type": ws.root.type, "created_at": iso(ws.created_at)}
    if permission is not None:
        out["permission"] = permission
    return out


async def load_workspace(session, name: str) -> Workspace:
    return await find(session, Workspace.name, name, ApiError("NoSuchWorkspace", f"no workspace named '{name}'"))


async def workspace_for(session, user: User, name: str, needed: str) -> Workspace:
    """The workspace ``name``, which ``user`` must hold ``needed`` permission on (``NoSuchWorkspace`` if it
    does not exist or the user has no grant on it at all, ``Forbidden`` if the grants fall short)."""
    ws = await load_workspace(session, name)
    await require_on_workspace(session, user, ws, needed)
    return ws


async def best_permission(session, user: User, ws: Workspace) -> str | None:
    grants = await grants_on(session, user, ws)
    whole = [g for g in grants if g.prefix == ""]
    pool = whole or grants
    return max((g.permission for g in pool), key=LEVELS.__getitem__, default=None)


async def require_on_workspace(session, user: User, ws: Workspace, needed: str, prefix: str = "") -> None:
    """System admins may manage every workspace; others need ``needed`` covering ``prefix``."""
    if user.is_admin:
        return
    grants = await grants_on(session, user, ws)
    if not grants:
        raise ApiError("NoSuchWorkspace", f"no workspace named '{ws.name}'")
    if not decide_object(grants, needed, prefix).allowed:
        raise ApiError("Forbidden", f"this needs {needed} permission on workspace '{ws.name}'")


def node_client(app: web.Application, node) -> NodeClient:
    return NodeClient(app[NODE_HTTP], node.endpoint, node.region, node.access_key, app[BOX].open(node.secret_enc))


async def default_root(session, kind: str) -> Root:
    root = await session.scalar(select(Root).where(Root.type == kind).order_by(Root.id).limit(1))
    if root is None:
        raise ApiError("NoDefaultRoot", f"no '{kind}' root exists yet; an administrator must create one")
    return root


def _access(request: web.Request, body: dict) -> tuple[bool | None, bool | None]:
    """``public`` and ``anonymous_read`` from a request body (None: not given, left as it is).

    anonymous_read (unsigned requests may read, S3's public-read) implies public (every authenticated
    user may read): asking for it makes the workspace public, and making it not public clears it.
    Setting it needs the operator's switch (WIO_ANONYMOUS_READS); clearing it never does."""
    public = field(body, "public", bool, default=None)
    anonymous = field(body, "anonymous_read", bool, default=None)
    if anonymous and public is False:
        raise ApiError("InvalidField", "'anonymous_read' needs a public workspace: it cannot be set with "
                                            "'public': false")
    if anonymous and not request.app[SETTINGS].anonymous_reads:
        raise ApiError("AnonymousReadsDisabled")
    if anonymous:
        public = True
    elif public is False:
        anonymous = False
    return public, anonymous


def _check_name(name: str) -> None:
    error = workspace_name_error(name)
    if error:
        raise ApiError("InvalidWorkspaceName", error)


async def _insert(session, ws: Workspace) -> None:
    await insert_unique(session, ws, ApiError("WorkspaceExists", f"a workspace named '{ws.name}' already exists"))


@routes.post("/api/v1/workspaces")
async def create_workspace(request: web.Request) -> web.Response:
    body = await json_body(request)
    name = field(body, "name", str)
    public, anonymous = _access(request, body)
    root_name = field(body, "root", str, default=None)
    _check_name(name)
    async with mutation(request.app) as (session, change):
        user = await caller(request, session, proxy_may_act=True)   # S3 CreateBucket
        existing = await session.scalar(select(Workspace).where(Workspace.name == name))
        if existing is not None:
            raise ApiError("WorkspaceOwnedByYou" if existing.owner_id == user.id else "WorkspaceExists",
                           f"a workspace named '{name}' already exists")
        if root_name:
            root = await find(session, Root.name, root_name, ApiError("NoSuchRoot", f"no root named '{root_name}'"))
        else:
            root = await default_root(session, "public" if public else "private")
        if root.type == "unmanaged":
            raise ApiError("UnmanagedRoot")
        base = root.prefix.strip("/")
        prefix = f"{base}/" if base else ""
        ws = Workspace(name=name, root=root, root_id=root.id, owner=user, owner_id=user.id,
                       public=bool(public) or root.type == "public", anonymous_read=bool(anonymous),
                       prefix=f"{prefix}{user.username}/{name}/")
        await _insert(session, ws)
        change.workspaces.add(name)
        change.users.add(user.username)
    # A new (empty) workspace's usage is known: zero. Imported ones stay unknown until reconciled (quota.lua),
    # and so does one whose name still has counters or reservations of a deleted workspace: the usage
    # keeper rebuilds it from the node (within USAGE_CHECK_SECONDS), correcting owner and root with it.
    redis = request.app[REDIS]
    left = await redis.hmget(f"wio:use:w:{name}", "bytes", "objects", "pbytes", "pobjects")
    clean = not any(int(v or 0) for v in left) and not await redis.exists(f"wio:rsv:{name}")
    await redis.hset(f"wio:use:w:{name}", "known", "1" if clean else "0")
    return web.json_response(workspace_json(ws, "admin"), status=201)


@routes.post("/api/v1/workspaces/import")
async def import_workspace(request: web.Request) -> web.Response:
    body = await json_body(request)
    name, root_name = field(body, "name", str), field(body, "root", str)
    prefix = field(body, "prefix", str, default="")
    owner_name = field(body, "owner", str, default=None)
    public, anonymous = _access(request, body)
    _check_name(name)
    if prefix.startswith("/") or (prefix and not prefix.endswith("/")) or "\\" in prefix \
            or any(part in (".", "..") for part in prefix.split("/")[:-1]):
        raise ApiError("InvalidPrefix", "'prefix' must be empty or a relative path ending in '/'")
    async with mutation(request.app) as (session, change):
        user = await caller(request, session)
        root = await find(session, Root.name, root_name, ApiError("NoSuchRoot", f"no root named '{root_name}'"))
        if root.type != "unmanaged":
            raise ApiError("ManagedRoot")
        if not manages(user, root.node.owner_id):
            raise ApiError("Forbidden", "only the node's owner or an administrator can import workspaces")
        owner = user
        if owner_name:
            owner = await find(session, User.username, owner_name, ApiError("NoSuchUser", f"no user named '{owner_name}'"))
        base = root.prefix.strip("/")
        ws = Workspace(name=name, root=root, root_id=root.id, owner=owner, owner_id=owner.id, public=bool(public),
                       anonymous_read=bool(anonymous), prefix=(f"{base}/" if base else "") + prefix)
        await _insert(session, ws)
        change.workspaces.add(name)
        change.users.add(owner.username)
        client, bucket, scope = node_client(request.app, root.node), root.bucket, [name, owner.username, root.name]
    try:   # what the prefix already holds is its usage; until counted, writes to it are refused
        await rebuild_usage(request.app[REDIS], client, bucket, ws.prefix, scope)
    except NodeError as exc:
        log.warning("usage of imported workspace %s not counted yet (reconcile it): %s", name, exc)
    return web.json_response(workspace_json(ws), status=201)


@routes.get("/api/v1/workspaces")
async def list_workspaces(request: web.Request) -> web.Response:
    async with read_session(request.app) as session:
        user = await caller(request, session)
        out = []
        for ws in await visible_workspaces(session, user):
            out.append(workspace_json(ws, await best_permission(session, user, ws)))
    return web.json_response({"workspaces": out})


@routes.get("/api/v1/workspaces/{name}")
async def get_workspace(request: web.Request) -> web.Response:
    async with read_session(request.app) as session:
        user = await caller(request, session)
        ws = await load_workspace(session, request.match_info["name"])
        permission = await best_permission(session, user, ws)
        if permission is None and not user.is_admin:
            raise ApiError("NoSuchWorkspace", f"no workspace named '{ws.name}'")
    return web.json_response(workspace_json(ws, permission))


@routes.patch("/api/v1/workspaces/{name}")
async def update_workspace(request: web.Request) -> web.Response:
    """Change who may read a workspace: ``public`` and ``anonymous_read`` (S3 PutBucketAcl); needs admin."""
    body = await json_body(request)
    unknown = sorted(set(body) - {"public", "anonymous_read"})
    if unknown:
        raise ApiError("InvalidField", f"'{unknown[0]}' cannot be changed; only 'public' and 'anonymous_read'")
    public, anonymous = _access(request, body)
    async with mutation(request.app) as (session, change):
        user = await caller(request, session, proxy_may_act=True)   # S3 PutBucketAcl
        ws = await load_workspace(session, request.match_info["name"])
        await require_on_workspace(session, user, ws, "admin")
        if public is not None:
            ws.public = public
        if anonymous is not None:
            ws.anonymous_read = anonymous
        change.workspaces.add(ws.name)
        permission = await best_permission(session, user, ws)
    return web.json_response(workspace_json(ws, permission))


@routes.delete("/api/v1/workspaces/{name}")
async def delete_workspace(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    async with read_session(request.app) as session:
        user = await caller(request, session, proxy_may_act=True)   # S3 DeleteBucket
        checked = await _workspace_to_delete(session, user, name)
    if checked.root.type != "unmanaged":
        # Asked of the node before taking the model lock: a node is a user-supplied endpoint.
        try:
            non_empty = await node_client(request.app, checked.root.node).has_objects(checked.root.bucket,
                                                                                       checked.prefix)
        except NodeError as exc:
            raise ApiError("NodeUnavailable", str(exc)) from None
        if non_empty:
            raise ApiError("WorkspaceNotEmpty", f"workspace '{checked.name}' still holds objects")
    async with mutation(request.app) as (session, change):
        user = await caller(request, session, proxy_may_act=True)
        ws = await _workspace_to_delete(session, user, name)
        if ws.id != checked.id:
            raise ApiError("WorkspaceChanged", f"workspace '{name}' was replaced meanwhile; try again")
        grantees = (await session.scalars(select(Share).where(Share.workspace_id == ws.id))).unique().all()
        change.users.update(s.user.username for s in grantees if s.user is not None)
        change.groups.update(s.group.name for s in grantees if s.group is not None)
        change.users.add(ws.owner.username)
        change.workspaces.add(ws.name)
        forgotten = [(ws.name, ws.owner.username, ws.root.name)]
        await session.delete(ws)
    await forget_usage(request.app[REDIS], forgotten)
    return web.Response(status=204)


async def _workspace_to_delete(session, user: User, name: str) -> Workspace:
    ws = await workspace_for(session, user, name, "admin")
    return ws


def share_json(share: Share) -> dict:
    return {"id": share.id, "workspace": share.workspace.name,
            "user": share.user.username if share.user else None,
            "group": share.group.name if share.group else None, "permission": share.permission,
            "prefix": share.prefix, "expires_at": iso(share.expires_at), "created_at": iso(share.created_at)}


@routes.post("/api/v1/workspaces/{name}/shares")
async def add_share(request: web.Request) -> web.Response:
    body = await json_body(request)
    user_name, group_name = field(body, "user", str, default=None), field(body, "group", str, default=None)
    permission = field(body, "permission", str)
    prefix = field(body, "prefix", str, default="")
    expires_at = parse_time(field(body, "expires_at", str, default=None), "expires_at")
    if (user_name is None) == (group_name is None):
        raise ApiError("InvalidField", "give exactly one of 'user' or 'group'")
    if permission not in LEVELS:
        raise ApiError("InvalidField", "'permission' must be read, write or admin")
    if prefix.startswith("/") or len(prefix) > 1024:
        raise ApiError("InvalidPrefix", "'prefix' is a key prefix inside the workspace, without a leading '/'")
    if expires_at is not None and expires_at <= datetime.now(timezone.utc):
        raise ApiError("InvalidField", "'expires_at' is in the past")
    async with mutation(request.app) as (session, change):
        granter = await caller(request, session)
        ws = await load_workspace(session, request.match_info["name"])
        # Only admins of the workspace share, and only within what their admin grant covers.
        await require_on_workspace(session, granter, ws, "admin", prefix)
        share = Share(workspace=ws, workspace_id=ws.id, permission=permission, prefix=prefix,
                      expires_at=expires_at, created_by_id=granter.id)
        if user_name is not None:
            grantee = await find(session, User.username, user_name, ApiError("NoSuchUser", f"no user named '{user_name}'"))
            share.user, share.user_id, share.group = grantee, grantee.id, None
            change.users.add(grantee.username)
        else:
            group = await find(session, Group.name, group_name, ApiError("NoSuchGroup", f"no group named '{group_name}'"))
            share.group, share.group_id, share.user = group, group.id, None
            change.groups.add(group.name)
        session.add(share)
        await session.flush()
        change.workspaces.add(ws.name)
    return web.json_response(share_json(share), status=201)


@routes.get("/api/v1/workspaces/{name}/shares")
async def list_shares(request: web.Request) -> web.Response:
    async with read_session(request.app) as session:
        user = await caller(request, session)
        ws = await workspace_for(session, user, request.match_info["name"], "read")
        shares = (await session.scalars(select(Share).where(Share.workspace_id == ws.id)
                                        .order_by(Share.id))).unique().all()
    return web.json_response({"shares": [share_json(s) for s in shares]})


@routes.delete("/api/v1/workspaces/{name}/shares/{share_id}")
async def remove_share(request: web.Request) -> web.Response:
    try:
        share_id = int(request.match_info["share_id"])
    except ValueError:
        raise ApiError("NoSuchShare") from None
    async with mutation(request.app) as (session, change):
        user = await caller(request, session)
        ws = await load_workspace(session, request.match_info["name"])
        share = await session.scalar(select(Share).where(Share.id == share_id, Share.workspace_id == ws.id))
        if share is None:
            raise ApiError("NoSuchShare")
        await require_on_workspace(session, user, ws, "admin", share.prefix)
        if share.user is not None:
            change.users.add(share.user.username)
        if share.group is not None:
            change.groups.add(share.group.name)
        change.workspaces.add(ws.name)
        await session.delete(share)
    return web.Response(status=204)
