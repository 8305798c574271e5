"""node / root / import for operators, and audit, explain, search."""
from __future__ import annotations

import time

import boto3
from botocore.config import Config

from tests.cli.conftest import s3_for
from tests.conftest import ADMIN_PASSWORD, make_person, unique


def test_node_root_import(wio, user, stack, s3_node):
    node, root, bucket = unique("clinode"), unique("cliroot"), unique("cli-archive")
    out = wio("node", "add", node, "--endpoint", s3_node.endpoint, "--access-key", s3_node.access_key,
              "--region", s3_node.region, input=f"{s3_node.secret_key}\n").stdout  # the secret is prompted for
    assert f"Registered node {node}" in out
    assert [n["name"] for n in wio.json("node", "ls")["nodes"]] == [node]
    assert node in wio("node", "ls").stdout

    wio("root", "add", root, "--node", node, "--bucket", bucket, "--type", "unmanaged")
    roots = {r["name"]: r for r in wio.json("root", "ls")["roots"]}
    assert (roots[root]["bucket"], roots[root]["type"]) == (bucket, "unmanaged")
    assert root in wio("root", "ls").stdout

    # data that already sits on the node, written around wio
    direct = boto3.client("s3", endpoint_url=s3_node.endpoint, aws_access_key_id=s3_node.access_key,
                          aws_secret_access_key=s3_node.secret_key, region_name=s3_node.region,
                          config=Config(s3={"addressing_style": "path"}))
    direct.put_object(Bucket=bucket, Key="projects/2019/survey.csv", Body=b"a,b\n1,2\n")

    ws = unique("cliimp")
    out = wio("import", ws, "--root", root, "--prefix", "projects/2019").stdout  # the trailing / is added
    assert f"as workspace {ws} owned by {user.name}" in out
    info = wio.json("workspace", "info", ws)
    assert info["root_type"] == "unmanaged" and info["owner"] == user.name
    assert s3_for(wio, stack).get_object(Bucket=ws, Key="survey.csv")["Body"].read() == b"a,b\n1,2\n"
    clash = wio.fail("import", f"bob/{unique('cliimp')}", "--root", root, "--owner", "carol", code=2)
    assert "says owner 'bob' but --owner says 'carol'" in clash

    wio.aborted("node", "rm", node)  # asks first
    wio("node", "rm", node, "--yes")
    assert wio.json("node", "ls")["nodes"] == []
    assert "no workspace named" in wio.fail("workspace", "info", ws)


def test_root_rm(wio, user, s3_node):
    node, root, bucket = unique("rmnode"), unique("cliroot"), unique("cli-rm")
    wio("node", "add", node, "--endpoint", s3_node.endpoint, "--access-key", s3_node.access_key,
        "--secret-key", s3_node.secret_key, "--region", s3_node.region)
    wio("root", "add", root, "--node", node, "--bucket", bucket)
    ws = unique("cliws")
    wio("workspace", "create", ws, "--root", root)

    wio.aborted("root", "rm", root)  # asks first; no answer on stdin -> nothing removed
    assert "still holds 1 workspace;" in wio.fail("root", "rm", root, "--yes")  # one line, the count in it
    wio("workspace", "rm", ws, "--yes")
    out = wio("root", "rm", root, input="y\n").stdout
    assert f"Removed root {root}; its bucket and data stay on the node." in out
    assert root not in {r["name"] for r in wio.json("root", "ls")["roots"]}
    assert "no root named" in wio.fail("root", "rm", root, "--yes")
    wio("node", "rm", node, "--yes")


def test_root_rm_json_and_other_users(wio, user, s3_node, stack):
    node, root = unique("rmnode"), unique("cliroot")
    wio("node", "add", node, "--endpoint", s3_node.endpoint, "--access-key", s3_node.access_key,
        "--secret-key", s3_node.secret_key, "--region", s3_node.region)
    wio("root", "add", root, "--node", node, "--bucket", unique("cli-rm"))
    stranger = make_person(stack, "eve")
    wio("login", stranger.name, "--password", stranger.password, "--profile", "eve")
    assert "node's owner or an administrator" in wio.fail("root", "rm", root, "--yes", "--profile", "eve")
    assert wio.json("root", "rm", root, "--yes") == {"deleted": root}
    wio("node", "rm", node, "--yes")


def test_node_errors(wio, user):
    wio.fail("node", "add", unique("clinode"), "--endpoint", "http://127.0.0.1:1", "--access-key", "a",
             "--secret-key", "b")
    assert "no such node" in wio.fail("node", "rm", "no-such-node", "--yes")
    assert "no node named" in wio.fail("root", "add", unique("cliroot"), "--node", "no-such-node",
                                       "--bucket", "some-bucket")


def test_audit(wio, user, ws, stack):
    s3 = s3_for(wio, stack)
    s3.put_object(Bucket=ws, Key="audited.txt", Body=b"x")
    deadline, entries = time.monotonic() + 20, []
    while time.monotonic() < deadline:  # the proxy -> stream -> store path is asynchronous
        entries = wio.json("audit", "--workspace", f"{user.name}/{ws}", "--since", "1h")["entries"]
        if any(e.get("key") == "audited.txt" for e in entries):
            break
        time.sleep(0.5)
    assert any(e["key"] == "audited.txt" and e["decision"] == "allow" and e["user"] == user.name for e in entries)
    table = wio("audit", "-w", ws, "--decision", "allow", "--limit", "5").stdout
    assert table.splitlines()[0].split()[:2] == ["TIME", "USER"] and "audited.txt" in table
    assert "only system administrators" in wio.fail("audit")


def test_explain(wio, user, ws, stack):
    bob = make_person(stack, "bob")
    wio("share", "add", ws, "--user", bob.name, "--prefix", "results/")
    allowed = wio.json("explain", bob.name, f"{user.name}/{ws}", "GetObject", "results/x.nc")
    assert allowed["allowed"] is True and allowed["permission_needed"] == "read"
    refused = wio.json("explain", bob.name, ws, "PutObject", "results/x.nc")
    assert refused["allowed"] is False
    text = wio("explain", bob.name, ws, "GetObject", "raw/x.nc").stdout
    assert "allowed:" in text and "no" in text.split("allowed:")[1].split()[0]
    assert "read on results/" in text
    key = bob.key["access_key_id"]
    assert wio.json("explain", "--access-key", key, ws, "GetObject", "results/x")["access_key"]["access_key_id"] == key
    wio.fail("explain", bob.name, ws, "Frobnicate", "x")


def _indexed(wio, ws: str, query: str, seconds: float) -> list[dict]:
    deadline, hits = time.monotonic() + seconds, []
    while time.monotonic() < deadline:  # events and crawls reach the index asynchronously
        hits = wio.json("search", query, "--workspace", ws)["hits"]
        if hits:
            break
        time.sleep(0.5)
    return hits


def test_search_and_crawl(wio, user, ws, stack):
    s3 = s3_for(wio, stack)
    s3.put_object(Bucket=ws, Key="runs/Temperature-2019.csv", Body=b"t" * 2000, ContentType="text/csv")
    s3.put_object(Bucket=ws, Key="runs/notes.txt", Body=b"n", ContentType="text/plain")
    assert "Crawl requested for 1 workspace" in wio("crawl", f"{user.name}/{ws}").stdout  # admins of ws may
    assert "needs an administrator" in wio.fail("crawl", ws, "--wait")
    assert "give a QUERY" in wio.fail("search", code=2)
    assert wio.json("search", "--by", "extension", "-w", ws)["by"] == "extension"
    assert "no matches" in wio("search", "zzz-nothing-like-this", "-w", ws).stderr

    hits = _indexed(wio, ws, "temperature", 30)  # the test stack runs the indexer
    assert [h["key"] for h in hits] == ["runs/Temperature-2019.csv"]
    assert "runs/Temperature-2019.csv" in wio("search", "temperature").stdout
    assert [h["key"] for h in wio.json("search", "-w", ws, "--type", "text/plain")["hits"]] == ["runs/notes.txt"]
    big = wio.json("search", "-w", ws, "--min-size", "1KiB")["hits"]
    assert [h["key"] for h in big] == ["runs/Temperature-2019.csv"]
    by_ext = {b["key"]: b for b in wio.json("search", "--by", "extension", "-w", ws)["buckets"]}
    assert by_ext["csv"]["objects"] == 1 and by_ext["csv"]["bytes"] == 2000

    wio("login", "admin", "--password", ADMIN_PASSWORD, "--profile", "admin")
    crawled = wio.json("crawl", ws, "--wait", "--timeout", "60", "--profile", "admin")["crawls"]
    assert crawled[0]["workspace"] == ws and crawled[0]["listed"] == 2
