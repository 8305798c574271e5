"""Step 5 of the request path: account for a request after the backend answered.

One place records everything about a finished request: Prometheus metrics, the audit entry for
the decision, and the index event for a successful write. Nothing here awaits I/O: stream entries
go to the in-process ``EventSink``, which writes them to Redis in batches.
"""
from __future__ import annotations

import time

from aiohttp import web

from proxy.call import CALL
from proxy.errors import S3Error
from proxy.metrics import observe_request
from proxy.state import ACCESS_KEY, BUCKET, KEY, METRICS, OPERATION, REQUEST_ID, USER
from foundation.events import AUDIT_STREAM, EVENTS_STREAM, EventSink

__all__ = ["account", "WRITE_EVENTS", "deny_reason"]

# Operations whose success changes what the index shows, and the event type they produce.
WRITE_EVENTS = {"PutObject": "put", "CopyObject": "put", "CompleteMultipartUpload": "put",
                "DeleteObject": "delete", "PostObject": "put"}

_DENY_REASONS = {"SignatureDoesNotMatch": "bad_signature", "InvalidAccessKeyId": "unknown_key",
                 "ExpiredToken": "expired", "AccessDenied": "denied", "QuotaExceeded": "quota",
                 "InvalidToken": "bad_token", "RequestTimeTooSkewed": "clock_skew"}


def deny_reason(error: S3Error | None) -> str:
    return _DENY_REASONS.get(error.code, "invalid") if error is not None else ""


def account(request: web.Request, sink: EventSink, status: int, error: S3Error | None, started: float) -> None:
    """One finished S3 request (the front door, proxy.app, does not call it for /_wio/health and /_wio/metrics)."""
    call = request.get(CALL)
    now = time.time()
    duration = time.monotonic() - started
    bytes_in, bytes_out = (call.bytes_in, call.bytes_out) if call is not None else (0, 0)
    # STS answers without a Call: a success there was allowed by the token or key it verified.
    authorized = call.decided_by != "" if call is not None else error is None and status < 400
    decision = "allow" if authorized and (error is None or error.code not in _DENY_REASONS) else "deny"
    operation = call.op.name if call is not None else request.get(OPERATION, "")
    workspace = call.bucket if call is not None else request.get(BUCKET, "")
    key = call.key if call is not None else request.get(KEY, "")
    request[METRICS] = (operation or "Unknown", status, decision, deny_reason(error) if decision == "deny"
                        else "", duration, bytes_in, bytes_out)
    observe_request(request, call, workspace, key, error)
    if not operation and error is not None and error.code in ("MethodNotAllowed", "InvalidURI"):
        return
    sink.emit(AUDIT_STREAM, {
        "time": f"{now:.3f}", "request_id": request.get(REQUEST_ID, ""),
        "user": call.caller.user if call is not None else request.get(USER, ""),
        "access_key": call.caller.access_key_id if call is not None else request.get(ACCESS_KEY, ""),
        "workspace": workspace or "", "operation": operation, "key": key or "", "decision": decision,
        "reason": (call.decided_by if decision == "allow" else (error.message if error else "")) if call else
                  (error.message if error else ""),
        "status": status, "bytes_in": bytes_in, "bytes_out": bytes_out,
        "client": request.remote or "", "duration_ms": f"{duration * 1000:.2f}",
    })
    if call is not None and error is None and status < 300 and call.op.name in WRITE_EVENTS:
        sink.emit(EVENTS_STREAM, {
            "type": WRITE_EVENTS[call.op.name], "workspace": call.bucket, "key": call.key,
            "size": call.bytes_in if call.op.name == "PutObject" else "",
            "etag": call.etag, "content_type": call.content_type,
            "time": f"{now:.3f}", "user": call.caller.user,
        })
    if call is None:  # an STS answer: nothing deleted
        return
    for deleted in call.deleted_keys:
        sink.emit(EVENTS_STREAM, {"type": "delete", "workspace": call.bucket, "key": deleted, "size": "", "etag": "",
                                  "content_type": "", "time": f"{now:.3f}", "user": call.caller.user})
