"""A write's settlement releases its key locks in the same script call (issue 21: one Redis round trip
less per PUT and DELETE), and only the locks it still holds; a write that never settles (failed,
refused) still releases them on the way out."""
from __future__ import annotations

import secrets

import pytest

from policy.decide import WorkspaceView
from proxy.errors import S3Error
from proxy.quota import Quotas
from foundation.resp import RespClient


@pytest.fixture
async def client(redis_service):
    c = RespClient(redis_service.url)
    yield c
    await c.close()


async def _workspace(client: RespClient) -> WorkspaceView:
    """A fresh workspace (own owner and root) whose usage is known."""
    tag = secrets.token_hex(4)
    ws = WorkspaceView(f"su-{tag}", "n", "b", "p/", f"su-owner-{tag}", False, f"su-root-{tag}")
    await client.execute("HSET", f"wio:use:w:{ws.name}", "known", "1")
    return ws


async def test_settle_releases_the_writers_locks_after_settling(client):
    quotas = Quotas(client)
    ws = await _workspace(client)
    lock_name = f"wio:lk:{ws.name}/k"
    calls = []
    original = quotas._lock

    async def counted(action, token, names):
        calls.append(action)
        return await original(action, token, names)
    quotas._lock = counted   # the lock script: acquire only, no separate release
    async with quotas.exclusive(ws, ["k"]) as lock:
        async with quotas.reserved(ws, 100, 1) as res:
            assert await client.execute("GET", lock_name) == lock.token
            await quotas.settle(res, 100, 1, unlock=lock)
            assert await client.execute("EXISTS", lock_name) == 0     # released by the settlement
            assert lock.released
    assert calls == ["acquire"]
    use = await client.execute("HMGET", f"wio:use:w:{ws.name}", "bytes", "objects", "pbytes", "pobjects")
    assert use == ["100", "1", "0", "0"]
    async with quotas.exclusive(ws, ["k"]):   # free again at once
        pass


async def test_settle_never_releases_a_lock_someone_else_holds(client):
    quotas = Quotas(client)
    ws = await _workspace(client)
    lock_name = f"wio:lk:{ws.name}/k"
    async with quotas.exclusive(ws, ["k"]) as lock:
        res = await quotas.reserve(ws, 10, 1)
        # the lock expired and another writer took it: our settlement must leave theirs alone
        await client.execute("SET", lock_name, "another-writer", "PX", 30_000)
        await quotas.settle(res, 10, 1, unlock=lock)
        assert await client.execute("GET", lock_name) == "another-writer"
    assert await client.execute("GET", lock_name) == "another-writer"
    await client.execute("DEL", lock_name)


async def test_a_write_that_does_not_settle_still_releases_its_locks(client):
    quotas = Quotas(client)
    ws = await _workspace(client)
    lock_name = f"wio:lk:{ws.name}/k"
    await client.execute("HSET", f"wio:w:{ws.name}", "qb", "5")
    with pytest.raises(S3Error):
        async with quotas.exclusive(ws, ["k"]), quotas.reserved(ws, 100, 1):
            pass   # refused: over the quota
    assert await client.execute("EXISTS", lock_name) == 0
    async with quotas.exclusive(ws, ["k"]) as lock, quotas.reserved(ws, 1, 1):
        pass       # the node refused the write: released, not settled
    assert lock.released and await client.execute("EXISTS", lock_name) == 0
    assert await client.execute("HMGET", f"wio:use:w:{ws.name}", "pbytes", "pobjects") == ["0", "0"]
