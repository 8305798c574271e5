"""``python -m benchmarks.pathcpu``: CPU of single steps of the request path, in process, A/B alternating.

- listing: one 1000-entry ListObjectsV2 page in SeaweedFS's shape, rewritten by the tree path
  (defusedxml, ElementTree, before issue 21) and by the text path, raw and with ``encoding-type=url``;
- accounting: ``proxy.accounting.account`` for one GetObject (metrics, access log to /dev/null through
  the buffered handler, the audit entry to a sink that drops it);
- frontdoor: the request's way from aiohttp's server to the S3 entry, over loopback HTTP/1.1 keep-alive
  (4 KiB answers, one request at a time): the proxy's front door on the low-level server
  (``proxy.app.front_door``) against the structure before it, aiohttp's router (the same routes) and two
  middlewares (the in-flight gauge, then the same per-request work), both calling a stub instead of
  ``s3_entry`` (authorization and the node are not what is compared); and the floor, aiohttp's low-level
  server calling the stub alone (no gauge, request id, accounting). Measured as the server process's
  CPU (``/proc/PID/task/*/schedstat``, ns) per request, blocks alternating: minimum, median, and the
  median of the differences between neighbouring blocks.

CPU is this process's ``time.process_time()``, so another job on the machine slows it less than it
slows wall-clock figures (it still shares caches and cores: the minimum over blocks is reported).
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

PREFIX = "bench-root/ws-1a2b3c/"


def seaweedfs_page(n: int = 1000) -> bytes:
    entries = "".join(
        f"<Contents><Key>{PREFIX}list/k-{i:06d}</Key><LastModified>2026-12-06T06:{i % 60:02d}:00Z</LastModified>"
        f"<ETag>&#34;{i:032x}&#34;</ETag><Size>16</Size><Owner><ID>0</ID><DisplayName>admin</DisplayName></Owner>"
        f"<StorageClass>STANDARD</StorageClass></Contents>" for i in range(n))
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
            f"<Name>bench-bucket</Name><Prefix>{PREFIX}list/</Prefix><ContinuationToken></ContinuationToken>"
            f"<NextContinuationToken>{PREFIX}list/k-{n - 1:06d}</NextContinuationToken><KeyCount>{n}</KeyCount>"
            f"<MaxKeys>1000</MaxKeys><IsTruncated>true</IsTruncated>{entries}</ListBucketResult>").encode()


def _best(steps: dict[str, Callable[[], Any]], repeat: int, blocks: int = 7) -> dict[str, float]:
    """Microseconds of CPU per call of each step: the minimum over ``blocks`` blocks, steps alternating."""
    best = {name: float("inf") for name in steps}
    for step in steps.values():
        step()
    for _ in range(blocks):
        for name, step in steps.items():
            t0 = time.process_time()
            for _ in range(repeat):
                step()
            best[name] = min(best[name], (time.process_time() - t0) / repeat * 1e6)
    return {name: round(value, 1) for name, value in best.items()}


def listing() -> dict[str, float]:
    from foundation.secrets import SecretBox
    from policy.decide import ListingFilter
    from proxy.listing import ListingView, _stream_listing, _tree_listing
    body = seaweedfs_page()

    def view(url: bool) -> ListingView:
        return ListingView(operation="ListObjectsV2", workspace="ws", physical_prefix=PREFIX, owner="alice",
                           box=SecretBox(b"\x01" * 32), echo={"prefix": "list/"}, listing=ListingFilter(),
                           url_encoded=url)
    raw, url = view(False), view(True)
    assert _stream_listing(body, raw, False) is not None
    return _best({"tree_us": lambda: _tree_listing(body, raw, False),
                  "text_us": lambda: _stream_listing(body, raw, False),
                  "tree_url_us": lambda: _tree_listing(body, url, False),
                  "text_url_us": lambda: _stream_listing(body, url, False)}, repeat=5)


class _NullSink:
    """An event sink that drops what it is given (accounting's audit entries and index events)."""

    def emit(self, stream: str, fields: dict) -> None:
        pass


def _quiet_logging() -> None:
    """The proxy's logging set up as in production, the access log written to /dev/null."""
    from foundation.logs import configure_logging
    configure_logging(False)
    for handler in logging.getLogger("wio.access").handlers:
        handler.stream = open(os.devnull, "w")   # type: ignore[attr-defined]


def accounting() -> dict[str, float]:
    # multiprocess values, as in the proxy; their files in a temporary directory ("" put them in the cwd)
    os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="wio-pathcpu-"))
    from aiohttp.test_utils import make_mocked_request
    from proxy import accounting as acc
    _quiet_logging()

    class Caller:
        user, access_key_id = "alice", "WIOKEY"

    class Op:
        name = "GetObject"

    class Call:
        caller, op, bucket, key, decided_by, target = Caller(), Op(), "ws", "small/obj-1", "owner", None
        extra = {"bytes_out": 4096}

    request = make_mocked_request("GET", "/ws/small/obj-1", headers={"User-Agent": "bench"},
                                  match_info={"tail": "small/obj-1"})   # routed as an S3 request
    request["call"], request["request_id"] = Call(), "r1"
    sink = _NullSink()
    return _best({"account_us": lambda: acc.account(request, sink, 200, None, time.monotonic())},  # type: ignore[arg-type]
                 repeat=2000)


_FRONTDOOR_BODY = b"x" * 4096


def _frontdoor_server(ports: list[int], ready: Any) -> None:
    """The servers of ``frontdoor`` in one process (spawned): [front door, router + middlewares, bare]."""
    import asyncio
    import types
    from typing import cast

    import uvloop
    from aiohttp import web

    from foundation.settings import Settings
    from foundation.thirdparty import serve_without_router
    from proxy import app as front, cors
    from proxy.metrics import IN_FLIGHT
    from proxy.resources import SINK

    _quiet_logging()

    async def stub(request: web.Request) -> web.StreamResponse:
        return web.Response(body=_FRONTDOOR_BODY, headers={"ETag": '"0123456789abcdef0123456789abcdef"',
                                                           "Last-Modified": "Sun, 06 Dec 2026 09:00:00 GMT",
                                                           "Content-Type": "application/octet-stream"})

    front.s3_entry = stub   # type: ignore[assignment]
    settings = cast(Settings, types.SimpleNamespace(api_url="http://127.0.0.1:1"))

    def application(middlewares: list) -> web.Application:
        app = web.Application(middlewares=middlewares, client_max_size=0)
        app[SINK] = _NullSink()   # type: ignore[assignment]
        cors.install(app, settings)
        return app

    @web.middleware
    async def in_flight(request: web.Request, handler: Any) -> web.StreamResponse:
        IN_FLIGHT.inc()
        try:
            return await handler(request)
        finally:
            IN_FLIGHT.dec()

    @web.middleware
    async def s3_errors(request: web.Request, handler: Any) -> web.StreamResponse:
        return await front._serve(request, request.path)   # request id, dispatch, S3 errors, accounting

    async def main() -> None:
        runners = []
        direct = application([])
        routed = application([in_flight, s3_errors])
        routed.router.add_get("/_wio/health", stub)
        routed.router.add_get("/_wio/metrics", stub)
        routed.router.add_route("OPTIONS", "/{tail:.*}", stub)
        routed.router.add_route("*", "/{tail:.*}", stub)
        bare = application([])
        for app, port in zip((direct, routed, bare), ports, strict=True):
            runner = web.AppRunner(app, auto_decompress=False, access_log=None, handle_signals=False,
                                   handler_cancellation=True)
            await runner.setup()
            if app is direct:
                serve_without_router(runner, front.front_door(app))
            elif app is bare:
                serve_without_router(runner, stub)   # type: ignore[arg-type]
            await web.TCPSite(runner, "127.0.0.1", port).start()
            runners.append(runner)
        ready.set()
        await asyncio.Event().wait()

    uvloop.install()
    asyncio.run(main())


def _cpu_ns(pid: int) -> int:
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/schedstat") as f:
            total += int(f.read().split()[0])
    return total


def frontdoor(requests: int = 400, blocks: int = 31) -> dict[str, float]:
    import multiprocessing
    import socket
    import statistics

    from wio.dev.process import free_port

    ports = [free_port(), free_port(), free_port()]
    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Event()
    server = ctx.Process(target=_frontdoor_server, args=(ports, ready), daemon=True)
    server.start()
    try:
        if not ready.wait(30):
            raise RuntimeError("the front door servers did not start")
        assert server.pid is not None
        conns = [socket.create_connection(("127.0.0.1", port)) for port in ports]
        for conn in conns:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        req = (b"GET /ws/small/obj-1 HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: bench\r\n"
               b"X-Amz-Date: 20261206T090000Z\r\n\r\n")
        buf = bytearray(65536)

        def one(conn: socket.socket) -> None:
            conn.sendall(req)
            got = b""
            while b"\r\n\r\n" not in got:
                n = conn.recv_into(buf)
                if not n:
                    raise RuntimeError("the server closed the connection")
                got += bytes(buf[:n])
            head, _, rest = got.partition(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 200"):
                raise RuntimeError(head.decode(errors="replace"))
            length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            while len(rest) < length:
                n = conn.recv_into(buf)
                if not n:
                    raise RuntimeError("short body")
                rest += bytes(buf[:n])

        samples: dict[str, list[float]] = {"front_door_us": [], "router_middlewares_us": [], "bare_server_us": []}
        for conn in conns:
            for _ in range(200):
                one(conn)
        for _ in range(blocks):
            for name, conn in zip(samples, conns, strict=True):
                t0 = _cpu_ns(server.pid)
                for _ in range(requests):
                    one(conn)
                samples[name].append((_cpu_ns(server.pid) - t0) / requests / 1000)
        for conn in conns:
            conn.close()
    finally:
        server.kill()
        server.join()
    out = {f"{name}_min": round(min(v), 1) for name, v in samples.items()}
    out.update({f"{name}_median": round(statistics.median(v), 1) for name, v in samples.items()})
    # blocks alternate, so each pair ran under the same conditions: the robust figure is the paired difference
    out["router_minus_front_door_us_median"] = round(statistics.median(
        r - f for r, f in zip(samples["router_middlewares_us"], samples["front_door_us"], strict=True)), 1)
    out["front_door_minus_bare_us_median"] = round(statistics.median(
        f - b for f, b in zip(samples["front_door_us"], samples["bare_server_us"], strict=True)), 1)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.pathcpu", description=__doc__)
    parser.add_argument("--out", type=Path, default=None, help="write the figures to this JSON file")
    args = parser.parse_args(argv)
    figures = {"frontdoor_per_request": frontdoor(), "listing_1000_entries": listing(),
               "accounting_per_request": accounting(),
               "load_average": os.getloadavg(), "cpus": os.cpu_count()}
    text = json.dumps(figures, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
