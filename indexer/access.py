"""What a caller may read right now, computed from PostgreSQL for every search.

The rules are policy/decide.py's ``effective_grants`` (the function the proxy runs), fed with the same
share encoding as policy/queries.py, but for all of the caller's workspaces in three queries instead of
one per workspace. Search therefore shows exactly what a GetObject through the proxy would allow:
ownership, shares to the user or to one of their groups (whole workspace or a key prefix, unexpired),
and public workspaces. System administrators get no extra reach here, as at the proxy.
"""
from __future__ import annotations

import json
import time
from collections import defaultdict

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from indexer.documents import Readable
from policy.decide import effective_grants
from policy.models import Group, GroupMember, Share, User, Workspace
from policy.queries import workspace_view

__all__ = ["readable_by", "narrowest"]


def narrowest(prefixes: set[str]) -> tuple[str, ...]:
    """The prefixes that are not already covered by a shorter one; ("",) for the whole workspace."""
    out: list[str] = []
    for prefix in sorted(prefixes):
        if not any(prefix.startswith(kept) for kept in out):
            out.append(prefix)
    return tuple(out)


async def readable_by(session: AsyncSession, user: User) -> Readable:
    group_rows = (await session.execute(
        select(Group.id, Group.name).join(GroupMember, GroupMember.group_id == Group.id)
        .where(GroupMember.user_id == user.id))).all()
    group_ids = [gid for gid, _ in group_rows]
    groups = sorted(name for _, name in group_rows)
    mine = or_(Share.user_id == user.id, Share.group_id.in_(group_ids)) if group_ids else Share.user_id == user.id
    shares = (await session.scalars(select(Share).where(mine))).unique().all()
    shared_ids = {s.workspace_id for s in shares}
    workspaces = (await session.scalars(select(Workspace).where(or_(
        Workspace.owner_id == user.id, Workspace.public.is_(True), Workspace.id.in_(shared_ids))))).unique().all()

    # The share lists in the projection's encoding: per workspace, per grantee field ("u:name", "g:name").
    lists: dict[int, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for s in shares:
        grantee = f"u:{user.username}" if s.user_id == user.id else f"g:{s.group.name}"
        expires = int(s.expires_at.timestamp()) if s.expires_at is not None else 0
        lists[s.workspace_id][grantee].append([s.permission, s.prefix, expires, s.id])
    fields = [f"u:{user.username}"] + [f"g:{g}" for g in groups]
    now = time.time()
    prefixes: dict[str, tuple[str, ...]] = {}
    owners: dict[str, str] = {}
    for ws in workspaces:
        per_field = lists.get(ws.id, {})
        grants = effective_grants(user=user.username, groups=groups, ws=workspace_view(ws),
                                  share_lists=[json.dumps(per_field.get(f, [])) for f in fields], now=now,
                                  scope=None)
        if grants:  # every permission level includes read
            prefixes[ws.name] = narrowest({g.prefix for g in grants})
            owners[ws.name] = ws.owner.username
    return Readable(prefixes, owners)
