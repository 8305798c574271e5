"""The crawler against the real SeaweedFS node: import, resume from a checkpoint, reconcile changes."""
from __future__ import annotations

import aiohttp
import boto3
import pytest
from sqlalchemy import text

from indexer.crawl import Crawler
from indexer.documents import Readable, SearchFilters
from indexer.pg import PostgresBackend
from indexer.storage import WorkspaceRoute
from nodeclient.client import NodeClient
from tests.conftest import unique


class Interrupted(Exception):
    pass


@pytest.fixture
async def pg_backend(index_db_url):
    backend = PostgresBackend.from_url(index_db_url)
    yield backend
    await backend.close()


@pytest.fixture
async def bucket(s3_node):
    name = unique("idx-crawl-")
    s3 = boto3.client("s3", endpoint_url=s3_node.endpoint, aws_access_key_id=s3_node.access_key,
                      aws_secret_access_key=s3_node.secret_key, region_name=s3_node.region)
    s3.create_bucket(Bucket=name)
    async with aiohttp.ClientSession() as http:
        yield s3, name, NodeClient(http, s3_node.endpoint, s3_node.region, s3_node.access_key, s3_node.secret_key)


async def indexed(backend, ws: str) -> dict[str, tuple[int, str]]:
    result = await backend.search(SearchFilters(), Readable({ws: ("",)}), 100, 0)
    return {h.key: (h.size, h.content_type) for h in result.hits}


async def crawl_state(engine, ws: str):
    async with engine.connect() as conn:
        return (await conn.execute(text("SELECT * FROM search_crawls WHERE workspace = :w"), {"w": ws})).one()


async def test_crawl_imports_resumes_and_reconciles(engine, pg_backend, bucket):
    s3, name, client = bucket
    ws = unique("imported")
    route = WorkspaceRoute(ws, name, "projects/lab/", client)
    existing = {"a.csv": (3, "text/csv"), "b c+d.txt": (5, "text/plain"), "deep/x/y.json": (2, "application/json"),
                "é/ü.bin": (7, "application/octet-stream"), "z.csv": (11, "text/csv")}
    for key, (size, content_type) in existing.items():
        s3.put_object(Bucket=name, Key=route.prefix + key, Body=b"x" * size, ContentType=content_type)
    s3.put_object(Bucket=name, Key="projects/lab", Body=b"not in the workspace")
    s3.put_object(Bucket=name, Key="projects/lab2/a.csv", Body=b"nor this")
    s3.put_object(Bucket=name, Key=route.prefix, Body=b"")  # a "directory" marker

    def stop_after_two_pages(progress):
        if progress.pages == 2 and not progress.done:
            raise Interrupted()

    with pytest.raises(Interrupted):
        await Crawler(engine, pg_backend, page_size=2, on_progress=stop_after_two_pages).crawl(route)
    state = await crawl_state(engine, ws)  # keys sort by UTF-8 bytes: "é/ü.bin" comes after "z.csv"
    assert (state.after_key, state.listed) == ("z.csv", 4) and "Interrupted" in state.error
    assert len(await indexed(pg_backend, ws)) == 4

    seen = []
    progress = await Crawler(engine, pg_backend, page_size=2, on_progress=lambda p: seen.append(p.pages)).crawl(route)
    assert progress.resumed_after == "z.csv" and progress.done and seen == [1]
    assert progress.listed == 5 and progress.changed == 5  # counted across the interruption
    assert await indexed(pg_backend, ws) == existing
    state = await crawl_state(engine, ws)
    assert state.after_key is None and state.error is None and state.finished_at is not None

    # Changes made around the proxy: one deleted, one rewritten, one added; the rest is left alone.
    s3.delete_object(Bucket=name, Key=route.prefix + "deep/x/y.json")
    s3.put_object(Bucket=name, Key=route.prefix + "a.csv", Body=b"x" * 300, ContentType="text/csv")
    s3.put_object(Bucket=name, Key=route.prefix + "new.md", Body=b"# hi", ContentType="text/markdown")
    progress = await Crawler(engine, pg_backend, page_size=2).crawl(route)
    assert (progress.resumed_after, progress.listed, progress.changed, progress.removed) == (None, 5, 2, 1)
    expected = dict(existing, **{"a.csv": (300, "text/csv"), "new.md": (4, "text/markdown")})
    del expected["deep/x/y.json"]
    assert await indexed(pg_backend, ws) == expected

    # Everything deleted: the last (empty) page removes the lot.
    for key in expected:
        s3.delete_object(Bucket=name, Key=route.prefix + key)
    progress = await Crawler(engine, pg_backend).crawl(route)
    assert (progress.listed, progress.removed) == (0, 5)
    assert await indexed(pg_backend, ws) == {}
