"""The event consumer on real Redis (a private stream per test), PostgreSQL and the SeaweedFS node."""
from __future__ import annotations

import asyncio
import time

import aiohttp
import boto3
import pytest
from redis.asyncio import Redis

from indexer.consumer import EventConsumer
from indexer.documents import Readable, SearchFilters
from indexer.pg import PostgresBackend
from indexer.storage import WorkspaceRoute
from nodeclient.client import NodeClient
from tests.conftest import unique


@pytest.fixture
async def redis(redis_service):
    client = Redis.from_url(redis_service.url, decode_responses=True)
    yield client
    await client.aclose()


@pytest.fixture
async def pg_backend(index_db_url):
    backend = PostgresBackend.from_url(index_db_url)
    yield backend
    await backend.close()


async def no_route(workspace: str) -> WorkspaceRoute | None:
    return None


def event(kind: str, ws: str, key: str, size: int | str = 1, *, at: float | None = None,
          content_type: str = "text/plain") -> dict:
    return {"type": kind, "workspace": ws, "key": key, "size": size if kind == "put" else "", "etag": '"e"',
            "content_type": content_type if kind == "put" else "", "time": f"{time.time() if at is None else at:.3f}",
            "user": "someone"}


async def indexed(backend, ws: str) -> dict[str, int]:
    result = await backend.search(SearchFilters(), Readable({ws: ("",)}), 100, 0)
    return {h.key: h.size for h in result.hits}


async def pending(redis, stream: str, group: str = "wio-indexer") -> int:
    return (await redis.xpending(stream, group))["pending"]


async def test_batches_are_applied_then_acknowledged(redis, pg_backend):
    stream, ws = unique("events-"), unique("ws")
    consumer = EventConsumer(redis, pg_backend, no_route, stream=stream, block_ms=20)
    await consumer.ensure_group()
    for fields in [event("put", ws, "a.txt", 10), event("put", ws, "b.txt", 20), event("put", ws, "a.txt", 11),
                   event("delete", ws, "b.txt"), event("put", ws, "c.txt", 30),
                   {"type": "rename", "workspace": ws}]:  # malformed: acknowledged and skipped
        await redis.xadd(stream, fields)
    assert await consumer.step() == 0  # our own pending entries first: none
    assert await consumer.step() == 6
    assert await indexed(pg_backend, ws) == {"a.txt": 11, "c.txt": 30}
    assert await pending(redis, stream) == 0
    assert consumer.stats.skipped == 1


async def test_redelivery_and_disorder_are_harmless(redis, pg_backend):
    stream, ws = unique("events-"), unique("ws")
    consumer = EventConsumer(redis, pg_backend, no_route, stream=stream, block_ms=20)
    await consumer.ensure_group()
    now = time.time()
    await redis.xadd(stream, event("put", ws, "k", 5, at=now + 2))
    await redis.xadd(stream, event("delete", ws, "gone", at=now + 2))
    await consumer.step()
    await consumer.step()
    # The same events again, and older ones arriving late: nothing changes.
    for fields in [event("put", ws, "k", 5, at=now + 2), event("put", ws, "k", 4, at=now + 1),
                   event("put", ws, "gone", 9, at=now + 1)]:
        await redis.xadd(stream, fields)
    await consumer.step()
    assert await indexed(pg_backend, ws) == {"k": 5}


async def test_entries_of_a_dead_consumer_are_claimed(redis, pg_backend):
    stream, ws = unique("events-"), unique("ws")
    consumer = EventConsumer(redis, pg_backend, no_route, stream=stream, claim_idle_ms=50, block_ms=20)
    await consumer.ensure_group()
    await redis.xadd(stream, event("put", ws, "orphan.txt", 7))
    # Another indexer read the entry, then died before writing and acknowledging it.
    await redis.xreadgroup("wio-indexer", "dead-indexer", {stream: ">"}, count=10)
    assert await consumer.step() == 0 and await consumer.step() == 0  # nothing new for us
    assert await indexed(pg_backend, ws) == {}
    await asyncio.sleep(0.1)
    await consumer.claim_stale()
    assert await consumer.step() == 1
    assert await indexed(pg_backend, ws) == {"orphan.txt": 7}
    assert await pending(redis, stream) == 0


@pytest.fixture
async def node_route(s3_node):
    bucket = unique("idx-consumer-")
    s3 = boto3.client("s3", endpoint_url=s3_node.endpoint, aws_access_key_id=s3_node.access_key,
                      aws_secret_access_key=s3_node.secret_key, region_name=s3_node.region)
    s3.create_bucket(Bucket=bucket)
    async with aiohttp.ClientSession() as http:
        client = NodeClient(http, s3_node.endpoint, s3_node.region, s3_node.access_key, s3_node.secret_key)
        yield s3, bucket, WorkspaceRoute("ws-on-node", bucket, "lab/ws-on-node/", client)


async def test_unknown_sizes_are_completed_by_a_head(redis, pg_backend, node_route):
    s3, bucket, route = node_route
    s3.put_object(Bucket=bucket, Key=route.prefix + "copied/big.json", Body=b"{}" * 5000,
                  ContentType="application/json")
    stream = unique("events-")

    async def lookup(name: str) -> WorkspaceRoute | None:
        return route if name == route.workspace else None

    consumer = EventConsumer(redis, pg_backend, lookup, stream=stream, block_ms=20)
    await consumer.ensure_group()
    await redis.xadd(stream, event("put", route.workspace, "copied/big.json", ""))      # a copy: size unknown
    await redis.xadd(stream, event("put", route.workspace, "vanished.bin", ""))         # deleted since
    await redis.xadd(stream, event("put", "no-such-workspace", "x", ""))                # workspace deleted since
    await consumer.step()
    await consumer.step()
    result = await pg_backend.search(SearchFilters(), Readable({route.workspace: ("",)}), 10, 0)
    assert [(h.key, h.size, h.content_type) for h in result.hits] == [("copied/big.json", 10000, "application/json")]
    assert await pending(redis, stream) == 0


async def test_entries_that_keep_failing_are_retried_then_dropped(redis, pg_backend):
    stream, ws = unique("events-"), unique("ws")
    async with aiohttp.ClientSession() as http:
        dead_node = NodeClient(http, "http://127.0.0.1:9", "us-east-1", "k", "s")  # nothing listens there

        async def lookup(name: str) -> WorkspaceRoute:
            return WorkspaceRoute(name, "bucket", "p/", dead_node)

        consumer = EventConsumer(redis, pg_backend, lookup, stream=stream, claim_idle_ms=10, max_deliveries=3,
                                 block_ms=20)
        await consumer.ensure_group()
        await redis.xadd(stream, event("put", ws, "stuck", ""))
        await redis.xadd(stream, event("put", ws, "fine", 3))
        await consumer.step()
        await consumer.step()
        assert await indexed(pg_backend, ws) == {"fine": 3}
        assert await pending(redis, stream) == 1  # kept for a retry
        for _ in range(3):
            await asyncio.sleep(0.02)
            await consumer.claim_stale()
            while await consumer.step():
                pass
        assert await pending(redis, stream) == 0
        assert consumer.stats.dropped == 1 and consumer.stats.failed >= 2
