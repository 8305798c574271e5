"""Anonymous reads (issue 18): unsigned GET/HEAD/list of workspaces marked anonymous_read (S3's
public-read), only while the operator allows them (WIO_ANONYMOUS_READS); everything else an unsigned
request asks answers 403 AccessDenied, and Redis unreachable fails closed.

Two installations share PostgreSQL and Redis here: the session ``stack`` (switch off, as by default)
and ``anon`` (switch on), whose Redis connection passes through a relay the tests can cut.
"""
from __future__ import annotations

import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from urllib.parse import quote, urlsplit

import boto3
import pytest
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.observability.helpers import wait_for_audit
from tests.conftest import make_person, s3_client, unique, wio_settings
from wio.client import ApiClientError
from wio.dev.process import free_port
from wio.dev.stack import DevStack, launch_components

# Keys with every kind of character a URL or a listing can get wrong.
ODD_KEYS = ["plain.txt", "sp ace/and+plus", "per%cent/100%", "café/ünï©ødé ✓", "tilde~/semi;colon=eq&amp",
            "quote'dbl\"<lt>", "dir/nested/deep", "a?b#c", "star*bang!paren()", "back`tick^caret|pipe{}[]"]
DENIED = "403 AccessDenied"


class RedisRelay:
    """A TCP relay in front of Redis that a test can cut (connections dropped, new ones refused) and restore."""

    def __init__(self, target_port: int):
        self.target, self.port = target_port, free_port()
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._listener: socket.socket | None = None
        self.restore()

    def restore(self) -> None:
        listener = socket.create_server(("127.0.0.1", self.port))
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target), timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(a: socket.socket, b: socket.socket) -> None:
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self) -> None:
        if self._listener is not None:
            try:
                self._listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._listener.close()
            self._listener = None
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for s in sockets:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()


@pytest.fixture(scope="module")
def relay(redis_service):
    relay = RedisRelay(urlsplit(redis_service.url).port)
    yield relay
    relay.cut()


@pytest.fixture(scope="module")
def anon(stack, pg_service, redis_service, s3_node, relay):
    """An API and a proxy with WIO_ANONYMOUS_READS on, on the session's PostgreSQL and (through the relay) Redis
    (``stack`` first: it bootstraps the node and its roots)."""
    parts = urlsplit(redis_service.url)
    relayed = parts._replace(netloc=parts.netloc.replace(f":{parts.port}", f":{relay.port}")).geturl()
    settings = wio_settings(pg_service, type("R", (), {"url": relayed})(), s3_node, anonymous_reads=True,
                            admin_password=None)
    dev = DevStack(settings=settings)
    try:
        launch_components(dev, settings)
        yield dev
    finally:
        dev.stop()


@pytest.fixture
def owner(anon):
    return make_person(anon, "alice")


def unsigned(url: str, method: str = "GET", headers: dict[str, str] | None = None) -> tuple[int, str, bytes]:
    """(status, S3 error code or "", body) of a request with no credential at all."""
    req = urllib.request.Request(url, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, "", resp.read()
    except urllib.error.HTTPError as exc:
        body = exc.read()
        code = body.split(b"<Code>")[1].split(b"</Code>")[0].decode() if b"<Code>" in body else ""
        return exc.code, code, body


def outcome(status: int, code: str, _body: bytes = b"") -> str:
    return f"{status} {code}".strip()


def object_url(base: str, bucket: str, key: str) -> str:
    return f"{base}/{bucket}/{quote(key, safe='/~')}"


def unsigned_client(endpoint: str):
    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                        config=Config(signature_version=UNSIGNED, s3={"addressing_style": "path"},
                                      retries={"max_attempts": 1, "mode": "standard"}))


def error(fn) -> str:
    with pytest.raises(ClientError) as exc:
        fn()
    return f"{exc.value.response['ResponseMetadata']['HTTPStatusCode']} {exc.value.response['Error']['Code']}"


def anonymous_workspace(person, keys=ODD_KEYS) -> str:
    name = unique("anon")
    person.s3.create_bucket(Bucket=name, ACL="public-read")
    for key in keys:
        person.s3.put_object(Bucket=name, Key=key, Body=f"body of {key}".encode())
    return name


# --- served -----------------------------------------------------------------------------------------

def test_unsigned_get_head_list_over_plain_http(anon, owner):
    ws = anonymous_workspace(owner)
    for key in ODD_KEYS:
        assert unsigned(object_url(anon.s3_url, ws, key)) == (200, "", f"body of {key}".encode()), key
        status, _, body = unsigned(object_url(anon.s3_url, ws, key), "HEAD")
        assert (status, body) == (200, b""), key
    ranged = unsigned(object_url(anon.s3_url, ws, "plain.txt"), headers={"Range": "bytes=0-3"})
    assert ranged == (206, "", b"body")
    assert outcome(*unsigned(object_url(anon.s3_url, ws, "missing"))) == "404 NoSuchKey"
    for query in ("", "?list-type=2", "?list-type=2&encoding-type=url"):
        status, _, body = unsigned(f"{anon.s3_url}/{ws}{query}")
        assert status == 200 and body.count(b"<Key>") == len(ODD_KEYS), query
    status, _, body = unsigned(f"{anon.s3_url}/{ws}?list-type=2&prefix={quote('café/')}&delimiter=%2F")
    assert status == 200 and "café/ünï©ødé ✓".encode() in body and body.count(b"<Key>") == 1


def test_unsigned_boto3_client(anon, owner):
    ws = anonymous_workspace(owner)
    s3 = unsigned_client(anon.s3_url)
    for key in ODD_KEYS:
        assert s3.get_object(Bucket=ws, Key=key)["Body"].read() == f"body of {key}".encode(), key
        assert s3.head_object(Bucket=ws, Key=key)["ContentLength"] == len(f"body of {key}".encode()), key
    assert sorted(o["Key"] for o in s3.list_objects_v2(Bucket=ws)["Contents"]) == sorted(ODD_KEYS)
    assert sorted(o["Key"] for o in s3.list_objects(Bucket=ws)["Contents"]) == sorted(ODD_KEYS)
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=ws, PaginationConfig={"PageSize": 3})
    assert sorted(o["Key"] for page in pages for o in page["Contents"]) == sorted(ODD_KEYS)
    listed = s3.list_objects_v2(Bucket=ws, Prefix="dir/", Delimiter="/")
    assert [p["Prefix"] for p in listed["CommonPrefixes"]] == ["dir/nested/"]
    assert error(lambda: s3.get_object(Bucket=ws, Key="missing")) == "404 NoSuchKey"


def test_acl_views_and_policy_status_show_all_users(anon, owner):
    ws = anonymous_workspace(owner, ["k"])
    uris = [g["Grantee"].get("URI") for g in owner.s3.get_bucket_acl(Bucket=ws)["Grants"]]
    assert "http://acs.amazonaws.com/groups/global/AllUsers" in uris
    assert "http://acs.amazonaws.com/groups/global/AuthenticatedUsers" in uris
    object_uris = [g["Grantee"].get("URI") for g in owner.s3.get_object_acl(Bucket=ws, Key="k")["Grants"]]
    assert "http://acs.amazonaws.com/groups/global/AllUsers" in object_uris
    assert owner.s3.get_bucket_policy_status(Bucket=ws)["PolicyStatus"] == {"IsPublic": True}
    info = owner.api.call("GET", f"/workspaces/{ws}")
    assert info["public"] is True and info["anonymous_read"] is True
    owner.s3.put_bucket_acl(Bucket=ws, ACL="authenticated-read")
    uris = [g["Grantee"].get("URI") for g in owner.s3.get_bucket_acl(Bucket=ws)["Grants"]]
    assert "http://acs.amazonaws.com/groups/global/AllUsers" not in uris
    owner.s3.put_bucket_acl(Bucket=ws, ACL="private")
    assert owner.s3.get_bucket_policy_status(Bucket=ws)["PolicyStatus"] == {"IsPublic": False}


def test_audit_and_metrics_name_the_anonymous_caller(anon, owner):
    ws = anonymous_workspace(owner, ["k"])
    allowed = urllib.request.urlopen(object_url(anon.s3_url, ws, "k"), timeout=30)
    allowed_id = allowed.headers["x-amz-request-id"]
    allowed.read()
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(urllib.request.Request(object_url(anon.s3_url, ws, "k"), data=b"x", method="PUT"),
                               timeout=30)
    denied_id = exc.value.headers["x-amz-request-id"]
    by_id = {}
    for request_id in (allowed_id, denied_id):   # the trail is asynchronous: wait for each entry
        entries = wait_for_audit(owner.api, {"workspace": ws, "user": "anonymous"},
                                 lambda e, wanted=request_id: e["request_id"] == wanted)
        by_id.update({e["request_id"]: e for e in entries})
    assert by_id[allowed_id]["user"] == "anonymous" and by_id[allowed_id]["access_key"] == ""
    assert (by_id[allowed_id]["decision"], by_id[allowed_id]["reason"], by_id[allowed_id]["operation"]) == \
        ("allow", "anonymous", "GetObject")
    assert (by_id[denied_id]["user"], by_id[denied_id]["decision"], by_id[denied_id]["status"]) == \
        ("anonymous", "deny", 403)
    metrics = urllib.request.urlopen(f"{anon.s3_url}/_wio/metrics", timeout=30).read().decode()
    assert any(line.startswith("wio_authorization_decisions_total") and 'reason="anonymous"' in line
               and 'decision="allow"' in line for line in metrics.splitlines())


# --- refused ----------------------------------------------------------------------------------------

def test_unsigned_writes_and_everything_else_are_refused(anon, owner):
    ws = anonymous_workspace(owner, ["k"])
    s3, base = unsigned_client(anon.s3_url), anon.s3_url
    refused = {
        "put": lambda: s3.put_object(Bucket=ws, Key="k", Body=b"overwritten"),
        "put-new": lambda: s3.put_object(Bucket=ws, Key="new", Body=b"x"),
        "copy": lambda: s3.copy_object(Bucket=ws, Key="copy", CopySource={"Bucket": ws, "Key": "k"}),
        "delete": lambda: s3.delete_object(Bucket=ws, Key="k"),
        "delete-objects": lambda: s3.delete_objects(Bucket=ws, Delete={"Objects": [{"Key": "k"}]}),
        "multipart": lambda: s3.create_multipart_upload(Bucket=ws, Key="mp"),
        "bucket-acl-write": lambda: s3.put_bucket_acl(Bucket=ws, ACL="private"),
        "object-acl-write": lambda: s3.put_object_acl(Bucket=ws, Key="k", ACL="private"),
        "bucket-acl-read": lambda: s3.get_bucket_acl(Bucket=ws),
        "object-acl-read": lambda: s3.get_object_acl(Bucket=ws, Key="k"),
        "tagging": lambda: s3.get_object_tagging(Bucket=ws, Key="k"),
        "versions": lambda: s3.list_object_versions(Bucket=ws),
        "uploads": lambda: s3.list_multipart_uploads(Bucket=ws),
        "head-bucket": lambda: s3.head_bucket(Bucket=ws),
        "policy-status": lambda: s3.get_bucket_policy_status(Bucket=ws),
        "delete-bucket": lambda: s3.delete_bucket(Bucket=ws),
        "create-bucket": lambda: s3.create_bucket(Bucket=unique("anon-new")),
        "list-buckets": lambda: s3.list_buckets(),
        "versioning-write": lambda: s3.put_bucket_versioning(Bucket=ws, VersioningConfiguration={"Status": "Enabled"}),
    }
    for name, fn in refused.items():
        assert error(fn) in (DENIED, "403 403"), name   # HEAD answers carry no body, so no code
    assert outcome(*unsigned(object_url(base, ws, "k"), "PUT")) == DENIED
    assert outcome(*unsigned(object_url(base, ws, "mp") + "?uploads", "POST")) == DENIED
    assert owner.s3.get_object(Bucket=ws, Key="k")["Body"].read() == b"body of k"
    keys = [o["Key"] for o in owner.s3.list_objects_v2(Bucket=ws)["Contents"]]
    assert keys == ["k"]
    assert owner.s3.list_multipart_uploads(Bucket=ws).get("Uploads", []) == []


def test_public_private_and_missing_workspaces_are_refused(anon, owner):
    readable_by_users = unique("authread")
    owner.s3.create_bucket(Bucket=readable_by_users, ACL="authenticated-read")
    private = unique("private")
    owner.s3.create_bucket(Bucket=private)
    for ws in (readable_by_users, private):
        owner.s3.put_object(Bucket=ws, Key="k", Body=b"k")
        assert outcome(*unsigned(object_url(anon.s3_url, ws, "k"))) == DENIED, ws
        assert outcome(*unsigned(f"{anon.s3_url}/{ws}?list-type=2")) == DENIED, ws
    # the authenticated-read workspace is readable by any other user, with a key
    assert make_person(anon, "bob").s3.get_object(Bucket=readable_by_users, Key="k")["Body"].read() == b"k"
    # a missing workspace answers as a private one: an unsigned caller cannot tell them apart
    assert outcome(*unsigned(object_url(anon.s3_url, unique("missing"), "k"))) == DENIED


def test_credentials_that_fail_are_never_anonymous(anon, owner):
    ws = anonymous_workspace(owner, ["k"])
    url = object_url(anon.s3_url, ws, "k")
    good = owner.s3.generate_presigned_url("get_object", Params={"Bucket": ws, "Key": "k"}, ExpiresIn=300)
    assert unsigned(good)[0] == 200
    tampered = good.replace("X-Amz-Signature=", "X-Amz-Signature=0")
    assert outcome(*unsigned(tampered)) in ("403 SignatureDoesNotMatch", "400 AuthorizationQueryParametersError")
    wrong = good[:-4] + ("0000" if not good.endswith("0000") else "1111")
    assert outcome(*unsigned(wrong)) == "403 SignatureDoesNotMatch"
    # a presigned-looking query: never served as anonymous, whatever its parameters
    for query in ("X-Amz-Signature=abc", "X-Amz-Credential=AKIDEXAMPLE%2F20260101%2Fus-east-1%2Fs3%2Faws4_request",
                  "X-Amz-Algorithm=AWS4-HMAC-SHA256", "X-Amz-Date=20260101T000000Z", "X-Amz-Expires=60",
                  "X-Amz-Security-Token=abc", "AWSAccessKeyId=AKID&Signature=abc", "Signature=abc"):
        status, code, _ = unsigned(f"{url}?{query}")
        assert status in (400, 403) and code != "", query
    for headers in ({"Authorization": "AWS4-HMAC-SHA256 garbage"}, {"Authorization": "Bearer x"},
                    {"X-Amz-Security-Token": "abc"}):
        status, code, _ = unsigned(url, headers=headers)
        assert status in (400, 403) and code != "", headers


def test_clearing_the_flag_revokes_on_the_next_request(anon, owner):
    ws = anonymous_workspace(owner, ["k"])
    url = object_url(anon.s3_url, ws, "k")
    assert unsigned(url)[0] == 200
    owner.s3.put_bucket_acl(Bucket=ws, ACL="private")
    assert outcome(*unsigned(url)) == DENIED
    owner.s3.put_bucket_acl(Bucket=ws, ACL="public-read")
    assert unsigned(url)[0] == 200
    owner.s3.put_bucket_acl(Bucket=ws, ACL="authenticated-read")   # readable with a key, not without
    assert outcome(*unsigned(url)) == DENIED
    owner.api.call("PATCH", f"/workspaces/{ws}", {"anonymous_read": True})
    assert unsigned(url)[0] == 200
    owner.api.call("PATCH", f"/workspaces/{ws}", {"public": False})   # not public: not anonymous either
    assert outcome(*unsigned(url)) == DENIED
    assert owner.api.call("GET", f"/workspaces/{ws}")["anonymous_read"] is False


def test_only_the_workspace_admin_sets_it(anon, owner):
    ws = anonymous_workspace(owner, ["k"])
    reader = make_person(anon, "bob")
    owner.api.call("POST", f"/workspaces/{ws}/shares", {"user": reader.name, "permission": "write"})
    assert error(lambda: reader.s3.put_bucket_acl(Bucket=ws, ACL="private")) == DENIED
    with pytest.raises(ApiClientError) as exc:
        reader.api.call("PATCH", f"/workspaces/{ws}", {"anonymous_read": False})
    assert exc.value.status == 403
    assert unsigned(object_url(anon.s3_url, ws, "k"))[0] == 200
    for body in ({"anonymous_read": True, "public": False}, {"name": "renamed"}, {"public": "yes"}):
        with pytest.raises(ApiClientError) as exc:
            owner.api.call("PATCH", f"/workspaces/{ws}", body)
        assert exc.value.status == 400, body
    # ACL documents, grant headers and canned ACLs wio cannot say stay refused
    assert error(lambda: owner.s3.put_bucket_acl(Bucket=ws, ACL="public-read-write")) == "501 NotImplemented"
    assert error(lambda: owner.s3.put_bucket_acl(Bucket=ws, GrantRead=f"id={reader.name}")) == "501 NotImplemented"
    assert error(lambda: owner.s3.create_bucket(Bucket=unique("rw"), ACL="public-read-write")) == "501 NotImplemented"


def test_switch_off_refuses_setting_and_serving(stack, anon, owner):
    """The session stack runs with WIO_ANONYMOUS_READS off, on the same PostgreSQL and Redis."""
    ws = anonymous_workspace(owner, ["k"])   # marked through the server that allows it
    assert unsigned(object_url(anon.s3_url, ws, "k"))[0] == 200
    assert outcome(*unsigned(object_url(stack.s3_url, ws, "k"))) == DENIED
    assert outcome(*unsigned(f"{stack.s3_url}/{ws}?list-type=2")) == DENIED
    assert error(lambda: unsigned_client(stack.s3_url).get_object(Bucket=ws, Key="k")) == DENIED
    person = make_person(stack, "carol")
    name = unique("blocked")
    with pytest.raises(ClientError) as exc:
        person.s3.create_bucket(Bucket=name, ACL="public-read")
    assert exc.value.response["Error"]["Code"] == "AccessDenied"
    assert "WIO_ANONYMOUS_READS" in exc.value.response["Error"]["Message"]
    assert error(lambda: person.s3.head_bucket(Bucket=name)) == "404 404"   # nothing was created
    person.s3.create_bucket(Bucket=name)
    assert error(lambda: person.s3.put_bucket_acl(Bucket=name, ACL="public-read")) == DENIED
    person.s3.put_bucket_acl(Bucket=name, ACL="authenticated-read")      # no anonymous access: allowed
    for path, body in (("/workspaces", {"name": unique("api"), "anonymous_read": True}),
                       (f"/workspaces/{name}", {"anonymous_read": True})):
        with pytest.raises(ApiClientError) as exc:
            person.api.call("PATCH" if path != "/workspaces" else "POST", path, body)
        assert (exc.value.status, exc.value.code) == (403, "AnonymousReadsDisabled"), path
    # clearing needs no switch
    person.api.call("PATCH", f"/workspaces/{name}", {"anonymous_read": False, "public": False})
    # where anonymous reads are not served, the ACL view shows no AllUsers grant (the owner's key works here too)
    uris = [g["Grantee"].get("URI") for g in s3_client(stack.s3_url, owner.key).get_bucket_acl(Bucket=ws)["Grants"]]
    assert "http://acs.amazonaws.com/groups/global/AllUsers" not in uris
    assert "http://acs.amazonaws.com/groups/global/AuthenticatedUsers" in uris


def test_redis_down_fails_closed(anon, owner, relay):
    ws = anonymous_workspace(owner, ["k"])
    url = object_url(anon.s3_url, ws, "k")
    assert unsigned(url)[0] == 200
    relay.cut()
    try:
        for _ in range(3):
            status, code, _ = unsigned(url)
            assert (status, code) == (503, "ServiceUnavailable")
        status, code, _ = unsigned(f"{anon.s3_url}/{ws}?list-type=2")
        assert (status, code) == (503, "ServiceUnavailable")
    finally:
        relay.restore()
    deadline = time.monotonic() + 30
    while unsigned(url)[0] != 200:
        assert time.monotonic() < deadline, "the proxy did not recover after Redis came back"
        time.sleep(0.2)
