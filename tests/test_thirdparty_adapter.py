"""foundation/thirdparty.py, the one module that touches private attributes of aiohttp and prometheus-client:
each test fails when an upgrade renames or drops what the adapter relies on (run against the installed
versions, on real servers and real metric files)."""
from __future__ import annotations

import asyncio
import inspect
import os
import subprocess
import sys
import textwrap

from aiohttp import ClientSession, web
from prometheus_client import values as prometheus_values

from foundation.thirdparty import (CountingRequestHandler, new_counting_handler, replace_protocol_factory,
                                   use_multiprocess_process_identifier)
from wio.dev.process import free_port


async def test_aiohttp_server_has_the_attributes_the_adapter_reads():
    server = web.Server(lambda request: web.Response(), handler_cancellation=True, keepalive_timeout=5.0)
    assert server._loop is asyncio.get_running_loop()
    assert server._kwargs == {"keepalive_timeout": 5.0}
    handler = new_counting_handler(server)
    assert isinstance(handler, CountingRequestHandler) and isinstance(handler, web.RequestHandler)
    assert handler.completed_requests == 0 and handler.serving is False and handler.wio_reads == 0


async def test_replaced_protocol_factory_counts_requests_and_sees_one_being_served():
    """Through a real TCPSite: the runner's protocol factory is ours, and the per-connection counters
    follow two keep-alive requests, the second held open in the handler."""
    release = asyncio.Event()
    entered = asyncio.Event()

    async def handle(request: web.Request) -> web.Response:
        if request.path == "/hold":
            entered.set()
            await release.wait()
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    protocols: list[CountingRequestHandler] = []

    class Factory:
        def __init__(self, server: web.Server):
            self.server = server

        def __getattr__(self, name):
            return getattr(self.server, name)

        def __call__(self) -> CountingRequestHandler:
            protocols.append(new_counting_handler(self.server))
            return protocols[-1]

    replace_protocol_factory(runner, Factory)
    assert isinstance(runner.server, Factory)  # AppRunner.server reads the attribute we replaced
    port = free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        async with ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{port}/first") as resp:
                assert await resp.text() == "ok"
            assert len(protocols) == 1
            protocol = protocols[0]
            assert protocol.completed_requests == 1 and not protocol.serving and protocol.wio_reads >= 1
            held = asyncio.ensure_future(session.get(f"http://127.0.0.1:{port}/hold"))
            await asyncio.wait_for(entered.wait(), 10)
            assert len(protocols) == 1, "the second request should reuse the keep-alive connection"
            assert protocol.completed_requests == 2 and protocol.serving
            release.set()
            async with await held as resp:
                assert await resp.text() == "ok"
            assert not protocol.serving
    finally:
        await runner.cleanup()


def test_prometheus_multiprocess_value_class_takes_our_process_identifier(tmp_path):
    assert hasattr(prometheus_values, "ValueClass")
    assert "process_identifier" in inspect.signature(prometheus_values.MultiProcessValue).parameters
    assert callable(use_multiprocess_process_identifier)
    # In a fresh interpreter (the value class is process-wide): a counter made after the swap writes
    # its samples to the file of the identifier we gave, not of os.getpid().
    script = textwrap.dedent("""
        from foundation.thirdparty import use_multiprocess_process_identifier
        use_multiprocess_process_identifier(lambda: 424242)
        from prometheus_client import Counter
        Counter("wio_adapter_probe_total", "probe", ["x"]).labels("y").inc()
    """)
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    subprocess.run([sys.executable, "-c", script], env=env, check=True, timeout=60)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["counter_424242.db"]


async def test_served_without_router_requests_know_their_app_and_its_signals():
    """serve_without_router + app_match: the runner's server calls one handler (no router, no middleware),
    and the request it gets answers request.app and fires the app's on_response_prepare, as a routed one."""
    from foundation.thirdparty import app_match, serve_without_router

    app = web.Application()
    key = web.AppKey("key", str)
    app[key] = "value"
    prepared: list[str] = []

    async def on_prepare(request: web.Request, response: web.StreamResponse) -> None:
        prepared.append(request.path)
        response.headers["X-Prepared"] = "1"
    app.on_response_prepare.append(on_prepare)
    match = app_match(app)

    async def handle(raw: web.BaseRequest) -> web.StreamResponse:
        request = match.attach(raw, response_signals=raw.path != "/quiet")
        return web.Response(text=request.app[key])

    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    serve_without_router(runner, handle)
    assert runner.server is not None and runner.server.request_handler is handle
    port = free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        async with ClientSession() as session:
            for path in ("/a", "/b/c"):
                async with session.get(f"http://127.0.0.1:{port}{path}") as resp:
                    assert resp.status == 200 and await resp.text() == "value"
                    assert resp.headers["X-Prepared"] == "1"
            async with session.get(f"http://127.0.0.1:{port}/quiet") as resp:   # the app, without its signals
                assert resp.status == 200 and await resp.text() == "value" and "X-Prepared" not in resp.headers
        assert prepared == ["/a", "/b/c"]
    finally:
        await runner.cleanup()
