"""The embedded search backend: PostgreSQL full-text search over ``search_objects`` (migration 0003).

Each object row carries a ``tsvector`` of its key's and content type's words ('simple' configuration:
no stemming, no stop words — paths are not prose). A query's words become a prefix ``tsquery``
(``run:* & csv:*``) answered by the GIN index; access filters become ``workspace = ANY(...)`` and
``(workspace = $w AND key LIKE $prefix%)`` terms answered by the primary key's btree (keys use the "C"
collation, so LIKE prefixes are index ranges and ORDER BY is S3's byte order).

Writes are set-based (``unnest`` of column arrays): one statement per batch, whatever its size.
"""
from __future__ import annotations

from typing import Any, Sequence

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from indexer.backend import SearchBackend
from indexer.documents import (AGGREGATIONS, Bucket, Fingerprint, ObjectDoc, Readable, Removal, SearchFilters,
                               SearchHit, SearchResult, extension_of, words)

__all__ = ["PostgresBackend", "like_prefix"]

_UPSERT = text("""
    INSERT INTO search_objects AS o (workspace, key, size, etag, content_type, extension, last_modified, version,
                                     terms)
    SELECT d.workspace, d.key, d.size, d.etag, d.content_type, d.extension, to_timestamp(d.last_modified),
           d.version, to_tsvector('simple', d.words)
    FROM unnest(CAST(:workspace AS text[]), CAST(:key AS text[]), CAST(:size AS bigint[]), CAST(:etag AS text[]),
                CAST(:content_type AS text[]), CAST(:extension AS text[]), CAST(:last_modified AS float8[]),
                CAST(:version AS float8[]), CAST(:words AS text[]))
         AS d(workspace, key, size, etag, content_type, extension, last_modified, version, words)
    WHERE NOT EXISTS (SELECT 1 FROM search_tombstones t
                      WHERE t.workspace = d.workspace AND t.key = d.key AND t.version >= d.version)
    ON CONFLICT (workspace, key) DO UPDATE
        SET size = excluded.size, etag = excluded.etag, content_type = excluded.content_type,
            extension = excluded.extension, last_modified = excluded.last_modified, version = excluded.version,
            terms = excluded.terms
        WHERE o.version <= excluded.version""")

_DELETE = text("""
    WITH r AS (SELECT * FROM unnest(CAST(:workspace AS text[]), CAST(:key AS text[]), CAST(:version AS float8[]))
                        AS r(workspace, key, version)),
         gone AS (DELETE FROM search_objects o USING r
                  WHERE o.workspace = r.workspace AND o.key = r.key AND o.version <= r.version)
    INSERT INTO search_tombstones AS t (workspace, key, version) SELECT workspace, key, version FROM r
    ON CONFLICT (workspace, key) DO UPDATE SET version = excluded.version WHERE t.version < excluded.version""")

_REMOVE_UNLISTED = """
    WITH gone AS (DELETE FROM search_objects o
                  WHERE o.workspace = :workspace AND o.key > :after {upto}
                    AND o.key <> ALL(CAST(:listed AS text[])) AND o.version < :version
                  RETURNING o.workspace, o.key),
         stones AS (INSERT INTO search_tombstones AS t (workspace, key, version)
                    SELECT workspace, key, :version FROM gone
                    ON CONFLICT (workspace, key) DO UPDATE SET version = excluded.version
                        WHERE t.version < excluded.version)
    SELECT count(*) FROM gone"""

# The distinct workspaces of the index by skipping along the primary key (one probe per workspace).
_INDEXED_WORKSPACES = text("""
    WITH RECURSIVE w(workspace) AS (
        (SELECT workspace FROM search_objects ORDER BY workspace LIMIT 1)
        UNION ALL
        SELECT (SELECT o.workspace FROM search_objects o WHERE o.workspace > w.workspace
                ORDER BY o.workspace LIMIT 1)
        FROM w WHERE w.workspace IS NOT NULL)
    SELECT workspace FROM w WHERE workspace IS NOT NULL""")

def like_prefix(prefix: str) -> str:
    """A LIKE pattern matching every string that starts with ``prefix`` (backslash is LIKE's escape)."""
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _latest(items: Sequence[Any]) -> list[Any]:
    """One item per (workspace, key): the newest version (ON CONFLICT may not touch a row twice)."""
    newest: dict[tuple[str, str], Any] = {}
    for item in items:
        seen = newest.get((item.workspace, item.key))
        if seen is None or item.version >= seen.version:
            newest[(item.workspace, item.key)] = item
    return list(newest.values())


# With more text matches than this, a page is found faster by walking the grants' key ranges in order.
SORT_MATCHES_UP_TO = 10_000


class _Matching:
    """The rows a caller may read that match the filters, as FROM items, with their bind parameters.

    ``filtered``: one WHERE clause; PostgreSQL intersects the GIN bitmap of the words with the primary
    key ranges of the grants, then sorts what matched. ``merged``: one UNION ALL branch per grant (all
    whole workspaces together, then each readable prefix); grants are disjoint so no row appears twice,
    and each branch is a range of the primary key, merged in key order to stop after one page.
    """

    def __init__(self, columns: str, words: list[str]) -> None:
        self.columns, self.words = columns, words
        self.params: dict[str, Any] = {}
        self.grants: list[str] = []
        self.conditions: list[str] = []

    def bind(self, value: Any) -> str:
        name = f"p{len(self.params)}"
        self.params[name] = value
        return ":" + name

    @property
    def filtered(self) -> str:
        where = " AND ".join(["(" + " OR ".join(self.grants) + ")", *self.conditions])
        return f"(SELECT {self.columns} FROM search_objects WHERE {where}) AS o"

    @property
    def merged(self) -> str:
        return "(" + " UNION ALL ".join(f"SELECT {self.columns} FROM search_objects WHERE "
                                        + " AND ".join([grant, *self.conditions]) for grant in self.grants) + ") AS o"


def tsquery(query_words: list[str]) -> str:
    """Every word must match: words with letters as prefixes, plain numbers exactly (a run number
    ``42`` should not find ``420``, and a one-digit prefix would match a large part of all numbers)."""
    return " & ".join(w if w.isdigit() else w + ":*" for w in query_words)


def _matching(filters: SearchFilters, readable: Readable, columns: str) -> _Matching | None:
    """None when nothing can match (the caller may read nothing)."""
    readable = readable.only(filters.workspace)
    if not readable.prefixes:
        return None
    m = _Matching(columns, filters.words)
    if m.words:
        m.conditions.append(f"terms @@ to_tsquery('simple', {m.bind(tsquery(m.words))})")
    if filters.prefix:
        m.conditions.append(f"key LIKE {m.bind(like_prefix(filters.prefix))}")
    if filters.content_type.endswith("/*"):
        m.conditions.append(f"content_type LIKE {m.bind(like_prefix(filters.content_type[:-1]))}")
    elif filters.content_type:
        m.conditions.append(f"content_type = {m.bind(filters.content_type)}")
    if filters.min_size is not None:
        m.conditions.append(f"size >= {m.bind(filters.min_size)}")
    if filters.max_size is not None:
        m.conditions.append(f"size <= {m.bind(filters.max_size)}")
    if filters.modified_after is not None:
        m.conditions.append(f"last_modified > {m.bind(filters.modified_after)}")
    if readable.whole:
        m.grants.append(f"workspace = ANY(CAST({m.bind(readable.whole)} AS text[]))")
    for workspace, prefix in readable.partial:
        m.grants.append(f"(workspace = {m.bind(workspace)} AND key LIKE {m.bind(like_prefix(prefix))})")
    return m


class PostgresBackend(SearchBackend):
    name = "postgresql"

    def __init__(self, engine: AsyncEngine, *, owns_engine: bool = False):
        self.engine, self._owns_engine = engine, owns_engine

    @classmethod
    def from_url(cls, database_url: str) -> "PostgresBackend":
        return cls(create_async_engine(database_url, pool_size=5, max_overflow=5, pool_pre_ping=True),
                   owns_engine=True)

    async def close(self) -> None:
        if self._owns_engine:
            await self.engine.dispose()

    async def upsert_many(self, docs: Sequence[ObjectDoc]) -> None:
        docs = _latest(docs)
        if not docs:
            return
        params = {"workspace": [d.workspace for d in docs], "key": [d.key for d in docs],
                  "size": [d.size for d in docs], "etag": [d.etag for d in docs],
                  "content_type": [d.content_type for d in docs], "extension": [extension_of(d.key) for d in docs],
                  "last_modified": [d.last_modified for d in docs], "version": [d.version for d in docs],
                  "words": [" ".join(words(d.key) + words(d.content_type)) for d in docs]}
        async with self.engine.begin() as conn:
            await conn.execute(_UPSERT, params)

    async def delete_many(self, removals: Sequence[Removal]) -> None:
        removals = _latest(removals)
        if not removals:
            return
        async with self.engine.begin() as conn:
            await conn.execute(_DELETE, {"workspace": [r.workspace for r in removals],
                                         "key": [r.key for r in removals],
                                         "version": [r.version for r in removals]})

    async def remove_unlisted(self, workspace: str, after: str, upto: str | None, listed: Sequence[str],
                              version: float) -> int:
        params = {"workspace": workspace, "after": after, "listed": list(listed), "version": version}
        sql = _REMOVE_UNLISTED.format(upto="" if upto is None else "AND o.key <= :upto")
        if upto is not None:
            params["upto"] = upto
        async with self.engine.begin() as conn:
            return int((await conn.execute(text(sql), params)).scalar_one())

    async def drop_workspaces(self, workspaces: Sequence[str]) -> int:
        if not workspaces:
            return 0
        params = {"names": list(workspaces)}
        async with self.engine.begin() as conn:
            await conn.execute(text("DELETE FROM search_tombstones WHERE workspace = ANY(CAST(:names AS text[]))"),
                               params)
            result = await conn.execute(
                text("DELETE FROM search_objects WHERE workspace = ANY(CAST(:names AS text[]))"), params)
            return result.rowcount

    async def indexed_workspaces(self) -> list[str]:
        async with self.engine.connect() as conn:
            return list((await conn.execute(_INDEXED_WORKSPACES)).scalars())

    async def purge_tombstones(self, older_than: float) -> int:
        async with self.engine.begin() as conn:
            result = await conn.execute(text("DELETE FROM search_tombstones WHERE version < :t"), {"t": older_than})
            return result.rowcount

    async def fingerprints(self, workspace: str, keys: Sequence[str]) -> dict[str, Fingerprint]:
        async with self.engine.connect() as conn:
            rows = await conn.execute(text("SELECT key, size, etag FROM search_objects "
                                           "WHERE workspace = :w AND key = ANY(CAST(:keys AS text[]))"),
                                      {"w": workspace, "keys": list(keys)})
            return {key: Fingerprint(size, etag) for key, size, etag in rows}

    async def search(self, filters: SearchFilters, readable: Readable, limit: int, offset: int) -> SearchResult:
        m = _matching(filters, readable, "workspace, key, size, last_modified, content_type")
        if m is None:
            return SearchResult(0, [])
        columns = "o.workspace, o.key, o.size, o.last_modified, o.content_type"
        order = "ORDER BY o.workspace, o.key LIMIT :limit OFFSET :offset"
        page_params = {**m.params, "limit": limit, "offset": offset}
        async with self.engine.begin() as conn:
            if not m.words:
                rows = await conn.execute(text(f"SELECT {columns} FROM {m.merged} {order}"), page_params)
                hits = [SearchHit(*row) for row in rows]
                if (offset == 0 or hits) and len(hits) < limit:
                    return SearchResult(offset + len(hits), hits)  # the last page: no need to count
                total = await conn.execute(text(f"SELECT count(*) FROM {m.merged}"), m.params)
                return SearchResult(int(total.scalar_one()), hits)
            # Words: count the matches from the GIN bitmap first. Few of them: sort those. Many: they are
            # dense enough that walking the grants' key ranges in order finds a page quickly.
            total = int((await conn.execute(text(f"SELECT count(*) FROM {m.filtered}"), m.params)).scalar_one())
            if total <= offset:
                return SearchResult(total, [])
            if total <= SORT_MATCHES_UP_TO:
                await conn.execute(text("SET LOCAL enable_indexscan = off"))
                rows = await conn.execute(text(f"SELECT {columns} FROM {m.filtered} {order}"), page_params)
            else:
                await conn.execute(text("SET LOCAL enable_bitmapscan = off"))
                rows = await conn.execute(text(f"SELECT {columns} FROM {m.merged} {order}"), page_params)
            return SearchResult(total, [SearchHit(*row) for row in rows])

    async def aggregate(self, by: str, filters: SearchFilters, readable: Readable) -> list[Bucket]:
        if by not in AGGREGATIONS:
            raise ValueError(f"cannot aggregate by {by!r}")
        m = _matching(filters, readable, f"{by}, size")
        if m is None:
            return []
        source = m.filtered if m.words else m.merged
        sql = text(f"SELECT o.{by}, count(*), coalesce(sum(o.size), 0) FROM {source} GROUP BY o.{by}")
        async with self.engine.connect() as conn:
            rows = await conn.execute(sql, m.params)
            return [Bucket(key, int(objects), int(size)) for key, objects, size in rows]
