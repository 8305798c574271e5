"""Micro-benchmark: the request path's Redis script call, redis-py (asyncio, hiredis) vs foundation.resp.

One process, uvloop, an embedded Valkey holding one key, one user and one workspace (as
authorize.lua reads them). ``--concurrency`` tasks each run EVALSHA of authorize.lua back to back;
reports calls/s and this process's CPU time per call (what the proxy pays). With the embedded Valkey,
also Valkey's own CPU per call (from /proc), for the script and for a bare PING: what one round trip
costs the server whatever the script does (on this VM mostly the socket system calls, so it falls when
concurrent calls share a read).

    python -m benchmarks.resp_client --calls 20000 --concurrency 1 16 64
"""
from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path

import uvloop
from redis.asyncio import Redis

from foundation.resp import RespClient
from policy.scripts import lua
from wio.dev.valkey import start_valkey

SOURCE = lua("authorize.lua")
ARGS = ["", "AKBENCH", "wsbench"]  # the server's run_id is filled in by fill()


async def fill(url: str) -> None:
    redis = Redis.from_url(url, decode_responses=True)
    ARGS[0] = (await redis.info("server"))["run_id"]
    await redis.hset("wio:meta", mapping={"verified": ARGS[0]})
    await redis.hset("wio:k:AKBENCH", mapping={"user": "bench", "secret": "x" * 60, "expires": "0", "token": "",
                                               "scope": ""})
    await redis.hset("wio:u:bench", mapping={"disabled": "0", "admin": "0", "groups": "g1,g2"})
    await redis.hset("wio:w:wsbench", mapping={"node": "n", "bucket": "b", "prefix": "o/wsbench/",
                                               "owner": "bench", "public": "0", "root": "r"})
    await redis.hset("wio:n:n", mapping={"endpoint": "http://127.0.0.1:1", "region": "us-east-1",
                                         "access": "a", "secret": "y" * 60})
    await redis.hset("wio:s:wsbench", mapping={"u:bench": '[["write", "", 0, 1]]', "g:g1": '[["read", "", 0, 2]]'})
    await redis.aclose()


def _cpu_seconds(pid: int | None) -> float:
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def server_cpu(call, calls: int, concurrency: int, pid: int) -> float:
    """Valkey's CPU microseconds per ``call()`` at ``concurrency``."""
    async def worker() -> None:
        for _ in range(calls // concurrency):
            await call()
    before = _cpu_seconds(pid)
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return (_cpu_seconds(pid) - before) / (calls // concurrency * concurrency) * 1e6


async def measure(script, calls: int, concurrency: int) -> tuple[float, float]:
    per_task = calls // concurrency

    async def worker():
        for _ in range(per_task):
            await script(args=ARGS)
    await asyncio.gather(*(worker() for _ in range(concurrency)))  # warm up (connections, script cache)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    done = per_task * concurrency
    return done / wall, cpu / done * 1e6


async def run(url: str, calls: int, levels: list[int], rounds: int, valkey_pid: int | None = None) -> list[dict]:
    await fill(url)
    rp = Redis.from_url(url, decode_responses=True)
    lean = RespClient(url)
    a, b = rp.register_script(SOURCE), lean.register_script(SOURCE)
    assert await a(args=ARGS) == await b(args=ARGS)
    out = []
    for concurrency in levels:
        best = {}
        for _ in range(rounds):  # interleaved; keep each client's best round
            for name, script in (("redis-py", a), ("foundation.resp", b)):
                rate, cpu = await measure(script, calls, concurrency)
                if name not in best or cpu < best[name][1]:
                    best[name] = (rate, cpu)
        (r_rate, r_cpu), (l_rate, l_cpu) = best["redis-py"], best["foundation.resp"]
        row = {"concurrency": concurrency, "redis_py_calls_s": round(r_rate), "redis_py_cpu_us": round(r_cpu, 1),
               "resp_calls_s": round(l_rate), "resp_cpu_us": round(l_cpu, 1),
               "cpu_saved": f"{(1 - l_cpu / r_cpu) * 100:.0f}%", "throughput_x": round(l_rate / r_rate, 2)}
        if valkey_pid is not None:
            row["valkey_us_per_script"] = round(await server_cpu(lambda: b(args=ARGS), calls, concurrency,
                                                                 valkey_pid), 1)
            row["valkey_us_per_ping"] = round(await server_cpu(lean.ping, calls, concurrency, valkey_pid), 1)
        out.append(row)
        print(f"concurrency {concurrency:>3}: redis-py {r_rate:>8.0f} calls/s {r_cpu:6.1f} us CPU/call | "
              f"foundation.resp {l_rate:>8.0f} calls/s {l_cpu:6.1f} us CPU/call | "
              f"CPU -{row['cpu_saved']}, throughput x{row['throughput_x']}"
              + (f" | Valkey {row['valkey_us_per_script']} us/script, {row['valkey_us_per_ping']} us/PING"
                 if valkey_pid is not None else ""))
    await rp.aclose()
    await lean.close()
    return out


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16, 64])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--redis-url", help="an existing Redis/Valkey (default: start an embedded Valkey)")
    args = parser.parse_args(argv)
    if args.redis_url:
        return uvloop.run(run(args.redis_url, args.calls, args.concurrency, args.rounds))
    with tempfile.TemporaryDirectory() as tmp:
        valkey = start_valkey(Path(tmp), persist=False)
        try:
            return uvloop.run(run(valkey.url, args.calls, args.concurrency, args.rounds, valkey.pid))
        finally:
            valkey.stop()


if __name__ == "__main__":
    main()
