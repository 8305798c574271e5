"""key create/ls/rm (long-lived, temporary, scoped) and the administrators' user commands."""
from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from tests.cli.conftest import Wio
from tests.conftest import ADMIN_PASSWORD, make_person, s3_client


def error_code(call) -> str:
    with pytest.raises(ClientError) as exc:
        call()
    return exc.value.response["Error"]["Code"]


def test_keys_long_lived_temporary_and_scoped(wio, user, ws, stack):
    plain = wio.json("key", "create", "--name", "laptop")
    assert plain["access_key_id"] and plain["secret_access_key"] and "session_token" not in plain
    s3_client(stack.s3_url, plain).put_object(Bucket=ws, Key="results/r.txt", Body=b"r")

    scoped = wio.json("key", "create", "--expires", "1h", "--scope", f"{user.name}/{ws}:read:results/")
    assert scoped["session_token"] and scoped["expires_at"] and scoped["temporary"] is True
    assert scoped["scope"] == [{"workspace": ws, "permission": "read", "prefix": "results/"}]
    s3 = s3_client(stack.s3_url, scoped)
    assert s3.get_object(Bucket=ws, Key="results/r.txt")["Body"].read() == b"r"
    assert error_code(lambda: s3.put_object(Bucket=ws, Key="results/w.txt", Body=b"w")) == "AccessDenied"

    human = wio("key", "create", "--expires", "15m").stdout
    assert "secret access key:" in human and "session token:" in human

    table = wio("key", "ls").stdout
    assert plain["access_key_id"] in table and f"{ws}:read:results/" in table
    listed = {k["access_key_id"]: k for k in wio.json("key", "ls")["keys"]}
    assert listed[plain["access_key_id"]]["name"] == "laptop" and listed[scoped["access_key_id"]]["temporary"]

    wio("key", "rm", plain["access_key_id"], scoped["access_key_id"])
    assert error_code(lambda: s3.get_object(Bucket=ws, Key="results/r.txt")) == "InvalidAccessKeyId"
    assert plain["access_key_id"] not in wio("key", "ls").stdout
    assert "no such access key" in wio.fail("key", "rm", plain["access_key_id"])
    assert "a scope is" in wio.fail("key", "create", "--scope", f"{ws}:everything", code=2)
    assert "belongs to" in wio.fail("key", "create", "--scope", f"someone/{ws}:read")


def test_admin_user_commands(wio: Wio, user, stack):
    assert "this needs a system administrator" in wio.fail("user", "ls")
    wio("login", "admin", "--password", ADMIN_PASSWORD, "--profile", "admin")
    target = make_person(stack, "mallory")
    users = {u["username"]: u for u in wio.json("user", "ls", "--profile", "admin")["users"]}
    assert users["admin"]["is_admin"] and target.name in users and user.name in users
    assert target.name in wio("user", "ls", "--profile", "admin").stdout

    assert "Disabled" in wio("user", "disable", target.name, "--profile", "admin").stdout
    assert error_code(lambda: target.s3.list_objects_v2(Bucket="anything")) in ("AccessDenied",
                                                                                "InvalidAccessKeyId")
    assert target.api.request("GET", "/me")[0] == 403
    assert wio.json("user", "enable", target.name, "--profile", "admin")["disabled"] is False
    assert target.api.request("GET", "/me")[0] == 200
    assert "no such user" in wio.fail("user", "disable", "no-such-user-here", "--profile", "admin")

    # administrators make administrators (and take it back)
    assert "is now a system administrator" in wio("user", "promote", target.name, "--profile", "admin").stdout
    assert target.api.call("GET", "/me")["is_admin"] is True
    assert target.api.request("GET", "/users")[0] == 200
    assert wio.json("user", "demote", target.name, "--profile", "admin")["is_admin"] is False
    assert target.api.request("GET", "/users")[0] == 403
    assert "this needs a system administrator" in wio.fail("user", "promote", user.name)
    assert "no such user" in wio.fail("user", "promote", "no-such-user-here", "--profile", "admin")

    # administrators set user quotas
    status, _ = target.api.request("GET", f"/users/{target.name}/usage")
    if status != 404:
        answer = wio.json("quota", "set", "--user", target.name, "--max-objects", "5", "--profile", "admin")
        assert answer["max_objects"] == 5
        assert wio.json("quota", "show", "--user", target.name, "--profile", "admin")["max_objects"] == 5
