"""Reading object metadata from the storage nodes: where a workspace lives, listing pages, HEAD.

Built on nodeclient/client.py's ``NodeClient`` (signed small requests). Listings use ``start-after`` rather
than continuation tokens so that a crawl can resume from the last key it reconciled, in a later
process, and ``encoding-type=url`` so that any key survives the XML (decoded as botocore does).
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from urllib.parse import unquote_plus

import aiohttp
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from policy.models import Workspace
from nodeclient.client import S3_NS, NodeClient, NodeError
from foundation.safexml import XMLRefused, parse_untrusted_xml
from foundation.secrets import SecretBox

__all__ = ["WorkspaceRoute", "Listed", "ObjectHead", "load_routes", "list_page", "head_object"]

PAGE_SIZE = 1000


@dataclass(frozen=True, slots=True)
class WorkspaceRoute:
    """Where a workspace's objects physically are."""
    workspace: str
    bucket: str
    prefix: str
    client: NodeClient


@dataclass(frozen=True, slots=True)
class Listed:
    key: str          # workspace-relative
    size: int
    etag: str
    last_modified: float


@dataclass(frozen=True, slots=True)
class ObjectHead:
    size: int
    etag: str
    content_type: str
    last_modified: float


async def load_routes(session: AsyncSession, box: SecretBox, http: aiohttp.ClientSession,
                      names: list[str] | None = None) -> dict[str, WorkspaceRoute]:
    query = select(Workspace).order_by(Workspace.name)
    if names is not None:
        query = query.where(Workspace.name.in_(names))
    clients: dict[int, NodeClient] = {}
    routes = {}
    for ws in (await session.scalars(query)).unique().all():
        node = ws.root.node
        if node.id not in clients:
            clients[node.id] = NodeClient(http, node.endpoint, node.region, node.access_key,
                                          box.open(node.secret_enc))
        routes[ws.name] = WorkspaceRoute(ws.name, ws.root.bucket, ws.prefix, clients[node.id])
    return routes


def _etag(raw: str | None) -> str:
    return (raw or "").strip('"')


def _iso_epoch(raw: str | None) -> float:
    if not raw:
        return 0.0
    return datetime.fromisoformat(raw.replace("Z", "+00:00")).timestamp()


async def list_page(route: WorkspaceRoute, after: str, max_keys: int = PAGE_SIZE) -> tuple[list[Listed], str | None]:
    """Objects of the workspace whose keys sort after ``after`` (one page), and the key to continue after
    (None when this was the last page)."""
    query = [("list-type", "2"), ("prefix", route.prefix), ("encoding-type", "url"), ("max-keys", str(max_keys))]
    if route.prefix + after:
        # start-after=prefix also skips the prefix's own "directory" marker object, if there is one.
        query.append(("start-after", route.prefix + after))
    status, body = await route.client.request("GET", route.bucket, query=query, timeout=60)
    if status != 200:
        raise NodeError(f"cannot list {route.bucket}/{route.prefix} on {route.client.endpoint}: HTTP {status}")
    try:
        root = parse_untrusted_xml(body)
    except XMLRefused:
        raise NodeError(f"{route.client.endpoint} answered a listing that is not XML") from None
    out = []
    for item in root.iter(f"{S3_NS}Contents"):
        physical = unquote_plus(item.findtext(f"{S3_NS}Key") or "")
        if not physical.startswith(route.prefix) or physical == route.prefix:
            raise NodeError(f"{route.client.endpoint} listed {physical!r}, not a key under {route.prefix!r}")
        out.append(Listed(physical[len(route.prefix):], int(item.findtext(f"{S3_NS}Size") or 0),
                          _etag(item.findtext(f"{S3_NS}ETag")), _iso_epoch(item.findtext(f"{S3_NS}LastModified"))))
    if root.findtext(f"{S3_NS}IsTruncated") != "true":
        return out, None
    if not out:
        raise NodeError(f"{route.client.endpoint} answered an empty listing page that claims to be truncated")
    return out, out[-1].key


async def head_object(route: WorkspaceRoute, key: str, timeout: float = 15) -> ObjectHead | None:
    """HeadObject through the node; None when the object does not exist (any more)."""
    client = route.client
    url, headers = client.signed("HEAD", route.bucket, route.prefix + key, [])
    try:
        async with client.session.head(url, headers=headers,
                                       timeout=aiohttp.ClientTimeout(total=timeout)) as resp:
            if resp.status == 404:
                return None
            if resp.status != 200:
                raise NodeError(f"HEAD {route.bucket}/{route.prefix}{key} on {client.endpoint}: HTTP {resp.status}")
            modified = resp.headers.get("Last-Modified")
            return ObjectHead(int(resp.headers.get("Content-Length", "0")), _etag(resp.headers.get("ETag")),
                              resp.headers.get("Content-Type", ""),
                              parsedate_to_datetime(modified).timestamp() if modified else 0.0)
    except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
        raise NodeError(f"node {client.endpoint} did not answer: {exc or type(exc).__name__}") from None
