"""The indexer process: the event consumer and the crawler, side by side, until told to stop.

``run_indexer(settings, stop)`` is the whole service (tests run it in-process); ``serve_indexer`` is
what ``wio serve indexer`` and ``wio dev`` run. Several indexer processes may run at once: the consumer
group shares the events between them and an advisory lock lets one crawler work at a time.
"""
from __future__ import annotations

import asyncio
import logging
import signal
import time

import aiohttp
from redis.exceptions import RedisError
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from indexer.backend import BackendUnavailable, SearchBackend, open_backend
from indexer.consumer import EventConsumer
from indexer.crawl import CRAWL_LOCK, Crawler, due_workspaces
from indexer.storage import WorkspaceRoute, load_routes
from policy.db import create_engine, migrate, sessionmaker_for
from nodeclient.client import node_session
from foundation.secrets import SecretBox
from foundation.logs import configure_logging
from foundation.settings import Settings
from foundation.redisurl import redis_client

__all__ = ["run_indexer", "serve_indexer", "RouteCache", "crawl_due", "forget_deleted"]

log = logging.getLogger("wio.indexer")
CRAWL_EVERY_SECONDS = 3600.0
TOMBSTONE_SECONDS = 86_400.0  # far longer than any redelivery: pending entries are claimed after 30 s


class RouteCache:
    """Workspace name -> where its objects are, for the consumer's HEADs; entries live ``ttl`` seconds."""

    def __init__(self, sessions: async_sessionmaker, box: SecretBox, http: aiohttp.ClientSession, ttl: float = 30):
        self.sessions, self.box, self.http, self.ttl = sessions, box, http, ttl
        self._cache: dict[str, tuple[float, WorkspaceRoute | None]] = {}

    async def get(self, workspace: str) -> WorkspaceRoute | None:
        hit = self._cache.get(workspace)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        async with self.sessions() as session:
            route = (await load_routes(session, self.box, self.http, [workspace])).get(workspace)
        self._cache[workspace] = (time.monotonic() + self.ttl, route)
        return route


async def crawl_due(engine: AsyncEngine, sessions: async_sessionmaker, box: SecretBox, http: aiohttp.ClientSession,
                    crawler: Crawler, every_seconds: float) -> int:
    """Crawl every workspace that is due (see crawl.due_workspaces); returns how many were crawled."""
    names = await due_workspaces(engine, every_seconds)
    if not names:
        return 0
    async with sessions() as session:
        routes = await load_routes(session, box, http, names)
    crawled = 0
    for name in names:
        if name in routes:
            try:
                await crawler.crawl(routes[name])
                crawled += 1
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - recorded in search_crawls and logged; the others go on
                pass
    return crawled


async def forget_deleted(engine: AsyncEngine, backend: SearchBackend, *, everything: bool = False) -> int:
    """Drop the index entries of deleted workspaces; returns how many objects went.

    Every crawler round looks at the workspaces that have crawl state: one whose name is gone, or was
    taken again by a newer workspace, is dropped at once (its objects must not show up in a namesake)
    and, if it exists again, crawled afresh. With ``everything`` the whole index is compared with the
    workspace table (workspaces deleted before their first crawl) and old tombstones are purged.
    """
    async with engine.connect() as conn:
        stale = list((await conn.execute(text("""
            SELECT c.workspace FROM search_crawls c WHERE NOT EXISTS (
                SELECT 1 FROM workspaces w
                WHERE w.name = c.workspace AND w.created_at <= coalesce(c.started_at, c.requested_at))"""))).scalars())
        if everything:
            existing = set((await conn.execute(text("SELECT name FROM workspaces"))).scalars())
            stale += [name for name in await backend.indexed_workspaces() if name not in existing]
    dropped = await backend.drop_workspaces(sorted(set(stale)))
    if stale:
        async with engine.begin() as conn:
            await conn.execute(text("DELETE FROM search_crawls WHERE workspace = ANY(CAST(:names AS text[]))"),
                               {"names": stale})
    purged = await backend.purge_tombstones(time.time() - TOMBSTONE_SECONDS) if everything else 0
    if dropped or purged:
        log.info("index cleanup: %d objects of deleted workspaces, %d old tombstones", dropped, purged)
    return dropped


async def _crawl_forever(engine: AsyncEngine, sessions: async_sessionmaker, box: SecretBox,
                         http: aiohttp.ClientSession, backend: SearchBackend, crawler: Crawler, stop: asyncio.Event,
                         every_seconds: float, poll_seconds: float) -> None:
    next_cleanup = 0.0
    while not stop.is_set():
        try:
            async with engine.connect() as lock:
                if await lock.scalar(text("SELECT pg_try_advisory_lock(:k)"), {"k": CRAWL_LOCK}):
                    try:
                        everything = time.monotonic() >= next_cleanup
                        await forget_deleted(engine, backend, everything=everything)
                        if everything:
                            next_cleanup = time.monotonic() + every_seconds
                        await crawl_due(engine, sessions, box, http, crawler, every_seconds)
                    finally:
                        await lock.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": CRAWL_LOCK})
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - keep crawling later whatever failed, but say it
            log.warning("crawler: %s: %s", type(exc).__name__, exc)
        try:
            await asyncio.wait_for(stop.wait(), poll_seconds)
        except asyncio.TimeoutError:
            pass


async def _prepare(backend: SearchBackend, stop: asyncio.Event) -> bool:
    while not stop.is_set():
        try:
            await backend.prepare()
            return True
        except BackendUnavailable as exc:
            log.warning("search backend %s not ready (retrying): %s", backend.name, exc)
            try:
                await asyncio.wait_for(stop.wait(), 5)
            except asyncio.TimeoutError:
                pass
    return False


async def run_indexer(settings: Settings, stop: asyncio.Event, *, crawl_every_seconds: float = CRAWL_EVERY_SECONDS,
                      crawl_poll_seconds: float = 2.0, backend: SearchBackend | None = None) -> None:
    """Consume events and crawl until ``stop`` is set; ``backend`` defaults to the one settings select."""
    engine = create_engine(settings.database_url)
    backend = backend or open_backend(settings)
    redis = redis_client(settings.redis_url, decode_responses=True, health_check_interval=10)
    http = node_session(allow_private=settings.allow_private_nodes)
    try:
        await migrate(engine)  # the crawl state lives in PostgreSQL whatever the backend
        if not await _prepare(backend, stop):
            return
        sessions, box = sessionmaker_for(engine), SecretBox(settings.master_key)
        consumer = EventConsumer(redis, backend, RouteCache(sessions, box, http).get)
        crawler = Crawler(engine, backend)
        log.info("indexer running: backend %s, consumer %s", backend.name, consumer.name)
        crawling = asyncio.create_task(_crawl_forever(engine, sessions, box, http, backend, crawler, stop,
                                                      crawl_every_seconds, crawl_poll_seconds))
        try:
            await consumer.run(stop)  # returns within a second of stop being set
        finally:
            crawling.cancel()
            await asyncio.gather(crawling, return_exceptions=True)
    finally:
        await http.close()
        await redis.aclose()
        await backend.close()
        await engine.dispose()


def serve_indexer(settings: Settings) -> None:
    """``wio serve indexer``: run until SIGTERM/SIGINT."""
    configure_logging(settings.log_json)
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await run_indexer(settings, stop)

    try:
        asyncio.run(main())
    except (OSError, SQLAlchemyError, RedisError) as exc:
        log.error("the indexer cannot run: %s: %s", type(exc).__name__, exc)
        raise SystemExit(1) from None
