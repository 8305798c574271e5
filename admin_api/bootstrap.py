"""First-start bootstrap: the ``admin`` user, and optionally one node with a private and a public root.

Idempotent: runs at every API start-up and creates only what is missing (``wio dev``, docker-compose).
"""
from __future__ import annotations

import logging

from aiohttp import web
from sqlalchemy import select

from admin_api.context import SETTINGS, mutation
from admin_api.infra import create_root, register_node
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
            admin = await create_user(session, change, "admin", settings.admin_password, is_admin=True)
            log.info("bootstrap: created the admin user")
        if not settings.bootstrap_node_endpoint:
            return
        node = await session.scalar(select(Node).where(Node.name == DEFAULT_NODE))
        if node is None:
            node = await register_node(app, session, change, admin, name=DEFAULT_NODE,
                                       endpoint=settings.bootstrap_node_endpoint,
                                       region=settings.bootstrap_node_region,
                                       access_key=settings.bootstrap_node_access_key or "",
                                       secret_key=settings.bootstrap_node_secret_key or "")
            log.info("bootstrap: registered node %s at %s", DEFAULT_NODE, node.endpoint)
        for name, bucket, kind in DEFAULT_ROOTS:
            if await session.scalar(select(Root).where(Root.name == name)) is None:
                await create_root(app, session, change, admin, name=name, node_name=DEFAULT_NODE, bucket=bucket,
                                  prefix="", kind=kind)
                log.info("bootstrap: created %s root %s on bucket %s", kind, name, bucket)
