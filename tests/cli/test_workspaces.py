"""workspace, share, group (through shares), quota and usage, against the real API and proxy."""
from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from tests.cli.conftest import s3_for
from tests.conftest import make_person, unique


def denied(call) -> str:
    with pytest.raises(ClientError) as exc:
        call()
    return exc.value.response["Error"]["Code"]


def test_workspace_create_ls_info_rm(wio, user):
    name = unique("cliws")
    out = wio("workspace", "create", name).stdout
    assert f"Created workspace {name}" in out and f"s3://{name}" in out
    table = wio("workspace", "ls").stdout.splitlines()
    assert table[0].split()[:3] == ["NAME", "OWNER", "ACCESS"]
    assert any(line.split()[:3] == [name, user.name, "admin"] for line in table[1:])
    listed = wio.json("workspace", "ls", "--mine")["workspaces"]
    assert [w["name"] for w in listed] == [name]
    assert wio.json("workspace", "ls", "--owner", "nobody-at-all")["workspaces"] == []

    info = wio.json("workspace", "info", f"{user.name}/{name}")
    assert info["name"] == name and info["owner"] == user.name and info["permission"] == "admin"
    assert "your access: admin" in wio("workspace", "info", name).stdout.replace("  ", " ")
    assert f"belongs to '{user.name}', not 'someone'" in wio.fail("workspace", "info", f"someone/{name}")
    assert "as yourself" in wio.fail("workspace", "create", f"someone/{unique('cliws')}")
    assert "already exists" in wio.fail("workspace", "create", name)

    wio.aborted("workspace", "rm", name)  # asks first; no answer on stdin -> nothing deleted
    assert wio.json("workspace", "info", name)["name"] == name
    wio("workspace", "rm", name, input="y\n")
    assert f"no workspace named '{name}'" in wio.fail("workspace", "info", name)


def test_bad_workspace_names_are_one_line_errors(wio, user):
    wio.fail("workspace", "create", "Not_A_Bucket")
    assert "'name' or 'owner/name'" in wio.fail("workspace", "info", "a/b/c", code=2)


def test_public_workspace(wio, user, stack):
    name = unique("clipub")
    wio("workspace", "create", name, "--public")
    bob = make_person(stack, "bob")
    assert name in [w["name"] for w in bob.api.call("GET", "/workspaces")["workspaces"]]
    assert wio.json("workspace", "info", name)["anonymous_read"] is False


def test_anonymous_read_needs_the_operator_switch(wio, user):
    """The session stack runs without WIO_ANONYMOUS_READS: one readable line, nothing created."""
    name = unique("clianon")
    message = wio.fail("workspace", "create", name, "--anonymous-read")
    assert "WIO_ANONYMOUS_READS" in message   # (fail() checks: one "Error: …" line, no traceback)
    assert f"no workspace named '{name}'" in wio.fail("workspace", "info", name)


def test_share_with_user_and_group_then_revoke(wio, user, ws, stack):
    bob = make_person(stack, "bob")
    alice = s3_for(wio, stack)
    alice.put_object(Bucket=ws, Key="results/a.txt", Body=b"result")
    alice.put_object(Bucket=ws, Key="raw/b.txt", Body=b"raw")
    assert denied(lambda: bob.s3.get_object(Bucket=ws, Key="results/a.txt")) in ("AccessDenied", "NoSuchBucket")

    out = wio("share", "add", f"{user.name}/{ws}", "--user", bob.name, "--prefix", "results/", "--expires", "7d").stdout
    assert f"with user:{bob.name}: read until" in out
    assert bob.s3.get_object(Bucket=ws, Key="results/a.txt")["Body"].read() == b"result"
    assert denied(lambda: bob.s3.get_object(Bucket=ws, Key="raw/b.txt")) == "AccessDenied"
    shares = wio.json("share", "ls", ws)["shares"]
    assert [(s["user"], s["permission"], s["prefix"]) for s in shares] == [(bob.name, "read", "results/")]
    assert shares[0]["expires_at"]
    assert f"user:{bob.name}" in wio("share", "ls", ws).stdout

    wio("share", "rm", ws, "--user", bob.name)
    assert denied(lambda: bob.s3.get_object(Bucket=ws, Key="results/a.txt")) in ("AccessDenied", "NoSuchBucket")
    assert "holds no share" in wio.fail("share", "rm", ws, "--user", bob.name)

    group = unique("clig")
    wio("group", "create", group)
    assert bob.name in wio("group", "add", group, bob.name).stdout
    share = wio.json("share", "add", ws, "--group", group, "--permission", "write")
    bob.s3.put_object(Bucket=ws, Key="from-bob.txt", Body=b"hi")
    assert {g["name"]: g["members"] for g in wio.json("group", "ls")["groups"]}[group] == [bob.name]
    assert f"group:{group}" in wio("share", "ls", ws).stdout
    wio("group", "remove", group, bob.name)
    assert denied(lambda: bob.s3.put_object(Bucket=ws, Key="again.txt", Body=b"x")) in ("AccessDenied",
                                                                                       "NoSuchBucket")
    wio("share", "rm", ws, str(share["id"]))
    assert wio.json("share", "ls", ws)["shares"] == []
    wio("group", "rm", group)
    assert group not in [g["name"] for g in wio.json("group", "ls")["groups"]]

    assert "exactly one of --user or --group" in wio.fail("share", "add", ws, code=2)
    assert "no user named" in wio.fail("share", "add", ws, "--user", unique("ghost"))


def test_quota_and_usage(wio, user, ws, stack):
    out = wio("quota", "set", ws, "--max-bytes", "1KiB", "--max-objects", "2").stdout
    assert "1.0 KiB, 2 objects" in out
    shown = wio.json("quota", "show", f"{user.name}/{ws}")
    assert (shown["max_bytes"], shown["max_objects"], shown["bytes"], shown["objects"]) == (1024, 2, 0, 0)

    s3 = s3_for(wio, stack)
    s3.put_object(Bucket=ws, Key="a.bin", Body=b"x" * 600)
    assert denied(lambda: s3.put_object(Bucket=ws, Key="b.bin", Body=b"x" * 600)) == "QuotaExceeded"
    used = {u["workspace"]: u for u in wio.json("usage")["usage"]}[ws]
    assert (used["bytes"], used["objects"]) == (600, 1)
    table = wio("usage", ws).stdout
    assert "600 B" in table and "59%" in table
    assert "bytes left" in wio("quota", "show", ws).stdout

    wio("quota", "set", ws, "--max-bytes", "none")
    assert wio.json("quota", "show", ws)["max_bytes"] is None
    s3.put_object(Bucket=ws, Key="b.bin", Body=b"x" * 600)
    assert wio.json("usage", ws, "--reconcile")["usage"][0]["bytes"] == 1200

    assert "this needs a system administrator" in wio.fail("quota", "set", "--user", user.name, "--max-bytes", "1G")
    assert "one of" in wio.fail("quota", "show", code=2)
    assert "--max-bytes and/or --max-objects" in wio.fail("quota", "set", ws, code=2)
