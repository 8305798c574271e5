"""PutObject writes of one key that overlap (S3 allows it; ceph/s3-tests' test_atomic_dual_write starts a
second PUT from inside the first one's body) while the quota stays exact and hard (proxy/quota.py, key groups).

Each test holds writes open on raw sockets, so the overlap is certain rather than hoped for, and ends by
comparing the usage wio counts with what the node really holds.
"""
from __future__ import annotations

import random
import socket
import struct
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import pytest
from botocore.exceptions import ClientError
from redis import Redis

from tests.test_quota_hostile import assert_exact, error_code, usage
from tools.hostile import Target, _parse_responses, _req

MiB = 1024 * 1024


class OpenPut:
    """A signed PutObject whose body is sent in pieces: the write stays in flight until ``finish``."""

    def __init__(self, target: Target, path: str, body: bytes):
        self.body, self.sent = body, 0
        headers = target.sign("PUT", path, {"Content-Length": str(len(body))}, body)
        self.sock = socket.create_connection((target.host, target.port), timeout=30)
        self.sock.sendall(_req("PUT", path, headers, b"", close=True))

    def send(self, nbytes: int) -> None:
        piece = self.body[self.sent:self.sent + nbytes]
        self.sock.sendall(piece)
        self.sent += len(piece)

    def finish(self) -> int:
        """Send the rest; the response's status."""
        self.send(len(self.body))
        buf = b""
        while chunk := self.sock.recv(65536):
            buf += chunk
        self.sock.close()
        return _parse_responses(buf)[0][0]

    def hang_up(self) -> None:
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))   # reset
        self.sock.close()


@pytest.fixture
def group(stack, workspace):
    """``group(key, **fields)``: wait until the key group of ``key`` has those fields (``n``: writers that
    joined, ``state``, ``wanted``), so a test goes on only once the proxy is where it means it to be."""
    redis = Redis.from_url(stack.settings.redis_url, decode_responses=True)

    def wait(key: str, **fields: str) -> None:
        deadline = time.monotonic() + 15
        while True:
            found = redis.hgetall(f"wio:lk:{workspace}/{key}") if redis.type(f"wio:lk:{workspace}/{key}") == "hash" else {}
            if all(found.get(name) == value for name, value in fields.items()):
                return
            assert time.monotonic() < deadline, f"key group of {key}: {found}, waiting for {fields}"
            time.sleep(0.02)
    yield wait
    redis.close()


@pytest.fixture
def target(stack, person, workspace) -> Target:
    url = urlsplit(stack.s3_url)
    return Target(url.hostname, url.port, person.key["access_key_id"], person.key["secret_access_key"])


def content(person, workspace, key) -> bytes:
    return person.s3.get_object(Bucket=workspace, Key=key)["Body"].read()


def test_a_put_started_inside_another_puts_body_succeeds_and_both_are_counted_once(person, workspace, target,
                                                                                   group):
    """s3-tests' dual write: B's body is half sent when A is written whole; B ends last and wins."""
    person.s3.put_object(Bucket=workspace, Key="keep", Body=b"k" * 5000)
    person.s3.put_object(Bucket=workspace, Key="dual", Body=b"")
    b = OpenPut(target, f"/{workspace}/dual", b"B" * (4 * MiB))
    b.send(2 * MiB)
    group("dual", state="open")   # B's writer formed the key's group and streams to the node
    person.s3.put_object(Bucket=workspace, Key="dual", Body=b"A" * (4 * MiB))   # did not wait for B (no 409)
    assert usage(person, workspace)["pending_bytes"] == 8 * MiB   # both held until the group empties
    assert b.finish() == 200
    assert content(person, workspace, "dual") == b"B" * (4 * MiB)
    assert_exact(person, workspace)
    u = usage(person, workspace)
    assert (u["bytes"], u["objects"]) == (5000 + 4 * MiB, 2)


def test_the_last_write_to_land_is_counted_whichever_writer_leaves_last(person, workspace, target, group):
    """The group's first writer ends first, a small later one lands last: usage follows the node."""
    b = OpenPut(target, f"/{workspace}/k", b"B" * (3 * MiB))   # a new key: the group may create one object
    b.send(MiB)
    group("k", state="open")
    c = OpenPut(target, f"/{workspace}/k", b"C" * (2 * MiB))
    c.send(MiB)
    group("k", n="2")
    assert b.finish() == 200
    assert usage(person, workspace)["bytes"] == 0   # c is still in the group: nothing settled yet
    assert c.finish() == 200
    assert content(person, workspace, "k") == b"C" * (2 * MiB)
    assert_exact(person, workspace)


def test_overlapping_writers_cannot_exceed_the_quota(person, workspace, target, group):
    """Every writer in a group holds its whole size: the node can hold any of them, never more than the quota."""
    person.api.call("PUT", f"/workspaces/{workspace}/quota", {"max_bytes": 5 * MiB})
    person.s3.put_object(Bucket=workspace, Key="k", Body=b"o" * (2 * MiB))
    b = OpenPut(target, f"/{workspace}/k", b"B" * (2 * MiB))
    b.send(MiB)
    group("k", state="open")
    with pytest.raises(ClientError) as exc:   # 2 stored + 2 held by b + 2 more > 5
        person.s3.put_object(Bucket=workspace, Key="k", Body=b"A" * (2 * MiB))
    assert error_code(exc) == "QuotaExceeded"
    person.s3.put_object(Bucket=workspace, Key="k", Body=b"A" * MiB)   # 2 + 2 + 1 fits: joins
    assert b.finish() == 200
    assert_exact(person, workspace)
    assert usage(person, workspace)["bytes"] == 2 * MiB


def test_a_writer_that_hangs_up_inside_a_group_changes_nothing(person, workspace, target, group):
    person.s3.put_object(Bucket=workspace, Key="k", Body=b"o" * 1000)
    b = OpenPut(target, f"/{workspace}/k", b"B" * (3 * MiB))
    b.send(MiB)
    group("k", state="open")
    cut = OpenPut(target, f"/{workspace}/k", b"X" * (3 * MiB))
    cut.send(MiB)
    group("k", n="2")
    cut.hang_up()
    group("k", live="1")   # the cut writer left the group
    assert b.finish() == 200
    assert content(person, workspace, "k") == b"B" * (3 * MiB)
    assert_exact(person, workspace)


def test_a_delete_waits_for_the_group_and_later_writers_wait_for_the_delete(person, workspace, target, group):
    """A delete (an exclusive locker) is not starved by writers that keep joining: once it waits, nobody joins."""
    person.s3.put_object(Bucket=workspace, Key="k", Body=b"o" * 1000)
    b = OpenPut(target, f"/{workspace}/k", b"B" * (2 * MiB))
    b.send(MiB)
    group("k", state="open")
    with ThreadPoolExecutor(2) as pool:
        deleting = pool.submit(person.s3.delete_object, Bucket=workspace, Key="k")
        group("k", wanted="1")
        writing = pool.submit(person.s3.put_object, Bucket=workspace, Key="k", Body=b"W" * 100)
        time.sleep(0.5)
        assert not deleting.done() and not writing.done()
        assert b.finish() == 200
        deleting.result(timeout=10)
        writing.result(timeout=10)
    keys = [o["Key"] for o in person.s3.list_objects_v2(Bucket=workspace).get("Contents", [])]
    assert keys == [] or content(person, workspace, "k") == b"W" * 100   # delete and late write: either order
    assert_exact(person, workspace)


def test_many_overlapping_writers_hangups_and_deletes_of_one_key_end_exact(person, workspace, target):
    person.s3.put_object(Bucket=workspace, Key="keep", Body=b"k" * 5000)
    rng = random.Random(7)

    def one(i: int) -> None:
        kind = i % 5
        if kind == 4:
            try:
                person.s3.delete_object(Bucket=workspace, Key="contested")
            except ClientError as exc:   # a delete behind a long group may wait past its patience
                assert error_code(exc) == "OperationAborted"
            return
        size = rng.choice((1000, 300_000, MiB + 1, 2 * MiB + 7))
        put = OpenPut(target, f"/{workspace}/contested", bytes([65 + i % 26]) * size)
        for _ in range(3):
            put.send(size // 4)
            time.sleep(rng.random() * 0.05)
        if kind == 3:
            put.hang_up()
        else:
            assert put.finish() in (200, 409)

    with ThreadPoolExecutor(10) as pool:
        list(pool.map(one, range(60)))
    deadline = time.monotonic() + 15   # writers that hung up are still being seen through by the proxy
    while usage(person, workspace)["pending_bytes"] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert_exact(person, workspace)
