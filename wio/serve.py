"""Running the aiohttp apps: one process or N worker processes sharing a port (SO_REUSEPORT).

Graceful shutdown: on SIGTERM/SIGINT a worker stops accepting, lets in-flight requests finish up to
``shutdown_timeout`` seconds, then closes its resources (cleanup_ctx in reverse order).
"""
from __future__ import annotations

import asyncio
import logging
import multiprocessing
import multiprocessing.connection
import signal
import ssl
from typing import Callable

from aiohttp import web

from foundation.logs import configure_logging, flush_logs
from foundation.metrics import MetricsDir
from foundation.settings import Settings
from foundation.thirdparty import (CountingRequestHandler, new_counting_handler, replace_protocol_factory,
                                   serve_without_router)

__all__ = ["serve", "ssl_context"]


async def _flush_logs_every(seconds: float) -> None:
    while True:
        await asyncio.sleep(seconds)
        flush_logs()


def ssl_context(cert: str | None, key: str | None) -> ssl.SSLContext | None:
    if not cert:
        return None
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    return ctx


HEADER_TIMEOUT = 10.0     # a connection must deliver each request's headers within about this long
KEEPALIVE_TIMEOUT = 75.0  # idle keep-alive connections are closed after this (aiohttp's default, like nginx)


class _SlowHeaderGuard:
    """Wraps aiohttp's protocol factory to cut off slowloris connections; aiohttp has no header timeout.

    Each connection is looked at every half ``timeout``. It is closed after a whole ``timeout`` in
    which it was not serving a request and no request arrived complete, when either it never
    completed one (a fresh connection must send its first request's headers in time) or bytes of a
    next request have been arriving. A silent kept-alive connection is left to the keep-alive timeout:
    closing it early would race the clients that reuse it.
    """

    def __init__(self, server, timeout: float):
        self._server, self._timeout = server, timeout

    def __getattr__(self, name):
        return getattr(self._server, name)

    def __call__(self):
        protocol = new_counting_handler(self._server)
        asyncio.get_running_loop().call_later(self._timeout / 2, self._check, protocol, 0, 0, 0)
        return protocol

    def _check(self, protocol: CountingRequestHandler, seen: int, reads_then: int, quiet: int) -> None:
        transport = protocol.transport
        if transport is None or transport.is_closing():
            return
        count = protocol.completed_requests
        if count != seen or protocol.serving:
            quiet, reads_then = 0, protocol.wio_reads
        elif count == 0 or protocol.wio_reads != reads_then:
            quiet += 1
        else:
            quiet = 0
        if quiet >= 2:
            transport.close()
            return
        asyncio.get_running_loop().call_later(self._timeout / 2, self._check, protocol, count, reads_then, quiet)


def _app_factory(kind: str) -> Callable[[Settings], web.Application]:
    if kind == "api":
        from admin_api.app import create_app
    elif kind == "proxy":
        from proxy.app import create_app
    else:
        raise ValueError(kind)
    return create_app


async def _serve_one(kind: str, settings: Settings, host: str, port: int, reuse_port: bool,
                     cert: str | None, key: str | None, shutdown_timeout: float) -> None:
    app = _app_factory(kind)(settings)
    runner = web.AppRunner(app, auto_decompress=False, access_log=None, handle_signals=False,
                           keepalive_timeout=KEEPALIVE_TIMEOUT,
                           shutdown_timeout=shutdown_timeout, handler_cancellation=True)
    await runner.setup()
    if kind == "proxy":   # S3 on aiohttp's low-level server: one handler, no router, no middleware chain
        from proxy.app import front_door
        serve_without_router(runner, front_door(app))
    # aiohttp has no header timeout of its own
    replace_protocol_factory(runner, lambda server: _SlowHeaderGuard(server, HEADER_TIMEOUT))
    try:
        site = web.TCPSite(runner, host, port, reuse_port=reuse_port, ssl_context=ssl_context(cert, key),
                           backlog=1024)
        await site.start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        logging.getLogger("wio").info("%s listening on %s:%s", kind, host, port)
        flusher = loop.create_task(_flush_logs_every(0.5))
        await stop.wait()
        flusher.cancel()
    finally:
        await runner.cleanup()
        flush_logs()


def _run_worker(kind: str, settings: Settings, host: str, port: int, reuse_port: bool, cert, key,
                shutdown_timeout: float) -> None:
    configure_logging(settings.log_json)
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    asyncio.run(_serve_one(kind, settings, host, port, reuse_port, cert, key, shutdown_timeout))


def serve(kind: str, settings: Settings, *, workers: int = 1, cert: str | None = None, key: str | None = None,
          shutdown_timeout: float = 30.0) -> None:
    """Serve ``kind`` ("api" or "proxy") until SIGTERM/SIGINT; N>1 workers share the port."""
    host, port = (settings.api_host, settings.api_port) if kind == "api" else (settings.proxy_host, settings.proxy_port)
    metrics_dir = MetricsDir.prepare(kind, workers)  # before the app modules create their series
    if workers <= 1:
        _run_worker(kind, settings, host, port, False, cert, key, shutdown_timeout)
        return
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_run_worker, args=(kind, settings, host, port, True, cert, key, shutdown_timeout),
                         name=f"wio-{kind}-{i}") for i in range(workers)]
    for p in procs:
        p.start()

    def forward(signum, _frame):
        for p in procs:
            if p.is_alive():
                p.terminate()
    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    pending = {p.sentinel: p for p in procs}
    while pending:
        for sentinel in multiprocessing.connection.wait(list(pending)):
            proc = pending.pop(sentinel)
            proc.join()
            metrics_dir.mark_dead(proc.pid)
    metrics_dir.close()
