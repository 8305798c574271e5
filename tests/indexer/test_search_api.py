"""Search end to end: boto3 through the proxy -> event stream -> indexer -> admin API, on the real stack.

The indexer runs in-process (its own thread and event loop) against the session's stack; everything
the tests look at goes through the public surfaces: S3 calls at the proxy and the admin REST API.
Other tests of the session write too (public workspaces are readable by everyone), so every query
here is narrowed to a workspace of its own or to a word nobody else uses.
"""
from __future__ import annotations

import asyncio
import os
import secrets
import signal
import statistics
import subprocess
import sys
import threading

import boto3
import pytest

from indexer.service import run_indexer
from tests.conftest import make_person, unique
from tests.indexer.conftest import wait_for


@pytest.fixture(scope="module")
def indexer(stack):
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    thread = threading.Thread(target=loop.run_until_complete, name="indexer",
                              args=(run_indexer(stack.settings, stop, crawl_poll_seconds=0.2),))
    thread.start()
    yield
    loop.call_soon_threadsafe(stop.set)
    thread.join(30)
    loop.close()
    assert not thread.is_alive()


@pytest.fixture(scope="module")
def alice(stack):
    return make_person(stack, "alice")


@pytest.fixture(scope="module")
def bob(stack):
    return make_person(stack, "bob")


@pytest.fixture
def ws(alice) -> str:
    name = unique("ws")
    alice.api.call("POST", "/workspaces", {"name": name})
    return name


def word() -> str:
    """A word no other object of the session contains."""
    return "w" + secrets.token_hex(6)


def found(person, **params) -> list[tuple[str, str]]:
    result = person.api.call("GET", "/search", params=params)
    return [(h["workspace"], h["key"]) for h in result["hits"]]


def test_written_objects_are_searchable_within_seconds(indexer, alice, ws):
    latencies = []
    for i in range(8):
        key = f"latency/probe-{i}.dat"
        alice.s3.put_object(Bucket=ws, Key=key, Body=b"x" * (i + 1), ContentType="application/x-probe")
        _, seconds = wait_for(lambda: found(alice, q=f"probe {i}", workspace=ws), timeout=5)
        latencies.append(seconds)
    print(f"\nsearchable after a PUT: median {statistics.median(latencies) * 1000:.0f} ms, "
          f"max {max(latencies) * 1000:.0f} ms")
    result = alice.api.call("GET", "/search", params={"workspace": ws, "q": "probe dat", "limit": 3, "offset": 6})
    assert result["total"] == 8 and [h["key"] for h in result["hits"]] == ["latency/probe-6.dat",
                                                                           "latency/probe-7.dat"]
    first = alice.api.call("GET", "/search", params={"workspace": ws, "limit": 1})["hits"][0]
    assert first == {"workspace": ws, "key": "latency/probe-0.dat", "size": 1,
                     "last_modified": first["last_modified"], "content_type": "application/x-probe"}
    assert first["last_modified"].endswith("Z")


def test_copies_and_deletes_reach_the_index(indexer, alice, ws):
    s3 = alice.s3
    s3.put_object(Bucket=ws, Key="orig/table.csv", Body=b"a,b\n" * 1000, ContentType="text/csv")
    s3.copy_object(Bucket=ws, Key="copies/table.csv", CopySource={"Bucket": ws, "Key": "orig/table.csv"})
    wait_for(lambda: len(found(alice, workspace=ws, q="table")) == 2)
    copy = alice.api.call("GET", "/search", params={"workspace": ws, "prefix": "copies/"})["hits"]
    assert [(h["size"], h["content_type"]) for h in copy] == [(4000, "text/csv")]  # completed by a HEAD
    s3.delete_object(Bucket=ws, Key="orig/table.csv")
    wait_for(lambda: found(alice, workspace=ws, q="table") == [(ws, "copies/table.csv")])
    s3.put_object(Bucket=ws, Key="many/1", Body=b"1")
    s3.put_object(Bucket=ws, Key="many/2", Body=b"2")
    wait_for(lambda: len(found(alice, workspace=ws, prefix="many/")) == 2)
    s3.delete_objects(Bucket=ws, Delete={"Objects": [{"Key": "many/1"}, {"Key": "many/2"}]})
    wait_for(lambda: found(alice, workspace=ws, prefix="many/") == [])


def test_search_follows_permissions_at_query_time(indexer, alice, bob, ws):
    secret = word()
    for key in (f"public-part/{secret}-summary.txt", f"private/{secret}-keys.txt"):
        alice.s3.put_object(Bucket=ws, Key=key, Body=b"data")
    wait_for(lambda: len(found(alice, q=secret)) == 2)
    assert found(bob, q=secret) == [] and found(bob, workspace=ws) == []
    assert bob.api.call("GET", "/search/aggregations", params={"by": "workspace", "workspace": ws})["buckets"] == []

    share = alice.api.call("POST", f"/workspaces/{ws}/shares",
                           {"user": bob.name, "permission": "read", "prefix": "public-part/"})
    assert found(bob, q=secret) == [(ws, f"public-part/{secret}-summary.txt")]  # the shared prefix only
    alice.api.call("DELETE", f"/workspaces/{ws}/shares/{share['id']}")
    assert found(bob, q=secret) == []  # the very next query

    group = unique("team")
    alice.api.call("POST", "/groups", {"name": group})
    alice.api.call("POST", f"/groups/{group}/members", {"user": bob.name})
    alice.api.call("POST", f"/workspaces/{ws}/shares", {"group": group, "permission": "write"})
    assert len(found(bob, q=secret)) == 2
    alice.api.call("DELETE", f"/groups/{group}/members/{bob.name}")
    assert found(bob, q=secret) == []


def test_public_workspaces_are_searchable_by_everyone(indexer, alice, bob):
    name, secret = unique("pub"), word()
    alice.api.call("POST", "/workspaces", {"name": name, "public": True})
    alice.s3.put_object(Bucket=name, Key=f"open-data/{secret}.parquet", Body=b"PAR1")
    wait_for(lambda: found(bob, q=secret) == [(name, f"open-data/{secret}.parquet")])


def test_crawl_imports_an_unmanaged_root(indexer, admin_api, s3_node, alice, bob):
    node = admin_api.call("GET", "/nodes")["nodes"][0]["name"]
    bucket, root, name = unique("legacy-"), unique("legacy"), unique("archive")
    admin_api.call("POST", "/roots", {"name": root, "node": node, "bucket": bucket, "type": "unmanaged"})
    direct = boto3.client("s3", endpoint_url=s3_node.endpoint, aws_access_key_id=s3_node.access_key,
                          aws_secret_access_key=s3_node.secret_key, region_name=s3_node.region)
    for key, size in {"2019/survey.csv": 1200, "2019/notes.txt": 30, "2020/survey.csv": 2400}.items():
        direct.put_object(Bucket=bucket, Key=f"group-x/{key}", Body=b"z" * size, ContentType="text/csv")
    direct.put_object(Bucket=bucket, Key="elsewhere/survey.csv", Body=b"not imported")
    admin_api.call("POST", "/workspaces/import", {"name": name, "root": root, "prefix": "group-x/",
                                                  "owner": alice.name})
    hits, seconds = wait_for(lambda: found(alice, q="survey", workspace=name), timeout=10)
    assert hits == [(name, "2019/survey.csv"), (name, "2020/survey.csv")]
    print(f"\nimported workspace searchable after {seconds:.2f} s")
    assert alice.api.call("GET", "/search", params={"workspace": name, "q": "notes"})["hits"][0]["size"] == 30
    assert found(bob, workspace=name) == []

    # Changed around wio; a crawl requested through the API reconciles it.
    direct.delete_object(Bucket=bucket, Key="group-x/2019/survey.csv")
    assert bob.api.request("POST", "/search/crawl", {"workspace": name})[0] == 404
    assert alice.api.call("POST", "/search/crawl", {"workspace": name}) == {"requested": [name]}
    wait_for(lambda: found(alice, q="survey", workspace=name) == [(name, "2020/survey.csv")], timeout=10)
    status = admin_api.call("GET", "/search/status")
    crawl = next(c for c in status["crawls"] if c["workspace"] == name)
    assert (crawl["listed"], crawl["removed"], crawl["error"]) == (2, 1, None) and status["backend"] == "postgresql"
    assert alice.api.request("GET", "/search/status")[0] == 403

    # Deleted, and the name taken again by someone else: the old objects must not show up in the namesake.
    admin_api.call("DELETE", f"/workspaces/{name}")
    bob.api.call("POST", "/workspaces", {"name": name})
    wait_for(lambda: found(bob, workspace=name) == [])
    bob.s3.put_object(Bucket=name, Key="2019/survey.csv", Body=b"new")
    wait_for(lambda: [h["size"] for h in bob.api.call("GET", "/search", params={"workspace": name})["hits"]] == [3])


def test_aggregations_are_exact(indexer, alice):
    ws1, ws2 = unique("agg"), unique("agg")
    for ws in (ws1, ws2):
        alice.api.call("POST", "/workspaces", {"name": ws})
    objects = [(ws1, "a.csv", 1000, "text/csv"), (ws1, "b.CSV", 234, "text/csv"),
               (ws1, "c.json", 50, "application/json"),
               (ws1, "README", 7, "text/plain"), (ws2, "d.csv", 5, "text/csv"), (ws2, "e.png", 4096, "image/png")]
    for ws, key, size, content_type in objects:
        alice.s3.put_object(Bucket=ws, Key=key, Body=b"0" * size, ContentType=content_type)

    def aggregate(by: str, **filters) -> list[tuple[str, int, int]]:
        buckets = alice.api.call("GET", "/search/aggregations", params={"by": by, **filters})["buckets"]
        return [(b["key"], b["objects"], b["bytes"]) for b in buckets]

    wait_for(lambda: [b for b in aggregate("workspace") if b[0] in (ws1, ws2)] == [(ws2, 2, 4101), (ws1, 4, 1291)])
    assert aggregate("extension", workspace=ws1) == [("csv", 2, 1234), ("json", 1, 50), ("", 1, 7)]
    assert aggregate("content_type", workspace=ws2) == [("image/png", 1, 4096), ("text/csv", 1, 5)]
    assert aggregate("extension", workspace=ws1, min_size=100, q="csv") == [("csv", 2, 1234)]
    # By owner folds the workspaces of each owner: alice's come from this and earlier tests.
    owned = {w["name"] for w in alice.api.call("GET", "/workspaces")["workspaces"] if w["owner"] == alice.name}
    mine = [(objects, size) for key, objects, size in aggregate("workspace") if key in owned]
    assert (alice.name, sum(o for o, _ in mine), sum(b for _, b in mine)) in aggregate("owner")


@pytest.mark.parametrize("path, params, message", [
    ("/search", {"limit": "0"}, "'limit' must be between 1 and 1000"),
    ("/search", {"limit": "ten"}, "'limit' must be an integer"),
    ("/search", {"offset": "9990", "limit": "20"}, "may not exceed 10000"),
    ("/search", {"min_size": "-1"}, "'min_size' must be at least 0"),
    ("/search", {"min_size": "10", "max_size": "5"}, "larger than"),
    ("/search", {"modified_after": "yesterday"}, "ISO 8601"),
    ("/search", {"q": "/// ..."}, "at least one letter or digit"),
    ("/search", {"content_type": "te*t/csv"}, "family such as text/*"),
    ("/search", {"qq": "x"}, "unknown parameter 'qq'"),
    ("/search/aggregations", {"by": "colour"}, "'by' must be one of"),
    ("/search/aggregations", {}, "'by' must be one of"),
])
def test_bad_parameters_are_clear_400s(alice, path, params, message):
    status, body = alice.api.request("GET", path, params=params)
    assert status == 400 and body["error"]["code"] == "InvalidParameter" and message in body["error"]["message"]


def test_search_needs_a_login(stack):
    from wio.client import ApiClient
    status, body = ApiClient(stack.api_url).request("GET", "/search", params={"q": "x"})
    assert status == 401 and body["error"]["code"] == "Unauthorized"


def test_the_indexer_process_starts_and_stops_on_sigterm(stack):
    """``wio serve indexer``: up, consuming, and a clean exit on SIGTERM."""
    proc = subprocess.Popen([sys.executable, "-m", "wio", "serve", "indexer"],
                            env={**os.environ, **stack.settings.to_env()}, stderr=subprocess.PIPE, text=True)
    try:
        lines = []
        for line in proc.stderr:
            lines.append(line)
            if "indexer running" in line:
                break
        assert "backend postgresql" in lines[-1], "".join(lines)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
        assert "Traceback" not in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
