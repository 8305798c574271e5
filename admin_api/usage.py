"""Rebuilding a workspace's usage from its node (reconciliation), shared by reconcile and import."""
from __future__ import annotations

import asyncio
import logging

from redis.asyncio import Redis

from nodeclient.client import NodeClient
from policy.scripts import lua

__all__ = ["rebuild_usage", "forget_usage", "RECONCILE_DRAIN"]

RECONCILE_DRAIN = 10.0   # seconds a rebuild waits for the workspace's writes in flight to settle
_LEDGER = lua("quota.lua")
log = logging.getLogger("wio.api")


async def rebuild_usage(redis: Redis, client: NodeClient, bucket: str, prefix: str,
                        scope: list[str]) -> tuple[int, int, list[int]]:
    """Count the node under ``prefix`` and make usage of ``scope`` (workspace, owner, root) match it.

    While it runs the workspace's usage is unknown: the proxy refuses new writes (503), and the count
    waits up to ``RECONCILE_DRAIN`` seconds for writes in flight to settle. Then, in one step
    (policy/quota.lua ``reconcile``), committed usage becomes the node's count, reservations past their
    deadline are given back, pending usage is recomputed from the reservations and multipart uploads
    still recorded, and usage is known again. Returns the node's bytes and objects, and the corrections
    (bytes, objects, pending bytes, pending objects). A node that cannot be counted (``NodeError``)
    leaves usage unknown: writes stay refused until a rebuild succeeds.
    """
    ledger = redis.register_script(_LEDGER)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + RECONCILE_DRAIN
    while int(await ledger(args=["unknown", *scope])) and loop.time() < deadline:   # noqa: ASYNC110 - Redis, not an event
        await asyncio.sleep(0.1)
    total_bytes, total_objects = await client.count_prefix(bucket, prefix)
    corrected = [int(v) for v in await ledger(args=["reconcile", *scope, total_bytes, total_objects])]
    return total_bytes, total_objects, corrected


async def forget_usage(redis: Redis, workspaces: list[tuple[str, str, str]]) -> None:
    """Deleted workspaces (name, owner, root): what their counters held leaves their owners' and roots'
    usage, and their usage, reservations and uploads are forgotten (policy/quota.lua ``forget``), so a
    workspace made again under a name starts clean. Best effort, after the deletion committed: if Redis
    fails here, the new workspace's usage starts unknown and is rebuilt from the node (workspaces.py)."""
    ledger = redis.register_script(_LEDGER)
    for scope in workspaces:
        try:
            await ledger(args=["forget", *scope])
        except Exception as exc:  # noqa: BLE001 - logged; creation checks for leftovers
            log.warning("usage of deleted workspace %s not forgotten: %s", scope[0], exc)
