"""The audit trail: store the proxy's ``wio:audit`` stream durably, and ``GET /api/v1/audit``.

The proxy writes one stream entry per decision without waiting (``foundation.events.EventSink``). Each
admin API process runs one consumer of the group ``wio-audit-store``: it reads batches, writes
them to the store (PostgreSQL, or Elasticsearch when ``WIO_ELASTICSEARCH_URL`` is set) and only
then acknowledges them. So an entry is stored at least once, and the store's idempotent insert
(keyed by the entry id) makes that exactly once. After a crash a consumer first re-reads its own
unacknowledged entries; entries left pending by a consumer that never came back are claimed by
another after ``CLAIM_IDLE_MS``.

Who may read: system administrators everything; a workspace's admins that workspace only (they
must name it). A normal user asking for a workspace they don't administer gets 403, whether or
not it exists.
"""
from __future__ import annotations

import asyncio
import logging
import os
import socket
import time

from aiohttp import web
from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from admin_api.audit_store import (AuditQuery, AuditStore, AuditStoreError, ElasticsearchAuditStore,
                                   PostgresAuditStore, row_from_entry)
from admin_api.context import DB, HTTP, SETTINGS, caller, parse_time, read_session
from admin_api.errors import ApiError
from admin_api.workspaces import require_on_workspace
from policy.models import Workspace
from foundation.events import AUDIT_DEAD_LETTER, AUDIT_STREAM, STREAM_MAXLEN, entry_fields
from foundation.metrics import AUDIT_QUARANTINED, AUDIT_STORE_ERRORS, AUDIT_STORED
from foundation.redisurl import redis_client

__all__ = ["routes", "audit_trail", "AUDIT_STORE", "AUDIT_GROUP", "AuditConsumer"]

log = logging.getLogger("wio.audit")
routes = web.RouteTableDef()

AUDIT_STORE = web.AppKey("audit_store", object)
AUDIT_GROUP = "wio-audit-store"
BATCH = 500
BLOCK_MS = 1000
PAUSE_SECONDS = 0.5     # after a short batch: let entries gather (one insert of many rows, not many of few)
CLAIM_IDLE_MS = 60_000
CLAIM_EVERY_SECONDS = 30.0
MAX_LIMIT = 1000


# The store (or Redis) being unreachable: the batch is retried. Anything else an insert raises is about
# the rows, and the row that causes it is quarantined.
_UNAVAILABLE = (RedisError, OSError, TimeoutError, AuditStoreError, OperationalError, InterfaceError)


def _unavailable(exc: Exception) -> bool:
    return isinstance(exc, _UNAVAILABLE) or (isinstance(exc, DBAPIError) and exc.connection_invalidated)


def _decode(fields: dict | None) -> dict[str, str]:
    # Bytes from Redis, decoded leniently: one odd entry must not stop the trail.
    return entry_fields(fields or {})


class AuditConsumer:
    """One member of the consumer group; ``run()`` until cancelled."""

    def __init__(self, redis: Redis, store: AuditStore, name: str | None = None, *, stream: str = AUDIT_STREAM,
                 group: str = AUDIT_GROUP, claim_idle_ms: int = CLAIM_IDLE_MS,
                 claim_every: float = CLAIM_EVERY_SECONDS, pause: float = PAUSE_SECONDS,
                 dead_letter: str = AUDIT_DEAD_LETTER):
        self.redis, self.store, self.stream, self.group = redis, store, stream, group
        self.dead_letter = dead_letter
        self.name = name or f"{socket.gethostname()}-{os.getpid()}"
        self.claim_idle_ms, self.claim_every, self.pause = claim_idle_ms, claim_every, pause
        self._last_claim = time.monotonic()
        self._stopping = False
        self._task: asyncio.Task | None = None

    def start(self) -> asyncio.Task:
        self._task = asyncio.create_task(self.run(), name="wio-audit-consumer")
        return self._task

    async def stop(self) -> None:
        """Stop the loop. A flag as well as a cancel: redis-py can turn a cancellation in the middle of
        a command into a connection error, which the loop survives (it retries) and would go on."""
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def ensure_group(self) -> None:
        try:
            await self.redis.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def read(self, backlog: bool) -> list[tuple[bytes, dict | None]]:
        """Our own unacknowledged entries (``backlog``), else new ones, waiting up to BLOCK_MS."""
        reply = await self.redis.xreadgroup(self.group, self.name, {self.stream: "0" if backlog else ">"},
                                            count=BATCH, block=None if backlog else BLOCK_MS)
        return list(reply[0][1]) if reply else []

    async def claim_abandoned(self) -> list[tuple[bytes, dict | None]]:
        """Entries another consumer read and never acknowledged for ``claim_idle_ms`` (it died)."""
        self._last_claim = time.monotonic()
        reply = await self.redis.xautoclaim(self.stream, self.group, self.name, min_idle_time=self.claim_idle_ms,
                                            start_id="0-0", count=BATCH)
        return list(reply[1]) if reply and len(reply) > 1 else []

    async def store_batch(self, entries: list[tuple[bytes, dict | None]]) -> None:
        ids = [entry_id for entry_id, _ in entries]
        rows = [(entry_id, fields, row_from_entry(entry_id.decode(), _decode(fields)))
                for entry_id, fields in entries if fields]
        stored = len(rows)
        try:
            await self.store.insert([row for _, _, row in rows])
        except Exception as exc:  # noqa: BLE001 - some row the store refuses: find it, store the others
            if _unavailable(exc):
                raise
            for entry_id, fields, row in rows:
                try:
                    await self.store.insert([row])
                except Exception as row_exc:  # noqa: BLE001 - anything about this one row
                    if _unavailable(row_exc):
                        raise
                    await self.quarantine(entry_id, fields, row_exc)
                    stored -= 1
        await self.redis.xack(self.stream, self.group, *ids)
        if stored:
            AUDIT_STORED.labels(self.store.name).inc(stored)

    async def quarantine(self, entry_id: bytes, fields: dict, exc: Exception) -> None:
        """Keep an entry the store refused in the dead-letter stream (as it was, with why), count it, and
        move on: one bad entry must not stop the trail."""
        reason = f"{type(exc).__name__}: {exc}"[:1000]
        log.error("audit entry %s quarantined in %s, the store refused it: %s", entry_id.decode(),
                  self.dead_letter, reason)
        await self.redis.xadd(self.dead_letter, {**fields, b"stream_id": entry_id, b"error": reason.encode()},
                              maxlen=STREAM_MAXLEN, approximate=True)
        AUDIT_QUARANTINED.labels(self.store.name).inc()

    async def run(self) -> None:
        backlog, ready, failures = True, False, 0
        while not self._stopping:
            try:
                if not ready:
                    await self.store.setup()
                    await self.ensure_group()
                    ready = True
                entries = await self.read(backlog)
                if backlog and not entries:
                    backlog = False
                    continue
                if not entries and time.monotonic() - self._last_claim > self.claim_every:
                    entries = await self.claim_abandoned()
                if entries:
                    await self.store_batch(entries)
                failures = 0
                if len(entries) < BATCH and not backlog:
                    await asyncio.sleep(self.pause)
            except asyncio.CancelledError:
                raise
            except ResponseError as exc:
                if "NOGROUP" in str(exc):  # Redis restarted empty: the group (and stream) are new
                    ready, backlog = False, True
                    continue
                failures = await self._failed(exc, failures)
            except (RedisError, OSError, AuditStoreError, OperationalError, InterfaceError, DBAPIError) as exc:
                backlog = True  # what was read and not stored is re-read from our pending list
                failures = await self._failed(exc, failures)
            except Exception:  # noqa: BLE001 - the consumer must outlive any one bad batch
                log.exception("audit consumer failed; retrying")
                backlog = True
                failures = await self._failed(None, failures)

    async def _failed(self, exc: Exception | None, failures: int) -> int:
        if self._stopping:
            return failures
        AUDIT_STORE_ERRORS.labels(self.store.name).inc()
        if exc is not None:
            log.warning("audit trail: %s (retrying)", exc)
        await asyncio.sleep(min(0.5 * 2 ** failures, 10.0))
        return failures + 1


async def audit_trail(app: web.Application):
    """cleanup_ctx: pick the store and run this process's consumer (needs the database and HTTP contexts)."""
    settings = app[SETTINGS]
    if settings.elasticsearch_url:
        store = ElasticsearchAuditStore(app[HTTP], settings.elasticsearch_url)
    else:
        store = PostgresAuditStore(app[DB])
    app[AUDIT_STORE] = store
    # Its own connection: bytes (decoded leniently above) and a blocking read that holds a connection.
    redis = redis_client(settings.redis_url, decode_responses=False, socket_connect_timeout=2,
                           socket_timeout=BLOCK_MS / 1000 + 10, health_check_interval=10)
    consumer = AuditConsumer(redis, store)
    consumer.start()
    yield
    await consumer.stop()
    await redis.aclose()


def parse_audit_query(query) -> AuditQuery:
    decision = query.get("decision") or None
    if decision not in (None, "allow", "deny"):
        raise ApiError("InvalidField", "'decision' must be allow or deny")
    try:
        limit = int(query.get("limit", "100"))
    except ValueError:
        raise ApiError("InvalidField", "'limit' must be an integer") from None
    if not 1 <= limit <= MAX_LIMIT:
        raise ApiError("InvalidField", f"'limit' must be between 1 and {MAX_LIMIT}")
    return AuditQuery(workspace=query.get("workspace") or None, user=query.get("user") or None,
                      decision=decision, since=parse_time(query.get("since") or None, "since"),
                      until=parse_time(query.get("until") or None, "until"), limit=limit)


@routes.get("/api/v1/audit")
async def list_audit(request: web.Request) -> web.Response:
    """Recent decisions, newest first: ``workspace, user, decision (allow|deny), since, until, limit``."""
    q = parse_audit_query(request.query)
    async with read_session(request.app) as session:
        user = await caller(request, session)
        if not user.is_admin:
            if q.workspace is None:
                raise ApiError("Forbidden", "only system administrators read the whole audit trail; "
                                                 "name a workspace you administer with 'workspace='")
            denied = ApiError("Forbidden", f"this needs admin permission on workspace '{q.workspace}'")
            ws = await session.scalar(select(Workspace).where(Workspace.name == q.workspace))
            if ws is None:
                raise denied
            try:
                await require_on_workspace(session, user, ws, "admin")
            except ApiError as exc:
                raise denied from exc
    try:
        entries = await request.app[AUDIT_STORE].query(q)
    except AuditStoreError as exc:
        log.warning("audit query failed: %s", exc)
        raise ApiError("ServiceUnavailable", "the audit store is unavailable") from None
    return web.json_response({"entries": entries})
