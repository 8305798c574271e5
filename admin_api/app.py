"""The admin REST API application: resources, middleware, routes, and the projection keeper."""
from __future__ import annotations

import asyncio
import logging

import aiohttp
from aiohttp import web
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy import text

from admin_api import audit, explain, groups, infra, keys, openapi, quotas, search, sso, users, workspaces
from admin_api.bootstrap import bootstrap
from admin_api.context import BOX, DB, HTTP, REDIS, SETTINGS
from admin_api.errors import error_middleware
from policy.db import create_engine, migrate, sessionmaker_for
from policy.projection import rebuild
from wio.metrics import api_metrics_middleware, metrics_response
from wio.secrets import SecretBox
from wio.settings import Settings

__all__ = ["create_app", "rebuild_projection"]

log = logging.getLogger("wio.api")
PROJECTION_CHECK_SECONDS = 1.0


async def rebuild_projection(app: web.Application) -> dict[str, int]:
    async with app[DB]() as session:
        async with session.begin():
            counts = await rebuild(session, app[REDIS])
    log.info("projection rebuilt: %s", counts)
    return counts


async def _database(app: web.Application):
    engine = create_engine(app[SETTINGS].database_url)
    await migrate(engine)
    app[DB] = sessionmaker_for(engine)
    yield
    await engine.dispose()


async def _redis(app: web.Application):
    app[REDIS] = Redis.from_url(app[SETTINGS].redis_url, decode_responses=True, health_check_interval=10)
    yield
    await app[REDIS].aclose()


async def _http(app: web.Application):
    app[HTTP] = aiohttp.ClientSession()
    yield
    await app[HTTP].close()


async def _keep_projection(app: web.Application) -> None:
    """Rebuild the Redis projection at start-up and whenever it is found missing (e.g. Redis restarted empty)."""
    built = False
    while True:
        try:
            if not built or not await app[REDIS].exists("wio:meta"):
                await rebuild_projection(app)
                built = True
        except asyncio.CancelledError:
            raise
        except (RedisError, OSError) as exc:
            log.warning("projection check failed (will retry): %s", exc)
        except Exception:  # noqa: BLE001 - keep the keeper alive whatever happens, but say it
            log.exception("projection rebuild failed (will retry)")
        await asyncio.sleep(PROJECTION_CHECK_SECONDS)


async def _projection_keeper(app: web.Application):
    await bootstrap(app)
    await rebuild_projection(app)
    task = asyncio.create_task(_keep_projection(app))
    yield
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


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
    for module in (users, sso, keys, workspaces, infra, groups, quotas, audit, explain, search, openapi):
        app.router.add_routes(module.routes)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics_response)
    return app
