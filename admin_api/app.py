"""The admin REST API application: resources, middleware, routes, and the projection keeper."""
from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web
from redis.exceptions import RedisError
from sqlalchemy import text

from admin_api import audit, console, explain, groups, info, infra, keys, openapi, quotas, search, sso, users, workspaces
from admin_api.bootstrap import bootstrap
from admin_api.context import BOX, DB, HTTP, NODE_HTTP, REDIS, SETTINGS, keeping
from admin_api.errors import error_middleware
from policy.db import create_engine, migrate, sessionmaker_for
from nodeclient.client import WIO_SERVICE_HEADER, node_session
from policy.projection import verify
from foundation.metrics import api_metrics_middleware, metrics_response
from foundation.redisurl import redis_client
from foundation.secrets import SecretBox
from foundation.settings import Settings

__all__ = ["create_app", "verify_projection"]

DB_STATEMENT_SECONDS = 8.0
log = logging.getLogger("wio.api")
# How often the keeper checks that the server Redis clients reach holds a verified projection. After a
# failover or a restart the proxies answer 503 until it has (policy/projection.py, "Failover").
PROJECTION_CHECK_SECONDS = 0.25


async def verify_projection(app: web.Application) -> str:
    """Make the projection on the current Redis server trustworthy (policy.projection.verify)."""
    async with app[DB]() as session:
        async with session.begin():
            outcome = await verify(session, app[REDIS])
    if outcome != "ok":
        log.info("projection %s on the current Redis server", outcome)
    return outcome


async def _database(app: web.Application):
    # An API call answers 503 within seconds when PostgreSQL hangs, not after the client gave up.
    engine = create_engine(app[SETTINGS].database_url, statement_timeout=DB_STATEMENT_SECONDS)
    await migrate(engine)
    app[DB] = sessionmaker_for(engine)
    yield
    await engine.dispose()


async def _redis(app: web.Application):
    app[REDIS] = redis_client(app[SETTINGS].redis_url, decode_responses=True, health_check_interval=10)
    yield
    await app[REDIS].aclose()


async def _http(app: web.Application):
    app[HTTP] = aiohttp.ClientSession()
    app[NODE_HTTP] = node_session(allow_private=app[SETTINGS].allow_private_nodes)
    yield
    await app[NODE_HTTP].close()
    await app[HTTP].close()


async def _projection_keeper(app: web.Application) -> AsyncIterator[None]:
    """Keep the projection on the current Redis primary verified against PostgreSQL: rebuilt when it
    is missing (Redis restarted empty) or behind (a failover lost a change), re-verified on every new
    server (policy.projection.verify)."""
    await bootstrap(app)
    await verify_projection(app)  # rebuilt only if Redis lost or lacks something, or the layout changed
    async with keeping("projection check", lambda: verify_projection(app), PROJECTION_CHECK_SECONDS):
        yield


async def healthz(request: web.Request) -> web.Response:
    checks = {}
    try:
        await request.app[REDIS].ping()
        checks["redis"] = "ok"
    except (RedisError, OSError):
        checks["redis"] = "unavailable"
    try:
        async with request.app[DB]() as session:
            await session.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception:  # noqa: BLE001 - any failure means "not healthy"
        checks["database"] = "unavailable"
    healthy = all(v == "ok" for v in checks.values())
    return web.json_response({"status": "ok" if healthy else "degraded", **checks}, status=200 if healthy else 503)


def create_app(settings: Settings) -> web.Application:
    app = web.Application(middlewares=[api_metrics_middleware, error_middleware], client_max_size=1 << 20)
    app[SETTINGS] = settings
    app[BOX] = SecretBox(settings.master_key)
    app.cleanup_ctx.extend([_database, _redis, _http, sso.oidc_client, _projection_keeper, audit.audit_trail,
                            search.search_backend, quotas.usage_keeper])
    for module in (users, sso, keys, workspaces, infra, groups, quotas, audit, explain, search, info, openapi, console):
        app.router.add_routes(module.routes)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics_response)
    app.on_response_prepare.append(_mark_wio)
    app.on_response_prepare.append(console.security_headers)
    return app


async def _mark_wio(request: web.Request, response: web.StreamResponse) -> None:
    response.headers[WIO_SERVICE_HEADER] = "api"   # so a node registration pointing back at wio is refused
