"""The audit consumer against a real Redis, the row conversion, and the Elasticsearch store (when given one)."""
from __future__ import annotations

import asyncio
import json
import os
import secrets
from datetime import datetime, timedelta, timezone

import aiohttp
import pytest
from redis.asyncio import Redis

from admin_api.audit import AuditConsumer
from admin_api.audit_store import AuditQuery, AuditStoreError, ElasticsearchAuditStore, es_search_body, row_from_entry
from proxy.metrics import grant_kind


class RecordingStore:
    """Keeps rows in memory; fails the first ``failures`` inserts."""
    name = "memory"

    def __init__(self, failures: int = 0):
        self.rows: list[dict] = []
        self.failures = failures

    async def setup(self) -> None:
        pass

    async def insert(self, rows: list[dict]) -> None:
        if self.failures:
            self.failures -= 1
            raise AuditStoreError("the store is down")
        known = {r["stream_id"] for r in self.rows}
        self.rows.extend(r for r in rows if r["stream_id"] not in known)

    async def query(self, q: AuditQuery) -> list[dict]:
        return []


def _entry(n: int) -> dict:
    return {"time": f"{1_700_000_000 + n}.5", "request_id": f"R{n}", "user": "alice", "access_key": "AK",
            "workspace": "ws", "operation": "GetObject", "key": f"k{n}", "decision": "allow", "reason": "owner",
            "status": 200, "bytes_in": 0, "bytes_out": n, "client": "127.0.0.1", "duration_ms": "1.5"}


async def _until(predicate, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)


@pytest.fixture
async def stream_redis(redis_service):
    redis = Redis.from_url(redis_service.url, decode_responses=False, socket_timeout=10)
    stream = f"wio:test-audit:{secrets.token_hex(4)}"
    yield redis, stream
    await redis.delete(stream)
    await redis.aclose()


@pytest.mark.timeout(60)
async def test_consumer_stores_every_entry_once_across_store_failures(stream_redis):
    redis, stream = stream_redis
    store = RecordingStore(failures=2)
    consumer = AuditConsumer(redis, store, "c1", stream=stream, group="g", pause=0.01)
    consumer.start()
    try:
        for n in range(5):
            await redis.xadd(stream, _entry(n))
        await _until(lambda: len(store.rows) == 5)
        await redis.xadd(stream, _entry(5))
        await _until(lambda: len(store.rows) == 6)
        pending = await redis.xpending(stream, "g")
        assert pending["pending"] == 0
    finally:
        await consumer.stop()
    assert sorted(r["request_id"] for r in store.rows) == [f"R{n}" for n in range(6)]
    row = next(r for r in store.rows if r["request_id"] == "R3")
    assert row["time"] == datetime.fromtimestamp(1_700_000_003.5, timezone.utc)
    assert row["bytes_out"] == 3 and row["status"] == 200 and row["username"] == "alice" and row["duration_ms"] == 1.5


async def test_entries_left_by_a_dead_consumer_are_claimed(stream_redis):
    redis, stream = stream_redis
    await redis.xgroup_create(stream, "g", id="0", mkstream=True)
    for n in range(3):
        await redis.xadd(stream, _entry(n))
    # "dead" reads them and never acknowledges.
    assert len((await redis.xreadgroup("g", "dead", {stream: ">"}, count=10))[0][1]) == 3
    store = RecordingStore()
    consumer = AuditConsumer(redis, store, "alive", stream=stream, group="g", claim_idle_ms=100, claim_every=0.2,
                             pause=0.01)
    consumer.start()
    try:
        await _until(lambda: len(store.rows) == 3)
    finally:
        await consumer.stop()
    assert (await redis.xpending(stream, "g"))["pending"] == 0


def test_rows_are_bounded_and_malformed_values_become_defaults():
    row = row_from_entry("1700000000123-0", {"time": "soon", "user": "a\x00b", "key": "k" * 5000, "status": "x",
                                             "bytes_in": "-5", "bytes_out": "1" * 30, "decision": "weird"})
    assert row["time"] == datetime.fromtimestamp(1_700_000_000.123, timezone.utc)
    assert row["username"] == "ab" and len(row["key"]) == 2048
    assert row["status"] == 0 and row["bytes_in"] == 0 and row["bytes_out"] == 0
    assert row["decision"] == "deny" and row["workspace"] == "" and row["duration_ms"] == 0.0


def test_grant_kinds_are_a_small_label_set():
    assert [grant_kind(g) for g in ("owner", "share:12", "group:eng/share:14", "public", "owner+scope",
                                    "share:3+scope", "caller", "per-key", "")] == [
        "owner", "share", "group_share", "public", "owner", "share", "caller", "per-key", "unknown"]


def test_elasticsearch_query_body():
    since = datetime(2026, 1, 1, tzinfo=timezone.utc)
    body = es_search_body(AuditQuery(workspace="ws", user="bob", decision="deny", since=since, limit=7))
    assert body["size"] == 7 and body["sort"][0] == {"time": "desc"}
    assert {"term": {"workspace": "ws"}} in body["query"]["bool"]["filter"]
    assert {"term": {"username": "bob"}} in body["query"]["bool"]["filter"]
    assert {"range": {"time": {"gte": "2026-01-01T00:00:00.000Z"}}} in body["query"]["bool"]["filter"]
    assert es_search_body(AuditQuery())["query"]["bool"]["filter"] == []


@pytest.mark.skipif(not os.environ.get("WIO_TEST_ELASTICSEARCH_URL"),
                    reason="set WIO_TEST_ELASTICSEARCH_URL to test the Elasticsearch audit store")
async def test_elasticsearch_store_round_trip():
    index = f"wio-audit-test-{secrets.token_hex(4)}"
    async with aiohttp.ClientSession() as http:
        store = ElasticsearchAuditStore(http, os.environ["WIO_TEST_ELASTICSEARCH_URL"], index=index)
        try:
            await store.setup()
            await store.setup()  # idempotent
            rows = [row_from_entry(f"{1_700_000_000_000 + n}-0", {**_entry(n), "decision": ("allow", "deny")[n % 2]})
                    for n in range(6)]
            await store.insert(rows)
            await store.insert(rows[:2])  # re-delivery is not a duplicate
            await http.post(f"{store.url}/{index}/_refresh")
            everything = await store.query(AuditQuery(limit=100))
            assert [e["request_id"] for e in everything] == [f"R{n}" for n in reversed(range(6))]
            denied = await store.query(AuditQuery(decision="deny", user="alice", workspace="ws"))
            assert [e["request_id"] for e in denied] == ["R5", "R3", "R1"]
            until = datetime.fromtimestamp(1_700_000_002, timezone.utc)
            early = await store.query(AuditQuery(until=until, since=until - timedelta(days=1)))
            assert [e["request_id"] for e in early] == ["R1", "R0"]
        finally:
            await http.delete(f"{store.url}/{index}")


@pytest.fixture
async def pg_audit_store(pg_service):
    from policy.db import create_engine, migrate, sessionmaker_for
    from foundation.settings import normalize_database_url
    from admin_api.audit_store import PostgresAuditStore
    engine = create_engine(normalize_database_url(pg_service.url))
    await migrate(engine)
    yield PostgresAuditStore(sessionmaker_for(engine))
    await engine.dispose()


@pytest.mark.timeout(60)
async def test_unstorable_entries_are_quarantined_and_the_trail_goes_on(stream_redis, pg_audit_store):
    """Issue 17: one entry PostgreSQL cannot take (text that is not UTF-8, a NUL, a field that is not
    text at all) stopped the trail for good. It now goes to a dead-letter stream, counted, and the
    entries after it are stored."""
    from sqlalchemy import select
    from admin_api.audit_store import audit_log
    from foundation.metrics import AUDIT_QUARANTINED
    redis, stream = stream_redis
    dead_letter = stream + ":dead-letter"
    tag = secrets.token_hex(4)
    before = AUDIT_QUARANTINED.labels("postgresql")._value.get()
    bad = [{**_entry(1), "access_key": "\udcff"}, {**_entry(2), "user": "a\udcffb"}]
    consumer = AuditConsumer(redis, pg_audit_store, "c1", stream=stream, group="g", pause=0.01,
                             dead_letter=dead_letter)
    consumer.start()
    try:
        for n, entry in enumerate([_entry(0), *bad, _entry(3)]):
            fields = {**entry, "request_id": f"{tag}-{n}"}
            await redis.xadd(stream, {"e": json.dumps(fields)})
        stored: list[str] = []

        async def fetch():
            async with pg_audit_store.sessions() as session:
                return list((await session.scalars(select(audit_log.c.request_id)
                                                   .where(audit_log.c.request_id.like(f"{tag}-%")))).all())
        deadline = asyncio.get_running_loop().time() + 20
        while sorted(stored) != [f"{tag}-0", f"{tag}-3"]:
            assert asyncio.get_running_loop().time() < deadline, stored
            await asyncio.sleep(0.1)
            stored = await fetch()
        assert (await redis.xpending(stream, "g"))["pending"] == 0
    finally:
        await consumer.stop()
    quarantined = await redis.xrange(dead_letter)
    assert len(quarantined) == 2
    assert {json.loads(f[b"e"])["request_id"] for _, f in quarantined} == {f"{tag}-1", f"{tag}-2"}
    assert all(f[b"error"] and f[b"stream_id"] for _, f in quarantined)
    assert AUDIT_QUARANTINED.labels("postgresql")._value.get() - before == 2
    await redis.delete(dead_letter)
