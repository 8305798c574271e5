"""Indexer benchmark (run by hand, not in CI): the PostgreSQL search backend at a million objects.

    python -m benchmarks.indexer_bench [--objects 1000000] [--events 100000] [--database-url URL] [--redis-url URL]

1. Loads ``--objects`` rows into a fresh database in bulk (INSERT ... SELECT generate_series, the same
   columns and tsvector the backend writes), spread over ``--workspaces`` workspaces.
2. Indexing throughput: ``--events`` proxy events (90 % puts of new keys, 10 % deletes) are put on a
   private Redis stream, then the real ``EventConsumer`` applies them; events/s is measured from the
   first read to the last acknowledgement, on top of the loaded table.
3. Search latency p50/p99 through ``PostgresBackend`` for typical queries of two callers: a team member
   (20 whole workspaces and 5 prefix shares) and a caller who may read every workspace; plus
   aggregations.

Without URLs it starts embedded PostgreSQL and Valkey (wio.dev.postgres, wio.dev.valkey) in a temporary directory. With
``--database-url`` it creates (and afterwards drops) a database of its own on that server.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import random
import secrets
import statistics
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from indexer.consumer import EventConsumer
from indexer.documents import Readable, SearchFilters
from indexer.pg import PostgresBackend
from policy.db import create_engine, migrate
from foundation.settings import normalize_database_url

EXTENSIONS = [("csv", "text/csv"), ("json", "application/json"), ("png", "image/png"), ("txt", "text/plain"),
              ("parquet", "application/vnd.apache.parquet"), ("h5", "application/x-hdf5")]
KINDS = ["table", "summary", "plot", "notes", "frame", "raw"]

# Objects arrive in bursts of 100 (one run's files, uploaded together) into workspace bench-(b % W),
# b = n / 100, keyed proj-P/run-R/<kind>-n.<ext>. The words are what documents.words gives for these
# ASCII keys and content types.
_LOAD = """
    INSERT INTO search_objects (workspace, key, size, etag, content_type, extension, last_modified, version, terms)
    SELECT ws, key, size, md5(key), ct, ext, to_timestamp(t), t,
           to_tsvector('simple', regexp_replace(lower(key || ' ' || ct), '[^a-z0-9]+', ' ', 'g'))
    FROM (SELECT 'bench-' || lpad((n / 100 % :w)::text, 4, '0') AS ws,
                 'proj-' || (n / 100 / :w % 50) || '/run-' || (n / 100 % 997) || '/'
                     || (CAST(:kinds AS text[]))[1 + n % 6] || '-' || n || '.'
                     || (CAST(:exts AS text[]))[1 + (n / 7) % 6] AS key,
                 (CAST(:types AS text[]))[1 + (n / 7) % 6] AS ct,
                 (CAST(:exts AS text[]))[1 + (n / 7) % 6] AS ext,
                 (hashint8(n) & 1048575) * 64 AS size,
                 1600000000 + n * 60.0 AS t
          FROM generate_series(CAST(:lo AS bigint), CAST(:hi AS bigint)) AS n) AS g"""

QUERIES = [dict(text="run 42"), dict(text="csv"), dict(text="plot"), dict(text="proj 7 run 3"),
           dict(text="summary", content_type="text/csv"), dict(text="table 1236"), dict(text="parq"),
           dict(prefix="proj-3/"), dict(content_type="image/*", min_size=1 << 20), dict(text="raw", max_size=4096),
           dict()]


def _pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))] * 1000


async def load(engine, objects: int, workspaces: int, chunk: int = 100_000) -> float:
    start = time.perf_counter()
    params = {"w": workspaces, "kinds": KINDS, "exts": [e for e, _ in EXTENSIONS],
              "types": [t for _, t in EXTENSIONS]}
    for lo in range(0, objects, chunk):
        async with engine.begin() as conn:
            await conn.execute(text(_LOAD), {**params, "lo": lo, "hi": min(objects, lo + chunk) - 1})
        print(f"  loaded {min(objects, lo + chunk):>9,} rows  {time.perf_counter() - start:6.1f} s", flush=True)
    async with engine.execution_options(isolation_level="AUTOCOMMIT").connect() as conn:
        await conn.execute(text("VACUUM ANALYZE search_objects"))
    return time.perf_counter() - start


async def _no_route(workspace: str) -> None:
    return None  # every benchmark event carries its size and content type: no HEAD


async def index_events(redis: Redis, backend: PostgresBackend, events: int, workspaces: int) -> dict:
    stream = "bench:events:" + secrets.token_hex(4)
    consumer = EventConsumer(redis, backend, _no_route, stream=stream, block_ms=100)
    await consumer.ensure_group()
    rng = random.Random(7)
    now = time.time()
    for lo in range(0, events, 5000):
        async with redis.pipeline(transaction=False) as pipe:
            for i in range(lo, min(events, lo + 5000)):
                ext, content_type = EXTENSIONS[i % len(EXTENSIONS)]
                ws = f"bench-{rng.randrange(workspaces):04d}"
                if i % 10 == 9:
                    fields = {"type": "delete", "workspace": ws, "key": f"proj-1/run-{i % 997}/table-{i}.{ext}",
                              "size": "", "etag": "", "content_type": ""}
                else:
                    fields = {"type": "put", "workspace": ws, "key": f"live/upload-{i}/{KINDS[i % 6]}.{ext}",
                              "size": str(rng.randrange(1 << 26)), "etag": secrets.token_hex(16),
                              "content_type": content_type}
                pipe.xadd(stream, {**fields, "time": f"{now + i / 1000:.3f}", "user": "bench"})
            await pipe.execute()
    start = time.perf_counter()
    done = 0
    while done < events:
        done += await consumer.step()
    seconds = time.perf_counter() - start
    pending = (await redis.xpending(stream, consumer.group))["pending"]
    await redis.delete(stream)
    return {"events": events, "seconds": seconds, "events_per_second": events / seconds, "left_pending": pending}


async def latencies(call, rounds: int) -> dict:
    for _ in range(5):
        await call()
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        await call()
        samples.append(time.perf_counter() - start)
    return {"p50_ms": _pct(samples, 0.5), "p99_ms": _pct(samples, 0.99), "mean_ms": statistics.mean(samples) * 1000}


async def searches(backend: PostgresBackend, workspaces: int, rounds: int) -> dict:
    rng = random.Random(11)
    team_ws = rng.sample(range(workspaces), 25)
    team = Readable({f"bench-{n:04d}": ("",) for n in team_ws[:20]}
                    | {f"bench-{n:04d}": (f"proj-{n % 50}/",) for n in team_ws[20:]})
    everyone = Readable({f"bench-{n:04d}": ("",) for n in range(workspaces)})
    out = {}
    for who, readable in (("team member (20 workspaces + 5 prefix shares)", team),
                          ("reader of all workspaces", everyone)):
        totals = []

        async def one_search():
            result = await backend.search(SearchFilters(**rng.choice(QUERIES)), readable, 50, 0)
            totals.append(result.total)

        out[f"search, {who}"] = await latencies(one_search, rounds)
        out[f"search, {who}"]["median_total_hits"] = statistics.median(totals)
        out[f"aggregate by extension, {who}"] = await latencies(
            lambda: backend.aggregate("extension", SearchFilters(), readable), max(20, rounds // 10))
        out[f"aggregate by workspace, q=csv, {who}"] = await latencies(
            lambda: backend.aggregate("workspace", SearchFilters(text="csv"), readable), max(20, rounds // 10))
    return out


async def run(args, database_url: str, redis_url: str) -> dict:
    server = normalize_database_url(database_url)
    name = "wio_bench_" + secrets.token_hex(4)
    admin = create_async_engine(server, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(server).set(database=name).render_as_string(hide_password=False)
    engine = create_engine(url)
    redis = Redis.from_url(redis_url, decode_responses=True)
    try:
        await migrate(engine)
        print(f"loading {args.objects:,} objects into {args.workspaces} workspaces ...")
        load_seconds = await load(engine, args.objects, args.workspaces)
        backend = PostgresBackend(engine)
        print(f"indexing {args.events:,} events through the consumer ...")
        indexing = await index_events(redis, backend, args.events, args.workspaces)
        async with engine.connect() as conn:
            rows = (await conn.execute(text("SELECT count(*) FROM search_objects"))).scalar_one()
            size = (await conn.execute(text("SELECT pg_size_pretty(pg_total_relation_size('search_objects'))"))
                    ).scalar_one()
        print(f"searching {rows:,} objects ({size} with indexes) ...")
        return {"objects_loaded": args.objects, "load_seconds": load_seconds, "rows_after_events": rows,
                "table_size": size, "indexing": indexing, "latency": await searches(backend, args.workspaces,
                                                                                    args.rounds)}
    finally:
        await redis.aclose()
        await engine.dispose()
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--objects", type=int, default=1_000_000)
    parser.add_argument("--workspaces", type=int, default=1000)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=300, help="searches per caller")
    parser.add_argument("--database-url", help="an existing PostgreSQL server (a database is created on it)")
    parser.add_argument("--redis-url", help="an existing Redis/Valkey")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    with ExitStack() as stack:
        database_url, redis_url = args.database_url, args.redis_url
        if not (database_url and redis_url):
            from wio.dev.postgres import start_postgres
            from wio.dev.valkey import start_valkey
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="wio-indexer-bench-")))
            if not database_url:
                pg = start_postgres(workdir / "postgres")
                stack.callback(pg.stop)
                database_url = pg.url
            if not redis_url:
                valkey = start_valkey(workdir / "valkey", persist=False)
                stack.callback(valkey.stop)
                redis_url = valkey.url
        results = asyncio.run(run(args, database_url, redis_url))
    indexing = results["indexing"]
    print(f"\nbulk load: {results['objects_loaded']:,} rows in {results['load_seconds']:.1f} s; "
          f"table {results['table_size']} ({results['rows_after_events']:,} rows)")
    print(f"indexing:  {indexing['events']:,} events in {indexing['seconds']:.2f} s = "
          f"{indexing['events_per_second']:,.0f} events/s")
    for what, figures in results["latency"].items():
        print(f"{what:<62} p50 {figures['p50_ms']:7.1f} ms   p99 {figures['p99_ms']:7.1f} ms")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
