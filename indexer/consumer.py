"""Applying the proxy's ``wio:events`` stream (foundation/events.py) to the search backend.

A Redis consumer group gives at-least-once delivery: an entry is XACKed only after the backend write
that reflects it succeeded, and entries left pending by a consumer that died are claimed by another
after ``claim_idle_ms``. Redelivery is harmless because writes are idempotent and ordered by the
event's time (``ObjectDoc.version``): applying an old event again never hides a newer state.

Each batch is reduced to the newest event per (workspace, key) before it is written. Events that do
not say the object's size (copies, multipart completions) or content type are completed with a HEAD
through the node. An entry that keeps failing (its node is down) is retried by the claim cycle and
dropped after ``max_deliveries``; the next crawl reconciles that object.
"""
from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from dataclasses import dataclass
from typing import Awaitable, Callable

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from indexer.backend import SearchBackend
from indexer.documents import ObjectDoc, Removal
from indexer.storage import ObjectHead, WorkspaceRoute, head_object
from nodeclient.client import NodeError
from foundation.events import EVENTS_STREAM, entry_fields

__all__ = ["EventConsumer", "IndexEvent", "parse_event", "GROUP"]

GROUP = "wio-indexer"
log = logging.getLogger("wio.indexer")

RouteLookup = Callable[[str], Awaitable[WorkspaceRoute | None]]


@dataclass(frozen=True, slots=True)
class IndexEvent:
    type: str                 # "put" | "delete"
    workspace: str
    key: str
    size: int | None          # None: HEAD it
    etag: str
    content_type: str
    time: float
    entry_id: str


def parse_event(entry_id: str, fields: dict[str, str]) -> IndexEvent | None:
    """None for an entry that is not a well-formed index event (it is acknowledged and skipped)."""
    fields = entry_fields(fields)
    try:
        kind, workspace, key = fields["type"], fields["workspace"], fields["key"]
        size = fields.get("size", "")
        event = IndexEvent(kind, workspace, key, int(size) if size != "" else None, fields.get("etag", "").strip('"'),
                           fields.get("content_type", ""), float(fields["time"]), entry_id)
    except (KeyError, ValueError):
        return None
    if kind not in ("put", "delete") or not workspace or not key or (event.size is not None and event.size < 0):
        return None
    return event


@dataclass
class ConsumerStats:
    applied: int = 0
    skipped: int = 0
    failed: int = 0
    dropped: int = 0


class EventConsumer:
    def __init__(self, redis: Redis, backend: SearchBackend, lookup: RouteLookup, *, stream: str = EVENTS_STREAM,
                 group: str = GROUP, batch: int = 1000, block_ms: int = 1000, claim_idle_ms: int = 30_000,
                 max_deliveries: int = 10, head_concurrency: int = 16):
        self.redis, self.backend, self.lookup = redis, backend, lookup
        self.stream, self.group, self.batch, self.block_ms = stream, group, batch, block_ms
        self.claim_idle_ms, self.max_deliveries = claim_idle_ms, max_deliveries
        self.name = f"{socket.gethostname()}-{os.getpid()}-{os.urandom(3).hex()}"
        self.stats = ConsumerStats()
        self._heads = asyncio.Semaphore(head_concurrency)
        self._pending_cursor: str | None = "0"  # replay our own pending entries first

    async def ensure_group(self) -> None:
        try:
            # From the start of the stream: a new index takes everything the stream still holds.
            await self.redis.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def run(self, stop: asyncio.Event) -> None:
        await self.ensure_group()
        next_claim = 0.0
        while not stop.is_set():
            try:
                if time.monotonic() >= next_claim:
                    await self.claim_stale()
                    next_claim = time.monotonic() + self.claim_idle_ms / 3000
                await self.step()
            except asyncio.CancelledError:
                raise
            except ResponseError as exc:
                if "NOGROUP" in str(exc):  # Redis lost the stream (restarted empty): start over
                    log.warning("consumer group missing; recreating it")
                    await self._recover(self.ensure_group)
                else:
                    log.warning("indexer consumer: %s", exc)
                    await self._recover()
            except Exception as exc:  # noqa: BLE001 - keep consuming whatever failed; entries stay pending
                log.warning("indexer consumer: %s: %s (entries stay pending and are retried)",
                            type(exc).__name__, exc)
                await self._recover()

    async def _recover(self, then: Callable[[], Awaitable[None]] | None = None) -> None:
        self._pending_cursor = "0"
        await asyncio.sleep(1)
        if then is not None:
            try:
                await then()
            except Exception as exc:  # noqa: BLE001 - retried on the next round
                log.warning("indexer consumer recovery: %s", exc)

    async def step(self) -> int:
        """Read one batch (our pending entries first, then new ones), apply and acknowledge it."""
        replaying = self._pending_cursor is not None
        reply = await self.redis.xreadgroup(self.group, self.name, {self.stream: self._pending_cursor or ">"},
                                            count=self.batch, block=None if replaying else self.block_ms)
        entries = _entries(reply)
        if replaying:
            self._pending_cursor = entries[-1][0] if entries else None
        if entries:
            await self.apply(entries)
        return len(entries)

    async def apply(self, entries: list[tuple[str, dict | None]]) -> None:
        done: list[str] = []
        newest: dict[tuple[str, str], IndexEvent] = {}
        entry_ids: dict[tuple[str, str], list[str]] = {}
        for entry_id, fields in entries:
            event = parse_event(entry_id, fields) if fields else None
            if event is None:
                if fields:
                    log.warning("skipping malformed index event %s: %r", entry_id, fields)
                self.stats.skipped += 1
                done.append(entry_id)
                continue
            ident = (event.workspace, event.key)
            entry_ids.setdefault(ident, []).append(entry_id)
            if ident not in newest or event.time >= newest[ident].time:
                newest[ident] = event
        results = await asyncio.gather(*(self._resolve(e) for e in newest.values()))
        docs, removals = [], []
        for ident, (ok, item) in zip(newest, results, strict=True):
            if not ok:
                self.stats.failed += 1
                continue  # stays pending: retried by the claim cycle
            done.extend(entry_ids[ident])
            if isinstance(item, ObjectDoc):
                docs.append(item)
            elif isinstance(item, Removal):
                removals.append(item)
            else:
                self.stats.skipped += 1
        await self.backend.upsert_many(docs)
        await self.backend.delete_many(removals)
        if done:
            await self.redis.xack(self.stream, self.group, *done)
        self.stats.applied += len(docs) + len(removals)

    async def _resolve(self, event: IndexEvent) -> tuple[bool, ObjectDoc | Removal | None]:
        """(handled, what to write); handled is False when the entry must be retried later."""
        if event.type == "delete":
            return True, Removal(event.workspace, event.key, event.time)
        if event.size is not None and event.content_type:
            return True, ObjectDoc(event.workspace, event.key, event.size, event.etag, event.content_type,
                                   event.time, event.time)
        try:
            route = await self.lookup(event.workspace)
            if route is None:
                return True, None  # the workspace is gone
            async with self._heads:
                head: ObjectHead | None = await head_object(route, event.key)
        except NodeError as exc:
            log.warning("cannot HEAD %s/%s: %s", event.workspace, event.key, exc)
            return False, None
        if head is None:
            return True, None  # deleted since; its delete event follows
        return True, ObjectDoc(event.workspace, event.key, head.size, head.etag, head.content_type,
                               head.last_modified or event.time, event.time)

    async def claim_stale(self) -> None:
        """Take over entries another (dead) consumer left pending; drop those that failed too often."""
        rows = await self.redis.xpending_range(self.stream, self.group, "-", "+", self.batch,
                                               idle=self.claim_idle_ms)
        if not rows:
            return
        poisoned = [r["message_id"] for r in rows if r["times_delivered"] >= self.max_deliveries]
        if poisoned:
            await self.redis.xack(self.stream, self.group, *poisoned)
            self.stats.dropped += len(poisoned)
            log.warning("dropped %d index events after %d failed deliveries; the next crawl reconciles them",
                        len(poisoned), self.max_deliveries)
        stale = [r["message_id"] for r in rows if r["times_delivered"] < self.max_deliveries]
        if stale:
            await self.redis.xclaim(self.stream, self.group, self.name, self.claim_idle_ms, stale, justid=True)
            self._pending_cursor = "0"
        await self._forget_dead_consumers()

    async def _forget_dead_consumers(self, idle_ms: int = 3_600_000) -> None:
        for consumer in await self.redis.xinfo_consumers(self.stream, self.group):
            if consumer["name"] != self.name and consumer["pending"] == 0 and consumer["idle"] > idle_ms:
                await self.redis.xgroup_delconsumer(self.stream, self.group, consumer["name"])


def _entries(reply) -> list[tuple[str, dict | None]]:
    """XREADGROUP's (RESP2) reply as [(entry id, fields, or None for an entry trimmed from the stream)]."""
    return [(entry_id, fields) for _, entries in reply or () for entry_id, fields in entries]
