"""Steps 2-3 of the request path: who is calling (key material), and what may they do here.

One Redis round trip (``authorize.lua``) returns the key, the user, and for each workspace the
request touches its routing, its node and the caller's share lists; the decision itself is pure
Python in ``policy.decide``. Redis unreachable -> ``ServiceUnavailable``: the proxy fails closed.
"""
from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from policy.callers import refuse_caller
from policy.decide import Grant, WorkspaceView, effective_grants
from policy.scripts import lua
from proxy.errors import S3Error
from proxy.metrics import observe_redis, redis_failed
from foundation.resp import RespClient, RespError
from foundation.secrets import SecretBox

__all__ = ["NodeView", "Target", "Caller", "Authorizer"]

# One deadline per round trip (not a socket timeout, which costs a timer on every read): a Redis that
# hangs makes the request fail closed with 503 after this long.
REDIS_TIMEOUT = 5.0


@dataclass(frozen=True, slots=True)
class NodeView:
    name: str
    endpoint: str
    region: str
    access_key: str
    secret_key: str = field(repr=False)


@dataclass(slots=True)
class Target:
    ws: WorkspaceView
    node: NodeView
    grants: list[Grant]


@dataclass(slots=True)
class Caller:
    access_key_id: str
    user: str
    groups: list[str]
    is_admin: bool
    scope: list[dict[str, Any]] | None
    secret_key: str = field(repr=False)
    temporary: bool = False


def _unavailable(exc: Exception) -> S3Error:
    return S3Error("ServiceUnavailable", "The permission store is unavailable; please retry")


class Authorizer:
    def __init__(self, redis: RespClient, box: SecretBox):
        self.redis, self.box = redis, box
        self._authorize = redis.register_script(lua("authorize.lua"))
        self._list_buckets = redis.register_script(lua("list_buckets.lua"))
        self._anonymous = redis.register_script(lua("anonymous.lua"))

    def _caller(self, akid: str, reply: list[Any], session_token: str | None, now: float) -> Caller:
        if not reply[0]:
            raise S3Error("ServiceUnavailable", "The permission store is being verified or rebuilt; please retry")
        user, secret_enc, expires, token_hash, scope = reply[1]
        disabled, is_admin, groups = reply[2] if len(reply) > 2 and user is not None else (None, None, None)
        refusal = refuse_caller(user=user, expires=expires, token_hash=token_hash, disabled=disabled,
                                session_token=session_token, now=now)
        if refusal is not None:
            raise S3Error(refusal.code, refusal.message)
        return Caller(akid, user, groups.split(",") if groups else [], is_admin == "1",
                      json.loads(scope) if scope else None, self.box.open_cached(secret_enc), bool(token_hash))

    def _target(self, caller: Caller, name: str, ws_fields: list[Any], node_fields: list[Any], shares: list[str | None],
                now: float) -> Target | None:
        ws_node = self._workspace(name, ws_fields, node_fields)
        if ws_node is None:
            return None
        ws, node = ws_node
        grants = effective_grants(user=caller.user, groups=caller.groups, ws=ws, share_lists=shares, now=now,
                                  scope=caller.scope)
        return Target(ws, node, grants)

    def _workspace(self, name: str, ws_fields: list[Any],
                   node_fields: list[Any]) -> tuple[WorkspaceView, NodeView] | None:
        node_name, bucket, prefix, owner, public, root, anon = ws_fields[:7]
        if node_name is None or not node_fields or node_fields[0] is None:
            return None
        ws = WorkspaceView(name, node_name, bucket, prefix, owner, public == "1", root, anon == "1")
        endpoint, region, access, secret_enc = node_fields
        return ws, NodeView(node_name, endpoint, region, access, self.box.open_cached(secret_enc))

    async def _round_trip(self, name: str, command: Callable[[str], Awaitable[Any]]) -> Any:
        """Run one Redis call with a deadline; any Redis failure fails closed (503). ``command`` is given
        the run_id of the server this process is connected to: the scripts trust a projection only when
        the API has verified it on that very server (a failover or a restart changes it)."""
        started = time.monotonic()
        try:
            async with asyncio.timeout(REDIS_TIMEOUT):
                server_id = self.redis.server_id
                if server_id is None:
                    await self.redis.connect()
                    server_id = self.redis.server_id or ""
                reply = await command(server_id)
        except (RespError, OSError, TimeoutError) as exc:
            redis_failed(name)
            raise _unavailable(exc) from None
        observe_redis(name, started)
        return reply

    async def load(self, akid: str, session_token: str | None,
                   workspaces: list[str]) -> tuple[Caller, list[Target | None]]:
        """Key, user and every named workspace in one round trip. Raises S3Error for bad keys."""
        reply = await self._round_trip("authorize", lambda sid: self._authorize(args=[sid, akid, *workspaces]))
        now = time.time()
        caller = self._caller(akid, reply, session_token, now)
        targets = []
        for i, name in enumerate(workspaces):
            base = 3 + 3 * i
            targets.append(self._target(caller, name, reply[base], reply[base + 1], reply[base + 2], now))
        return caller, targets

    async def load_anonymous(self, workspace: str) -> tuple[WorkspaceView, NodeView] | None:
        """For an unsigned request: the workspace and its node when the projection marks it for anonymous
        reads, else None (missing, or not marked: the caller cannot tell which). Read on every request."""
        reply = await self._round_trip("anonymous", lambda sid: self._anonymous(args=[sid, workspace]))
        if not reply[0]:
            raise S3Error("ServiceUnavailable", "The permission store is being verified or rebuilt; please retry")
        return self._workspace(workspace, reply[1], reply[2]) if len(reply) == 3 else None

    async def load_visible(self, akid: str,
                           session_token: str | None) -> tuple[Caller, list[tuple[WorkspaceView, str]]]:
        """For ListBuckets: every workspace the caller can read, with its creation time."""
        reply = await self._round_trip("list_buckets", lambda sid: self._list_buckets(args=[sid, akid]))
        now = time.time()
        caller = self._caller(akid, reply, session_token, now)
        out = []
        for i in range(3, len(reply), 3):
            name, ws_fields, shares = reply[i], reply[i + 1], reply[i + 2]
            if ws_fields[0] is None:
                continue
            ws = WorkspaceView(name, ws_fields[0], ws_fields[1], ws_fields[2], ws_fields[3], ws_fields[4] == "1",
                               ws_fields[5])
            grants = effective_grants(user=caller.user, groups=caller.groups, ws=ws, share_lists=shares, now=now,
                                      scope=caller.scope)
            if grants:
                out.append((ws, ws_fields[6] or "0"))
        return caller, out

    async def share_lists(self, workspace: str) -> dict[str, str]:
        """Every share list of a workspace as the projection holds it (``u:{user}``/``g:{group}`` -> list),
        for the read-only ACL views."""
        flat = await self._round_trip("shares", lambda _sid: self.redis.execute("HGETALL", f"wio:s:{workspace}"))
        return dict(zip(flat[::2], flat[1::2], strict=True))
