"""Search over object metadata, filtered by what the caller may read at the moment of the query.

``GET /search`` and ``GET /search/aggregations`` compute the caller's readable workspaces and key
prefixes from PostgreSQL on every request (indexer/access.py) and hand them to the search backend as a
filter, so a share's removal hides its objects on the very next query. ``POST /search/crawl`` asks the
indexer to reconcile a workspace with its node now; ``GET /search/status`` shows the indexer's
progress (administrators).
"""
from __future__ import annotations

from datetime import datetime, timezone

from aiohttp import web
from redis.exceptions import ResponseError
from sqlalchemy import select, text

from admin_api.context import DB, REDIS, SETTINGS, caller, iso, json_body, field, read_session
from admin_api.errors import ApiError
from admin_api.workspaces import workspace_for
from indexer.access import readable_by
from indexer.backend import BackendUnavailable, SearchBackend, open_backend
from indexer.consumer import GROUP
from indexer.crawl import request_crawl
from indexer.documents import MAX_WINDOW, Bucket, SearchFilters
from policy.models import Workspace
from foundation.events import EVENTS_STREAM

__all__ = ["routes", "search_backend", "SEARCH", "parse_filters"]

routes = web.RouteTableDef()
SEARCH = web.AppKey("search", SearchBackend)

DEFAULT_LIMIT, MAX_LIMIT = 50, 1000
_FILTERS = ("q", "workspace", "prefix", "content_type", "min_size", "max_size", "modified_after")
_BY = ("workspace", "extension", "owner", "content_type")


async def search_backend(app: web.Application):
    """The cleanup context holding the search backend (Elasticsearch if configured, else PostgreSQL)."""
    app[SEARCH] = open_backend(app[SETTINGS])
    yield
    await app[SEARCH].close()


def _invalid(message: str) -> ApiError:
    return ApiError("InvalidParameter", message)


def _params(request: web.Request, allowed: tuple[str, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in request.query.items():
        if name not in allowed:
            raise _invalid(f"unknown parameter '{name}'; this call takes {', '.join(allowed)}")
        if name in out:
            raise _invalid(f"parameter '{name}' is given more than once")
        out[name] = value
    return out


def _int(params: dict[str, str], name: str, default: int | None, low: int, high: int | None = None) -> int | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise _invalid(f"'{name}' must be an integer") from None
    if value < low or (high is not None and value > high):
        raise _invalid(f"'{name}' must be between {low} and {high}" if high is not None else
                       f"'{name}' must be at least {low}")
    return value


def _text(params: dict[str, str], name: str, max_length: int) -> str:
    value = params.get(name, "")
    if len(value) > max_length:
        raise _invalid(f"'{name}' is limited to {max_length} characters")
    return value


def parse_filters(params: dict[str, str]) -> SearchFilters:
    query = _text(params, "q", 1000)
    if query.strip() and not SearchFilters(text=query).words:
        raise _invalid("'q' must contain at least one letter or digit")
    modified_after = None
    if params.get("modified_after"):
        try:
            modified_after = datetime.fromisoformat(params["modified_after"].replace("Z", "+00:00"))
        except ValueError:
            raise _invalid("'modified_after' must be an ISO 8601 time, e.g. 2024-05-01T00:00:00Z") from None
        if modified_after.tzinfo is None:
            modified_after = modified_after.replace(tzinfo=timezone.utc)
    min_size = _int(params, "min_size", None, 0)
    max_size = _int(params, "max_size", None, 0)
    if min_size is not None and max_size is not None and min_size > max_size:
        raise _invalid("'min_size' is larger than 'max_size'")
    content_type = _text(params, "content_type", 255)
    if "*" in content_type[:-1] or (content_type.endswith("*") and not content_type.endswith("/*")):
        raise _invalid("'content_type' is a type such as text/csv, or a family such as text/*")
    return SearchFilters(text=query, workspace=params.get("workspace") or None, prefix=_text(params, "prefix", 1024),
                         content_type=content_type, min_size=min_size, max_size=max_size,
                         modified_after=modified_after)


async def _readable(request: web.Request):
    async with read_session(request.app) as session:
        user = await caller(request, session)
        return await readable_by(session, user)


@routes.get("/api/v1/search")
async def search(request: web.Request) -> web.Response:
    params = _params(request, _FILTERS + ("limit", "offset"))
    filters = parse_filters(params)
    limit = _int(params, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    offset = _int(params, "offset", 0, 0)
    if offset + limit > MAX_WINDOW:
        raise _invalid(f"'offset' + 'limit' may not exceed {MAX_WINDOW}; narrow the query instead")
    readable = await _readable(request)
    try:
        result = await request.app[SEARCH].search(filters, readable, limit, offset)
    except BackendUnavailable as exc:
        raise ApiError("SearchUnavailable", str(exc)) from None
    return web.json_response({"total": result.total, "hits": [
        {"workspace": h.workspace, "key": h.key, "size": h.size, "last_modified": iso(h.last_modified),
         "content_type": h.content_type} for h in result.hits]})


@routes.get("/api/v1/search/aggregations")
async def aggregations(request: web.Request) -> web.Response:
    params = _params(request, ("by",) + _FILTERS)
    by = params.get("by", "")
    if by not in _BY:
        raise _invalid(f"'by' must be one of {', '.join(_BY)}")
    filters = parse_filters(params)
    readable = await _readable(request)
    try:
        buckets = await request.app[SEARCH].aggregate("workspace" if by == "owner" else by, filters, readable)
    except BackendUnavailable as exc:
        raise ApiError("SearchUnavailable", str(exc)) from None
    if by == "owner":  # owners are not indexed (they can change); fold the workspaces of each owner
        folded: dict[str, Bucket] = {}
        for b in buckets:
            owner = readable.owners[b.key]
            seen = folded.get(owner, Bucket(owner, 0, 0))
            folded[owner] = Bucket(owner, seen.objects + b.objects, seen.bytes + b.bytes)
        buckets = list(folded.values())
    buckets.sort(key=lambda b: (-b.bytes, -b.objects, b.key))
    return web.json_response({"by": by, "buckets": [{"key": b.key, "objects": b.objects, "bytes": b.bytes}
                                                    for b in buckets]})


@routes.post("/api/v1/search/crawl")
async def crawl(request: web.Request) -> web.Response:
    """Ask the indexer to crawl one workspace (its admins) or every workspace (system administrators)."""
    body = await json_body(request)
    name = field(body, "workspace", str, default=None)
    async with request.app[DB]() as session:
        async with session.begin():
            user = await caller(request, session)
            if name is not None:
                ws = await workspace_for(session, user, name, "admin")
                names = [ws.name]
            elif user.is_admin:
                names = list((await session.scalars(select(Workspace.name))).all())
            else:
                raise ApiError("Forbidden", "only administrators can crawl every workspace; name one")
            await request_crawl(session, names)
    return web.json_response({"requested": names}, status=202)


@routes.get("/api/v1/search/status")
async def status(request: web.Request) -> web.Response:
    """The indexer's state: event backlog and per-workspace crawl progress (system administrators)."""
    async with read_session(request.app) as session:
        user = await caller(request, session)
        if not user.is_admin:
            raise ApiError("Forbidden", "the indexer's status is for administrators")
        rows = (await session.execute(text(
            "SELECT workspace, requested_at, started_at, finished_at, after_key, listed, changed, removed, error "
            "FROM search_crawls ORDER BY workspace"))).all()
    events = {"stream": EVENTS_STREAM, "length": await request.app[REDIS].xlen(EVENTS_STREAM), "pending": None,
              "lag": None}
    try:
        for group in await request.app[REDIS].xinfo_groups(EVENTS_STREAM):
            if group["name"] == GROUP:
                events.update(pending=group["pending"], lag=group.get("lag"))
    except ResponseError:  # no stream yet
        pass
    return web.json_response({"backend": request.app[SEARCH].name, "events": events, "crawls": [
        {"workspace": r.workspace, "requested_at": iso(r.requested_at), "started_at": iso(r.started_at),
         "finished_at": iso(r.finished_at), "in_progress": r.started_at is not None and r.finished_at is None,
         "resume_after": r.after_key, "listed": r.listed, "changed": r.changed, "removed": r.removed,
         "error": r.error} for r in rows]})
