"""The load generator: worker functions run in a pool of client processes, and the meters around them.

Each worker function runs in its own process (spawned once, reused), sets up its presigned
requests, then waits for a common wall-clock start so that all streams begin together. Workers
report their own CPU time so that every result says how much of the machine the client took:
on 2 cores the client competes with the node and the proxy, and a run is only meaningful when the
client is not the bottleneck (compare the client's cores with the machine's).
"""
from __future__ import annotations

import concurrent.futures
import multiprocessing
import re
import resource
import threading
import time
from dataclasses import dataclass, field

import psutil

from benchmarks.httpclient import BodyFile, Connection
from benchmarks.targets import Target

__all__ = ["LoadPool", "CpuMeter", "large_transfer", "small_ops", "list_walk", "populate", "percentile"]

_TOKEN = re.compile(rb"<NextContinuationToken>([^<]*)</NextContinuationToken>")
_KEYCOUNT = re.compile(rb"<Key>")


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _wait_until(start_at: float) -> None:
    delay = start_at - time.time()
    if delay > 0:
        time.sleep(delay)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


# ---------------------------------------------------------------------- worker functions (in client processes)

def large_transfer(target: Target, method: str, key: str, size: int, min_seconds: float, start_at: float,
                   body_path: str | None = None) -> dict:
    """One stream: PUT or GET ``key`` (``size`` bytes) whole, again and again until ``min_seconds`` passed."""
    conn = Connection(target.host, target.port)
    body_file = BodyFile(body_path) if method == "PUT" else None
    request_target = target.presign(method, key)
    cpu0 = _cpu_seconds()
    _wait_until(start_at)
    started = time.time()
    transfers, moved, status = 0, 0, 200
    try:
        while True:
            resp = conn.request(method, request_target, host=target.authority, body_file=body_file,
                                body_size=size if method == "PUT" else 0, keep_body=method != "GET")
            if resp.status != 200:
                status = resp.status
                raise RuntimeError(f"{target.name} {method} {key}: HTTP {resp.status} {resp.body[:300]!r}")
            if method == "GET" and resp.body_length != size:
                raise RuntimeError(f"{target.name} GET {key}: {resp.body_length} bytes, expected {size}")
            transfers += 1
            moved += size
            if time.time() - started >= min_seconds:
                break
    finally:
        conn.close()
        if body_file is not None:
            body_file.close()
    ended = time.time()
    return {"bytes": moved, "transfers": transfers, "start": started, "end": ended, "status": status,
            "cpu_seconds": _cpu_seconds() - cpu0}


def _small_thread(target: Target, method: str, keys: list[str], body: bytes | None, end_at_holder: list,
                  start_at: float, out: dict) -> None:
    conn = Connection(target.host, target.port, timeout=60)
    requests = [target.presign(method, k) for k in keys]
    latencies: list[float] = []
    errors: dict[int, int] = {}
    perf, i = time.perf_counter, 0
    _wait_until(start_at)
    end_at = end_at_holder[0]
    try:
        while time.time() < end_at:
            t0 = perf()
            resp = conn.request(method, requests[i % len(requests)], host=target.authority, body=body)
            latencies.append(perf() - t0)
            if resp.status != 200:
                errors[resp.status] = errors.get(resp.status, 0) + 1
                if len(out.setdefault("error_samples", [])) < 3:
                    out["error_samples"].append(resp.body[:300].decode("utf-8", "replace"))
            i += 1
    except Exception as exc:  # noqa: BLE001 - reported, never hidden
        out.setdefault("exceptions", []).append(repr(exc))
    finally:
        conn.close()
    out.setdefault("latencies", []).extend(latencies)
    for status, count in errors.items():
        out.setdefault("errors", {})[status] = out.get("errors", {}).get(status, 0) + count
    out["reconnects"] = out.get("reconnects", 0) + conn.reconnects


def small_ops(target: Target, method: str, keys_per_thread: list[list[str]], body_size: int, seconds: float,
              start_at: float) -> dict:
    """``len(keys_per_thread)`` keep-alive connections, each one request at a time, for ``seconds``."""
    body = bytes(range(256)) * (body_size // 256) + b"x" * (body_size % 256) if method == "PUT" else None
    out: dict = {}
    lock = threading.Lock()
    cpu0 = _cpu_seconds()
    end_holder = [start_at + seconds]
    threads = []
    for keys in keys_per_thread:
        part: dict = {}
        t = threading.Thread(target=_small_thread, args=(target, method, keys, body, end_holder, start_at, part))
        t.start()
        threads.append((t, part))
    for t, part in threads:
        t.join()
        with lock:
            out.setdefault("latencies", []).extend(part.get("latencies", []))
            for status, count in part.get("errors", {}).items():
                out.setdefault("errors", {})[status] = out.get("errors", {}).get(status, 0) + count
            out.setdefault("exceptions", []).extend(part.get("exceptions", []))
            out.setdefault("error_samples", []).extend(part.get("error_samples", []))
            out["reconnects"] = out.get("reconnects", 0) + part.get("reconnects", 0)
    out["start"], out["end"] = start_at, start_at + seconds
    out["cpu_seconds"] = _cpu_seconds() - cpu0
    return out


def _walk_thread(target: Target, list_prefix: str, max_keys: int, start_at: float, end_at: float, out: dict) -> None:
    conn = Connection(target.host, target.port, timeout=60)
    pages = keys = walks = 0
    token: str | None = None
    latencies: list[float] = []
    _wait_until(start_at)
    try:
        while time.time() < end_at:
            query = [("list-type", "2"), ("max-keys", str(max_keys)), ("prefix", target.prefix + list_prefix)]
            if token:
                query.append(("continuation-token", token))
            t0 = time.perf_counter()
            resp = conn.request("GET", target.presign("GET", None, query), host=target.authority)
            latencies.append(time.perf_counter() - t0)
            if resp.status != 200:
                raise RuntimeError(f"{target.name} LIST: HTTP {resp.status} {resp.body[:300]!r}")
            pages += 1
            keys += len(_KEYCOUNT.findall(resp.body))
            match = _TOKEN.search(resp.body)
            token = match.group(1).decode() if match else None
            if token is None:
                walks += 1
    except Exception as exc:  # noqa: BLE001 - reported
        out["exception"] = repr(exc)
    finally:
        conn.close()
    out.update(pages=pages, keys=keys, walks=walks, latencies=latencies)


def list_walk(target: Target, list_prefix: str, threads: int, seconds: float, start_at: float,
              max_keys: int = 1000) -> dict:
    """``threads`` clients, each walking the listing of ``list_prefix`` page by page, over and over."""
    cpu0 = _cpu_seconds()
    parts = [{} for _ in range(threads)]
    workers = [threading.Thread(target=_walk_thread, args=(target, list_prefix, max_keys, start_at,
                                                           start_at + seconds, part)) for part in parts]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    return {"pages": sum(p.get("pages", 0) for p in parts), "keys": sum(p.get("keys", 0) for p in parts),
            "walks": sum(p.get("walks", 0) for p in parts),
            "latencies": [x for p in parts for x in p.get("latencies", [])],
            "exceptions": [p["exception"] for p in parts if "exception" in p],
            "start": start_at, "end": start_at + seconds, "cpu_seconds": _cpu_seconds() - cpu0}


def _populate_thread(target: Target, keys: list[str], body: bytes, out: dict) -> None:
    conn = Connection(target.host, target.port, timeout=60)
    done = failed = 0
    try:
        for key in keys:
            resp = conn.request("PUT", target.presign("PUT", key), host=target.authority, body=body)
            if resp.status == 200:
                done += 1
            else:
                failed += 1
                out.setdefault("error_samples", []).append(resp.body[:200].decode("utf-8", "replace"))
    finally:
        conn.close()
    out.update(done=done, failed=failed)


def populate(target: Target, keys: list[str], body_size: int, threads: int) -> dict:
    """PUT every key once (small objects), ``threads`` connections at a time."""
    body = b"b" * body_size
    parts = [{} for _ in range(threads)]
    workers = [threading.Thread(target=_populate_thread, args=(target, keys[i::threads], body, parts[i]))
               for i in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    return {"done": sum(p.get("done", 0) for p in parts), "failed": sum(p.get("failed", 0) for p in parts),
            "error_samples": [s for p in parts for s in p.get("error_samples", [])][:3]}


def _noop() -> int:
    import signing  # noqa: F401 - warm the imports in every worker
    time.sleep(0.3)  # keep this worker busy so that the pool spawns all of them
    return 0


# ---------------------------------------------------------------------- orchestration (in the harness)

class LoadPool:
    """Client processes, spawned once (clean interpreters, no inherited sockets) and reused."""

    def __init__(self, processes: int = 8):
        self.processes = processes
        self.pool = concurrent.futures.ProcessPoolExecutor(max_workers=processes,
                                                           mp_context=multiprocessing.get_context("spawn"))
        for future in [self.pool.submit(_noop) for _ in range(processes)]:
            future.result()

    def run(self, calls: list[tuple], meter: "CpuMeter | None" = None,
            lead: float = 0.3) -> tuple[float, list[dict], dict]:
        """Run ``(fn, kwargs)`` calls at once in separate processes; they start together after ``lead`` s.

        Returns the common start time, each call's result and, with a meter, the cores each role used
        from the start until the last call returned.
        """
        if len(calls) > self.processes:
            raise ValueError(f"{len(calls)} concurrent calls but only {self.processes} client processes")
        start_at = time.time() + lead
        futures = [self.pool.submit(fn, start_at=start_at, **kwargs) for fn, kwargs in calls]
        if meter is not None:
            time.sleep(max(0.0, start_at - time.time()))
            meter.start()
        results = [f.result() for f in futures]
        return start_at, results, meter.stop() if meter is not None else {}

    def submit(self, fn, **kwargs) -> concurrent.futures.Future:
        return self.pool.submit(fn, **kwargs)

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


@dataclass
class CpuMeter:
    """CPU used by each role (node, proxy, nginx) and by the whole machine over a run, in cores."""

    roles: dict[str, list[int]]
    _start: dict[str, float] = field(default_factory=dict)
    _machine: object = None
    _wall: float = 0.0

    @staticmethod
    def _cpu(pids: list[int]) -> float:
        total = 0.0
        for pid in pids:
            try:
                t = psutil.Process(pid).cpu_times()
                total += t.user + t.system
            except psutil.Error:
                pass
        return total

    def start(self) -> None:
        self._start = {role: self._cpu(pids) for role, pids in self.roles.items()}
        self._machine = psutil.cpu_times()
        self._wall = time.monotonic()

    def stop(self) -> dict[str, float]:
        wall = max(1e-9, time.monotonic() - self._wall)
        out = {role: round((self._cpu(pids) - self._start[role]) / wall, 3) for role, pids in self.roles.items()}
        now = psutil.cpu_times()
        busy = sum(getattr(now, f) - getattr(self._machine, f) for f in ("user", "system", "nice", "irq", "softirq"))
        out["machine"] = round(busy / wall, 3)
        return out
