"""Permission questions answered from PostgreSQL (admin API side); the same rules as the proxy's.

The proxy decides from the Redis projection; the admin API decides from the database with exactly
the same function (``effective_grants``) over the same encoding, so the two cannot drift apart.
"""
from __future__ import annotations

import json
import time
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from policy.decide import Grant, WorkspaceView, effective_grants
from policy.models import Group, GroupMember, Share, User, Workspace

__all__ = ["user_groups", "workspace_view", "grants_on", "visible_workspaces"]


async def user_groups(session: AsyncSession, user: User) -> list[str]:
    return sorted((await session.scalars(
        select(Group.name).join(GroupMember, GroupMember.group_id == Group.id)
        .where(GroupMember.user_id == user.id))).all())


def workspace_view(ws: Workspace) -> WorkspaceView:
    return WorkspaceView(name=ws.name, node=ws.root.node.name, bucket=ws.root.bucket, prefix=ws.prefix,
                         owner=ws.owner.username, public=ws.public, root=ws.root.name)


def _epoch(dt: datetime | None) -> int:
    return int(dt.timestamp()) if dt is not None else 0


async def grants_on(session: AsyncSession, user: User, ws: Workspace, groups: list[str] | None = None,
                    scope: list[dict[str, Any]] | None = None) -> list[Grant]:
    groups = await user_groups(session, user) if groups is None else groups
    fields = [f"u:{user.username}"] + [f"g:{g}" for g in groups]
    lists: dict[str, list[list[str | int]]] = {f: [] for f in fields}
    shares = (await session.scalars(select(Share).where(Share.workspace_id == ws.id))).unique().all()
    for s in shares:
        grantee = s.grantee
        if grantee in lists:
            lists[grantee].append([s.permission, s.prefix, _epoch(s.expires_at), s.id])
    return effective_grants(user=user.username, groups=groups, ws=workspace_view(ws),
                            share_lists=[json.dumps(lists[f]) for f in fields], now=time.time(), scope=scope)


async def visible_workspaces(session: AsyncSession, user: User) -> list[Workspace]:
    """Workspaces the user owns, has a share on (directly or through a group), or that are public."""
    group_ids = select(GroupMember.group_id).where(GroupMember.user_id == user.id)
    shared = select(Share.workspace_id).where(or_(Share.user_id == user.id, Share.group_id.in_(group_ids)))
    query = select(Workspace).order_by(Workspace.name)
    if not user.is_admin:
        query = query.where(or_(Workspace.owner_id == user.id, Workspace.public.is_(True),
                                Workspace.id.in_(shared)))
    return list((await session.scalars(query)).unique().all())
