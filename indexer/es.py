"""The Elasticsearch backend (``WIO_ELASTICSEARCH_URL``), with the official async client.

One document per object, id = SHA-1 of ``workspace/key`` (keys may be longer than an id may be).
Ordering of writes uses Elasticsearch's own external versioning: every write carries
``version_type=external_gte`` with the observation time in milliseconds, so an older event is refused
with a conflict (ignored here) and a delete leaves a versioned tombstone for ``index.gc_deletes``.

The mapping copies the key and the content type into ``terms``, a text field split into runs of
letters and digits (like documents.words); each query word must prefix-match one of its terms.
``workspace``, ``key``, ``extension`` and ``content_type`` are keywords for filters, prefix queries,
byte-order sorting and composite aggregations (exact, paged through every bucket).
"""
from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from typing import Any, Sequence

from elasticsearch import AsyncElasticsearch, BadRequestError, NotFoundError
from elasticsearch import ApiError as EsApiError
from elasticsearch import TransportError
from elasticsearch.helpers import async_bulk

from indexer.backend import BackendUnavailable, SearchBackend
from indexer.documents import (AGGREGATIONS, Bucket, Fingerprint, ObjectDoc, Readable, Removal, SearchFilters,
                               SearchHit, SearchResult, extension_of)

__all__ = ["ElasticsearchBackend", "DEFAULT_INDEX", "MAPPINGS", "INDEX_SETTINGS", "doc_id"]

DEFAULT_INDEX = "wio-objects"
INDEX_SETTINGS = {
    "index": {"gc_deletes": "1h"},  # how long delete tombstones refuse older writes
    "analysis": {
        "tokenizer": {"words": {"type": "pattern", "pattern": "[^\\p{L}\\p{N}]+"}},
        "analyzer": {"words": {"type": "custom", "tokenizer": "words", "filter": ["lowercase"]}},
    },
}
MAPPINGS = {
    "dynamic": "strict",
    "properties": {
        "workspace": {"type": "keyword"},
        "key": {"type": "keyword", "copy_to": "terms"},
        "content_type": {"type": "keyword", "copy_to": "terms"},
        "extension": {"type": "keyword"},
        "terms": {"type": "text", "analyzer": "words"},
        "size": {"type": "long"},
        "etag": {"type": "keyword", "index": False},
        "last_modified": {"type": "date", "format": "epoch_millis"},
    },
}
_IGNORED_BULK_STATUS = {404, 409}  # delete of an absent doc; a write older than the stored version


def doc_id(workspace: str, key: str) -> str:
    return hashlib.sha1(f"{workspace}/{key}".encode()).hexdigest()


def _ms(epoch: float) -> int:
    return int(round(epoch * 1000))


def _access_query(readable: Readable) -> dict:
    should: list[dict] = []
    if readable.whole:
        should.append({"terms": {"workspace": readable.whole}})
    for workspace, prefix in readable.partial:
        should.append({"bool": {"filter": [{"term": {"workspace": workspace}}, {"prefix": {"key": prefix}}]}})
    return {"bool": {"should": should, "minimum_should_match": 1}}


def _query(filters: SearchFilters, readable: Readable) -> dict | None:
    readable = readable.only(filters.workspace)
    if not readable.prefixes:
        return None
    clauses: list[dict] = [_access_query(readable)]
    # As in PostgreSQL (pg.tsquery): words with letters match as prefixes, plain numbers exactly.
    clauses += [{"term" if word.isdigit() else "prefix": {"terms": word}} for word in filters.words]
    if filters.prefix:
        clauses.append({"prefix": {"key": filters.prefix}})
    if filters.content_type.endswith("/*"):
        clauses.append({"prefix": {"content_type": filters.content_type[:-1]}})
    elif filters.content_type:
        clauses.append({"term": {"content_type": filters.content_type}})
    size: dict[str, int] = {}
    if filters.min_size is not None:
        size["gte"] = filters.min_size
    if filters.max_size is not None:
        size["lte"] = filters.max_size
    if size:
        clauses.append({"range": {"size": size}})
    if filters.modified_after is not None:
        clauses.append({"range": {"last_modified": {"gt": _ms(filters.modified_after.timestamp())}}})
    return {"bool": {"filter": clauses}}


class ElasticsearchBackend(SearchBackend):
    name = "elasticsearch"

    def __init__(self, url: str, index: str = DEFAULT_INDEX, *, request_timeout: float = 30):
        self.client = AsyncElasticsearch(url, request_timeout=request_timeout)
        self.index = index

    async def _call(self, coro) -> Any:
        try:
            return await coro
        except (TransportError, EsApiError) as exc:
            raise BackendUnavailable(f"elasticsearch: {exc}") from None

    async def prepare(self) -> None:
        if await self._call(self.client.indices.exists(index=self.index)):
            return
        try:
            await self.client.indices.create(index=self.index, settings=INDEX_SETTINGS, mappings=MAPPINGS)
        except BadRequestError as exc:
            if exc.error != "resource_already_exists_exception":  # another indexer made it first
                raise BackendUnavailable(f"elasticsearch refused the index: {exc}") from None
        except (TransportError, EsApiError) as exc:
            raise BackendUnavailable(f"elasticsearch: {exc}") from None

    async def close(self) -> None:
        await self.client.close()

    async def drop_index(self) -> None:
        await self._call(self.client.indices.delete(index=self.index, ignore_unavailable=True))

    async def refresh(self) -> None:
        await self._call(self.client.indices.refresh(index=self.index))

    async def _bulk(self, actions: list[dict]) -> None:
        if not actions:
            return
        _, errors = await self._call(async_bulk(self.client, actions, raise_on_error=False))
        failed = [e for e in errors if next(iter(e.values())).get("status") not in _IGNORED_BULK_STATUS]
        if failed:
            raise BackendUnavailable(f"elasticsearch refused {len(failed)} writes, e.g. {failed[0]}")

    async def upsert_many(self, docs: Sequence[ObjectDoc]) -> None:
        await self._bulk([{
            "_op_type": "index", "_index": self.index, "_id": doc_id(d.workspace, d.key),
            "version": _ms(d.version), "version_type": "external_gte",
            "_source": {"workspace": d.workspace, "key": d.key, "content_type": d.content_type,
                        "extension": extension_of(d.key), "size": d.size, "etag": d.etag,
                        "last_modified": _ms(d.last_modified)},
        } for d in docs])

    async def delete_many(self, removals: Sequence[Removal]) -> None:
        await self._bulk([{"_op_type": "delete", "_index": self.index, "_id": doc_id(r.workspace, r.key),
                           "version": _ms(r.version), "version_type": "external_gte"} for r in removals])

    async def remove_unlisted(self, workspace: str, after: str, upto: str | None, listed: Sequence[str],
                              version: float) -> int:
        key_range: dict[str, str] = {"gt": after}
        if upto is not None:
            key_range["lte"] = upto
        query = {"bool": {"filter": [{"term": {"workspace": workspace}}, {"range": {"key": key_range}}],
                          "must_not": [{"terms": {"key": list(listed)}}] if listed else []}}
        keys: list[str] = []
        search_after = None
        while True:  # candidates; the versioned deletes below keep anything written after the listing
            resp = await self._call(self.client.search(
                index=self.index, query=query, sort=[{"key": "asc"}], size=1000, source_includes=["key"],
                search_after=search_after, ignore_unavailable=True))
            hits = resp["hits"]["hits"]
            keys += [h["_source"]["key"] for h in hits]
            if len(hits) < 1000:
                break
            search_after = hits[-1]["sort"]
        await self.delete_many([Removal(workspace, key, version) for key in keys])
        return len(keys)

    async def drop_workspaces(self, workspaces: Sequence[str]) -> int:
        if not workspaces:
            return 0
        resp = await self._call(self.client.delete_by_query(
            index=self.index, query={"terms": {"workspace": list(workspaces)}}, conflicts="proceed",
            ignore_unavailable=True, refresh=True))
        return int(resp.get("deleted", 0))

    async def indexed_workspaces(self) -> list[str]:
        return [b.key for b in await self._composite("workspace", {"match_all": {}})]

    async def purge_tombstones(self, older_than: float) -> int:
        return 0  # Elasticsearch forgets delete tombstones by itself after index.gc_deletes

    async def fingerprints(self, workspace: str, keys: Sequence[str]) -> dict[str, Fingerprint]:
        if not keys:
            return {}
        resp = await self._call(self.client.mget(index=self.index, ids=[doc_id(workspace, k) for k in keys],
                                                 source_includes=["key", "size", "etag"]))
        return {d["_source"]["key"]: Fingerprint(d["_source"]["size"], d["_source"]["etag"])
                for d in resp["docs"] if d.get("found")}

    async def search(self, filters: SearchFilters, readable: Readable, limit: int, offset: int) -> SearchResult:
        query = _query(filters, readable)
        if query is None:
            return SearchResult(0, [])
        try:
            resp = await self.client.search(
                index=self.index, query=query, sort=[{"workspace": "asc"}, {"key": "asc"}], from_=offset,
                size=limit, track_total_hits=True,
                source_includes=["workspace", "key", "size", "last_modified", "content_type"])
        except NotFoundError:
            return SearchResult(0, [])  # nothing indexed yet
        except (TransportError, EsApiError) as exc:
            raise BackendUnavailable(f"elasticsearch: {exc}") from None
        hits = [SearchHit(s["workspace"], s["key"], s["size"],
                          datetime.fromtimestamp(s["last_modified"] / 1000, timezone.utc), s["content_type"])
                for s in (h["_source"] for h in resp["hits"]["hits"])]
        return SearchResult(resp["hits"]["total"]["value"], hits)

    async def aggregate(self, by: str, filters: SearchFilters, readable: Readable) -> list[Bucket]:
        if by not in AGGREGATIONS:
            raise ValueError(f"cannot aggregate by {by!r}")
        query = _query(filters, readable)
        return [] if query is None else await self._composite(by, query)

    async def _composite(self, field: str, query: dict) -> list[Bucket]:
        """Every bucket of ``field``, exact: a composite aggregation paged to its end."""
        buckets: list[Bucket] = []
        after = None
        while True:
            composite: dict[str, Any] = {"size": 1000, "sources": [{"k": {"terms": {"field": field}}}]}
            if after is not None:
                composite["after"] = after
            try:
                resp = await self.client.search(index=self.index, query=query, size=0, aggs={
                    "by": {"composite": composite, "aggs": {"bytes": {"sum": {"field": "size"}}}}})
            except NotFoundError:
                return []  # nothing indexed yet
            except (TransportError, EsApiError) as exc:
                raise BackendUnavailable(f"elasticsearch: {exc}") from None
            agg = resp["aggregations"]["by"]
            buckets += [Bucket(b["key"]["k"], b["doc_count"], int(round(b["bytes"]["value"]))) for b in agg["buckets"]]
            after = agg.get("after_key")
            if not agg["buckets"] or after is None:
                return buckets
