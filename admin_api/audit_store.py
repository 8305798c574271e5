"""Where the audit trail is kept: PostgreSQL (table ``audit_log``, migration 0004) or Elasticsearch.

Both stores take batches of rows made from ``wio:audit`` stream entries (field contract in
``foundation/events.py``) and answer the API's query newest first. Writes are idempotent on the stream
entry id, so a batch delivered twice (the consumer died before acknowledging it) is stored once.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Protocol

import aiohttp
from sqlalchemy import BigInteger, Column, DateTime, Float, Identity, Integer, String, Table, Text, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import async_sessionmaker

from policy.models import Base

__all__ = ["audit_log", "AuditQuery", "AuditStore", "PostgresAuditStore", "ElasticsearchAuditStore", "row_from_entry",
           "entry_json", "es_search_body", "AuditStoreError"]

audit_log = Table(
    "audit_log", Base.metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("stream_id", String(48), nullable=False, unique=True),
    Column("time", DateTime(timezone=True), nullable=False),
    Column("request_id", Text, nullable=False),
    Column("username", Text, nullable=False),
    Column("access_key", Text, nullable=False),
    Column("workspace", Text, nullable=False),
    Column("operation", Text, nullable=False),
    Column("key", Text, nullable=False),
    Column("decision", String(8), nullable=False),
    Column("reason", Text, nullable=False),
    Column("status", Integer, nullable=False),
    Column("bytes_in", BigInteger, nullable=False),
    Column("bytes_out", BigInteger, nullable=False),
    Column("client", Text, nullable=False),
    Column("duration_ms", Float, nullable=False),
)

_TEXT = ("request_id", "user", "access_key", "workspace", "operation", "key", "reason", "client")
# Unauthenticated requests put whatever the client sent into some fields; bound them.
_MAX_TEXT = 2048


class AuditStoreError(Exception):
    """The store could not take or answer a request (it is retried / reported as 503)."""


def _text(value: str) -> str:
    return value.replace("\x00", "")[:_MAX_TEXT]


def _int(value: str | None, limit: int = 2 ** 63 - 1) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        return 0
    return number if 0 <= number <= limit else 0


def row_from_entry(stream_id: str, fields: dict[str, str]) -> dict:
    """A stream entry (already decoded to str) as an ``audit_log`` row; malformed values become defaults."""
    try:
        when = datetime.fromtimestamp(float(fields.get("time", "")), timezone.utc)
    except (TypeError, ValueError, OverflowError, OSError):
        # The entry id starts with the milliseconds at which Redis took it.
        when = datetime.fromtimestamp(int(stream_id.split("-", 1)[0]) / 1000, timezone.utc)
    try:
        duration = float(fields.get("duration_ms", "0"))
    except ValueError:
        duration = 0.0
    text = {name: _text(fields.get(name, "")) for name in _TEXT}
    return {
        "stream_id": stream_id, "time": when, "request_id": text["request_id"], "username": text["user"],
        "access_key": text["access_key"], "workspace": text["workspace"], "operation": text["operation"],
        "key": text["key"], "decision": "allow" if fields.get("decision") == "allow" else "deny",
        "reason": text["reason"], "status": _int(fields.get("status"), 999), "bytes_in": _int(fields.get("bytes_in")),
        "bytes_out": _int(fields.get("bytes_out")), "client": text["client"], "duration_ms": duration,
    }


def _iso(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def entry_json(row: dict) -> dict:
    """The API's shape of one audit entry."""
    return {"time": _iso(row["time"]), "request_id": row["request_id"], "user": row["username"],
            "access_key": row["access_key"], "workspace": row["workspace"], "operation": row["operation"],
            "key": row["key"], "decision": row["decision"], "reason": row["reason"], "status": row["status"],
            "bytes_in": row["bytes_in"], "bytes_out": row["bytes_out"], "client": row["client"],
            "duration_ms": row["duration_ms"]}


@dataclass(frozen=True)
class AuditQuery:
    workspace: str | None = None
    user: str | None = None
    decision: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 100


class AuditStore(Protocol):
    name: str

    async def setup(self) -> None: ...

    async def insert(self, rows: list[dict]) -> None: ...

    async def query(self, q: AuditQuery) -> list[dict]: ...


_INSERT = pg_insert(audit_log).on_conflict_do_nothing(index_elements=["stream_id"])


class PostgresAuditStore:
    name = "postgresql"

    def __init__(self, sessions: async_sessionmaker):
        self.sessions = sessions

    async def setup(self) -> None:
        """The table comes with the migrations the admin API runs at start."""

    async def insert(self, rows: list[dict]) -> None:
        if not rows:
            return
        async with self.sessions() as session:
            async with session.begin():
                # executemany form: one cached statement sent in multi-row batches ("insertmanyvalues"),
                # not a fresh 15 x N-parameter statement compiled for every batch.
                await session.execute(_INSERT, rows)

    async def query(self, q: AuditQuery) -> list[dict]:
        stmt = select(audit_log)
        if q.workspace is not None:
            stmt = stmt.where(audit_log.c.workspace == q.workspace)
        if q.user is not None:
            stmt = stmt.where(audit_log.c.username == q.user)
        if q.decision is not None:
            stmt = stmt.where(audit_log.c.decision == q.decision)
        if q.since is not None:
            stmt = stmt.where(audit_log.c.time >= q.since)
        if q.until is not None:
            stmt = stmt.where(audit_log.c.time < q.until)
        stmt = stmt.order_by(audit_log.c.time.desc(), audit_log.c.id.desc()).limit(q.limit)
        async with self.sessions() as session:
            result = await session.execute(stmt)
            return [entry_json(row._mapping) for row in result]


_ES_MAPPING = {
    "mappings": {
        "dynamic": "strict",
        "properties": {
            **{name: {"type": "keyword"} for name in ("request_id", "username", "access_key", "workspace",
                                                       "operation", "decision", "client", "stream_id")},
            "key": {"type": "keyword", "ignore_above": 2048},
            "reason": {"type": "text"},
            "time": {"type": "date"},
            "status": {"type": "integer"},
            "bytes_in": {"type": "long"},
            "bytes_out": {"type": "long"},
            "duration_ms": {"type": "float"},
        },
    },
}


def es_search_body(q: AuditQuery) -> dict:
    """The Elasticsearch query for ``q``: exact filters, a time range, newest first."""
    filters: list[dict] = []
    for name, value in (("workspace", q.workspace), ("username", q.user), ("decision", q.decision)):
        if value is not None:
            filters.append({"term": {name: value}})
    if q.since is not None or q.until is not None:
        span = {}
        if q.since is not None:
            span["gte"] = _iso(q.since)
        if q.until is not None:
            span["lt"] = _iso(q.until)
        filters.append({"range": {"time": span}})
    return {"size": q.limit, "query": {"bool": {"filter": filters}},
            "sort": [{"time": "desc"}, {"stream_id": "desc"}]}


class ElasticsearchAuditStore:
    """The audit trail in an Elasticsearch index (``WIO_ELASTICSEARCH_URL``), over its REST API."""
    name = "elasticsearch"

    def __init__(self, http: aiohttp.ClientSession, url: str, index: str = "wio-audit"):
        self.http, self.url, self.index = http, url.rstrip("/"), index

    async def _call(self, method: str, path: str, *, body: bytes | None = None, ok=(200, 201)) -> dict:
        headers = {"Content-Type": "application/x-ndjson" if path.endswith("_bulk") else "application/json"}
        try:
            async with self.http.request(method, f"{self.url}/{path}", data=body, headers=headers,
                                         timeout=aiohttp.ClientTimeout(total=30)) as resp:
                data = await resp.json(content_type=None)
                if resp.status not in ok:
                    raise AuditStoreError(f"Elasticsearch {method} {path}: HTTP {resp.status}: {str(data)[:300]}")
                return data
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise AuditStoreError(f"Elasticsearch {method} {path}: {exc}") from None

    async def setup(self) -> None:
        data = await self._call("PUT", self.index, body=json.dumps(_ES_MAPPING).encode(), ok=(200, 400))
        error = data.get("error") if isinstance(data, dict) else None
        if error and error.get("type") != "resource_already_exists_exception":
            raise AuditStoreError(f"Elasticsearch: cannot create index {self.index}: {error}")

    async def insert(self, rows: list[dict]) -> None:
        if not rows:
            return
        lines = []
        for row in rows:
            # "create" with the stream id: a re-delivered entry is a 409 on that item, not a duplicate.
            lines.append(json.dumps({"create": {"_index": self.index, "_id": row["stream_id"]}}))
            lines.append(json.dumps({**row, "time": _iso(row["time"])}))
        data = await self._call("POST", "_bulk", body=("\n".join(lines) + "\n").encode())
        if data.get("errors"):
            failed = [item for item in data.get("items", [])
                      if item.get("create", {}).get("status", 201) not in (200, 201, 409)]
            if failed:
                raise AuditStoreError(f"Elasticsearch refused {len(failed)} audit entries: {str(failed[0])[:300]}")

    async def query(self, q: AuditQuery) -> list[dict]:
        data = await self._call("POST", f"{self.index}/_search", body=json.dumps(es_search_body(q)).encode())
        out = []
        for hit in data.get("hits", {}).get("hits", []):
            source = hit["_source"]
            source["time"] = datetime.fromisoformat(source["time"].replace("Z", "+00:00"))
            out.append(entry_json(source))
        return out
