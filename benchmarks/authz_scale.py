"""Does the authorization round trip grow with the size of the permission model? (issue 5, invariant 7)

Fills a Valkey with the projection of a large organisation (users, workspaces, shares) and times the
proxy's own ``Authorizer.load`` (the one-round-trip Lua script plus decoding and effective grants)
for a caller with a handful of shares, with 100 shares in Redis and with 1 000 000.

    python -m benchmarks.authz_scale [--shares 100 1000000] [--calls 5000]

Prints p50/p99 in microseconds per size. Starts and stops its own Valkey in a temporary directory.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path

from redis.asyncio import Redis

from proxy.authz import Authorizer
from foundation.resp import RespClient
from foundation.secrets import SecretBox
from wio.dev.valkey import start_valkey

__all__ = ["fill", "measure", "main"]

SHARES_PER_WORKSPACE = 10


async def fill(redis: Redis, box: SecretBox, shares: int) -> None:
    """``shares`` shares over shares/10 workspaces, one user per share; plus the caller, 'probe'."""
    await redis.flushdb()
    secret = box.seal("probe-secret")
    node_secret = box.seal("node-secret")
    await redis.hset("wio:meta", mapping={"built": "0", "verified": (await redis.info("server"))["run_id"]})
    await redis.hset("wio:n:node", mapping={"endpoint": "http://127.0.0.1:1", "region": "us-east-1",
                                           "access": "a", "secret": node_secret})
    await redis.hset("wio:k:PROBE", mapping={"user": "probe", "secret": secret, "expires": "0", "token": "",
                                            "scope": ""})
    await redis.hset("wio:u:probe", mapping={"disabled": "0", "admin": "0", "groups": "g1,g2,g3"})
    workspaces = max(1, shares // SHARES_PER_WORKSPACE)
    batch = 2000
    for start in range(0, workspaces, batch):
        async with redis.pipeline(transaction=False) as pipe:
            for w in range(start, min(start + batch, workspaces)):
                pipe.hset(f"wio:w:ws{w}", mapping={"node": "node", "bucket": "b", "prefix": f"o/ws{w}/",
                                                   "owner": f"user{w}", "public": "0", "root": "r"})
                fields = {f"u:user{w * SHARES_PER_WORKSPACE + i}": json.dumps([["read", "", 0, w * 10 + i]])
                          for i in range(SHARES_PER_WORKSPACE)}
                pipe.hset(f"wio:s:ws{w}", mapping=fields)
            await pipe.execute()
    # the probe's own grants: a direct share and two group shares on ws0
    await redis.hset("wio:s:ws0", mapping={"u:probe": json.dumps([["write", "in/", 0, 1]]),
                                           "g:g1": json.dumps([["read", "", 0, 2]]),
                                           "g:g2": json.dumps([["read", "docs/", 0, 3]])})


async def measure(client: RespClient, box: SecretBox, calls: int) -> tuple[float, float]:
    authz = Authorizer(client, box)
    for _ in range(200):
        await authz.load("PROBE", None, ["ws0"])
    samples = []
    for _ in range(calls):
        t0 = time.perf_counter()
        caller, targets = await authz.load("PROBE", None, ["ws0"])
        samples.append(time.perf_counter() - t0)
    assert caller.user == "probe" and len(targets[0].grants) == 3
    samples.sort()
    return statistics.median(samples) * 1e6, samples[int(len(samples) * 0.99)] * 1e6


async def run(sizes: list[int], calls: int) -> list[dict]:
    box = SecretBox(b"\x01" * 32)
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        valkey = start_valkey(Path(tmp), persist=False)
        try:
            redis = Redis.from_url(valkey.url, decode_responses=True)
            for size in sizes:
                t0 = time.monotonic()
                await fill(redis, box, size)
                filled = time.monotonic() - t0
                keys = await redis.dbsize()
                client = RespClient(valkey.url)
                p50, p99 = await measure(client, box, calls)
                await client.close()
                out.append({"shares": size, "redis_keys": keys, "fill_seconds": round(filled, 1),
                            "p50_us": round(p50, 1), "p99_us": round(p99, 1)})
                print(f"{size:>9} shares ({keys} keys, filled in {filled:.1f}s): "
                      f"p50 {p50:.1f} us  p99 {p99:.1f} us")
            await redis.aclose()
        finally:
            valkey.stop()
    return out


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shares", type=int, nargs="+", default=[100, 1_000_000])
    parser.add_argument("--calls", type=int, default=5000)
    args = parser.parse_args(argv)
    return asyncio.run(run(args.shares, args.calls))


if __name__ == "__main__":
    main()
