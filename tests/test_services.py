"""wio.dev (process, postgres, valkey, seaweedfs) and the session fixtures against the real services: they start,
answer, keep their data across a stop/start on the same directory, and leave no process behind."""
from __future__ import annotations

import json
import secrets
import socket
import subprocess
import time

import asyncpg
import boto3
import psutil
import pytest
import redis
from botocore.config import Config

from wio.dev.postgres import PostgresService, start_postgres
from wio.dev.process import ManagedService, ServiceError, free_port
from wio.dev.seaweedfs import SeaweedService, load_s3_credentials, start_seaweedfs
from wio.dev.valkey import ValkeyService, start_valkey


def snapshot(service: ManagedService) -> dict[int, float]:
    """The service's processes (server and descendants) with their start times."""
    pids = service.process_ids()
    assert pids and pids[0] == service.pid
    return {pid: psutil.Process(pid).create_time() for pid in pids}


def assert_all_gone(procs: dict[int, float]) -> None:
    alive = []
    for pid, created in procs.items():
        try:
            p = psutil.Process(pid)
            if p.create_time() == created and p.status() != psutil.STATUS_ZOMBIE:
                alive.append((pid, p.cmdline()))
        except psutil.NoSuchProcess:
            pass
    assert not alive, f"still running after stop(): {alive}"


def s3_client(node):
    return boto3.client("s3", endpoint_url=node.endpoint, aws_access_key_id=node.access_key,
                        aws_secret_access_key=node.secret_key, region_name=node.region,
                        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2}))


def bucket_name() -> str:
    return f"svc-test-{secrets.token_hex(4)}"


def test_free_port_gives_distinct_bindable_ports():
    ports = [free_port() for _ in range(20)]
    assert len(set(ports)) == 20
    for port in ports[:3]:
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))


# ------------------------------------------------------------------------------ session services answer

async def test_session_postgres_answers(pg_service):
    conn = await asyncpg.connect(pg_service.dsn)
    try:
        assert await conn.fetchval("SELECT current_database()") == "wio"
        assert await conn.fetchval("SELECT $1::int + 1", 41) == 42
    finally:
        await conn.close()
    assert pg_service.url.startswith("postgresql+asyncpg://")


def test_session_valkey_answers(redis_service):
    assert redis_service.url.startswith("redis://")
    client = redis.Redis.from_url(redis_service.url)
    try:
        assert client.ping() is True
        key = f"svc-test:{secrets.token_hex(4)}"
        assert client.set(key, b"\x00value\xff", ex=60)
        assert client.get(key) == b"\x00value\xff"
        client.delete(key)
    finally:
        client.close()


def test_session_seaweedfs_answers(s3_node):
    s3 = s3_client(s3_node)
    bucket, body = bucket_name(), secrets.token_bytes(1024 * 1024 + 17)
    s3.create_bucket(Bucket=bucket)
    try:
        s3.put_object(Bucket=bucket, Key="dir/blob.bin", Body=body)
        assert s3.get_object(Bucket=bucket, Key="dir/blob.bin")["Body"].read() == body
        listed = s3.list_objects_v2(Bucket=bucket)["Contents"]
        assert [(o["Key"], o["Size"]) for o in listed] == [("dir/blob.bin", len(body))]
        names = [b["Name"] for b in s3.list_buckets()["Buckets"]]
        assert bucket in names and not [n for n in names if n.startswith("wio-startup-probe-")]
    finally:
        s3.delete_object(Bucket=bucket, Key="dir/blob.bin")
        s3.delete_bucket(Bucket=bucket)


def test_two_seaweedfs_nodes_side_by_side(s3_node, s3_node2):
    assert s3_node.endpoint != s3_node2.endpoint
    if isinstance(s3_node, SeaweedService) and isinstance(s3_node2, SeaweedService):
        assert not set(s3_node.ports.values()) & set(s3_node2.ports.values())
        assert s3_node.data_dir != s3_node2.data_dir
        assert s3_node.access_key != s3_node2.access_key
        assert s3_node.is_running() and s3_node2.is_running()
    one, two = s3_client(s3_node), s3_client(s3_node2)
    bucket = bucket_name()
    two.create_bucket(Bucket=bucket)
    try:
        two.put_object(Bucket=bucket, Key="k", Body=b"on node two")
        assert bucket not in [b["Name"] for b in one.list_buckets()["Buckets"]]
        one.create_bucket(Bucket=bucket)  # the same name is free on the other node
        one.put_object(Bucket=bucket, Key="k", Body=b"on node one")
        assert two.get_object(Bucket=bucket, Key="k")["Body"].read() == b"on node two"
        assert one.get_object(Bucket=bucket, Key="k")["Body"].read() == b"on node one"
    finally:
        for client in (one, two):
            try:
                client.delete_object(Bucket=bucket, Key="k")
                client.delete_bucket(Bucket=bucket)
            except client.exceptions.ClientError:
                pass


# ------------------------------------------------------------------------------ lifecycle, own instances

async def test_postgres_keeps_data_and_stops_cleanly(tmp_path):
    pg = start_postgres(tmp_path / "pg")
    assert isinstance(pg, PostgresService) and pg.name == "PostgreSQL"
    assert pg.url == pg.dsn.replace("postgresql://", "postgresql+asyncpg://", 1)
    assert pg.url.endswith(f"@127.0.0.1:{pg.port}/wio") and pg.password
    conn = await asyncpg.connect(pg.dsn)
    await conn.execute("CREATE TABLE t (v text); INSERT INTO t VALUES ('survives')")
    procs = snapshot(pg)
    assert len(procs) > 2  # the postmaster, its workers and our backend
    pg.stop()  # fast shutdown, with a client still connected
    conn.terminate()
    assert not pg.is_running()
    assert_all_gone(procs)
    pg.stop()  # idempotent

    again = start_postgres(tmp_path / "pg")
    assert (again.dsn, again.url) == (pg.dsn, pg.url)  # same port (still free) and credentials
    conn = await asyncpg.connect(again.dsn)
    assert await conn.fetchval("SELECT v FROM t") == "survives"
    await conn.execute("INSERT INTO t VALUES ('after kill')")
    procs = snapshot(again)
    again.stop(timeout=0)  # no grace: immediate shutdown, then SIGKILL of the postmaster and backends
    conn.terminate()
    assert_all_gone(procs)

    with start_postgres(tmp_path / "pg") as third:  # crash recovery
        conn = await asyncpg.connect(third.dsn)
        assert sorted(await conn.fetchval("SELECT array_agg(v) FROM t")) == ["after kill", "survives"]
        await conn.close()
        procs = snapshot(third)
    assert not third.is_running()
    assert_all_gone(procs)


def test_valkey_keeps_data_and_stops_cleanly(tmp_path):
    with start_valkey(tmp_path / "vk") as vk:
        assert isinstance(vk, ValkeyService) and vk.url == f"redis://127.0.0.1:{vk.port}/0"
        client = redis.Redis.from_url(vk.url)
        client.set("kept", "yes")
        client.close()
        procs = snapshot(vk)
    assert not vk.is_running()
    assert_all_gone(procs)
    vk.stop()  # idempotent

    again = start_valkey(tmp_path / "vk")
    try:
        assert again.url == vk.url
        client = redis.Redis.from_url(again.url)
        assert client.get("kept") == b"yes"
        client.close()
        with pytest.raises(ServiceError, match="already running"):  # one server per data dir
            start_valkey(tmp_path / "vk")
        assert again.is_running()
    finally:
        again.stop()


def test_valkey_without_persistence_forgets(tmp_path):
    with start_valkey(tmp_path / "vk", persist=False) as vk:
        client = redis.Redis.from_url(vk.url)
        client.set("gone", "soon")
        client.close()
    with start_valkey(tmp_path / "vk", persist=False) as vk:
        client = redis.Redis.from_url(vk.url)
        assert client.get("gone") is None
        client.close()


def test_orphan_from_a_dead_owner_is_replaced(tmp_path):
    first = start_valkey(tmp_path / "vk")
    procs = snapshot(first)
    dead = subprocess.Popen(["true"])
    dead.wait()
    owner = tmp_path / "vk" / "owner.json"
    info = json.loads(owner.read_text())
    owner.write_text(json.dumps({**info, "owner_pid": dead.pid}))  # as if our process had been SIGKILLed
    second = start_valkey(tmp_path / "vk")
    try:
        assert_all_gone(procs)
        assert second.pid != first.pid
        client = redis.Redis.from_url(second.url)
        assert client.ping()
        client.close()
    finally:
        second.stop()
        first.stop()


def test_start_failure_names_the_service_and_quotes_its_log(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        started = time.monotonic()
        with pytest.raises(ServiceError) as info:
            start_valkey(tmp_path / "vk", port=port)
    assert time.monotonic() - started < 20
    message = str(info.value)
    assert message.startswith("Valkey failed to start") and str(tmp_path / "vk" / "valkey.log") in message
    assert "already in use" in message.lower()
    assert info.value.service == "Valkey"
    assert not (tmp_path / "vk" / "owner.json").exists()


def test_seaweedfs_keeps_data_and_stops_cleanly(tmp_path):
    node = start_seaweedfs(tmp_path / "sw")
    assert node.endpoint == node.url == f"http://127.0.0.1:{node.port}" and node.region == "us-east-1"
    assert len(set(node.ports.values())) == 8
    s3 = s3_client(node)
    bucket, body = bucket_name(), secrets.token_bytes(300_000)
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="a/b.bin", Body=body)
    s3.put_object_tagging(Bucket=bucket, Key="a/b.bin", Tagging={"TagSet": [{"Key": "t", "Value": "1"}]})
    procs = snapshot(node)
    started = time.monotonic()
    node.stop()
    assert time.monotonic() - started < node.stop_timeout + 5  # weed would take 15 s+ on its own
    assert not node.is_running()
    assert_all_gone(procs)
    node.stop()

    again = start_seaweedfs(tmp_path / "sw")
    try:
        assert (again.endpoint, again.access_key, again.secret_key) == (node.endpoint, node.access_key,
                                                                        node.secret_key)
        s3 = s3_client(again)
        assert s3.get_object(Bucket=bucket, Key="a/b.bin")["Body"].read() == body
        assert s3.get_object_tagging(Bucket=bucket, Key="a/b.bin")["TagSet"] == [{"Key": "t", "Value": "1"}]
        assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == [bucket]  # no start-up probe left
        procs = snapshot(again)
    finally:
        again.stop()
    assert_all_gone(procs)


def test_seaweedfs_credentials_are_generated_once_or_taken(tmp_path):
    first = load_s3_credentials(tmp_path, None, None)
    assert first["access_key"] and len(first["secret_key"]) >= 30
    assert load_s3_credentials(tmp_path, None, None) == first
    given = load_s3_credentials(tmp_path, "AKIAGIVEN", "given-secret")
    assert given == {"access_key": "AKIAGIVEN", "secret_key": "given-secret"}
    assert load_s3_credentials(tmp_path, None, None) == given
    assert (tmp_path / "credentials.json").stat().st_mode & 0o777 == 0o600
    with pytest.raises(ValueError):
        load_s3_credentials(tmp_path, "only-access", None)
