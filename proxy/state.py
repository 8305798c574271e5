"""What the proxy keeps on a request, as typed aiohttp ``RequestKey``s (the authorized ``Call`` is
``proxy.call.CALL``). Set by the front door and ``proxy.app.authorize`` as each becomes known, so the
audit entry and the access log name what was known even when the request fails before its Call exists."""
from __future__ import annotations

from aiohttp import web

__all__ = ["REQUEST_ID", "HEADERS", "OPERATION", "BUCKET", "KEY", "ACCESS_KEY", "USER", "METRICS"]

REQUEST_ID = web.RequestKey("request_id", str)
HEADERS: web.RequestKey[dict[str, str]] = web.RequestKey("headers")   # proxy.headers.parse_headers
OPERATION = web.RequestKey("operation", str)
BUCKET: web.RequestKey[str | None] = web.RequestKey("bucket")
KEY: web.RequestKey[str | None] = web.RequestKey("key")
ACCESS_KEY = web.RequestKey("access_key", str)
USER = web.RequestKey("user", str)
# (operation, status, decision, reason, duration, bytes_in, bytes_out): proxy.accounting -> proxy.metrics
METRICS: web.RequestKey[tuple[str, int, str, str, float, int, int]] = web.RequestKey("wio_metrics")
