"""The audit trail end to end: proxy decision -> wio:audit stream -> PostgreSQL -> GET /api/v1/audit."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from botocore.exceptions import ClientError

from tests.conftest import make_person, unique
from tests.observability.helpers import wait_for_audit
from wio.client import ApiClientError


@pytest.fixture
def shared_workspace(stack):
    """An owner, a workspace with one object, a reader (read share) and a co-admin (admin share)."""
    owner, reader, co_admin = (make_person(stack, p) for p in ("audown", "audread", "audadm"))
    ws = unique("audws")
    owner.api.call("POST", "/workspaces", {"name": ws})
    owner.s3.put_object(Bucket=ws, Key="secret/report.csv", Body=b"a,b\n1,2\n")
    owner.api.call("POST", f"/workspaces/{ws}/shares", {"user": reader.name, "permission": "read"})
    owner.api.call("POST", f"/workspaces/{ws}/shares", {"user": co_admin.name, "permission": "admin"})
    return ws, owner, reader, co_admin


def test_denied_read_appears_in_the_audit_with_user_workspace_and_key(stack, admin_api, shared_workspace):
    ws, owner, _, _ = shared_workspace
    intruder = make_person(stack, "audintr")
    with pytest.raises(ClientError) as exc:
        intruder.s3.get_object(Bucket=ws, Key="secret/report.csv")
    assert exc.value.response["Error"]["Code"] == "AccessDenied"
    request_id = exc.value.response["ResponseMetadata"]["RequestId"]
    assert request_id

    entries = wait_for_audit(admin_api, {"workspace": ws, "decision": "deny"},
                             lambda e: e["request_id"] == request_id)
    entry = next(e for e in entries if e["request_id"] == request_id)
    assert entry["user"] == intruder.name
    assert entry["workspace"] == ws
    assert entry["key"] == "secret/report.csv"
    assert entry["access_key"] == intruder.key["access_key_id"]
    assert entry["operation"] == "GetObject"
    assert entry["decision"] == "deny" and entry["status"] == 403
    assert "Access Denied" in entry["reason"]
    assert entry["client"] == "127.0.0.1"
    assert all(e["decision"] == "deny" for e in entries)

    # The owner administers the workspace: they see the denial too, and their own allowed write.
    mine = wait_for_audit(owner.api, {"workspace": ws}, lambda e: e["request_id"] == request_id)
    put = next(e for e in mine if e["operation"] == "PutObject")
    assert put["user"] == owner.name and put["decision"] == "allow" and put["reason"] == "owner"
    assert put["bytes_in"] == len(b"a,b\n1,2\n")
    times = [e["time"] for e in mine]
    assert times == sorted(times, reverse=True), "newest first"


def test_only_admins_of_a_workspace_read_its_audit(stack, shared_workspace):
    ws, _, reader, co_admin = shared_workspace
    stranger = make_person(stack, "audstr")
    for person, params in ((reader, {"workspace": ws}), (stranger, {"workspace": ws}),
                           (stranger, {"workspace": unique("nosuchws")}), (reader, {})):
        with pytest.raises(ApiClientError) as exc:
            person.api.call("GET", "/audit", params=params)
        assert exc.value.status == 403, (person.name, params)
    entries = wait_for_audit(co_admin.api, {"workspace": ws}, lambda e: e["operation"] == "PutObject")
    assert {e["workspace"] for e in entries} == {ws}


def test_filters_by_user_decision_and_time(stack, admin_api, shared_workspace):
    ws, owner, reader, _ = shared_workspace
    assert reader.s3.get_object(Bucket=ws, Key="secret/report.csv")["Body"].read() == b"a,b\n1,2\n"
    with pytest.raises(ClientError):
        reader.s3.put_object(Bucket=ws, Key="secret/mine.txt", Body=b"x")
    wait_for_audit(admin_api, {"workspace": ws, "user": reader.name}, lambda e: e["operation"] == "PutObject")

    by_reader = admin_api.call("GET", "/audit", params={"workspace": ws, "user": reader.name})["entries"]
    assert {e["user"] for e in by_reader} == {reader.name}
    assert [(e["operation"], e["decision"]) for e in by_reader] == [("PutObject", "deny"), ("GetObject", "allow")]
    assert by_reader[1]["reason"].startswith("share:") and by_reader[1]["bytes_out"] == 8

    allowed = admin_api.call("GET", "/audit", params={"workspace": ws, "decision": "allow"})["entries"]
    assert allowed and all(e["decision"] == "allow" for e in allowed)
    assert len(admin_api.call("GET", "/audit", params={"workspace": ws, "limit": 1})["entries"]) == 1

    future = (datetime.now(timezone.utc) + timedelta(hours=1)).isoformat()
    assert admin_api.call("GET", "/audit", params={"workspace": ws, "since": future})["entries"] == []
    past = (datetime.now(timezone.utc) - timedelta(hours=1)).isoformat()
    assert admin_api.call("GET", "/audit", params={"workspace": ws, "until": past})["entries"] == []
    assert admin_api.call("GET", "/audit", params={"workspace": ws, "since": past})["entries"]

    for bad in ({"decision": "maybe"}, {"limit": "0"}, {"limit": "x"}, {"since": "yesterday"}):
        with pytest.raises(ApiClientError) as exc:
            admin_api.call("GET", "/audit", params=bad)
        assert exc.value.status == 400, bad


def test_system_admin_reads_every_workspace(stack, admin_api):
    people = [make_person(stack, "audsys") for _ in range(2)]
    names = []
    for person in people:
        ws = unique("audsysws")
        person.api.call("POST", "/workspaces", {"name": ws})
        person.s3.put_object(Bucket=ws, Key="k", Body=b"1")
        names.append(ws)
    for name in names:
        wait_for_audit(admin_api, {"limit": 1000}, lambda e, name=name: e["workspace"] == name)
