"""``python -m benchmarks run``: every figure of docs/design.md "Targets", direct vs nginx vs wio, in one run.

Each measurement runs once per path per round, the order of the paths rotating from round to round
and reversed every other round (direct, nginx, wio; then direct, wio, nginx; then wio, direct, nginx;
...), so that two neighbours do not always run in the same order, and the median over rounds is reported with
every raw run kept in results.json. All paths address the same physical objects: the workspace's
prefix on the node, reached directly, through nginx, or as the workspace through wio.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

import psutil

from benchmarks import report
from benchmarks.decision import measure_decisions, measure_stages
from benchmarks.httpclient import Connection
from benchmarks.load import CpuMeter, LoadPool, large_transfer, list_walk, percentile, populate, small_ops
from benchmarks.nginx import INSTALL_HINT, Nginx, find_nginx
from benchmarks.stack import BenchStack, NodeCredentials, Provisioned, free_port
from benchmarks.targets import PATH_NAMES, Target

__all__ = ["Plan", "QUICK", "FULL", "run_benchmarks", "environment", "Environment"]

MiB = 1 << 20
GiB = 1 << 30


@dataclass(frozen=True)
class Plan:
    mode: str
    rounds: int
    large_size: int                 # single-stream object
    huge_size: int | None           # an extra single-stream size (2 GiB in full mode)
    multi_streams: int
    multi_size: int                 # per stream, for the multi-stream runs
    put_min_seconds: float          # each stream repeats whole transfers until this much time passed
    get_min_seconds: float
    small_size: int
    small_seconds: float
    small_keys: int
    small_processes: int            # client processes for concurrency > 1
    list_keys: int
    list_concurrency: tuple[int, ...]
    list_seconds: float
    decision_seconds: float
    revocation_trials: int
    revocation_workers: int
    rss_size: int


QUICK = Plan(mode="quick", rounds=2, large_size=64 * MiB, huge_size=None, multi_streams=8, multi_size=8 * MiB,
             put_min_seconds=0.0, get_min_seconds=1.0, small_size=4096, small_seconds=1.5, small_keys=64,
             small_processes=2, list_keys=10_000, list_concurrency=(1,), list_seconds=2.0, decision_seconds=1.0,
             revocation_trials=100, revocation_workers=4, rss_size=256 * MiB)
FULL = Plan(mode="full", rounds=3, large_size=256 * MiB, huge_size=2 * GiB, multi_streams=8, multi_size=256 * MiB,
            put_min_seconds=3.0, get_min_seconds=4.0, small_size=4096, small_seconds=5.0, small_keys=256,
            small_processes=2, list_keys=10_000, list_concurrency=(1, 4), list_seconds=5.0, decision_seconds=3.0,
            revocation_trials=1000, revocation_workers=4, rss_size=2 * GiB)


BASE_PATH = "wio-base"   # --ab REF: a second wio proxy running the code of REF, on the same stack


def _proxy_role(path: str) -> str | None:
    """The CPU meter's role for the proxy behind ``path`` (None: not a wio proxy)."""
    return "proxy" if path == "wio" else path if path == BASE_PATH else None


def _median(values: list[float]) -> float | None:
    values = [v for v in values if v is not None]
    return round(statistics.median(values), 3) if values else None


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a is not None and b else None


def _client_and_other(cores: dict, client: float) -> None:
    """Add the client's cores, and the cores that none of the measured processes used ("other"):
    a busy machine (other jobs) shows up there and makes a run noisy."""
    cores["client"] = round(client, 3)
    ours = sum(v for k, v in cores.items() if k != "machine")
    cores["other"] = round(max(0.0, cores["machine"] - ours), 3)


def _git() -> dict:
    def out(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], capture_output=True, text=True, timeout=10,
                                  cwd=Path(__file__).resolve().parent.parent).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""
    dirty = [line[3:] for line in out("status", "--porcelain").splitlines()]
    return {"commit": out("rev-parse", "HEAD"), "dirty_files": len(dirty),
            "dirty_code": sorted(p for p in dirty if p.split("/", 1)[0] in ("proxy", "signing", "policy", "wio"))}


@contextlib.contextmanager
def _output_to(path: Path):
    """Send fds 1 and 2 (ours and those of children started meanwhile) to ``path``."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(path, "ab") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
    try:
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        os.close(saved[0])
        os.close(saved[1])


class Runner:
    def __init__(self, plan: Plan, stack: BenchStack, prov: Provisioned, targets: dict[str, Target],
                 pool: LoadPool, nginx: Nginx | None, workdir: Path, log, hops: dict | None = None):
        self.plan, self.stack, self.prov, self.targets = plan, stack, prov, targets
        self.pool, self.nginx, self.workdir, self.log = pool, nginx, workdir, log
        self.paths = [p for p in PATH_NAMES if p in targets]
        self.all_paths = self.paths + [p for p in targets if p not in PATH_NAMES]   # + reference hops
        self.hops = hops or {}
        self.body_path = str(workdir / "body.bin")
        self._make_body_file(64 * MiB)
        self.proxy_pids = stack.proxy_pids()
        self.node_pids = stack.node_pids()
        self.valkey_pids = stack.valkey_pids()

    def _make_body_file(self, size: int) -> None:
        with open(self.body_path, "wb") as f:
            for _ in range(size // MiB):
                f.write(os.urandom(MiB))

    def meter(self) -> CpuMeter:
        roles = {"node": self.node_pids, "proxy": self.proxy_pids, "valkey": self.valkey_pids}
        if self.nginx is not None:
            roles["nginx"] = self.nginx.pids()
        for name, proc in self.hops.items():
            try:
                main = psutil.Process(proc.pid)
                roles[name] = [main.pid, *(c.pid for c in main.children(recursive=True))]
            except psutil.Error:
                roles[name] = []
        return CpuMeter(roles)

    def alternate(self, measure, paths: list[str] | None = None) -> dict[str, list[dict]]:
        paths = paths or self.paths
        runs: dict[str, list[dict]] = {p: [] for p in paths}
        for r in range(self.plan.rounds):
            order = paths[r % len(paths):] + paths[:r % len(paths)]
            if r % 2:   # a rotation alone keeps neighbours in one order (wio always ran just before wio-base)
                order.reverse()
            for path in order:
                runs[path].append(measure(self.targets[path]))
        return runs

    # ------------------------------------------------------------------ large objects
    def large(self, op: str, size: int, streams: int) -> dict:
        keys = [f"large/{size}-s{i}" for i in range(streams)]
        min_seconds = self.plan.put_min_seconds if op == "PUT" else self.plan.get_min_seconds

        def measure(target: Target) -> dict:
            calls = [(large_transfer, dict(target=target, method=op, key=k, size=size, min_seconds=min_seconds,
                                           body_path=self.body_path)) for k in keys]
            start, results, cpu = self.pool.run(calls, self.meter())
            seconds = max(r["end"] for r in results) - start
            moved = sum(r["bytes"] for r in results)
            _client_and_other(cpu, sum(r["cpu_seconds"] for r in results) / seconds)
            return {"mib_s": round(moved / MiB / seconds, 1), "bytes": moved, "seconds": round(seconds, 3),
                    "transfers": sum(r["transfers"] for r in results), "cores": cpu}

        self.log(f"large {op} {size // MiB} MiB x {streams} stream(s)")
        runs = self.alternate(measure, self.all_paths)
        return self._summary({"op": op, "size": size, "streams": streams}, runs, "mib_s")

    # ------------------------------------------------------------------ small objects
    def small(self, op: str, concurrency: int) -> dict:
        if op == "GET":
            names = [f"small/obj-{i:05d}" for i in range(self.plan.small_keys)]
            per_thread = [names[i::concurrency] or names for i in range(concurrency)]
        else:
            per_thread = [[f"small/put-{t:03d}-{j}" for j in range(8)] for t in range(concurrency)]
        processes = 1 if concurrency == 1 else min(self.plan.small_processes, concurrency)

        def measure(target: Target) -> dict:
            calls = [(small_ops, dict(target=target, method=op, keys_per_thread=per_thread[p::processes],
                                      body_size=self.plan.small_size, seconds=self.plan.small_seconds))
                     for p in range(processes)]
            start, results, cpu = self.pool.run(calls, self.meter())
            latencies = [x for r in results for x in r.get("latencies", [])]
            errors: dict = {}
            for r in results:
                for status, count in r.get("errors", {}).items():
                    errors[str(status)] = errors.get(str(status), 0) + count
            seconds = self.plan.small_seconds
            _client_and_other(cpu, sum(r["cpu_seconds"] for r in results) / seconds)
            ops = len(latencies)
            out = {"ops_s": round(ops / seconds, 1), "ops": ops, "p50_ms": round(percentile(latencies, 50) * 1e3, 3),
                   "p99_ms": round(percentile(latencies, 99) * 1e3, 3), "errors": errors, "cores": cpu}
            exceptions = [e for r in results for e in r.get("exceptions", [])]
            samples = [e for r in results for e in r.get("error_samples", [])]
            if exceptions or samples:
                out["problems"] = (exceptions + samples)[:3]
            role = _proxy_role(target.name)
            if role and ops:
                out["proxy_cpu_us_per_op"] = round(cpu.get(role, 0) * seconds / ops * 1e6, 1)
            return out

        self.log(f"small {op} {self.plan.small_size} B at concurrency {concurrency}")
        runs = self.alternate(measure, self.all_paths)
        summary = self._summary({"op": op, "size": self.plan.small_size, "concurrency": concurrency}, runs, "ops_s")
        for path, path_runs in runs.items():
            summary["paths"][path]["p50_ms"] = _median([r["p50_ms"] for r in path_runs])
            summary["paths"][path]["p99_ms"] = _median([r["p99_ms"] for r in path_runs])
        p50 = {p: summary["paths"][p]["p50_ms"] for p in runs}
        if "wio" in p50 and "direct" in p50:
            summary["added_p50_ms"] = {"wio": round(p50["wio"] - p50["direct"], 3)}
            if "nginx" in p50:
                summary["added_p50_ms"]["nginx"] = round(p50["nginx"] - p50["direct"], 3)
        return summary

    def populate_small(self) -> None:
        names = [f"small/obj-{i:05d}" for i in range(self.plan.small_keys)]
        result = populate(self.targets["direct"], names, self.plan.small_size, 8)
        if result["failed"]:
            raise RuntimeError(f"could not upload the small objects: {result}")

    # ------------------------------------------------------------------ listing
    def start_list_population(self) -> None:
        """Upload the listing's keys in the background (4 client processes), e.g. during the revocation
        trials, which count denials and take no timings that this could disturb."""
        self.log(f"LIST: uploading {self.plan.list_keys} keys in the background")
        names = [f"list/k-{i:06d}" for i in range(self.plan.list_keys)]
        self._population_started = time.monotonic()
        self._population = [self.pool.submit(populate, target=self.targets["direct"], keys=names[p::4],
                                             body_size=16, threads=8) for p in range(4)]

    def listing(self) -> list[dict]:
        if getattr(self, "_population", None) is None:
            self.start_list_population()
        results = [f.result() for f in self._population]
        failed = sum(r["failed"] for r in results)
        if failed:
            raise RuntimeError(f"{failed} listing keys failed to upload: {results[0]['error_samples']}")
        populate_seconds = time.monotonic() - self._population_started
        out = []
        for concurrency in self.plan.list_concurrency:
            def measure(target: Target) -> dict:
                start, results, cpu = self.pool.run([(list_walk, dict(
                    target=target, list_prefix="list/", threads=concurrency, seconds=self.plan.list_seconds))],
                    self.meter())
                r = results[0]
                if r["exceptions"]:
                    raise RuntimeError(f"{target.name} LIST failed: {r['exceptions'][0]}")
                _client_and_other(cpu, r["cpu_seconds"] / self.plan.list_seconds)
                out = {"pages_s": round(r["pages"] / self.plan.list_seconds, 2),
                       "keys_s": round(r["keys"] / self.plan.list_seconds, 1), "pages": r["pages"],
                       "walks": r["walks"], "p50_page_ms": round(percentile(r["latencies"], 50) * 1e3, 2),
                       "cores": cpu}
                role = _proxy_role(target.name)
                if role and r["pages"]:
                    out["proxy_cpu_us_per_page"] = round(cpu.get(role, 0) * self.plan.list_seconds / r["pages"] * 1e6)
                return out
            self.log(f"LIST {self.plan.list_keys} keys, 1000 per page, concurrency {concurrency}")
            runs = self.alternate(measure, self.paths + [p for p in self.all_paths if p == BASE_PATH])
            summary = self._summary({"keys": self.plan.list_keys, "page_size": 1000, "concurrency": concurrency,
                                     "populate_seconds": round(populate_seconds, 1)}, runs, "pages_s")
            out.append(summary)
        return out

    # ------------------------------------------------------------------ decision
    def decision(self) -> dict:
        self.log("authorization decision (no I/O)")
        out = {}
        for kind in ("header", "presigned"):
            out[kind] = self.pool.submit(measure_decisions, seconds=self.plan.decision_seconds, kind=kind).result()
        out["stages_us"] = self.pool.submit(measure_stages, seconds=0.3, kind="header").result()
        out["decisions_per_second_per_core"] = out["header"]["decisions_per_second"]
        return out

    # ------------------------------------------------------------------ revocation
    def revocation(self) -> dict:
        plan, prov = self.plan, self.prov
        proc = None
        if self.stack.attached:
            url = self.stack.s3_url
            workers = len(self.stack.proxy_pids(url)) or None   # what the running stack has
        else:
            url, proc = self.stack.start_extra_proxy(plan.revocation_workers)
            workers = plan.revocation_workers
        self.log(f"revocation: {plan.revocation_trials} trials on a proxy with {workers or '?'} workers")
        try:
            direct = self.targets["direct"]
            populate(direct, ["revocation/object"], 1024, 1)
            wio = prov.target("wio", url)
            grantee = wio.with_name("grantee", access_key=prov.grantee.key["access_key_id"],
                                    secret_key=prov.grantee.key["secret_access_key"],
                                    session_token=prov.grantee.key.get("session_token"))
            conns = [Connection(wio.host, wio.port, timeout=30) for _ in range(8)]
            for c in conns:
                c._connect()
            served_by = self._serving_pids(conns, wio.port)
            owner_api, ws = prov.owner.api, prov.workspace
            allowed = denied = other_before = 0
            after_statuses: dict[str, int] = {}
            api_seconds = []
            t0 = time.monotonic()
            for i in range(plan.revocation_trials):
                a = time.monotonic()
                share = owner_api.call("POST", f"/workspaces/{ws}/shares",
                                       {"user": prov.grantee.name, "permission": "read"})
                api_seconds.append(time.monotonic() - a)
                before = conns[i % 8].request("GET", grantee.presign("GET", "revocation/object"), host=wio.authority)
                if before.status == 200:
                    allowed += 1
                else:
                    other_before += 1
                a = time.monotonic()
                owner_api.call("DELETE", f"/workspaces/{ws}/shares/{share['id']}")
                api_seconds.append(time.monotonic() - a)
                # The first request after the revocation, on another connection (and so, mostly, another
                # worker); every third trial on a brand-new connection.
                if i % 3 == 2:
                    fresh = Connection(wio.host, wio.port, timeout=30)
                    after = fresh.request("GET", grantee.presign("GET", "revocation/object"), host=wio.authority)
                    fresh.close()
                else:
                    after = conns[(i + 3) % 8].request("GET", grantee.presign("GET", "revocation/object"),
                                                       host=wio.authority)
                after_statuses[str(after.status)] = after_statuses.get(str(after.status), 0) + 1
                if after.status == 403:
                    denied += 1
            elapsed = time.monotonic() - t0
            for c in conns:
                c.close()
        finally:
            if proc is not None:
                self.stack.stop_process(proc)
        trials = plan.revocation_trials
        return {"trials": trials, "proxy_workers": workers, "workers_reached_by_pooled_connections": served_by,
                "allowed_before_revocation": allowed, "not_allowed_before_revocation": other_before,
                "denied_after_revocation": denied, "fraction_denied": round(denied / trials, 4),
                "statuses_after_revocation": after_statuses, "seconds": round(elapsed, 1),
                "api_call_p50_ms": round(percentile(api_seconds, 50) * 1e3, 2)}

    @staticmethod
    def _serving_pids(conns: list[Connection], port: int) -> int:
        """How many distinct server processes hold the other ends of ``conns``."""
        local_ports = {c.sock.getsockname()[1] for c in conns if c.sock is not None}
        pids = {c.pid for c in psutil.net_connections("tcp")
                if c.laddr and c.laddr.port == port and c.raddr and c.raddr.port in local_ports and c.pid}
        return len(pids)

    # ------------------------------------------------------------------ quota
    def quota(self) -> dict:
        prov = self.prov
        qws = f"{prov.workspace}-q"
        prov.owner.api.call("POST", "/workspaces", {"name": qws})
        status, data = prov.owner.api.request("PUT", f"/workspaces/{qws}/quota",
                                              {"max_bytes": 1 << 40, "max_objects": 10_000_000})
        if status in (404, 405):
            return {"available": False, "note": "PUT /api/v1/workspaces/{name}/quota is not available"}
        if status >= 300:
            return {"available": False, "note": f"setting a quota failed: HTTP {status} {data}"}
        self.log("quota: 4 KiB PUT with and without a workspace quota")
        wio = self.targets["wio"]
        quota_target = wio.with_name("wio-quota", bucket=qws)
        out: dict = {"available": True}
        for concurrency in (1, 32):
            per_thread = [[f"small/put-{t:03d}-{j}" for j in range(8)] for t in range(concurrency)]
            processes = 1 if concurrency == 1 else self.plan.small_processes
            figures: dict[str, list] = {"wio": [], "wio-quota": []}
            for r in range(self.plan.rounds):
                for target in ((wio, quota_target) if r % 2 == 0 else (quota_target, wio)):
                    calls = [(small_ops, dict(target=target, method="PUT", keys_per_thread=per_thread[p::processes],
                                              body_size=self.plan.small_size, seconds=self.plan.small_seconds))
                             for p in range(processes)]
                    _, results, _ = self.pool.run(calls)
                    lat = [x for res in results for x in res.get("latencies", [])]
                    figures[target.name].append({"ops_s": round(len(lat) / self.plan.small_seconds, 1),
                                                 "p50_ms": round(percentile(lat, 50) * 1e3, 3)})
            out[f"c{concurrency}"] = {
                name: {"ops_s": _median([f["ops_s"] for f in runs]), "p50_ms": _median([f["p50_ms"] for f in runs]),
                       "runs": runs} for name, runs in figures.items()}
        out["reservation_us"] = self._reservation_cost()
        out["accounting_us"] = self._accounting_cost()
        out["note"] = ("every wio write reserves and settles (quota or not), so 'wio' already pays for the "
                       "reservation; 'wio-quota' adds the limit checks; reservation_us is reserve+settle alone; "
                       "accounting_us is all the ledger's Redis work for one PUT (key lock, recorded reservation, "
                       "settle with unlock: three script calls) and one DELETE (key lock, zero reservation, settle "
                       "of what it freed with unlock)")
        return out

    def _accounting_cost(self, n: int = 1000) -> dict[str, float] | None:
        """Microseconds of the ledger's work per PUT and per DELETE (proxy.quota.Quotas, one client)."""
        if not self.stack.redis_url:
            return None
        from policy.decide import WorkspaceView
        from proxy.quota import Quotas
        from foundation.resp import RespClient

        async def go() -> dict[str, float]:
            redis = RespClient(self.stack.redis_url)
            try:
                quotas = Quotas(redis)
                ws = WorkspaceView(f"bench-ledger-{secrets.token_hex(3)}", "local", "b", "p/", "nobody", False,
                                   "private")
                await redis.execute("HSET", f"wio:use:w:{ws.name}", "known", "1")

                async def put(key: str) -> None:   # as proxy/objects.py: the settlement releases the lock
                    async with quotas.exclusive(ws, [key]) as lock, quotas.reserved(ws, 4096, 1) as res:
                        await quotas.settle(res, 4096, 1, unlock=lock)

                async def delete(key: str) -> None:
                    async with quotas.exclusive(ws, [key]) as lock, quotas.reserved(ws, 0, 0) as res:
                        await quotas.settle(res, -4096, -1, unlock=lock)

                async def put_separate_unlock(key: str) -> None:   # before issue 21: four script calls
                    async with quotas.exclusive(ws, [key]), quotas.reserved(ws, 4096, 1) as res:
                        await quotas.settle(res, 4096, 1)

                figures: dict[str, float] = {}
                steps = (("put_us", put), ("delete_us", delete), ("put_separate_unlock_us", put_separate_unlock))
                for _, step in steps:
                    for i in range(50):
                        await step(f"warm-{i}")
                # A/B in blocks of 100, alternating, wall and this process's CPU per step
                wall: dict[str, float] = {name: 0.0 for name, _ in steps}
                cpu: dict[str, float] = {name: 0.0 for name, _ in steps}
                server: dict[str, float] = {name: 0.0 for name, _ in steps}
                for block in range(n // 100):
                    for name, step in steps:
                        w0, c0, v0 = time.perf_counter(), time.process_time(), CpuMeter._cpu(self.valkey_pids)
                        for i in range(100):
                            await step(f"{name}-{block}-{i}")
                        wall[name] += time.perf_counter() - w0
                        cpu[name] += time.process_time() - c0
                        server[name] += CpuMeter._cpu(self.valkey_pids) - v0
                done = (n // 100) * 100
                for name, _ in steps:
                    figures[name] = round(wall[name] / done * 1e6, 1)
                    figures[name.replace("_us", "_client_cpu_us")] = round(cpu[name] / done * 1e6, 1)
                    figures[name.replace("_us", "_valkey_cpu_us")] = round(server[name] / done * 1e6, 1)
                return figures
            finally:
                await redis.close()
        return asyncio.run(go())

    def _reservation_cost(self, n: int = 2000) -> float | None:
        """Microseconds for one reserve + settle pair (proxy.quota.Quotas against this Valkey), one client."""
        if not self.stack.redis_url:
            return None
        try:
            from policy.decide import WorkspaceView
            from proxy.quota import Quotas
            from foundation.resp import RespClient
        except ImportError:
            return None

        async def go() -> float:
            redis = RespClient(self.stack.redis_url)
            try:
                quotas = Quotas(redis)
                ws = WorkspaceView(f"bench-quota-{secrets.token_hex(3)}", "local", "b", "p/", "nobody", False,
                                   "private")
                await redis.execute("HSET", f"wio:use:w:{ws.name}", "known", "1")   # a new workspace: usage known
                for _ in range(50):
                    await quotas.settle(await quotas.reserve(ws, 4096, 1), 4096, 1)
                t0 = time.perf_counter()
                for _ in range(n):
                    await quotas.settle(await quotas.reserve(ws, 4096, 1), 4096, 1)
                return (time.perf_counter() - t0) / n * 1e6
            finally:
                await redis.close()
        return round(asyncio.run(go()), 1)

    # ------------------------------------------------------------------ memory
    def rss(self) -> dict:
        size, wio = self.plan.rss_size, self.targets["wio"]
        pids = self.stack.proxy_pids()
        self.log(f"proxy RSS while {size // MiB} MiB streams through (PUT then GET)")

        def total_rss() -> int:
            total = 0
            for pid in pids:
                try:
                    total += psutil.Process(pid).memory_info().rss
                except psutil.Error:
                    pass
            return total

        out = {"object_bytes": size, "proxy_pids": len(pids)}
        for op in ("PUT", "GET"):
            samples: list[int] = []
            stop = threading.Event()

            def sample() -> None:
                while not stop.is_set():
                    samples.append(total_rss())
                    stop.wait(0.1)
            baseline = total_rss()
            thread = threading.Thread(target=sample, daemon=True)
            thread.start()
            try:
                _, results, _ = self.pool.run([(large_transfer, dict(target=wio, method=op, key="rss/object", size=size,
                                                                     min_seconds=0, body_path=self.body_path))])
            finally:
                stop.set()
                thread.join()
            r = results[0]
            peak = max(samples + [baseline])
            out[op] = {"baseline_mib": round(baseline / MiB, 1), "peak_mib": round(peak / MiB, 1),
                       "growth_mib": round((peak - baseline) / MiB, 1), "samples": len(samples),
                       "mib_s": round(r["bytes"] / MiB / (r["end"] - r["start"]), 1)}
        out["growth_mib"] = max(out["PUT"]["growth_mib"], out["GET"]["growth_mib"])
        return out

    # ------------------------------------------------------------------ helpers
    def _summary(self, head: dict, runs: dict[str, list[dict]], figure: str) -> dict:
        paths = {}
        for path, path_runs in runs.items():
            paths[path] = {figure: _median([r[figure] for r in path_runs]), "runs": path_runs,
                           "cores": {k: _median([r["cores"].get(k) for r in path_runs])
                                     for k in path_runs[0]["cores"]}}
        out = {**head, "figure": figure, "paths": paths}
        value = {p: paths[p][figure] for p in paths}
        out["ratios"] = {"wio/direct": _ratio(value.get("wio"), value.get("direct")),
                         "wio/nginx": _ratio(value.get("wio"), value.get("nginx")),
                         "nginx/direct": _ratio(value.get("nginx"), value.get("direct"))}
        for path in paths:
            if path not in PATH_NAMES:
                out["ratios"][f"{path}/direct"] = _ratio(value.get(path), value.get("direct"))
        return out


@dataclass
class Environment:
    stack: BenchStack
    prov: Provisioned
    targets: dict[str, Target]
    pool: LoadPool
    nginx: Nginx | None
    workdir: Path
    hops: dict[str, subprocess.Popen]


def _start_hop(kind: str, upstream: str, workers: int, log_path: Path) -> tuple[int, subprocess.Popen]:
    import socket
    port = free_port()
    with open(log_path, "ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "benchmarks.hops", kind, "--port", str(port), "--upstream",
                                 upstream, "--workers", str(workers)], stdout=log, stderr=log, start_new_session=True)
    deadline = time.monotonic() + 20
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"the {kind} hop exited with code {proc.returncode} (see {log_path})")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            time.sleep(0.5)   # let every worker start listening
            return port, proc
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the {kind} hop did not listen on {port}") from None
            time.sleep(0.1)


def _start_base_proxy(stack: BenchStack, ref: str, workers: int, workdir: Path, log) -> tuple[str, subprocess.Popen]:
    """``wio serve proxy`` from the code of git ``ref`` (exported with git archive: the repository is not
    touched) on the same stack, settings and workers as the proxy under test: the A side of an A/B."""
    if stack.attached:
        raise RuntimeError("--ab needs the benchmark's own stack (it starts a second proxy on it)")
    from wio.dev.stack import wait_http
    repo = Path(__file__).resolve().parent.parent
    base = workdir / "base"
    base.mkdir()
    archive = subprocess.run(["git", "archive", ref], cwd=repo, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(base)], input=archive, check=True)
    commit = subprocess.run(["git", "rev-parse", "--short", ref], cwd=repo, capture_output=True, text=True).stdout
    log(f"A/B: {BASE_PATH} runs {ref} ({commit.strip()}), wio runs the working tree")
    port = free_port()
    env = {**os.environ, **stack.settings.with_(proxy_port=port).to_env(), "PYTHONPATH": str(base)}
    with open(workdir / "services.log", "ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "wio", "serve", "proxy", "--workers", str(workers)],
                                cwd=base, env=env, start_new_session=True, stdout=out, stderr=out)
    url = f"http://127.0.0.1:{port}"
    wait_http(url + "/_wio/health", 60, proc)
    return url, proc


def _stop_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(10)
    except (OSError, subprocess.TimeoutExpired):
        with contextlib.suppress(OSError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@contextlib.contextmanager
def environment(*, proxy_workers: int, api_url: str | None, s3_url: str | None, admin_password: str | None,
                node: NodeCredentials | None, keep: bool = False, with_nginx: bool = True,
                reference_hops: bool = False, ab_ref: str | None = None, log=print):
    """A stack (own or attached), an account and workspace, nginx, and the client pool; torn down after."""
    workdir = Path(tempfile.mkdtemp(prefix="wio-bench-"))
    stack = BenchStack(workdir, proxy_workers=proxy_workers, api_url=api_url, s3_url=s3_url,
                       admin_password=admin_password, node=node, log=log)
    nginx = pool = None
    hops: dict[str, subprocess.Popen] = {}
    try:
        with _output_to(workdir / "services.log"):
            stack.start()
        prov = stack.provision()
        targets = {"direct": prov.target("direct", prov.node.endpoint)}
        binary = find_nginx() if with_nginx else None
        if with_nginx and binary is None:
            log(INSTALL_HINT)
        elif binary is not None:
            port = free_port()
            node_host = prov.node.endpoint.split("://", 1)[-1].rstrip("/")
            nginx = Nginx(binary, workdir / "nginx", port, node_host, workers=proxy_workers)
            nginx.start()
            targets["nginx"] = prov.target("nginx", f"http://127.0.0.1:{port}")
        targets["wio"] = prov.target("wio", stack.s3_url)
        if reference_hops:
            node_host = prov.node.endpoint.split("://", 1)[-1].rstrip("/")
            for kind in ("aiohttp", "splice"):
                port, hops[f"{kind}-hop"] = _start_hop(kind, node_host, proxy_workers, workdir / "services.log")
                targets[f"{kind}-hop"] = prov.target(f"{kind}-hop", f"http://127.0.0.1:{port}")
        if ab_ref:
            url, hops[BASE_PATH] = _start_base_proxy(stack, ab_ref, proxy_workers, workdir, log)
            targets[BASE_PATH] = prov.target(BASE_PATH, url)
        pool = LoadPool(processes=8)
        yield Environment(stack, prov, targets, pool, nginx, workdir, hops)
    finally:
        for proc in hops.values():
            _stop_group(proc)
        if pool is not None:
            pool.close()
        if nginx is not None:
            nginx.stop()
        stack.stop()
        if keep:
            log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def run_benchmarks(*, quick: bool, out_dir: Path, proxy_workers: int = 2, api_url: str | None = None,
                   s3_url: str | None = None, admin_password: str | None = None,
                   node: NodeCredentials | None = None, only: set[str] | None = None, keep: bool = False,
                   reference_hops: bool = False, ab_ref: str | None = None, log=print) -> dict:
    plan = QUICK if quick else FULL
    started = time.monotonic()
    out_dir.mkdir(parents=True, exist_ok=True)
    want = (lambda name: only is None or name in only)
    results: dict = {"meta": {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "mode": plan.mode,
        "cores": os.cpu_count(), "memory_gib": round(psutil.virtual_memory().total / GiB, 1),
        "machine": f"{platform.system()} {platform.release()} {platform.machine()}",
        "python": platform.python_version(), "git": _git(), "proxy_workers": proxy_workers,
        "stack": "attached" if api_url else "own (wio.dev + wio serve)", "plan": asdict(plan),
        "method": "presigned requests over keep-alive from a raw-socket client (benchmarks/httpclient.py) in "
                  "several processes; paths alternate each round; figures are medians over rounds",
    }}
    results["meta"]["ab_ref"] = ab_ref
    with environment(proxy_workers=proxy_workers, api_url=api_url, s3_url=s3_url, admin_password=admin_password,
                     node=node, keep=keep, reference_hops=reference_hops, ab_ref=ab_ref, log=log) as env:
        stack = env.stack
        results["meta"]["nginx"] = env.nginx.version() if env.nginx else None
        runner = Runner(plan, stack, env.prov, env.targets, env.pool, env.nginx, env.workdir, log, env.hops)
        results["meta"]["paths"] = list(env.targets)
        results["meta"]["pids"] = {"proxy": runner.proxy_pids, "node": runner.node_pids, "valkey": runner.valkey_pids}

        def section(name: str, measure) -> None:
            if not want(name):
                return
            t0 = time.monotonic()
            results[name] = measure()
            results["meta"].setdefault("section_seconds", {})[name] = round(time.monotonic() - t0, 1)
            if not stack.proxy_pids():
                raise RuntimeError(f"the proxy stopped listening during '{name}' (see {env.workdir}/services.log)")

        def large() -> list[dict]:
            out = []
            for size in [plan.large_size] + ([plan.huge_size] if plan.huge_size else []):
                out.append(runner.large("PUT", size, 1))
                out.append(runner.large("GET", size, 1))
            out.append(runner.large("PUT", plan.multi_size, plan.multi_streams))
            out.append(runner.large("GET", plan.multi_size, plan.multi_streams))
            return out

        def small() -> list[dict]:
            runner.populate_small()
            return [runner.small(op, c) for op in ("GET", "PUT") for c in (1, 32)]

        section("decision", runner.decision)
        section("large", large)
        section("small", small)
        if want("list"):
            runner.start_list_population()
        section("revocation", runner.revocation)
        section("list", runner.listing)
        section("quota", runner.quota)
        section("rss", runner.rss)
    results["meta"]["seconds"] = round(time.monotonic() - started, 1)
    results["targets"] = report.check_targets(results)
    (out_dir / "results.json").write_text(json.dumps(results, indent=2))
    table = report.table(results)
    (out_dir / "table.md").write_text(table + "\n")
    charts = report.charts(results, out_dir)
    log(table)
    log(charts)
    return results
