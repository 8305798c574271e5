"""First-start bootstrap: the ``admin`` user, and optionally one node with a private and a public root.

Idempotent: runs at every API start-up and creates only what is missing (``wio dev``, docker-compose).
"""
from __future__ import annotations

import logging

from aiohttp import web
from sqlalchemy import select

from admin_api.context import SETTINGS, mutation, read_session
from admin_api.infra import add_node, add_root, ensure_root_bucket, probe_node, root_node
from admin_api.users import create_user
from policy.models import Node, Root, User

__all__ = ["bootstrap", "DEFAULT_NODE", "DEFAULT_ROOTS"]

log = logging.getLogger("wio.api")
DEFAULT_NODE = "local"
DEFAULT_ROOTS = (("private", "wio-private", "private"), ("public", "wio-public", "public"))


async def bootstrap(app: web.Application) -> None:
    settings = app[SETTINGS]
    if not settings.admin_password:
        return
    async with mutation(app) as (session, change):
        admin = await session.scalar(select(User).where(User.username == "admin"))
        if admin is None:
            await create_user(session, change, "admin", settings.admin_password, is_admin=True)
            log.info("bootstrap: created the admin user")
    if not settings.bootstrap_node_endpoint:
        return
    # The node is talked to outside mutation() (as for any node); each insert re-checks under the lock,
    # since other API workers bootstrap at the same time.
    async with read_session(app) as session:
        node = await session.scalar(select(Node).where(Node.name == DEFAULT_NODE))
    if node is None:
        probed = await probe_node(app, name=DEFAULT_NODE, endpoint=settings.bootstrap_node_endpoint,
                                  region=settings.bootstrap_node_region,
                                  access_key=settings.bootstrap_node_access_key or "",
                                  secret_key=settings.bootstrap_node_secret_key or "")
        async with mutation(app) as (session, change):
            node = await session.scalar(select(Node).where(Node.name == DEFAULT_NODE))
            if node is None:
                node = await add_node(app, session, change, await _admin(session), **probed)
                log.info("bootstrap: registered node %s at %s", DEFAULT_NODE, node.endpoint)
    for name, bucket, kind in DEFAULT_ROOTS:
        async with read_session(app) as session:
            if await session.scalar(select(Root).where(Root.name == name)) is not None:
                continue
        await ensure_root_bucket(app, node, bucket)
        async with mutation(app) as (session, change):
            if await session.scalar(select(Root).where(Root.name == name)) is None:
                admin = await _admin(session)
                await add_root(session, change, admin, await root_node(session, admin, DEFAULT_NODE, node),
                               name=name, bucket=bucket, prefix="", kind=kind)
                log.info("bootstrap: created %s root %s on bucket %s", kind, name, bucket)


async def _admin(session) -> User:
    return await session.scalar(select(User).where(User.username == "admin"))
