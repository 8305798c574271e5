"""Fixtures for the indexer: a private database (cleanup operations may drop whole workspaces from an
index, which must not touch the shared stack's), search backends on real engines, and helpers."""
from __future__ import annotations

import os
import time

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from indexer.es import ElasticsearchBackend
from indexer.pg import PostgresBackend
from policy.db import create_engine, migrate
from tests.conftest import unique
from foundation.settings import normalize_database_url

ELASTICSEARCH_URL = os.environ.get("WIO_ELASTICSEARCH_URL")
NO_ELASTICSEARCH = "Elasticsearch tests need a server: set WIO_ELASTICSEARCH_URL (none can run on this machine)"


def wait_for(probe, timeout: float = 5.0, interval: float = 0.02):
    """Poll ``probe`` until it returns something truthy; return that and the seconds it took."""
    start = time.monotonic()
    while True:
        value = probe()
        if value:
            return value, time.monotonic() - start
        if time.monotonic() - start > timeout:
            raise AssertionError(f"still false after {timeout:.1f}s: {probe}")
        time.sleep(interval)


@pytest.fixture(scope="session")
async def index_db_url(pg_service) -> str:
    """A fresh, migrated database of its own for the indexer's tests."""
    name = unique("search_").replace("-", "_")
    server_url = normalize_database_url(pg_service.url)
    admin = create_async_engine(server_url, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    await admin.dispose()
    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    engine = create_engine(url)
    await migrate(engine)
    await engine.dispose()
    return url


@pytest.fixture
async def engine(index_db_url):
    engine = create_engine(index_db_url)
    yield engine
    await engine.dispose()


@pytest.fixture(params=["postgresql", "elasticsearch"])
async def backend(request, index_db_url):
    if request.param == "postgresql":
        backend = PostgresBackend.from_url(index_db_url)
    else:
        if not ELASTICSEARCH_URL:
            pytest.skip(NO_ELASTICSEARCH)
        backend = ElasticsearchBackend(ELASTICSEARCH_URL, unique("wio-test-"))
        await backend.prepare()
    yield backend
    if isinstance(backend, ElasticsearchBackend):
        await backend.drop_index()
    await backend.close()


async def settle(backend) -> None:
    """Make the backend's latest writes visible to searches (Elasticsearch refreshes once a second)."""
    if isinstance(backend, ElasticsearchBackend):
        await backend.refresh()
