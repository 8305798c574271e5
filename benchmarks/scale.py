"""How wio's cost grows with the organisation: an organisation is written to PostgreSQL, its Redis
projection is rebuilt from there (timed), and the proxy's authorization round trip is measured on
it (the real ``Authorizer`` over the real scripts, for keys picked at random).

    python -m benchmarks.scale [--sizes small large] [--calls 5000] [--out results.json]

Sizes: ``small`` 1 000 users, 10 000 keys, 1 000 workspaces, 10 000 shares; ``large`` 100 000
users, 1 000 000 keys, 100 000 workspaces, 1 000 000 shares. Starts and stops its own PostgreSQL
and Valkey in a temporary directory. docs/scaling.md reports a run.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import random
import resource
import statistics
import tempfile
import time
from pathlib import Path

from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from policy.db import create_engine, migrate
from policy.projection import rebuild
from proxy.authz import Authorizer
from foundation.resp import RespClient
from foundation.secrets import SecretBox
from wio.dev.postgres import start_postgres
from wio.dev.valkey import start_valkey
from foundation.settings import normalize_database_url

__all__ = ["SIZES", "main"]

SIZES = {
    "small": {"users": 1_000, "keys": 10_000, "workspaces": 1_000, "shares": 10_000},
    "large": {"users": 100_000, "keys": 1_000_000, "workspaces": 100_000, "shares": 1_000_000},
}
GROUPS_PER_USER = 2  # every user is in two of 100 groups; a tenth of the shares go to groups


async def populate(session: AsyncSession, box: SecretBox, size: dict[str, int]) -> None:
    """The organisation, written with set-based INSERTs (the API would take hours to create it)."""
    users, keys, workspaces, shares = size["users"], size["keys"], size["workspaces"], size["shares"]
    secret, node_secret = box.seal("bench-secret"), box.seal("node-secret")
    await session.execute(text(
        "INSERT INTO users (username, password_hash, is_admin, disabled) "
        "SELECT 'user' || i, 'x', false, false FROM generate_series(1, :n) i"), {"n": users})
    await session.execute(text(
        "INSERT INTO nodes (name, endpoint, region, access_key, secret_enc, owner_id) "
        "VALUES ('node', 'http://127.0.0.1:1', 'us-east-1', 'a', :s, 1)"), {"s": node_secret})
    await session.execute(text(
        "INSERT INTO roots (name, node_id, bucket, prefix, type, owner_id) "
        "SELECT 'private', id, 'wio-private', '', 'private', 1 FROM nodes WHERE name = 'node'"))
    await session.execute(text(
        "INSERT INTO groups (name, owner_id) SELECT 'group' || i, 1 FROM generate_series(1, 100) i"))
    await session.execute(text(
        "INSERT INTO group_members (group_id, user_id) "
        "SELECT DISTINCT g.id, u.id FROM users u CROSS JOIN generate_series(0, :k - 1) j "
        "JOIN groups g ON g.name = 'group' || (1 + (u.id * 7 + j * 13) % 100)"), {"k": GROUPS_PER_USER})
    await session.execute(text(
        "INSERT INTO workspaces (name, root_id, prefix, owner_id, public) "
        "SELECT 'ws' || i, r.id, 'user' || (1 + i % :u) || '/ws' || i || '/', 1 + i % :u, false "
        "FROM generate_series(1, :w) i, roots r WHERE r.name = 'private'"), {"u": users, "w": workspaces})
    await session.execute(text(
        "INSERT INTO access_keys (access_key_id, secret_enc, user_id) "
        "SELECT 'AKBENCH' || lpad(i::text, 12, '0'), :s, 1 + i % :u FROM generate_series(1, :k) i"),
        {"s": secret, "u": users, "k": keys})
    await session.execute(text(
        "INSERT INTO shares (workspace_id, user_id, group_id, permission, prefix, created_by_id) "
        "SELECT w.id, CASE WHEN i % 10 = 0 THEN NULL ELSE 1 + (i::bigint * 7919) % :u END, "
        "       CASE WHEN i % 10 = 0 THEN (SELECT id FROM groups WHERE name = 'group' || (1 + i % 100)) END, "
        "       'read', CASE WHEN i % 3 = 0 THEN 'results/' ELSE '' END, 1 "
        "FROM generate_series(1, :n) i JOIN workspaces w ON w.name = 'ws' || (1 + i % :w)"),
        {"u": users, "w": workspaces, "n": shares})


async def decisions(resp: RespClient, box: SecretBox, size: dict[str, int], calls: int) -> dict[str, float]:
    """The proxy's authorization round trip (parse of the reply and policy included) for random keys
    on random workspaces: p50/p99 in microseconds, and Redis commands per request."""
    authz = Authorizer(resp, box)
    rng = random.Random(7)

    def pick() -> tuple[str, str]:
        return (f"AKBENCH{rng.randint(1, size['keys']):012d}", f"ws{rng.randint(1, size['workspaces'])}")

    for _ in range(300):  # warm up: connection, script cache
        key, ws = pick()
        await authz.load(key, None, [ws])
    before = await resp.execute("INFO", "commandstats")
    samples = []
    for _ in range(calls):
        key, ws = pick()
        started = time.perf_counter()
        await authz.load(key, None, [ws])
        samples.append(time.perf_counter() - started)
    after = await resp.execute("INFO", "commandstats")
    samples.sort()
    return {"p50_us": round(statistics.median(samples) * 1e6, 1),
            "p99_us": round(samples[int(len(samples) * 0.99)] * 1e6, 1),
            "redis_commands_per_request": round((_calls(after) - _calls(before)) / calls, 1)}


def _calls(commandstats: str) -> int:
    """Commands executed so far (INFO commandstats), scripts' inner commands included, INFO itself not."""
    total = 0
    for line in commandstats.splitlines():
        if line.startswith("cmdstat_") and not line.startswith("cmdstat_info:"):
            total += int(line.split("calls=", 1)[1].split(",", 1)[0])
    return total


async def measure(name: str, size: dict[str, int], calls: int, tmp: Path) -> dict:
    box = SecretBox(b"\x02" * 32)
    pg = start_postgres(tmp / f"pg-{name}", durable=False)
    valkey = start_valkey(tmp / f"valkey-{name}", persist=False)
    engine = create_engine(normalize_database_url(pg.url))
    redis = Redis.from_url(valkey.url, decode_responses=True)
    resp = RespClient(valkey.url)
    try:
        await migrate(engine)
        started = time.monotonic()
        async with AsyncSession(engine) as session, session.begin():
            await populate(session, box, size)
        populated = time.monotonic() - started
        empty_memory = (await redis.info("memory"))["used_memory"]
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        started = time.monotonic()
        async with AsyncSession(engine) as session, session.begin():
            await rebuild(session, redis)
        rebuilt = time.monotonic() - started
        rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        memory = (await redis.info("memory"))["used_memory"] - empty_memory
        result = {"size": name, **size, "populate_seconds": round(populated, 1),
                  "rebuild_seconds": round(rebuilt, 1),
                  "rebuild_peak_rss_mib": round(max(rss_before, rss_after) / 1024),
                  "redis_keys": await redis.dbsize(), "redis_memory_mib": round(memory / 2**20, 1),
                  **await decisions(resp, box, size, calls)}
        print(json.dumps(result), flush=True)
        return result
    finally:
        await resp.close()
        await redis.aclose()
        await engine.dispose()
        valkey.stop()
        pg.stop()


async def run(names: list[str], calls: int) -> list[dict]:
    with tempfile.TemporaryDirectory() as tmp:
        return [await measure(name, SIZES[name], calls, Path(tmp)) for name in names]


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", choices=sorted(SIZES), default=["small", "large"])
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--out", type=Path, default=None, help="also write the results here (JSON)")
    args = parser.parse_args(argv)
    results = asyncio.run(run(args.sizes, args.calls))
    if args.out:
        args.out.write_text(json.dumps(results, indent=1) + "\n")
    return results


if __name__ == "__main__":
    main()
