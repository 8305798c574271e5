"""The proxy's metrics and access log, recorded from step 5 (accounting) and around I/O.

Everything here runs on the request path, so it is cheap and never does I/O of its own: label
children are bound once per label set and cached in plain dicts (``labels()`` costs a lock and a
tuple lookup per call), and each update is an in-memory add, or an mmap write in multiprocess
mode (see ``foundation/metrics.py``). The access log is one ``wio.access`` record per request; with
``WIO_LOG_JSON`` its fields become the keys of a JSON line (``foundation.logs.configure_logging``).

Series (all ``wio_``):
    requests_total{operation,status}             S3 requests answered, by S3 operation and HTTP status
    request_duration_seconds{operation}          time from the first byte in to the last byte out
    authorization_decisions_total{decision,reason}  allow by grant kind, deny by reason
    received_bytes_total / sent_bytes_total{workspace,node}  object bytes in from and out to clients
    backend_request_duration_seconds{node}       time until a node's response headers
    backend_errors_total{node,kind}              timeout | unreachable | server_error (5xx)
    redis_duration_seconds{script} / redis_errors_total{script}   the authorization round trip
    requests_in_flight                           summed over live workers
"""
from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, cast

from aiohttp import web
from prometheus_client import Counter, Gauge, Histogram

from proxy.errors import S3Error
from proxy.state import ACCESS_KEY, METRICS, REQUEST_ID, USER
from foundation.metrics import LATENCY_BUCKETS

if TYPE_CHECKING:
    from proxy.call import Call   # proxy.call -> proxy.authz -> proxy.metrics

__all__ = ["REQUESTS", "REQUEST_SECONDS", "DECISIONS", "RECEIVED_BYTES", "SENT_BYTES", "BACKEND_SECONDS",
           "BACKEND_ERRORS", "REDIS_SECONDS", "REDIS_ERRORS", "IN_FLIGHT",
           "observe_request", "observe_backend", "backend_failed", "observe_redis", "redis_failed", "grant_kind"]

REQUESTS = Counter("wio_requests_total", "S3 requests answered by the proxy, by S3 operation and HTTP status",
                   ["operation", "status"])
REQUEST_SECONDS = Histogram("wio_request_duration_seconds",
                            "S3 request latency at the proxy, bodies included, by S3 operation", ["operation"],
                            buckets=LATENCY_BUCKETS)
DECISIONS = Counter("wio_authorization_decisions_total",
                    "Authorization outcomes: allow by grant kind (owner, share, group_share, public …), "
                    "deny by reason (denied, bad_signature, unknown_key, expired, quota …)", ["decision", "reason"])
RECEIVED_BYTES = Counter("wio_received_bytes_total", "Object bytes received from clients", ["workspace", "node"])
SENT_BYTES = Counter("wio_sent_bytes_total", "Object bytes sent to clients", ["workspace", "node"])
BACKEND_SECONDS = Histogram("wio_backend_request_duration_seconds",
                            "Time from sending a request to a storage node until its response headers", ["node"],
                            buckets=LATENCY_BUCKETS)
BACKEND_ERRORS = Counter("wio_backend_errors_total",
                         "Storage node failures: timeout, unreachable, server_error (a 5xx answer)", ["node", "kind"])
REDIS_SECONDS = Histogram("wio_redis_duration_seconds", "The authorization round trip to Redis, by script",
                          ["script"], buckets=LATENCY_BUCKETS)
REDIS_ERRORS = Counter("wio_redis_errors_total", "Failed authorization round trips to Redis", ["script"])
IN_FLIGHT = Gauge("wio_requests_in_flight", "Requests being served, over all live proxy workers",
                  multiprocess_mode="livesum")

access_log = logging.getLogger("wio.access")
_LogRecord = logging.LogRecord
_new_record = logging.LogRecord.__new__
_access_template: dict[str, object] = {}   # made by the first access record of the process (after any fork)
_log_start: list[float] = []

_request_children: dict[tuple[str, int], tuple[Counter, Histogram]] = {}
_decision_children: dict[tuple[str, str], Counter] = {}
_bytes_children: dict[tuple[str, str], tuple[Counter, Counter]] = {}
_backend_children: dict[str, Histogram] = {}
_redis_children: dict[str, Histogram] = {}


def grant_kind(label: str) -> str:
    """A bounded label for what allowed: "share:12" -> share, "group:eng/share:14+scope" -> group_share."""
    if label.startswith("group:"):
        return "group_share"
    end = len(label)
    for sep in (":", "+"):
        i = label.find(sep)
        if 0 <= i < end:
            end = i
    return label[:end] or "unknown"


def observe_request(request: web.Request, call: Call | None, workspace: str | None, key: str | None,
                    error: S3Error | None) -> None:
    """Metrics and the access log for one finished request, from ``request[METRICS]``."""
    operation, status, decision, reason, duration, bytes_in, bytes_out = request[METRICS]
    children = _request_children.get((operation, status))
    if children is None:
        children = _request_children[(operation, status)] = (REQUESTS.labels(operation, str(status)),
                                                              REQUEST_SECONDS.labels(operation))
    children[0].inc()
    children[1].observe(duration)

    if decision == "allow":
        reason = grant_kind(call.decided_by) if call is not None else "unknown"
    counter = _decision_children.get((decision, reason))
    if counter is None:
        counter = _decision_children[(decision, reason)] = DECISIONS.labels(decision, reason)
    counter.inc()

    if bytes_in or bytes_out:
        target = call.target if call is not None else None
        node = target.node.name if target is not None and target.node is not None else ""
        pair = _bytes_children.get((workspace or "", node))
        if pair is None:
            pair = _bytes_children[(workspace or "", node)] = (RECEIVED_BYTES.labels(workspace or "", node),
                                                               SENT_BYTES.labels(workspace or "", node))
        if bytes_in:
            pair[0].inc(bytes_in)
        if bytes_out:
            pair[1].inc(bytes_out)

    if access_log.isEnabledFor(logging.INFO):
        _log_access(request, call, operation, status, decision, reason, duration, bytes_in, bytes_out,
                    workspace, key, error)


def _log_access(request: web.Request, call: Call | None, operation: str, status: int, decision: str, reason: str,
                duration: float, bytes_in: int, bytes_out: int, workspace: str | None, key: str | None,
                error: S3Error | None) -> None:
    request_id = request.get(REQUEST_ID, "")
    user = call.caller.user if call is not None else request.get(USER, "")
    fields = {
        "request_id": request_id, "client": request.remote or "", "method": request.method,
        # The path only: a presigned URL's query carries credentials (X-Amz-Security-Token).
        "path": request.path, "operation": operation, "workspace": workspace or "", "key": key or "",
        "user": user, "access_key": call.caller.access_key_id if call is not None else request.get(ACCESS_KEY, ""),
        "status": status, "decision": decision,
        "reason": call.decided_by if decision == "allow" and call is not None else reason,
        "error": error.code if error is not None else "", "bytes_in": bytes_in, "bytes_out": bytes_out,
        "duration_ms": round(duration * 1000, 3), "user_agent": request.headers.get("User-Agent", ""),
    }
    # Not info() nor makeRecord(): the caller's file and line mean nothing here (finding them is a stack
    # walk), and LogRecord.__init__ derives a dozen attributes that are the same for every access
    # record. A copy of one template record, with the time and the arguments of this request.
    if not _access_template:
        _access_template.update(access_log.makeRecord("wio.access", logging.INFO, "", 0,
                                                      "%s %s %s %s %s/%s %d %s %.1fms", (), None).__dict__)
        created, relative = cast(float, _access_template["created"]), cast(float, _access_template["relativeCreated"])
        _log_start.append(created - relative / 1000)   # what relativeCreated counts from
    record = _new_record(_LogRecord)
    record.__dict__.update(_access_template)
    now = time.time()
    record.created, record.msecs = now, (now - int(now)) * 1000 // 1 + 0.0
    record.relativeCreated = (now - _log_start[0]) * 1000
    record.args = (request_id, request.remote, user or "-", operation, workspace or "", key or "", status, decision,
                   duration * 1000)
    record.wio_fields = fields
    access_log.handle(record)


def observe_backend(node: str, started: float, status: int) -> None:
    """A node answered (``started`` is a ``time.monotonic()`` reading taken before sending)."""
    child = _backend_children.get(node)
    if child is None:
        child = _backend_children[node] = BACKEND_SECONDS.labels(node)
    child.observe(time.monotonic() - started)
    if status >= 500:
        BACKEND_ERRORS.labels(node, "server_error").inc()


def backend_failed(node: str, kind: str) -> None:
    BACKEND_ERRORS.labels(node, kind).inc()


def observe_redis(script: str, started: float) -> None:
    """A Redis round trip succeeded (``started`` as for ``observe_backend``)."""
    child = _redis_children.get(script)
    if child is None:
        child = _redis_children[script] = REDIS_SECONDS.labels(script)
    child.observe(time.monotonic() - started)


def redis_failed(script: str) -> None:
    REDIS_ERRORS.labels(script).inc()
