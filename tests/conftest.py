"""Shared fixtures: the real services (tests/fixtures/services.py) and a running wio on top of them.

The admin API and the proxy run as ``wio serve`` child processes, exactly as ``wio dev`` runs them.
Every test makes its own users and workspaces (unique names), so tests share one stack safely.
"""
from __future__ import annotations

import itertools
import secrets
import sys
from dataclasses import dataclass

import boto3
import pytest
from botocore.config import Config

from wio.client import ApiClient
from wio.dev.stack import DevStack, launch_components, make_tls_pair
from wio.dev.executables import find_executable
from wio.dev.process import free_port
from foundation.settings import Settings, derive_master_key, normalize_database_url

pytest_plugins = ["tests.fixtures.services"]

ADMIN_PASSWORD = "admin-password-for-tests"
_counter = itertools.count()


def unique(prefix: str) -> str:
    return f"{prefix}{next(_counter)}-{secrets.token_hex(3)}"


def tool(name: str) -> str:
    """A client program the dev extra installs (rclone, s3cmd): missing is a failure, never a skip."""
    path = find_executable(name)
    assert path, f"{name} is not installed beside {sys.executable} nor on PATH (pip install -e '.[dev]')"
    return path


def wio_settings(pg_service, redis_service, s3_node, **overrides) -> Settings:
    api_port = free_port()
    base = dict(
        database_url=normalize_database_url(pg_service.url), redis_url=redis_service.url,
        # Fixed, so a database kept between runs (WIO_TEST_DATABASE_URL) still opens its stored secrets.
        master_key=derive_master_key("wio-test-suite"),
        jwt_secret=secrets.token_urlsafe(32), api_port=api_port, proxy_port=free_port(),
        api_url=f"http://127.0.0.1:{api_port}", allow_private_nodes=True, log_json=False,
        admin_password=ADMIN_PASSWORD, bootstrap_node_endpoint=s3_node.endpoint,
        bootstrap_node_access_key=s3_node.access_key, bootstrap_node_secret_key=s3_node.secret_key,
        bootstrap_node_region=s3_node.region)
    base.update(overrides)
    return Settings(**base)


@pytest.fixture(scope="session")
def stack(pg_service, redis_service, s3_node):
    stack = DevStack(settings=wio_settings(pg_service, redis_service, s3_node))
    try:
        launch_components(stack, stack.settings, indexer=True)
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="session")
def tls_stack(stack, tmp_path_factory):
    """A second API and proxy on the same services, the proxy over https with a self-signed
    certificate (``.cert``), as ``wio dev --tls`` runs it."""
    cert, key = make_tls_pair(tmp_path_factory.mktemp("tls"))
    api_port = free_port()
    settings = stack.settings.with_(api_port=api_port, proxy_port=free_port(), api_url=f"http://127.0.0.1:{api_port}",
                                    admin_password=None, s3_public_url=None, s3_ca_file=None)
    tls = DevStack(settings=settings)
    try:
        launch_components(tls, settings, tls_pair=(cert, key))
        tls.cert = cert
        yield tls
    finally:
        tls.stop()


def s3_client(endpoint: str, key: dict, **config):
    cfg = Config(s3={"addressing_style": "path"}, signature_version="s3v4",
                 retries={"max_attempts": 1, "mode": "standard"}, **config)
    return boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=key["access_key_id"],
                        aws_secret_access_key=key["secret_access_key"], aws_session_token=key.get("session_token"),
                        region_name="us-east-1", config=cfg)


@dataclass
class Person:
    """A registered user with a logged-in API client, one access key and a boto3 client on the proxy."""
    name: str
    password: str
    api: ApiClient
    key: dict
    s3: object


def make_person(stack: DevStack, prefix: str = "user") -> Person:
    name, password = unique(prefix), secrets.token_urlsafe(12)
    api = ApiClient(stack.api_url)
    api.call("POST", "/auth/register", {"username": name, "password": password})
    api.login(name, password)
    key = api.call("POST", "/keys", {"name": "tests"})
    return Person(name, password, api, key, s3_client(stack.s3_url, key))


@pytest.fixture
def person(stack) -> Person:
    return make_person(stack, "alice")


@pytest.fixture
def other(stack) -> Person:
    return make_person(stack, "bob")


@pytest.fixture(scope="session")
def admin_api(stack) -> ApiClient:
    api = ApiClient(stack.api_url)
    api.login("admin", ADMIN_PASSWORD)
    return api


@pytest.fixture
def workspace(person) -> str:
    name = unique("ws")
    person.api.call("POST", "/workspaces", {"name": name})
    return name
