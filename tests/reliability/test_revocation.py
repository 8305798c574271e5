"""Invariant 1 with 4 proxy workers: the very next request after a revocation is denied, on a fresh
connection (SO_REUSEPORT spreads fresh connections over the workers), whichever worker takes it.

Quick form: 200 share revocations, 50 key deletions, 30 group-membership removals, 20 user disables.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
from botocore.exceptions import ClientError

from tests.conftest import make_person, unique
from tools.hostile import Target, send_raw
from wio.dev.stack import wait_http
from wio.dev.process import free_port

SHARE_TRIALS = int(os.environ.get("WIO_REVOCATION_TRIALS", "200"))


@pytest.fixture(scope="module")
def four_workers(stack):
    """A second proxy with 4 worker processes in front of the shared stack's Redis."""
    settings = stack.settings.with_(proxy_port=free_port())
    proc = subprocess.Popen([sys.executable, "-m", "wio", "serve", "proxy", "--workers", "4"],
                            env={**os.environ, **settings.to_env()}, start_new_session=True)
    try:
        wait_http(f"http://127.0.0.1:{settings.proxy_port}/_wio/health", 60, proc)
        yield settings.proxy_port
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def fresh_get(port: int, key: dict, bucket: str, obj: str) -> tuple[int, bytes]:
    """One signed GET on a brand-new connection (Connection: close)."""
    t = Target("127.0.0.1", port, key["access_key_id"], key["secret_access_key"], bucket)
    headers = t.sign("GET", f"/{bucket}/{obj}")
    if key.get("session_token"):
        raise AssertionError("long-lived keys only here")
    raw = "\r\n".join([f"GET /{bucket}/{obj} HTTP/1.1"] + [f"{k}: {v}" for k, v in headers] +
                      ["Connection: close", "", ""]).encode()
    answers = send_raw(t, raw)
    assert answers, "no answer"
    return answers[0][0], answers[0][2]


@pytest.fixture(scope="module")
def shared_ws(stack):
    owner = make_person(stack, "revowner")
    ws = unique("revws")
    owner.api.call("POST", "/workspaces", {"name": ws})
    owner.s3.put_object(Bucket=ws, Key="doc", Body=b"confidential")
    return owner, ws


def test_share_revocation_denies_the_next_request(stack, four_workers, shared_ws):
    owner, ws = shared_ws
    reader = make_person(stack, "revreader")
    leaked = 0
    for _ in range(SHARE_TRIALS):
        share = owner.api.call("POST", f"/workspaces/{ws}/shares", {"user": reader.name, "permission": "read"})
        status, body = fresh_get(four_workers, reader.key, ws, "doc")
        assert status == 200 and body == b"confidential"
        owner.api.call("DELETE", f"/workspaces/{ws}/shares/{share['id']}")
        status, body = fresh_get(four_workers, reader.key, ws, "doc")
        if status == 200 or b"confidential" in body:
            leaked += 1
    assert leaked == 0, f"{leaked} of {SHARE_TRIALS} first requests after a revocation were allowed"


def test_key_deletion_denies_the_next_request(stack, four_workers, shared_ws):
    owner, ws = shared_ws
    for _ in range(50):
        key = owner.api.call("POST", "/keys", {"name": "short"})
        assert fresh_get(four_workers, key, ws, "doc")[0] == 200
        owner.api.call("DELETE", f"/keys/{key['access_key_id']}")
        status, body = fresh_get(four_workers, key, ws, "doc")
        assert status == 403 and b"confidential" not in body


def test_group_membership_removal_denies_the_next_request(stack, four_workers, shared_ws):
    owner, ws = shared_ws
    member = make_person(stack, "revmember")
    group = unique("revgrp")
    owner.api.call("POST", "/groups", {"name": group})
    owner.api.call("POST", f"/workspaces/{ws}/shares", {"group": group, "permission": "read"})
    for _ in range(30):
        owner.api.call("POST", f"/groups/{group}/members", {"user": member.name})
        assert fresh_get(four_workers, member.key, ws, "doc")[0] == 200
        owner.api.call("DELETE", f"/groups/{group}/members/{member.name}")
        status, body = fresh_get(four_workers, member.key, ws, "doc")
        assert status == 403 and b"confidential" not in body


def test_user_disable_denies_the_next_request(stack, four_workers, shared_ws, admin_api):
    owner, ws = shared_ws
    user = make_person(stack, "revdisabled")
    owner.api.call("POST", f"/workspaces/{ws}/shares", {"user": user.name, "permission": "read"})
    for _ in range(20):
        admin_api.call("POST", f"/users/{user.name}/enable")
        assert fresh_get(four_workers, user.key, ws, "doc")[0] == 200
        admin_api.call("POST", f"/users/{user.name}/disable")
        status, body = fresh_get(four_workers, user.key, ws, "doc")
        assert status == 403 and b"confidential" not in body


def test_a_revocation_lost_on_a_verified_server_is_repaired_within_rounds(stack):
    """A primary demoted while alive acknowledges a write that the promoted server never gets, and the
    promoted server's run_id and verified mark do not change: the keeper must notice by the epochs alone.
    Simulated on the session's Redis: after a revocation, the share and the epoch are put back as they
    were before it, the verified mark untouched."""
    import time

    from redis import Redis

    owner, reader = make_person(stack, "lostowner"), make_person(stack, "lostreader")
    ws = unique("lostws")
    owner.api.call("POST", "/workspaces", {"name": ws})
    owner.s3.put_object(Bucket=ws, Key="doc", Body=b"confidential")
    share = owner.api.call("POST", f"/workspaces/{ws}/shares", {"user": reader.name, "permission": "read"})
    reader.s3.get_object(Bucket=ws, Key="doc")
    redis = Redis.from_url(stack.settings.redis_url, decode_responses=True)
    before = redis.hgetall(f"wio:s:{ws}"), redis.hget("wio:meta", "epoch")
    assert before[0], "the share is in the projection"
    owner.api.call("DELETE", f"/workspaces/{ws}/shares/{share['id']}")
    with redis.pipeline(transaction=True) as pipe:   # the revocation, lost; the server still verified
        pipe.hset(f"wio:s:{ws}", mapping=before[0])
        pipe.hset("wio:meta", "epoch", before[1])
        pipe.execute()
    deadline = time.monotonic() + 5
    while redis.hgetall(f"wio:s:{ws}") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert redis.hgetall(f"wio:s:{ws}") == {}, "the keeper did not repair the lost revocation"
    with pytest.raises(ClientError) as denied:
        reader.s3.get_object(Bucket=ws, Key="doc")
    assert denied.value.response["Error"]["Code"] == "AccessDenied"
