"""The Redis projection of the permission model, written by the admin API and read by the proxy.

Layout (all hashes/sets under ``wio:``; see authorize.lua for the reader):

    wio:meta                 hash   built (unix time), epoch (PostgreSQL's mutation counter it reflects),
                                    verified (the run_id of the server on which the API last checked it),
                                    layout (LAYOUT: a projection of another shape is rebuilt)
    wio:k:{access_key_id}    hash   user, secret (sealed), expires, token (sha256), scope (json)
    wio:u:{username}         hash   disabled, admin, groups (comma separated), qb, qo (quota bytes/objects)
    wio:w:{workspace}        hash   node, bucket, prefix, owner, public, root, created, qb, qo,
                                    anon ("1": unsigned requests may read it; absent reads as "0")
    wio:r:{root}             hash   qb, qo
    wio:s:{workspace}        hash   "u:{user}" | "g:{group}" -> json [[permission, prefix, expires, share_id], ...]
    wio:n:{node}             hash   endpoint, region, access, secret (sealed)
    wio:uw:{username}        set    workspaces the user owns or has a direct share on (ListBuckets)
    wio:gw:{group}           set    workspaces shared with the group
    wio:pub                  set    public workspaces

Consistency: every admin mutation takes one PostgreSQL advisory lock, makes its change, writes the
affected projection entries in one MULTI, and only then commits; a Redis failure rolls the change
back. ``rebuild`` takes the same lock, so a rebuild never races a mutation and a revoked grant can
never be resurrected by a stale rebuild.

Failover (and restarts from an old snapshot): a Redis primary can die after acknowledging a change
and before its replica received it; Sentinel then promotes a replica that never saw the revocation.
So every mutation increments ``projection_state.epoch`` in its PostgreSQL transaction and writes the
new value to ``wio:meta epoch`` in the same MULTI as its change (replication applies a MULTI whole
and in order: a server holding epoch N holds every change up to N). The proxies' scripts trust the
projection only when ``wio:meta verified`` equals the ``run_id`` of the server they are talking to,
and a promoted replica or a restarted server has a new ``run_id``. The API's keeper (``verify``)
notices the new server, compares its epoch with PostgreSQL's under the model lock, and either marks
the projection verified (nothing was lost), or recomputes the entities that the missing epochs
changed (``projection_log`` names them), or, when it can't tell (an empty server, a server ahead of
PostgreSQL, a log pruned past its epoch), rebuilds it all. Until then the proxies answer 503.

A primary that a failover demotes while it is alive is, for a moment, a second primary: a change it
acknowledges then is lost when it resyncs from the promoted one, whose run_id and verified mark do not
change. So the keeper compares the epochs every round (0.25 s) on a verified server too, and repairs
what is missing: a change lost that way is effective again within a round, not at the next failover.
"""
from __future__ import annotations

import json
import time
from datetime import datetime
from collections import defaultdict
from collections.abc import Iterable
from typing import Any, Protocol
from dataclasses import dataclass, field

from redis.asyncio import Redis
from sqlalchemy import ColumnElement, select, text, true
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.ext.asyncio import AsyncSession

from policy.models import AccessKey, Group, GroupMember, Node, Root, Share, User, Workspace

__all__ = ["Projection", "ProjectionChange", "lock_model", "rebuild", "apply_change", "verify", "PROJECTION_PATTERNS"]

MODEL_LOCK = 7270102
PROJECTION_PATTERNS = ("wio:k:*", "wio:u:*", "wio:w:*", "wio:s:*", "wio:n:*", "wio:uw:*", "wio:gw:*", "wio:r:*")


async def lock_model(session: AsyncSession) -> None:
    """Serialize admin mutations and rebuilds (held until the transaction ends)."""
    await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": MODEL_LOCK})


# The shape of the projection: a projection written with another layout is rebuilt, not trusted.
LAYOUT = "2"
# Hashes written per pipeline in a full rebuild.
REBUILD_BATCH = 5_000
# Log entries kept for replay: a server more than this many changes behind is rebuilt instead.
LOG_KEPT = 100_000


async def _bump_epoch(session: AsyncSession, change: ProjectionChange) -> int:
    """The next epoch, and a log entry naming what it changes (both in the mutation's transaction)."""
    epoch = int(await session.scalar(text("UPDATE projection_state SET epoch = epoch + 1 WHERE id = 1 RETURNING epoch")))
    await session.execute(text("INSERT INTO projection_log (epoch, change) VALUES (:e, CAST(:c AS jsonb))"),
                          {"e": epoch, "c": json.dumps(change.to_json())})
    if epoch % 1000 == 0:
        await session.execute(text("DELETE FROM projection_log WHERE epoch <= :e"), {"e": epoch - LOG_KEPT})
    return epoch


async def _missed_changes(session: AsyncSession, since: int, until: int) -> ProjectionChange | None:
    """What epochs since+1..until changed, merged; None when the log does not cover all of them."""
    rows = (await session.execute(text("SELECT change FROM projection_log WHERE epoch > :a AND epoch <= :b"),
                                  {"a": since, "b": until})).scalars().all()
    if len(rows) != until - since:
        return None
    merged = ProjectionChange()
    for row in rows:
        merged.merge(ProjectionChange.from_json(row))
    return merged


async def _current_epoch(session: AsyncSession) -> int:
    return int(await session.scalar(text("SELECT epoch FROM projection_state WHERE id = 1")))


async def _server_state(redis: Redis) -> tuple[str, dict[str, str]]:
    """The run_id of the server and its wio:meta, read together (one MULTI: one server)."""
    async with redis.pipeline(transaction=True) as pipe:
        pipe.info("server")
        pipe.hgetall("wio:meta")
        info, meta = await pipe.execute()
    return info["run_id"], meta


def _epoch(dt: datetime | None) -> int:
    return int(dt.timestamp()) if dt is not None else 0


class _Limited(Protocol):
    """A user, root or workspace, as an ORM object or a row."""
    @property
    def max_bytes(self) -> int | None: ...
    @property
    def max_objects(self) -> int | None: ...


def _quota(entity: _Limited) -> dict[str, str]:
    return {"qb": "" if entity.max_bytes is None else str(entity.max_bytes),
            "qo": "" if entity.max_objects is None else str(entity.max_objects)}


@dataclass
class ProjectionChange:
    """What an admin mutation touched, by name; ``apply_change`` recomputes exactly these from PostgreSQL."""
    users: set[str] = field(default_factory=set)
    keys: set[str] = field(default_factory=set)
    workspaces: set[str] = field(default_factory=set)
    groups: set[str] = field(default_factory=set)
    nodes: set[str] = field(default_factory=set)
    roots: set[str] = field(default_factory=set)

    _FIELDS = ("users", "keys", "workspaces", "groups", "nodes", "roots")

    def to_json(self) -> dict[str, list[str]]:
        return {name: sorted(getattr(self, name)) for name in self._FIELDS if getattr(self, name)}

    @classmethod
    def from_json(cls, data: dict[str, list[str]]) -> ProjectionChange:
        return cls(**{name: set(data.get(name, ())) for name in cls._FIELDS})

    def merge(self, other: ProjectionChange) -> None:
        for name in self._FIELDS:
            getattr(self, name).update(getattr(other, name))


class Projection:
    """Accumulates the Redis writes for a set of entities, then flushes them in one MULTI."""

    def __init__(self) -> None:
        self.hashes: dict[str, dict[str, str]] = {}
        self.sets: dict[str, set[str]] = {}
        self.deleted: set[str] = set()
        self.set_removals: dict[str, set[str]] = {}
        self.set_additions: dict[str, set[str]] = {}

    def put_hash(self, key: str, mapping: dict[str, str]) -> None:
        self.hashes[key] = mapping

    def put_set(self, key: str, members: set[str]) -> None:
        self.sets[key] = members

    def delete(self, key: str) -> None:
        self.deleted.add(key)

    def update_set(self, key: str, remove: set[str], add: set[str]) -> None:
        """Remove then add members of a set that is not rewritten whole (``wio:pub``)."""
        self.set_removals[key], self.set_additions[key] = remove, add

    def _queue(self, pipe: Any) -> None:
        """The writes, in order, onto a redis-py pipeline."""
        for key in self.deleted | set(self.hashes) | set(self.sets):
            pipe.delete(key)
        for key, mapping in self.hashes.items():
            if mapping:
                pipe.hset(key, mapping=mapping)
        for key, members in self.sets.items():
            if members:
                pipe.sadd(key, *members)
        for key, members in self.set_removals.items():
            if members:
                pipe.srem(key, *members)
        for key, members in self.set_additions.items():
            if members:
                pipe.sadd(key, *members)

    @staticmethod
    def _meta(epoch: int, verified: str | None) -> dict[str, str]:
        # A mutation moves the epoch only. The layout (and so the claim that the whole projection
        # is here) is written by the rebuild and repair that check it against PostgreSQL: a
        # mutation landing on a Redis that restarted empty must not make it look complete.
        meta = {"epoch": str(epoch)}
        if verified is not None:
            meta.update(built=str(int(time.time())), layout=LAYOUT, verified=verified)
        return meta

    async def flush(self, redis: Redis, *, epoch: int, verified: str | None = None) -> None:
        """Everything in one MULTI, with the epoch it reflects (and, for a repair, the server it was
        verified on): a failover can lose the whole change, never half of it."""
        async with redis.pipeline(transaction=True) as pipe:
            self._queue(pipe)
            pipe.hset("wio:meta", mapping=self._meta(epoch, verified))  # type: ignore[arg-type]  # invariant Mapping key
            await pipe.execute()

    async def replace(self, redis: Redis, *, epoch: int, verified: str, previous: set[str]) -> None:
        """A full rebuild: too large for one MULTI (a large organisation is millions of commands), so
        the projection is first marked unverified (every proxy refuses from the next request on), then
        written in batches, keys of ``previous`` that it no longer has deleted, and marked verified on
        ``verified`` (the server's run_id) last."""
        await redis.hdel("wio:meta", "verified", "layout")
        stale = previous - set(self.hashes) - set(self.sets)
        hashes, sets = list(self.hashes.items()), list(self.sets.items())
        parts = [Projection() for _ in range(1 + max(len(hashes), len(sets)) // REBUILD_BATCH)]
        for i, part in enumerate(parts):
            part.hashes = dict(hashes[i * REBUILD_BATCH:(i + 1) * REBUILD_BATCH])
            part.sets = dict(sets[i * REBUILD_BATCH:(i + 1) * REBUILD_BATCH])
        last = parts[-1]
        last.deleted, last.set_removals, last.set_additions = stale, self.set_removals, self.set_additions
        for part in parts:
            async with redis.pipeline(transaction=False) as pipe:
                part._queue(pipe)
                await pipe.execute()
        await redis.hset("wio:meta", mapping=self._meta(epoch, verified))  # type: ignore[arg-type]  # invariant Mapping key


def _among(column: InstrumentedAttribute[Any], values: Iterable[Any], everything: bool) -> ColumnElement[bool]:
    """``column IN values``, or no filter at all in a full rebuild: an IN list of every row is slow,
    and past 32 767 items it exceeds what PostgreSQL's protocol can bind."""
    return true() if everything else column.in_(list(values))


async def _user_groups(session: AsyncSession, user_ids: list[int], everything: bool) -> dict[int, list[str]]:
    rows = await session.execute(
        select(GroupMember.user_id, Group.name).join(Group, Group.id == GroupMember.group_id)
        .where(_among(GroupMember.user_id, user_ids, everything)))
    out: dict[int, list[str]] = defaultdict(list)
    for user_id, name in rows:
        out[user_id].append(name)
    return out


_USER = select(User.id, User.username, User.disabled, User.is_admin, User.max_bytes, User.max_objects)
_KEY = (select(AccessKey.access_key_id, User.username, AccessKey.secret_enc, AccessKey.expires_at,
               AccessKey.session_token_hash, AccessKey.scope).join(User, User.id == AccessKey.user_id))
_WORKSPACE = (select(Workspace.id, Workspace.name, Node.name.label("node"), Root.bucket, Workspace.prefix,
                     User.username.label("owner"), Workspace.public, Root.name.label("root"), Workspace.created_at,
                     Workspace.anonymous_read, Workspace.max_bytes, Workspace.max_objects)
              .join(Root, Root.id == Workspace.root_id).join(Node, Node.id == Root.node_id)
              .join(User, User.id == Workspace.owner_id))
_SHARE = (select(Share.workspace_id, Share.permission, Share.prefix, Share.expires_at, Share.id,
                 User.username, Group.name.label("group"))
          .outerjoin(User, User.id == Share.user_id).outerjoin(Group, Group.id == Share.group_id))
# Rows, not ORM objects: a full rebuild reads every key and share, and building ORM instances for a
# million rows costs minutes.


async def _project_users(session: AsyncSession, proj: Projection, names: Iterable[str],
                         everything: bool = False) -> set[str]:
    """Project the named users (or all); returns the names found."""
    users = (await session.execute(_USER.where(_among(User.username, names, everything)))).all()
    if not users:
        return set()
    ids = [u.id for u in users]
    groups = await _user_groups(session, ids, everything)
    direct: dict[int, set[str]] = defaultdict(set)
    user_id: int | None
    for user_id, ws_name in await session.execute(
            select(Workspace.owner_id, Workspace.name).where(_among(Workspace.owner_id, ids, everything))):
        direct[user_id].add(ws_name)
    for user_id, ws_name in await session.execute(
            select(Share.user_id, Workspace.name).join(Workspace, Workspace.id == Share.workspace_id)
            .where(_among(Share.user_id, ids, everything))):
        if user_id is not None:  # a group share (a full rebuild reads those too)
            direct[user_id].add(ws_name)
    for u in users:
        proj.put_hash(f"wio:u:{u.username}", {
            "disabled": "1" if u.disabled else "0",
            "admin": "1" if u.is_admin else "0",
            "groups": ",".join(sorted(groups.get(u.id, []))),
            **_quota(u),
        })
        proj.put_set(f"wio:uw:{u.username}", direct.get(u.id, set()))
    return {u.username for u in users}


async def _project_keys(session: AsyncSession, proj: Projection, ids: Iterable[str],
                        everything: bool = False) -> set[str]:
    found = set()
    for akid, username, secret, expires_at, token_hash, scope in await session.execute(
            _KEY.where(_among(AccessKey.access_key_id, ids, everything))):
        proj.put_hash(f"wio:k:{akid}", {
            "user": username,
            "secret": secret,
            "expires": str(_epoch(expires_at)),
            "token": token_hash or "",
            "scope": json.dumps(scope) if scope is not None else "",
        })
        found.add(akid)
    return found


def _project_node(proj: Projection, node: Node) -> None:
    proj.put_hash(f"wio:n:{node.name}", {
        "endpoint": node.endpoint, "region": node.region, "access": node.access_key, "secret": node.secret_enc,
    })


async def _project_workspaces(session: AsyncSession, proj: Projection, names: Iterable[str],
                              public_members: set[str], everything: bool = False) -> set[str]:
    """Project the named workspaces (or all) with their shares; returns the names found."""
    workspaces = (await session.execute(_WORKSPACE.where(_among(Workspace.name, names, everything)))).all()
    if not workspaces:
        return set()
    grants: dict[int, dict[str, list[list[str | int]]]] = {w.id: defaultdict(list) for w in workspaces}
    for ws_id, permission, prefix, expires_at, share_id, username, group in await session.execute(
            _SHARE.where(_among(Share.workspace_id, grants, everything))):
        grantee = f"u:{username}" if username is not None else f"g:{group}"
        grants[ws_id][grantee].append([permission, prefix, _epoch(expires_at), share_id])
    for w in workspaces:
        proj.put_hash(f"wio:w:{w.name}", {
            "node": w.node, "bucket": w.bucket, "prefix": w.prefix, "owner": w.owner,
            "public": "1" if w.public else "0", "root": w.root, "created": str(_epoch(w.created_at)),
            "anon": "1" if w.anonymous_read else "0",
            **_quota(w),
        })
        proj.put_hash(f"wio:s:{w.name}", {k: json.dumps(v) for k, v in grants[w.id].items()})
        if w.public:
            public_members.add(w.name)
    return {w.name for w in workspaces}


async def _project_groups(session: AsyncSession, proj: Projection, names: set[str],
                          everything: bool = False) -> None:
    members: dict[str, set[str]] = {n: set() for n in names}
    rows = await session.execute(
        select(Group.name, Workspace.name).join(Share, Share.group_id == Group.id)
        .join(Workspace, Workspace.id == Share.workspace_id).where(_among(Group.name, names, everything)))
    for group_name, ws_name in rows:
        members[group_name].add(ws_name)
    for name, ws_names in members.items():
        proj.put_set(f"wio:gw:{name}", ws_names)


async def apply_change(session: AsyncSession, redis: Redis, change: ProjectionChange, *,
                       replay_to: int | None = None, verified: str | None = None) -> None:
    """Recompute the named entities from the (uncommitted) session state and write them to Redis,
    with a new epoch (a mutation) or, for ``replay_to``, the epoch already reached (a repair).

    Entities that no longer exist in PostgreSQL are deleted from the projection.
    """
    proj = Projection()
    if change.users:
        for missing in change.users - await _project_users(session, proj, change.users):
            proj.delete(f"wio:u:{missing}")
            proj.delete(f"wio:uw:{missing}")

    if change.keys:
        for missing in change.keys - await _project_keys(session, proj, change.keys):
            proj.delete(f"wio:k:{missing}")

    if change.nodes:
        nodes = (await session.scalars(select(Node).where(Node.name.in_(change.nodes)))).unique().all()
        for node in nodes:
            _project_node(proj, node)
        for missing in change.nodes - {n.name for n in nodes}:
            proj.delete(f"wio:n:{missing}")

    if change.roots:
        roots = (await session.scalars(select(Root).where(Root.name.in_(change.roots)))).unique().all()
        for root in roots:
            proj.put_hash(f"wio:r:{root.name}", _quota(root))
        for missing in change.roots - {r.name for r in roots}:
            # A removed root held no workspace (or went with its node): its usage counts go too, so a
            # root made later under the same name does not start with the old one's bytes.
            proj.delete(f"wio:r:{missing}")
            proj.delete(f"wio:use:r:{missing}")

    if change.workspaces:
        public_now: set[str] = set()
        for missing in change.workspaces - await _project_workspaces(session, proj, change.workspaces, public_now):
            proj.delete(f"wio:w:{missing}")
            proj.delete(f"wio:s:{missing}")
        proj.update_set("wio:pub", remove=set(change.workspaces), add=public_now)
    if change.groups:
        await _project_groups(session, proj, change.groups)

    epoch = replay_to if replay_to is not None else await _bump_epoch(session, change)
    await proj.flush(redis, epoch=epoch, verified=verified)


async def rebuild(session: AsyncSession, redis: Redis) -> dict[str, int]:
    """Rewrite the whole projection from PostgreSQL (start-up, Redis found empty or behind PostgreSQL),
    and mark it verified on the server written to. Returns counts."""
    await lock_model(session)
    server_id, _ = await _server_state(redis)
    proj = Projection()
    users = await _project_users(session, proj, (), everything=True)
    keys = await _project_keys(session, proj, (), everything=True)
    nodes = (await session.scalars(select(Node))).unique().all()
    for node in nodes:
        _project_node(proj, node)
    for root in (await session.scalars(select(Root))).unique().all():
        proj.put_hash(f"wio:r:{root.name}", _quota(root))
    public: set[str] = set()
    workspaces = await _project_workspaces(session, proj, (), public, everything=True)
    await _project_groups(session, proj, set((await session.scalars(select(Group.name))).all()), everything=True)
    proj.put_set("wio:pub", public)
    stale: list[str] = []
    for pattern in PROJECTION_PATTERNS:
        stale.extend([k async for k in redis.scan_iter(match=pattern, count=1000)])
    await proj.replace(redis, epoch=await _current_epoch(session), verified=server_id, previous=set(stale))
    return {"users": len(users), "keys": len(keys), "nodes": len(nodes), "workspaces": len(workspaces)}


# Marks the projection verified on this server only if it still holds the epoch that was checked.
_MARK_VERIFIED = """
if redis.call('HGET', 'wio:meta', 'epoch') == ARGV[1] then
  redis.call('HSET', 'wio:meta', 'verified', ARGV[2])
  return 1
end
return 0
"""


async def verify(session: AsyncSession, redis: Redis) -> str:
    """Make the projection on the server Redis clients reach now trustworthy (see "Failover" above).

    Returns "ok" (already verified on this server), "verified" (its epoch matched PostgreSQL's),
    "repaired" (the changes of the epochs it missed were recomputed) or "rebuilt". Marking a server
    verified is safe against a failover in the middle: the mark carries the run_id that was checked,
    which no other server has, so at worst the proxies keep refusing until the next round.
    """
    server_id, meta = await _server_state(redis)
    trusted = meta.get("verified") == server_id and meta.get("layout") == LAYOUT
    # Verified on this server is not enough: a write that a primary acknowledged while a failover was
    # demoting it (alive, for a moment a second primary) is lost without the server changing under us.
    # So the epochs are compared every round too; a difference is looked at under the model lock.
    if trusted and meta.get("epoch") == str(await _current_epoch(session)):
        return "ok"
    await lock_model(session)  # no mutation moves the epochs while they are compared
    epoch = await _current_epoch(session)
    server_id, meta = await _server_state(redis)
    if meta.get("layout") != LAYOUT:
        await rebuild(session, redis)
        return "rebuilt"
    if meta.get("epoch") == str(epoch):
        if meta.get("verified") == server_id:
            return "ok"     # a mutation was between its Redis write and its commit
        if await redis.eval(_MARK_VERIFIED, 0, str(epoch), server_id):
            return "verified"
    behind = meta.get("epoch", "")
    if behind.isdigit() and int(behind) < epoch:
        missed = await _missed_changes(session, int(behind), epoch)
        if missed is not None:
            await apply_change(session, redis, missed, replay_to=epoch, verified=server_id)
            return "repaired"
    await rebuild(session, redis)
    return "rebuilt"
