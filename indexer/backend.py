"""The search backend interface; PostgreSQL full-text (indexer/pg.py) and Elasticsearch (indexer/es.py).

Backends store what they are told and answer what they are asked, filtered by a ``Readable`` that the
caller computed from PostgreSQL at query time: permissions are never copied into the index, so a
revoked share hides its objects on the very next query.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Sequence

from indexer.documents import Bucket, Fingerprint, ObjectDoc, Readable, Removal, SearchFilters, SearchResult
from foundation.settings import Settings

__all__ = ["SearchBackend", "BackendUnavailable", "open_backend"]


class BackendUnavailable(Exception):
    """The search engine could not be reached or refused the request."""


class SearchBackend(ABC):
    name: str

    async def prepare(self) -> None:  # noqa: B027 - an optional hook: most backends need nothing
        """Create what the backend needs (index, mapping); the indexer calls it at start-up."""

    @abstractmethod
    async def close(self) -> None: ...

    # writes ---------------------------------------------------------------------------------------
    @abstractmethod
    async def upsert_many(self, docs: Sequence[ObjectDoc]) -> None:
        """Insert or replace by (workspace, key), unless the stored state or a tombstone is newer."""

    @abstractmethod
    async def delete_many(self, removals: Sequence[Removal]) -> None:
        """Remove by (workspace, key) unless the stored state is newer; remember the deletion's version."""

    @abstractmethod
    async def remove_unlisted(self, workspace: str, after: str, upto: str | None, listed: Sequence[str],
                              version: float) -> int:
        """Crawler reconcile: drop indexed keys in (after, upto] (upto None = no end) that a listing taken
        at ``version`` did not return. Returns how many were removed."""

    @abstractmethod
    async def drop_workspaces(self, workspaces: Sequence[str]) -> int:
        """Forget everything about these workspaces (deleted ones); returns how many objects went."""

    @abstractmethod
    async def indexed_workspaces(self) -> list[str]: ...

    @abstractmethod
    async def purge_tombstones(self, older_than: float) -> int: ...

    # reads ----------------------------------------------------------------------------------------
    @abstractmethod
    async def fingerprints(self, workspace: str, keys: Sequence[str]) -> dict[str, Fingerprint]: ...

    @abstractmethod
    async def search(self, filters: SearchFilters, readable: Readable, limit: int, offset: int) -> SearchResult:
        """Hits ordered by (workspace, key), UTF-8 byte order."""

    @abstractmethod
    async def aggregate(self, by: str, filters: SearchFilters, readable: Readable) -> list[Bucket]:
        """Exact object counts and byte sums grouped by ``by`` (one of documents.AGGREGATIONS), unordered."""


def open_backend(settings: Settings, *, es_index: str | None = None) -> SearchBackend:
    """Elasticsearch when ``WIO_ELASTICSEARCH_URL`` is set, else the embedded PostgreSQL backend."""
    if settings.elasticsearch_url:
        from indexer.es import DEFAULT_INDEX, ElasticsearchBackend
        return ElasticsearchBackend(settings.elasticsearch_url, es_index or DEFAULT_INDEX)
    from indexer.pg import PostgresBackend
    return PostgresBackend.from_url(settings.database_url)
