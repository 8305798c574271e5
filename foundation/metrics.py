"""Prometheus metrics: the admin API's series, exposition, and multiprocess mode for N workers.

With several worker processes (``wio serve proxy --workers N``) a scrape lands on one worker
chosen by the kernel, so every worker must answer for all of them. prometheus-client's
multiprocess mode does that: each process writes its samples to memory-mapped files in
``PROMETHEUS_MULTIPROC_DIR`` and the exposition sums the files. ``serve()`` prepares the directory
before any worker starts (``MetricsDir.prepare``): the operator's directory when the variable is
set (one sub-directory per component, emptied at start), else a fresh temporary one for this run
when N > 1. A single worker without the variable keeps the faster in-memory values.

prometheus-client reads ``PROMETHEUS_MULTIPROC_DIR`` itself, and picks its value storage when it
is imported, which is why this variable (not a ``WIO_*`` one) is read here and not in
``foundation.settings``, and why this module defines only labelled metrics: a labelled metric writes no
file until it is used, so importing this module before the directory is set up is harmless.

The proxy's series live in ``proxy/metrics.py``.
"""
from __future__ import annotations

import asyncio
import glob
import os
import shutil
import tempfile
import time
from dataclasses import dataclass

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client import multiprocess

from foundation.thirdparty import use_multiprocess_process_identifier

__all__ = ["MULTIPROC_ENV", "LATENCY_BUCKETS", "MetricsDir", "render_metrics", "metrics_response",
           "api_metrics_middleware", "API_REQUESTS", "API_SECONDS", "AUDIT_STORED", "AUDIT_STORE_ERRORS",
           "AUDIT_QUARANTINED", "STREAM_DROPPED"]

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

# prometheus-client's multiprocess values call os.getpid() on every update to notice a fork: a system
# call each time, five per proxied request. The process id is cached here instead (and refreshed in
# a forked child), which keeps the rule those values need: distinct ids for concurrent processes.
# Only labelled metrics exist at this point (none has a value yet), so swapping the class is safe
# (foundation/thirdparty.py: no public way to do it).
_pid = [os.getpid()]
os.register_at_fork(after_in_child=lambda: _pid.__setitem__(0, os.getpid()))
if os.environ.get(MULTIPROC_ENV):
    use_multiprocess_process_identifier(lambda: _pid[0])

# Seconds. Fine at the low end, where the proxy's added latency (target: < 1 ms) lives.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
                   60.0, 120.0)

API_REQUESTS = Counter("wio_api_requests_total", "Admin API requests answered, by route and HTTP status",
                       ["method", "route", "status"])
API_SECONDS = Histogram("wio_api_request_duration_seconds", "Admin API request latency, by route",
                        ["method", "route"], buckets=LATENCY_BUCKETS)
AUDIT_STORED = Counter("wio_audit_entries_stored_total", "Audit entries written to the durable audit store",
                       ["store"])
AUDIT_STORE_ERRORS = Counter("wio_audit_store_errors_total",
                             "Failed attempts to write a batch of audit entries (retried)", ["store"])
AUDIT_QUARANTINED = Counter("wio_audit_entries_quarantined_total",
                            "Audit entries the store refused, moved to the dead-letter stream", ["store"])
STREAM_DROPPED = Counter("wio_stream_entries_dropped_total",
                         "Stream entries (audit, index events) the event sink dropped: queue full or Redis refused",
                         ["reason"])


@dataclass
class MetricsDir:
    """The multiprocess directory of one ``wio serve`` run (``path`` None: in-memory, one process)."""
    path: str | None = None
    owned: bool = False  # a temporary directory made for this run, removed by close()

    @classmethod
    def prepare(cls, kind: str, workers: int) -> "MetricsDir":
        """Call before any worker starts: they inherit the variable this sets."""
        base = os.environ.get(MULTIPROC_ENV)
        if base:
            # One sub-directory per component, so an api and a proxy given the same directory on
            # one host neither mix their series nor delete each other's files at start.
            path = os.path.join(base, kind)
            os.makedirs(path, exist_ok=True)
            for stale in glob.glob(os.path.join(path, "*.db")):
                os.remove(stale)
            out = cls(path, owned=False)
        elif workers > 1:
            out = cls(tempfile.mkdtemp(prefix=f"wio-{kind}-metrics-"), owned=True)
        else:
            return cls()
        os.environ[MULTIPROC_ENV] = out.path
        return out

    def mark_dead(self, pid: int) -> None:
        """A worker exited: drop its live gauges (in-flight requests); its counters stay counted."""
        if self.path:
            multiprocess.mark_process_dead(pid, self.path)

    def close(self) -> None:
        if self.owned and self.path:
            shutil.rmtree(self.path, ignore_errors=True)


def render_metrics() -> bytes:
    """The Prometheus text of this component: every worker's samples in multiprocess mode."""
    path = os.environ.get(MULTIPROC_ENV)
    if not path:
        return generate_latest(REGISTRY)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path)
    return generate_latest(registry)


async def metrics_response(request: web.Request | None = None) -> web.Response:
    """``GET /metrics`` (admin API) and ``GET /_wio/metrics`` (proxy). Reading the files is off-loop."""
    body = await asyncio.to_thread(render_metrics)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


_api_children: dict[tuple[str, str, int], tuple] = {}
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


@web.middleware
async def api_metrics_middleware(request: web.Request, handler):
    """Outermost admin API middleware: counts every answer, errors included, by route template."""
    started = time.monotonic()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        resource = request.match_info.route.resource
        # The route template (/api/v1/workspaces/{name}) keeps the label set small.
        route = resource.canonical if resource is not None else "unmatched"
        method = request.method if request.method in _METHODS else "other"
        key = (method, route, status)
        children = _api_children.get(key)
        if children is None:
            children = _api_children[key] = (API_REQUESTS.labels(method, route, str(status)),
                                              API_SECONDS.labels(method, route))
        children[0].inc()
        children[1].observe(time.monotonic() - started)

