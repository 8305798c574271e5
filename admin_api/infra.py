"""Storage nodes and roots. Any user may register a node and controls it; roots are made by its owner or an admin."""
from __future__ import annotations


from aiohttp import web
from sqlalchemy import func, select

from admin_api.context import (BOX, NODE_HTTP, REDIS, SETTINGS, caller, field, find, insert_unique, iso, json_body, manages,
                               mutation, read_session)
from admin_api.errors import ApiError
from admin_api.usage import forget_usage
from admin_api.workspaces import node_client
from policy.models import ROOT_TYPES, Node, Root, Share, Workspace
from policy.names import bucket_name_error, infra_name_error
from nodeclient.client import NodeClient, NodeError, check_endpoint

__all__ = ["routes", "probe_node", "add_node", "check_root_fields", "root_node", "ensure_root_bucket", "add_root"]

routes = web.RouteTableDef()


def node_json(node: Node) -> dict:
    return {"name": node.name, "endpoint": node.endpoint, "region": node.region, "owner": node.owner.username,
            "created_at": iso(node.created_at)}


def root_json(root: Root) -> dict:
    return {"name": root.name, "node": root.node.name, "bucket": root.bucket, "prefix": root.prefix,
            "type": root.type, "created_at": iso(root.created_at)}


def _check_name(name: str, what: str) -> None:
    error = infra_name_error(name, what)
    if error is not None:
        raise ApiError("InvalidName", error)


async def probe_node(app, *, name: str, endpoint: str, access_key: str, secret_key: str, region: str) -> dict:
    """Everything a new node needs checked over the network, done BEFORE ``mutation()``: a node is a
    user-supplied endpoint, and no one's revocation may wait on it. Returns ``add_node``'s arguments."""
    _check_name(name, "node")
    try:
        endpoint = await check_endpoint(endpoint, allow_private=app[SETTINGS].allow_private_nodes)
        await NodeClient(app[NODE_HTTP], endpoint, region, access_key, secret_key).check()
    except NodeError as exc:
        raise ApiError("InvalidEndpoint", str(exc)) from None
    return dict(name=name, endpoint=endpoint, region=region, access_key=access_key, secret_key=secret_key)


async def add_node(app, session, change, owner, *, name: str, endpoint: str, region: str,
                   access_key: str, secret_key: str) -> Node:
    """Record a node ``probe_node`` accepted (no network I/O: this runs under the model lock)."""
    node = Node(name=name, endpoint=endpoint, region=region, access_key=access_key,
                secret_enc=app[BOX].seal(secret_key), owner=owner, owner_id=owner.id)
    await insert_unique(session, node, ApiError("NodeExists", f"a node named '{name}' already exists"))
    change.nodes.add(name)
    return node


@routes.post("/api/v1/nodes")
async def create_node(request: web.Request) -> web.Response:
    body = await json_body(request)
    args = dict(name=field(body, "name", str), endpoint=field(body, "endpoint", str),
                region=field(body, "region", str, default="us-east-1"),
                access_key=field(body, "access_key", str), secret_key=field(body, "secret_key", str))
    async with read_session(request.app) as session:
        await caller(request, session)
    probed = await probe_node(request.app, **args)
    async with mutation(request.app) as (session, change):
        user = await caller(request, session)
        node = await add_node(request.app, session, change, user, **probed)
    return web.json_response(node_json(node), status=201)


@routes.get("/api/v1/nodes")
async def list_nodes(request: web.Request) -> web.Response:
    async with read_session(request.app) as session:
        user = await caller(request, session)
        query = select(Node).order_by(Node.name)
        if not user.is_admin:
            query = query.where(Node.owner_id == user.id)
        nodes = (await session.scalars(query)).unique().all()
    return web.json_response({"nodes": [node_json(n) for n in nodes]})


@routes.delete("/api/v1/nodes/{name}")
async def delete_node(request: web.Request) -> web.Response:
    """Forget a node (its owner or an administrator), with its roots and their workspaces.

    wio stops serving those workspaces at once (their shares go with them); the buckets and the data
    on the node are left as they are. Nodes the caller does not manage answer NoSuchNode."""
    async with mutation(request.app) as (session, change):
        user = await caller(request, session)
        node = await find(session, Node.name, request.match_info["name"], ApiError("NoSuchNode"),
                          lambda node: manages(user, node.owner_id))
        roots = (await session.scalars(select(Root.name).where(Root.node_id == node.id))).all()
        workspaces = (await session.scalars(select(Workspace).join(Root).where(Root.node_id == node.id))).unique().all()
        for ws in workspaces:
            change.workspaces.add(ws.name)
            change.users.add(ws.owner.username)
        # the grantees' workspace sets (wio:uw, wio:gw) name them too, as for DELETE /workspaces/{name}
        shares = (await session.scalars(select(Share).join(Workspace).join(Root)
                                        .where(Root.node_id == node.id))).unique().all()
        change.users.update(s.user.username for s in shares if s.user is not None)
        change.groups.update(s.group.name for s in shares if s.group is not None)
        change.roots.update(roots)
        change.nodes.add(node.name)
        forgotten = [(ws.name, ws.owner.username, ws.root.name) for ws in workspaces]
        await session.delete(node)
    await forget_usage(request.app[REDIS], forgotten)
    return web.Response(status=204)


def check_root_fields(*, name: str, bucket: str, prefix: str, kind: str) -> None:
    _check_name(name, "root")
    if kind not in ROOT_TYPES:
        raise ApiError("InvalidField", "'type' must be private, public or unmanaged")
    error = bucket_name_error(bucket)
    if error is not None:
        raise ApiError("InvalidField", error)
    if prefix.startswith("/") or "\\" in prefix or any(p in (".", "..") for p in prefix.split("/")):
        raise ApiError("InvalidPrefix", "'prefix' must be a relative key prefix")


async def root_node(session, user, node_name: str, checked: Node | None = None) -> Node:
    """The node a root goes on, if ``user`` may place roots there. Under the lock, pass the node that was
    ``checked`` before it: the node must still be that one (not deleted, not replaced by another)."""
    node = await find(session, Node.name, node_name, ApiError("NoSuchNode", f"no node named '{node_name}'"),
                      lambda node: checked is None or node.id == checked.id)
    if not manages(user, node.owner_id):
        raise ApiError("Forbidden", "roots on a node are created by its owner or an administrator")
    return node


async def ensure_root_bucket(app, node: Node, bucket: str) -> None:
    """Create the root's bucket on the node: network I/O, so never inside ``mutation()``."""
    try:
        await node_client(app, node).ensure_bucket(bucket)
    except NodeError as exc:
        raise ApiError("NodeUnavailable", str(exc)) from None


async def add_root(session, change, user, node: Node, *, name: str, bucket: str, prefix: str, kind: str) -> Root:
    root = Root(name=name, node=node, node_id=node.id, bucket=bucket, prefix=prefix, type=kind, owner_id=user.id)
    await insert_unique(session, root, ApiError("RootExists", f"a root named '{name}' already exists"))
    change.roots.add(name)
    return root


@routes.post("/api/v1/roots")
async def post_root(request: web.Request) -> web.Response:
    body = await json_body(request)
    node_name = field(body, "node", str)
    args = dict(name=field(body, "name", str), bucket=field(body, "bucket", str),
                prefix=field(body, "prefix", str, default=""), kind=field(body, "type", str))
    check_root_fields(**args)
    async with read_session(request.app) as session:
        checked = await root_node(session, await caller(request, session), node_name)
    await ensure_root_bucket(request.app, checked, args["bucket"])
    async with mutation(request.app) as (session, change):
        user = await caller(request, session)
        root = await add_root(session, change, user, await root_node(session, user, node_name, checked), **args)
    return web.json_response(root_json(root), status=201)


@routes.get("/api/v1/roots")
async def list_roots(request: web.Request) -> web.Response:
    async with read_session(request.app) as session:
        await caller(request, session)
        roots = (await session.scalars(select(Root).order_by(Root.name))).unique().all()
    return web.json_response({"roots": [root_json(r) for r in roots]})


@routes.delete("/api/v1/roots/{name}")
async def delete_root(request: web.Request) -> web.Response:
    """Forget a root (its node's owner or an administrator); refused while it holds workspaces.

    Only wio's record goes: the bucket and everything in it stay on the node. A root that still
    holds workspaces answers 409 RootNotEmpty with their number (delete them, or remove the whole
    node). Every user sees every root (GET /roots), so another user's root answers 403, not 404."""
    name = request.match_info["name"]
    async with mutation(request.app) as (session, change):
        user = await caller(request, session)
        root = await find(session, Root.name, name, ApiError("NoSuchRoot", f"no root named '{name}'"))
        if not manages(user, root.node.owner_id):
            raise ApiError("Forbidden", "roots are removed by their node's owner or an administrator")
        # under the model lock: no workspace is added meanwhile
        held = int(await session.scalar(select(func.count()).select_from(Workspace).where(Workspace.root_id == root.id)))
        if held:
            raise ApiError("RootNotEmpty", f"root '{name}' still holds {held} workspace{'' if held == 1 else 's'}; "
                                           "delete them first (the bucket and its data stay on the node either way)")
        change.roots.add(root.name)
        await session.delete(root)
    return web.Response(status=204)
