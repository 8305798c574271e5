"""Reconciling the index with what the nodes actually hold, one workspace at a time.

Data written around the proxy (or before wio existed, as in unmanaged roots) never produced an event,
and events can be dropped; the crawler makes the index right anyway. It lists a workspace's prefix
page by page (ListObjectsV2, S3's UTF-8 byte order) and for each page, taken at time ``version``:

- keys listed but not indexed, or indexed with another size/ETag, are HEADed (for the content type)
  and upserted with ``version``;
- keys indexed in the page's key range but not listed are removed, unless an event newer than
  ``version`` wrote them meanwhile.

After each page the last key is checkpointed in ``search_crawls``, so a crawl interrupted by a crash,
a node outage or a restart resumes where it stopped. The same row reports progress (listed, changed,
removed) and carries crawl requests made through the admin API.
"""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Awaitable, Callable

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from indexer.backend import SearchBackend
from indexer.documents import Fingerprint, ObjectDoc, Removal
from indexer.storage import PAGE_SIZE, WorkspaceRoute, head_object, list_page

__all__ = ["Crawler", "CrawlProgress", "due_workspaces", "request_crawl", "CRAWL_LOCK"]

log = logging.getLogger("wio.indexer")
CRAWL_LOCK = 7270103  # pg advisory lock: one crawler at a time across indexer processes
RETRY_FAILED_SECONDS = 60


@dataclass
class CrawlProgress:
    workspace: str
    listed: int = 0
    changed: int = 0
    removed: int = 0
    pages: int = 0
    resumed_after: str | None = None
    done: bool = False


ProgressCallback = Callable[[CrawlProgress], Awaitable[None] | None]


async def request_crawl(conn: AsyncConnection | AsyncSession, workspaces: list[str]) -> None:
    """Mark workspaces to be crawled as soon as possible (in the caller's transaction)."""
    await conn.execute(text("INSERT INTO search_crawls (workspace, requested_at) "
                            "SELECT unnest(CAST(:names AS text[])), now() "
                            "ON CONFLICT (workspace) DO UPDATE SET requested_at = now()"), {"names": workspaces})


async def due_workspaces(engine: AsyncEngine, every_seconds: float) -> list[str]:
    """Workspaces to crawl now: never crawled, requested, interrupted, failed a while ago, or simply old."""
    sql = text("""
        SELECT w.name FROM workspaces w LEFT JOIN search_crawls c ON c.workspace = w.name
        WHERE c.workspace IS NULL OR c.requested_at IS NOT NULL
           OR (c.finished_at IS NULL AND c.started_at IS NOT NULL)
           OR c.finished_at < now() - make_interval(secs => CASE WHEN c.error IS NULL THEN CAST(:every AS float8)
                                                       ELSE CAST(:retry AS float8) END)
        ORDER BY c.requested_at IS NULL, c.finished_at NULLS FIRST, w.name""")
    async with engine.connect() as conn:
        return list((await conn.execute(sql, {"every": every_seconds, "retry": RETRY_FAILED_SECONDS})).scalars())


class Crawler:
    def __init__(self, engine: AsyncEngine, backend: SearchBackend, *, page_size: int = PAGE_SIZE,
                 head_concurrency: int = 8, on_progress: ProgressCallback | None = None,
                 log_every_seconds: float = 10.0):
        self.engine, self.backend, self.page_size = engine, backend, page_size
        self.on_progress, self.log_every = on_progress, log_every_seconds
        self._heads = asyncio.Semaphore(head_concurrency)

    async def crawl(self, route: WorkspaceRoute) -> CrawlProgress:
        """Reconcile one workspace, resuming an interrupted crawl of it; errors are recorded and raised."""
        progress = await self._start(route.workspace)
        after = progress.resumed_after or ""
        if progress.resumed_after is not None:
            log.info("crawl %s: resuming after %r", route.workspace, after)
        last_log = time.monotonic()
        try:
            while True:
                version = time.time()
                page, upto = await list_page(route, after, self.page_size)
                changed, removed = await self._reconcile(route, page, after, upto, version)
                progress.pages += 1
                progress.listed += len(page)
                progress.changed += changed
                progress.removed += removed
                progress.done = upto is None
                await self._checkpoint(progress, upto)
                if self.on_progress is not None:
                    maybe = self.on_progress(progress)
                    if maybe is not None:
                        await maybe
                if progress.done:
                    break
                after = upto
                if time.monotonic() - last_log >= self.log_every:
                    log.info("crawl %s: %d listed, %d changed, %d removed so far", route.workspace,
                             progress.listed, progress.changed, progress.removed)
                    last_log = time.monotonic()
        except Exception as exc:
            await self._failed(route.workspace, f"{type(exc).__name__}: {exc}")
            raise
        log.info("crawl %s: done, %d listed, %d changed, %d removed", route.workspace, progress.listed,
                 progress.changed, progress.removed)
        return progress

    async def _reconcile(self, route: WorkspaceRoute, page, after: str, upto: str | None,
                         version: float) -> tuple[int, int]:
        stored = await self.backend.fingerprints(route.workspace, [item.key for item in page]) if page else {}
        stale = [item for item in page if stored.get(item.key) != Fingerprint(item.size, item.etag)]
        heads = await asyncio.gather(*(self._head(route, item.key) for item in stale))
        docs, removals = [], []
        for item, head in zip(stale, heads, strict=True):
            if head is None:  # deleted between the listing and the HEAD
                removals.append(Removal(route.workspace, item.key, version))
            else:
                docs.append(ObjectDoc(route.workspace, item.key, head.size, head.etag, head.content_type,
                                      head.last_modified or item.last_modified, version))
        await self.backend.upsert_many(docs)
        await self.backend.delete_many(removals)
        removed = await self.backend.remove_unlisted(route.workspace, after, upto, [item.key for item in page],
                                                     version)
        return len(docs), removed + sum(1 for r in removals if r.key in stored)

    async def _head(self, route: WorkspaceRoute, key: str):
        async with self._heads:
            return await head_object(route, key)

    async def _start(self, workspace: str) -> CrawlProgress:
        async with self.engine.begin() as conn:
            row = (await conn.execute(text(
                "SELECT after_key, listed, changed, removed FROM search_crawls "
                "WHERE workspace = :w AND after_key IS NOT NULL FOR UPDATE"), {"w": workspace})).first()
            if row is not None:
                await conn.execute(text("UPDATE search_crawls SET finished_at = NULL, error = NULL "
                                        "WHERE workspace = :w"), {"w": workspace})
                return CrawlProgress(workspace, listed=row.listed, changed=row.changed, removed=row.removed,
                                     resumed_after=row.after_key)
            await conn.execute(text("""
                INSERT INTO search_crawls (workspace, started_at) VALUES (:w, now())
                ON CONFLICT (workspace) DO UPDATE SET started_at = now(), finished_at = NULL, after_key = NULL,
                    listed = 0, changed = 0, removed = 0, error = NULL"""), {"w": workspace})
        return CrawlProgress(workspace)

    async def _checkpoint(self, progress: CrawlProgress, upto: str | None) -> None:
        finish = ", finished_at = now(), requested_at = CASE WHEN requested_at <= started_at THEN NULL " \
                 "ELSE requested_at END" if upto is None else ""
        async with self.engine.begin() as conn:
            await conn.execute(text(f"UPDATE search_crawls SET after_key = :after, listed = :listed, "
                                    f"changed = :changed, removed = :removed{finish} WHERE workspace = :w"),
                               {"after": upto, "listed": progress.listed, "changed": progress.changed,
                                "removed": progress.removed, "w": progress.workspace})

    async def _failed(self, workspace: str, error: str) -> None:
        log.warning("crawl %s failed (it resumes from its checkpoint later): %s", workspace, error)
        async with self.engine.begin() as conn:
            await conn.execute(text("UPDATE search_crawls SET finished_at = now(), error = :e, requested_at = NULL "
                                    "WHERE workspace = :w"), {"e": error[:1000], "w": workspace})
