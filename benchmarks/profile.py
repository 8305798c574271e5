"""``python -m benchmarks profile``: where the proxy's CPU goes, under the loads that miss their targets.

For each load (large GET, small GET at concurrency 32, ...) the load runs through wio while py-spy
samples every proxy worker (``py-spy record --nonblocking``; with ``--native`` the C frames of uvloop,
aiohttp's parser, hashlib … too, at the price of pausing the worker at each sample). The raw stacks
are kept (``{load}-{pid}.txt``, the collapsed format that flamegraph.pl, inferno and speedscope
read) and summarised in ``profile.json`` and ``profile.md``:

- busy: the share of the worker's wall time spent on CPU (samples / (rate x seconds)); near 1.0 the
  worker is CPU-bound, well under it the wait is elsewhere (node, Redis, client, other processes);
- self: leaf functions, where the CPU actually is;
- inclusive: functions anywhere on the stack (the request path's steps: authorize, relay, ...);
- areas: leaf frames grouped by package (aiohttp, uvloop, signing, redis, logging, ...).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from collections import Counter
from pathlib import Path

from benchmarks.load import large_transfer, populate, small_ops
from benchmarks.stack import NodeCredentials

__all__ = ["profile_proxy", "summarise_collapsed", "yappi_worker"]

MiB = 1 << 20
RATE = 200
_REPO = str(Path(__file__).resolve().parent.parent) + "/"

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^():]*?)(?::(?P<line>\d+))?\)$")
_AREAS = [
    ("signing", "/signing/"), ("proxy", "/proxy/"), ("policy", "/policy/"), ("wio", "/wio/"),
    ("aiohttp", "aiohttp"), ("multidict", "multidict"), ("yarl", "yarl"), ("redis", "redis"),
    ("uvloop", "uvloop"), ("asyncio", "asyncio/"), ("logging", "logging/"), ("json", "json/"),
    ("botocore", "botocore"), ("hashlib/hmac", "hmac"), ("xml", "xml"), ("urllib", "urllib/"),
    ("datetime", "datetime"), ("dataclasses", "dataclasses"),
    ("kernel/libc", "libc"), ("python", "libpython"), ("python", "python3"),
]


def _area(frame: str) -> str:
    match = _FRAME.match(frame)
    where = (match.group("file") if match else frame) or frame
    for name, needle in _AREAS:
        if needle in where:
            return name
    if where.endswith(".so") or ".so." in where:
        return "native:" + os.path.basename(where).split(".")[0]
    return "other:" + os.path.basename(where)


def _short(frame: str) -> str:
    match = _FRAME.match(frame)
    if not match:
        return frame
    path = match.group("file") or ""
    for marker in ("site-packages/", _REPO, "lib/python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{match.group('func')} ({path})"


def summarise_collapsed(lines: list[str], seconds: float, rate: int = RATE, top: int = 25) -> dict:
    """Summarise py-spy ``--format raw`` output (``frame;frame;... count`` per line)."""
    total = 0
    leaf: Counter = Counter()
    inclusive: Counter = Counter()
    areas: Counter = Counter()
    for line in lines:
        line = line.rstrip("\n")
        if not line:
            continue
        stack, _, count_text = line.rpartition(" ")
        try:
            count = int(count_text)
        except ValueError:
            continue
        frames = [f for f in stack.split(";") if f]
        # Thread names come first in py-spy's raw output ("process 1234:..." / "thread (0x...)"); skip them.
        frames = [f for f in frames if not f.startswith(("process ", "thread ("))]
        if not frames:
            continue
        total += count
        leaf[_short(frames[-1])] += count
        areas[_area(frames[-1])] += count
        for name in {_short(f) for f in frames}:
            inclusive[name] += count
    share = (lambda n: round(n / total, 4) if total else 0.0)
    return {
        "samples": total, "busy": round(total / (rate * seconds), 3) if seconds else None,
        "self": [(name, share(n)) for name, n in leaf.most_common(top)],
        "inclusive": [(name, share(n)) for name, n in inclusive.most_common(top + 15)],
        "areas": [(name, share(n)) for name, n in areas.most_common()],
    }


def _record(pid: int, seconds: float, out: Path, native: bool) -> subprocess.Popen:
    cmd = ["py-spy", "record", "--pid", str(pid), "--duration", str(int(round(seconds))), "--rate", str(RATE),
           "--format", "raw", "-o", str(out)]
    # --native needs py-spy to pause the process at each sample (it perturbs what it measures);
    # without it py-spy reads the Python stacks without stopping the worker.
    cmd.append("--native" if native else "--nonblocking")
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def yappi_worker(settings, port: int, warmup: float, seconds: float, out: str, ready) -> None:
    """One proxy worker (``proxy.app.create_app``) in this process, profiled by yappi on the CPU clock.

    CPU time per function is what sampling cannot give on a busy 2-core machine: a sampled worker that
    is runnable but waiting for a core (typically right after a write woke the node) looks busy.
    """
    import asyncio

    import uvloop
    import yappi
    from aiohttp import web

    from foundation.thirdparty import serve_without_router
    from proxy.app import create_app, front_door

    async def main() -> None:
        app = create_app(settings.with_(proxy_port=port))
        runner = web.AppRunner(app, auto_decompress=False, access_log=None, handle_signals=False)
        await runner.setup()
        serve_without_router(runner, front_door(app))   # as wio serve proxy
        await web.TCPSite(runner, "127.0.0.1", port, backlog=1024).start()
        ready.set()
        await asyncio.sleep(warmup)
        yappi.set_clock_type("cpu")
        yappi.start()
        await asyncio.sleep(seconds)
        yappi.stop()
        rows = [(st.ttot, st.tsub, st.ncall, _short(f"{st.name} ({st.module}:{st.lineno})"))
                for st in yappi.get_func_stats()]
        Path(out).write_text(json.dumps(rows))
        await runner.cleanup()

    uvloop.install()
    asyncio.run(main())


def _yappi_profile(env, load: str, seconds: float, out_dir: Path) -> dict:
    import multiprocessing

    from benchmarks.stack import free_port
    ctx = multiprocessing.get_context("spawn")
    port, ready = free_port(), ctx.Event()
    out = out_dir / f"{load}-yappi.json"
    warmup = 1.0
    proc = ctx.Process(target=yappi_worker, args=(env.stack.settings, port, warmup, seconds, str(out), ready))
    proc.start()
    try:
        if not ready.wait(60):
            raise RuntimeError("the yappi worker did not start")
        wio = env.targets["wio"].with_name("wio", port=port)
        _, results, _ = env.pool.run(_load_calls(load, env, seconds + warmup + 0.5, wio))
        proc.join(120)
    finally:
        if proc.is_alive():
            proc.kill()
    rows = json.loads(out.read_text())
    handled = [r for r in rows if r[3].startswith("RequestHandler._handle_request")]
    requests = handled[0][2] if handled else 0
    total = sum(r[1] for r in rows)   # every function's own time: all the CPU the worker's thread used
    per_request = round(total / requests * 1e6) if requests else None
    return {"cpu_seconds": round(total, 3), "requests": requests, "cpu_us_per_request_under_yappi": per_request,
            "self": [(r[3], round(r[1] / total, 4), r[2]) for r in sorted(rows, key=lambda r: -r[1])[:30]],
            "inclusive": [(r[3], round(r[0] / total, 4), r[2]) for r in sorted(rows, key=lambda r: -r[0])[:45]]}


def _load_calls(load: str, env, seconds: float, wio=None) -> list[tuple]:
    wio = wio or env.targets["wio"]
    if load == "large-get":
        return [(large_transfer, dict(target=wio, method="GET", key="profile/large", size=256 * MiB,
                                      min_seconds=seconds, body_path=str(env.workdir / "body.bin")))]
    if load == "large-put":
        return [(large_transfer, dict(target=wio, method="PUT", key="profile/large-put", size=256 * MiB,
                                      min_seconds=seconds, body_path=str(env.workdir / "body.bin")))]
    method = "GET" if load == "small-get" else "PUT"
    names = [f"profile/small-{i:03d}" for i in range(64)]
    per_thread = [names[i::32] for i in range(32)] if method == "GET" else \
        [[f"profile/put-{t}-{j}" for j in range(4)] for t in range(32)]
    return [(small_ops, dict(target=wio, method=method, keys_per_thread=per_thread[p::2], body_size=4096,
                             seconds=seconds)) for p in range(2)]


def profile_proxy(*, out_dir: Path, seconds: float, loads: list[str], proxy_workers: int = 2, native: bool = False,
                  cpu_clock: bool = False,
                  api_url: str | None = None, s3_url: str | None = None, admin_password: str | None = None,
                  node: NodeCredentials | None = None, log=print) -> dict:
    from benchmarks.run import environment

    if shutil.which("py-spy") is None:
        raise SystemExit("py-spy is not installed: pip install py-spy")
    out_dir.mkdir(parents=True, exist_ok=True)
    summary: dict = {"seconds": seconds, "rate": RATE, "proxy_workers": proxy_workers, "native": native,
                     "loads": {}}
    with environment(proxy_workers=proxy_workers, api_url=api_url, s3_url=s3_url, admin_password=admin_password,
                     node=node, with_nginx=False, log=log) as env:
        body = env.workdir / "body.bin"
        with open(body, "wb") as f:
            for _ in range(64):
                f.write(os.urandom(MiB))
        direct = env.targets["direct"]
        log("uploading the objects to profile with")
        env.pool.run([(large_transfer, dict(target=direct, method="PUT", key="profile/large", size=256 * MiB,
                                            min_seconds=0, body_path=str(body)))])
        populate(direct, [f"profile/small-{i:03d}" for i in range(64)], 4096, 8)
        pids = env.stack.proxy_pids()
        for load in loads:
            log(f"profiling the proxy ({len(pids)} workers) under {load} for {seconds:.0f}s")
            recorders = [(pid, _record(pid, seconds, out_dir / f"{load}-{pid}.txt", native)) for pid in pids]
            time.sleep(0.5)
            t0 = time.monotonic()
            _, results, _ = env.pool.run(_load_calls(load, env, seconds + 1.0))
            elapsed = time.monotonic() - t0
            errors = []
            for pid, proc in recorders:
                _, err = proc.communicate(timeout=seconds + 60)
                if proc.returncode:
                    errors.append(f"py-spy on {pid}: {err.decode(errors='replace')[-300:]}")
            if results and "bytes" in results[0]:
                moved = sum(r["bytes"] for r in results)
                throughput = {"mib_s": round(moved / MiB / elapsed, 1)}
            else:
                ops = sum(len(r.get("latencies", [])) for r in results)
                throughput = {"ops_s": round(ops / (seconds + 1.0), 1)}
            per_worker = {}
            for pid in pids:
                raw = out_dir / f"{load}-{pid}.txt"
                if raw.exists():
                    per_worker[str(pid)] = summarise_collapsed(raw.read_text().splitlines(), seconds)
            merged_lines = [line for pid in pids if (out_dir / f"{load}-{pid}.txt").exists()
                            for line in (out_dir / f"{load}-{pid}.txt").read_text().splitlines()]
            merged = summarise_collapsed(merged_lines, seconds * max(1, len(pids)))
            summary["loads"][load] = {"throughput": throughput, "all_workers": merged,
                                      "busy_per_worker": {p: w["busy"] for p, w in per_worker.items()},
                                      "errors": errors}
            if cpu_clock:
                log(f"profiling one proxy worker under {load} with yappi (CPU clock)")
                summary["loads"][load]["yappi"] = _yappi_profile(env, load, seconds, out_dir)
    (out_dir / "profile.json").write_text(json.dumps(summary, indent=2))
    text = _markdown(summary)
    (out_dir / "profile.md").write_text(text)
    log(text)
    return summary


def _markdown(summary: dict) -> str:
    lines = [f"# proxy profile (py-spy, {summary['rate']} Hz, {summary['seconds']:.0f} s per load, "
             f"{summary['proxy_workers']} workers)", ""]
    for load, data in summary["loads"].items():
        merged = data["all_workers"]
        lines += [f"## {load}: {data['throughput']}", "",
                  f"busy per worker (share of wall time on CPU): {data['busy_per_worker']}", ""]
        if data["errors"]:
            lines += ["errors: " + "; ".join(data["errors"]), ""]
        lines += ["areas (leaf frame by package): " + ", ".join(f"{a} {s:.0%}" for a, s in merged["areas"][:14]), "",
                  "| self (leaf) | share |", "|---|---|"]
        lines += [f"| `{name}` | {share:.1%} |" for name, share in merged["self"][:20]]
        lines += ["", "| inclusive | share |", "|---|---|"]
        lines += [f"| `{name}` | {share:.1%} |" for name, share in merged["inclusive"][:35]]
        lines.append("")
        cpu = data.get("yappi")
        if cpu:
            lines += [f"### {load}, one worker under yappi (CPU clock): {cpu['requests']} requests, "
                      f"{cpu['cpu_us_per_request_under_yappi']} us CPU per request (profiler overhead included)", "",
                      "| self (CPU) | share | calls |", "|---|---|---|"]
            lines += [f"| `{name}` | {share:.1%} | {n} |" for name, share, n in cpu["self"][:25]]
            lines += ["", "| inclusive (CPU) | share | calls |", "|---|---|---|"]
            lines += [f"| `{name}` | {share:.1%} | {n} |" for name, share, n in cpu["inclusive"][:40]]
            lines.append("")
    return "\n".join(lines)
