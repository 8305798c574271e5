"""The S3 front end. The request path, in order (docs/design.md):

1. parse      proxy.addressing (bucket, key from raw_path) and proxy.operations (which operation)
2. authenticate  signing.parse_request_auth -> key material from Redis -> signing.verify_signature
3. authorize  ``authorize``, the one door, by the operation's strategy (policy.operations): proxy.authz (one
              Redis round trip) + policy.decide; every request, STS and browser uploads included
4. forward    the operation's handler (proxy.handlers) / proxy.upstream: re-signed for the node, streamed both ways
5. account    (metrics, audit, events) after the backend answered
"""
from __future__ import annotations

import asyncio
import logging
import time
import itertools
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import datetime, timezone
from urllib.parse import unquote

import aiohttp
from aiohttp import web

from policy.decide import WorkspaceView, decide_object
from policy.operations import Strategy
from nodeclient.client import WIO_SERVICE_HEADER
from proxy.accounting import account
from proxy.anonymous import authorize_anonymous, is_anonymous
from proxy.addressing import check_key, parse_address
from proxy.authz import REDIS_TIMEOUT, Authorizer, Target
from proxy.call import CALL, Call
from proxy import cors
from proxy.errors import S3Error, error_xml
from proxy.handlers import HANDLERS
from proxy.headers import parse_headers
from proxy.metrics import IN_FLIGHT
from nodeclient.pool import NodeError
from proxy.operations import STS, UNSUPPORTED, classify, is_sts
from proxy.quota import Quotas
from proxy.post_object import authorize_post
from proxy.sts import authorize_sts
from proxy.resources import API_HTTP, AUTHZ, BOX, QUOTAS, RESP, SETTINGS, SINK, UPSTREAM
from proxy.state import ACCESS_KEY, BUCKET, KEY, OPERATION, REQUEST_ID, USER
from foundation.resp import RespClient
from proxy.upstream import Upstream
from signing import QUERY_AUTH_PARAMS, SigningError, parse_request_auth, verify_signature
from signing.canonical import parse_query
from foundation.events import EventSink
from foundation.metrics import metrics_response
from foundation.secrets import SecretBox
from foundation.settings import Settings
from foundation.thirdparty import app_match

__all__ = ["create_app", "front_door"]

log = logging.getLogger("wio.proxy")
# Request ids: a random per-process prefix and a counter (uuid4 costs a getrandom() call a request).
CLIENT_CLOSED = 499
_request_ids: list[tuple[str, Iterator[int]]] = [(os.urandom(4).hex().upper(), itertools.count())]
os.register_at_fork(after_in_child=lambda: _request_ids.__setitem__(0, (os.urandom(4).hex().upper(),
                                                                        itertools.count())))
# the strategies as module constants: an Enum member read through its class costs a call per read
_CALLER, _COPY_SOURCE = Strategy.CALLER, Strategy.COPY_SOURCE
_POST_POLICY, _SERVICE = Strategy.POST_POLICY, Strategy.SERVICE


def parse_copy_source(value: str) -> tuple[str, str, str | None]:
    """``x-amz-copy-source``: ``[/]bucket/key[?versionId=…]``, URL-encoded; strict, no traversal."""
    path, _, query = value.partition("?")
    version = None
    if query:
        name, _, version = query.partition("=")
        if name != "versionId" or not version:
            raise S3Error("InvalidArgument", "x-amz-copy-source takes only a versionId query")
        version = unquote(version)
    path = path[1:] if path.startswith("/") else path
    bucket, sep, raw_key = path.partition("/")
    bucket = unquote(bucket)
    if not sep or not bucket or not raw_key:
        raise S3Error("InvalidArgument", "x-amz-copy-source must be bucket/key")
    try:
        key = unquote(raw_key, errors="strict")
    except UnicodeDecodeError:
        raise S3Error("InvalidArgument", "x-amz-copy-source is not valid UTF-8") from None
    check_key(key)
    return bucket, key, version


def _not_utf8(text: str) -> bool:
    """Percent-decoded query parts and header values keep undecodable bytes as surrogates."""
    if text.isascii():
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def check_encodings(params: list[tuple[str, str]], headers: list[tuple[str, str]]) -> None:
    """Refuse bytes that are not UTF-8 before anything reads them (the credential, uploadId, prefix …):
    they could reach neither Redis, nor the node, nor the audit trail."""
    for name, value in params:   # ASCII, the usual case, is decided without a call per part
        if not (name.isascii() and value.isascii()) and (_not_utf8(name) or _not_utf8(value)):
            raise S3Error("InvalidURI", "Couldn't parse the specified URI: a query parameter is not valid UTF-8.")
    for name, value in headers:
        if not value.isascii() and _not_utf8(value):
            raise S3Error("InvalidArgument", f"The {name} header is not valid UTF-8.")


async def authorize(request: web.Request, headers: dict[str, str]) -> Call:
    """The one door: every request is recognised in the operation table (``policy.operations``), then
    authenticated and authorized by its row's strategy. Nothing reaches a handler any other way."""
    if is_sts(request.method, request.rel_url.raw_path, headers):
        request[OPERATION] = STS.name
        return await authorize_sts(request, STS)
    settings = request.app[SETTINGS]
    raw_path, _, raw_query = request.raw_path.partition("?")
    address = parse_address(request.raw_path, request.headers.get("Host"), settings.s3_domain)
    params = parse_query(raw_query)
    header_items = list(request.headers.items())
    check_encodings(params, header_items)
    query = dict(params)
    if len(query) != len(params):
        # One value per parameter: the decision and the node must read the same prefix, marker, uploadId …
        duplicated = sorted({k for k, _ in params if sum(1 for n, _ in params if n == k) > 1})
        raise S3Error("InvalidArgument", f"Query parameter '{duplicated[0]}' is given more than once")
    request[BUCKET], request[KEY] = address.bucket, address.key
    unsupported = None
    try:
        op = classify(request.method, address.bucket, address.key, query, headers)
    except S3Error as exc:
        if exc.code != "NotImplemented" or address.bucket is None:
            raise
        # S3's order: a bad signature, a missing bucket or no access answer before "not implemented"
        unsupported, op = exc, UNSUPPORTED
    request[OPERATION] = op.name
    if op.strategy is _POST_POLICY and address.bucket is not None:
        return await authorize_post(request, op, address.bucket)
    try:
        auth = parse_request_auth(request.method, raw_path, raw_query, header_items, now=datetime.now(timezone.utc),
                                  region=settings.region)
    except SigningError as exc:
        raise S3Error.from_signing(exc) from None
    if auth is None:   # no credential at all: S3's anonymous caller (proxy/anonymous.py)
        if not is_anonymous(headers, params):
            raise S3Error("AccessDenied", "Anonymous requests are not allowed; sign with a wio access key")
        return await authorize_anonymous(request, op, address.bucket, address.key, params)
    request[ACCESS_KEY] = auth.access_key_id
    authz = request.app[AUTHZ]
    targets: list[Target | None] = []
    visible: list[tuple[WorkspaceView, str]] = []
    source: tuple[str, str, str | None] | None = None
    if op.strategy is _SERVICE:
        caller, visible = await authz.load_visible(auth.access_key_id, auth.session_token)
    else:
        workspaces = [address.bucket or ""]
        if op.strategy is _COPY_SOURCE:
            source = parse_copy_source(headers["x-amz-copy-source"])
            workspaces.append(source[0])
        caller, targets = await authz.load(auth.access_key_id, auth.session_token, workspaces)
    request[USER] = caller.user
    try:
        signing_ctx = verify_signature(auth, caller.secret_key, request.method, raw_path, raw_query, header_items)
    except SigningError as exc:
        raise S3Error.from_signing(exc) from None
    call = Call(request=request, op=op, bucket=address.bucket, key=address.key,
                params=[(k, v) for k, v in params if k not in QUERY_AUTH_PARAMS], caller=caller, auth=auth,
                signing_ctx=signing_ctx, visible=visible)
    request[CALL] = call
    if op.strategy is _SERVICE or op.strategy is _CALLER:
        call.decided_by = "caller"   # a valid key of an enabled user: the admin API decides CreateBucket
        return call
    call.target = targets[0]
    if call.target is None:
        raise S3Error("NoSuchBucket", resource=f"/{address.bucket}")
    if not call.target.grants:
        raise S3Error("AccessDenied")
    if unsupported is not None:
        raise unsupported
    call.decided_by = call.decide(query.get("prefix", ""))
    if source is not None:
        call.source = targets[1]
        call.source_key, call.source_version = source[1], source[2]
        if call.source is None:
            raise S3Error("NoSuchBucket", "The copy source bucket does not exist")
        if not decide_object(call.source.grants, "read", call.source_key).allowed:
            raise S3Error("AccessDenied", "Access Denied (no read grant on the copy source)")
    return call


async def s3_entry(request: web.Request) -> web.StreamResponse:
    headers = parse_headers(request)   # first: a repeated single-valued header is refused before anything
    call = await authorize(request, headers)
    return await HANDLERS[call.op.name](call)


def _error_response(request: web.Request, exc: S3Error, request_id: str) -> web.Response:
    body = error_xml(exc.code, exc.message, exc.resource or request.path, request_id, exc.details) \
        if request.method != "HEAD" else b""
    return web.Response(status=exc.status, body=body, headers={"Content-Type": "application/xml", **exc.headers})


async def _expect(request: web.Request) -> None:
    """``Expect``, as aiohttp's application answers it before its handlers: ``100-continue`` on HTTP/1.1
    sends the interim response, any other expectation is 417; HTTP/1.0 ignores the header."""
    if request.version == aiohttp.HttpVersion11:
        if request.headers.get("Expect", "").lower() != "100-continue":
            raise web.HTTPExpectationFailed(text=f"Unknown Expect: {request.headers.get('Expect', '')}")
        await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        request.writer.output_size = 0   # the response proper has not started
    await request.writer.drain()


_HEALTH, _METRICS, _READ = "/_wio/health", "/_wio/metrics", frozenset({"GET", "HEAD"})


def front_door(app: web.Application) -> Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]:
    """The proxy's one request handler, on aiohttp's low-level server (``wio.serve`` installs it with
    ``foundation.thirdparty.serve_without_router``): what the router and the middleware chain did, in one
    function. In order: ``Expect``; the paths the catch-all route did not match (404, as aiohttp);
    the in-flight gauge; the request id; dispatch by exact path and method (health, metrics, the console's
    CORS preflight, else S3: ``s3_entry``, i.e. ``authorize()`` then the operation's handler); any
    failure as an S3 error document; the request id and service headers; accounting (S3 requests only)."""
    match = app_match(app)

    async def serve(raw: web.BaseRequest) -> web.StreamResponse:
        # request.app; the app's on_response_prepare (its one receiver, proxy.cors, adds CORS headers to
        # answers to a browser) only for requests with an Origin header
        request = match.attach(raw, response_signals="Origin" in raw.headers)
        if request.headers.get("Expect"):
            await _expect(request)
        path = request.path
        if path[:1] != "/" or "\n" in path:   # what "/{tail:.*}" did not match
            raise web.HTTPNotFound()
        IN_FLIGHT.inc()
        try:
            return await _serve(request, path)
        finally:
            IN_FLIGHT.dec()

    return serve


async def _serve(request: web.Request, path: str) -> web.StreamResponse:
    prefix, counter = _request_ids[0]
    request_id = f"{prefix}{next(counter):08X}"
    request[REQUEST_ID] = request_id
    started = time.monotonic()
    error: S3Error | None = None
    s3_request = True
    response: web.StreamResponse
    try:
        if path == _HEALTH and request.method in _READ:
            s3_request = False
            response = await health(request)
        elif path == _METRICS and request.method in _READ:
            s3_request = False
            response = await metrics_response(request)
        elif request.method == "OPTIONS":
            response = await cors.preflight(request, s3_entry)
        else:
            response = await s3_entry(request)
    except web.HTTPException:
        raise
    except NodeError as exc:
        # The node failed in the middle of an exchange (a copy source, a response body): if nothing
        # was sent yet the client gets an S3 error; otherwise its connection was already cut.
        log.info("node failed request_id=%s: %s", request_id, exc)
        error = S3Error("ServiceUnavailable", "The storage node failed during the request")
        if request.transport is None or request.transport.is_closing():
            if s3_request:
                account(request, request.app[SINK], error.status, error, started)
            raise
    except (ConnectionError, aiohttp.ClientConnectionError, asyncio.CancelledError) as exc:
        # The client went away (reset, broken pipe; aiohttp may cancel the handler then): the request still leaves its one
        # access-log line and audit entry, with nginx's 499 "client closed request".
        log.info("connection failed request_id=%s: %r", request_id, exc)
        if s3_request:
            account(request, request.app[SINK], CLIENT_CLOSED,
                    S3Error("ClientDisconnected", "The client closed the connection", status=CLIENT_CLOSED), started)
        raise
    except S3Error as exc:
        error = exc
    except SigningError as exc:  # a header checked where the body is set up (Content-MD5, checksums, lengths)
        error = S3Error.from_signing(exc)
    except Exception:  # noqa: BLE001 - the one place anything becomes an S3 error
        log.exception("internal error request_id=%s", request_id)
        error = S3Error("InternalError")
    if error is not None:
        response = _error_response(request, error, request_id)
    if not response.prepared:
        response.headers["x-amz-request-id"] = request_id
        response.headers[WIO_SERVICE_HEADER] = "proxy"   # so a node registration pointing back at wio is refused
    if s3_request:
        account(request, request.app[SINK], response.status, error, started)
    return response


async def health(request: web.Request) -> web.Response:
    try:
        async with asyncio.timeout(REDIS_TIMEOUT):
            await request.app[RESP].ping()
    except Exception:  # noqa: BLE001 - any failure is "unavailable"
        return web.json_response({"status": "unavailable", "redis": "unavailable"}, status=503)
    return web.json_response({"status": "ok", "redis": "ok"})


async def _resources(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    app[RESP] = RespClient(settings.redis_url)  # the request path's scripts: one pipelined connection
    app[AUTHZ] = Authorizer(app[RESP], app[BOX])
    app[UPSTREAM] = Upstream(allow_private=settings.allow_private_nodes)
    app[QUOTAS] = Quotas(app[RESP])
    app[API_HTTP] = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
    app[SINK] = EventSink(app[RESP])
    app[SINK].start()
    yield
    await app[SINK].stop()
    await app[API_HTTP].close()
    await app[UPSTREAM].close()
    await app[RESP].close()


def create_app(settings: Settings) -> web.Application:
    """The proxy's application: its settings and resources (started and closed by the runner). It has no
    routes and no middleware: it is served by ``front_door(app)`` (``wio serve proxy``)."""
    app = web.Application(client_max_size=0)
    app[SETTINGS] = settings
    app[BOX] = SecretBox(settings.master_key)
    app.cleanup_ctx.append(_resources)
    cors.install(app, settings)   # the console's presigned requests (proxy/cors.py)
    return app
