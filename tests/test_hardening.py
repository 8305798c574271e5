"""Issue 17: nothing leaks, nothing holds up a revocation. Each test drives the real stack the way an
attacker would and failed before its fix."""
from __future__ import annotations

import base64
import email.header
import hashlib
import http.client
import http.server
import json
import os
import signal
import socket
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

import boto3
import pytest
from botocore.auth import S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from signing import sign_request
from tests.conftest import s3_client, unique
from tests.observability.helpers import wait_for_audit
from wio.client import ApiClient, ApiClientError
from foundation.secrets import proxy_api_credential


def _send(url: str, method: str = "GET", body: bytes | None = None, headers: dict | None = None,
          timeout: float = 30):
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


class _QueryAuth(S3SigV4QueryAuth):
    """A presigned URL; with ``payload_hash`` its canonical request carries the body's hash (the query pins
    it as X-Amz-Content-Sha256)."""

    def __init__(self, credentials, payload_hash: str):
        super().__init__(credentials, "s3", "us-east-1", expires=300)
        self._payload_hash = payload_hash

    def payload(self, request):
        return self._payload_hash


def presign(stack, key: dict, method: str, target: str, pinned_body: bytes | None = None) -> str:
    payload_hash = "UNSIGNED-PAYLOAD"
    if pinned_body is not None:
        payload_hash = hashlib.sha256(pinned_body).hexdigest()
        target += ("&" if "?" in target else "?") + f"X-Amz-Content-Sha256={payload_hash}"
    request = AWSRequest(method, f"{stack.s3_url}/{target}")
    _QueryAuth(Credentials(key["access_key_id"], key["secret_access_key"]), payload_hash).add_auth(request)
    return request.url


# -- 5: a presigned URL's pinned body hash cannot be switched off ---------------------------------

def test_presigned_pinned_hash_cannot_be_overridden_by_a_header(stack, person, workspace):
    good = b"the body the URL was signed for"
    url = presign(stack, person.key, "PUT", f"{workspace}/pinned", pinned_body=good)
    for header in ("UNSIGNED-PAYLOAD", hashlib.sha256(b"evil").hexdigest()):
        status, answer = _send(url, "PUT", b"evil", {"x-amz-content-sha256": header})
        assert status == 400 and b"XAmzContentSHA256Mismatch" in answer, (header, status, answer)
    status, answer = _send(url, "PUT", b"evil")
    assert status == 400 and b"XAmzContentSHA256Mismatch" in answer
    with pytest.raises(Exception, match="NoSuchKey|404"):
        person.s3.get_object(Bucket=workspace, Key="pinned")
    assert _send(url, "PUT", good, {"x-amz-content-sha256": hashlib.sha256(good).hexdigest()})[0] == 200
    assert person.s3.get_object(Bucket=workspace, Key="pinned")["Body"].read() == good


# -- 6: names ending in a newline are refused ----------------------------------------------------

def _api_error(call) -> tuple[int, str]:
    with pytest.raises(ApiClientError) as exc:
        call()
    return exc.value.status, exc.value.code


def test_names_with_a_trailing_newline_are_refused(stack, person, s3_node):
    anonymous = ApiClient(stack.api_url)
    assert _api_error(lambda: anonymous.call("POST", "/auth/register",
                                             {"username": "admin\n", "password": "long-enough-pw"})) \
        == (400, "InvalidUsername")
    workspace = unique("ws")
    assert _api_error(lambda: person.api.call("POST", "/workspaces", {"name": workspace + "\n"}))[0] == 400
    assert _api_error(lambda: person.api.call("POST", "/groups", {"name": "eng\n"})) == (400, "InvalidName")
    node = {"name": unique("node") + "\n", "endpoint": s3_node.endpoint, "access_key": s3_node.access_key,
            "secret_key": s3_node.secret_key}
    assert _api_error(lambda: person.api.call("POST", "/nodes", node)) == (400, "InvalidName")
    assert workspace not in [w["name"].strip() for w in person.api.call("GET", "/workspaces")["workspaces"]]


# -- 4: STS children die with their parent key ---------------------------------------------------

def test_deleting_a_key_revokes_the_keys_assumed_from_it(stack, person, workspace):
    person.s3.put_object(Bucket=workspace, Key="k", Body=b"k")
    parent = person.api.call("POST", "/keys", {"name": "parent"})
    sts = boto3.client("sts", endpoint_url=stack.s3_url, region_name="us-east-1",
                       aws_access_key_id=parent["access_key_id"], aws_secret_access_key=parent["secret_access_key"])
    children = [sts.assume_role(RoleArn="arn:aws:iam::wio:role/any", RoleSessionName=f"c{i}")["Credentials"]
                for i in range(2)]
    clients = [s3_client(stack.s3_url, {"access_key_id": c["AccessKeyId"], "secret_access_key": c["SecretAccessKey"],
                                        "session_token": c["SessionToken"]}) for c in children]
    for client in clients:
        assert client.get_object(Bucket=workspace, Key="k")["Body"].read() == b"k"
    person.api.call("DELETE", f"/keys/{parent['access_key_id']}")
    for client in clients:
        with pytest.raises(ClientError) as exc:
            client.get_object(Bucket=workspace, Key="k")
        assert exc.value.response["Error"]["Code"] == "InvalidAccessKeyId"
    listed = {k["access_key_id"] for k in person.api.call("GET", "/keys")["keys"]}
    assert not listed & {c["AccessKeyId"] for c in children}
    # a parent must be one of the caller's own long-lived keys
    temp = person.api.call("POST", "/keys", {"expires_in_seconds": 900})
    for bad in (temp["access_key_id"], person.key["access_key_id"] + "x"):
        assert _api_error(lambda: person.api.call("POST", "/keys", {"expires_in_seconds": 900, "parent": bad}))[0] == 400


# -- 3: a node cannot hold up anyone's revocation -------------------------------------------------

class HangableNode:
    """A loopback HTTP server that answers like an S3 node until ``hang()``; then it accepts requests and
    never answers (a hung node, or wio calling back into itself)."""

    def __init__(self):
        self.release = threading.Event()
        self.hanging = threading.Event()
        node = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self):
                if node.hanging.is_set():
                    node.release.wait(30)
                    return
                body = b'<ListAllMyBucketsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"/>'
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)
            do_GET = do_HEAD = do_PUT = _answer

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def hang(self):
        self.hanging.set()

    def close(self):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hangable_node(person):
    """A HangableNode registered by ``person`` as ``.name``; unregistered afterwards (other tests take the
    first node an administrator sees)."""
    node = HangableNode()
    node.name = unique("hang")
    person.api.call("POST", "/nodes", {"name": node.name, "endpoint": node.endpoint, "access_key": "k",
                                       "secret_key": "s"})
    yield node
    node.close()
    person.api.call("DELETE", f"/nodes/{node.name}")


def test_wio_itself_is_refused_as_a_node(stack, person):
    for endpoint in (stack.s3_url, stack.api_url):
        node = {"name": unique("self"), "endpoint": endpoint, "access_key": person.key["access_key_id"],
                "secret_key": person.key["secret_access_key"]}
        assert _api_error(lambda: person.api.call("POST", "/nodes", node)) == (400, "InvalidEndpoint")


def test_a_hung_node_does_not_delay_another_users_revocation(stack, person, other, workspace, hangable_node):
    node_name = hangable_node.name
    person.s3.put_object(Bucket=workspace, Key="shared", Body=b"x")
    share = person.api.call("POST", f"/workspaces/{workspace}/shares", {"user": other.name, "permission": "read"})
    assert other.s3.get_object(Bucket=workspace, Key="shared")["Body"].read() == b"x"
    hangable_node.hang()
    with ThreadPoolExecutor(3) as pool:
        stuck = [pool.submit(lambda i=i: person.api.request("POST", "/roots", {
            "name": unique("r"), "node": node_name, "bucket": f"bucket-{i}", "type": "private"})) for i in range(3)]
        time.sleep(0.5)   # the root creations are now waiting on the hung node
        started = time.monotonic()
        person.api.call("DELETE", f"/workspaces/{workspace}/shares/{share['id']}")
        elapsed = time.monotonic() - started
        with pytest.raises(ClientError) as exc:
            other.s3.get_object(Bucket=workspace, Key="shared")
        assert exc.value.response["Error"]["Code"] == "AccessDenied"
        assert elapsed < 3, f"the share removal waited {elapsed:.1f}s behind a hung node"
        hangable_node.release.set()
        for future in stuck:
            future.result()


# -- 9: the SSRF guard sees through IPv6 wrappers (nothing is sent: the endpoint is refused first) --

@pytest.mark.parametrize("host", ["[::ffff:169.254.169.254]", "[64:ff9b::a9fe:a9fe]", "[2002:a9fe:a9fe::1]"])
def test_metadata_address_in_ipv6_disguise_is_refused_as_a_node(person, host):
    node = {"name": unique("meta"), "endpoint": f"http://{host}", "access_key": "k", "secret_key": "s"}
    status, code = _api_error(lambda: person.api.call("POST", "/nodes", node))
    assert (status, code) == (400, "InvalidEndpoint")


# -- 10: one safe XML parser: a DTD is refused in any encoding ----------------------------------

def test_utf16_xml_with_entities_is_refused(stack, person, workspace):
    person.s3.put_object(Bucket=workspace, Key="victim", Body=b"v")
    document = ('<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE d [<!ENTITY k "victim">]>'
                '<Delete><Object><Key>&k;</Key></Object></Delete>').encode("utf-16")
    md5 = base64.b64encode(hashlib.md5(document).digest()).decode()
    status, answer = _send(presign(stack, person.key, "POST", f"{workspace}?delete"), "POST", document,
                           {"Content-MD5": md5, "Content-Type": "application/xml"})
    assert (status, b"MalformedXML" in answer) == (400, True), answer
    assert person.s3.get_object(Bucket=workspace, Key="victim")["Body"].read() == b"v"


# -- 7: non-ASCII and non-UTF-8 inputs get a 4xx (or are forwarded as S3 does), never a 500 --------

def signed_raw(stack, key: dict, method: str, target: str, headers: dict[str, str] | None = None,
               body: bytes = b"") -> tuple[int, dict, bytes]:
    """Send a request signed over exactly these bytes (header values may be any UTF-8 or surrogate-escaped
    bytes; ``target`` is the raw path and query)."""
    host = stack.s3_url.split("://", 1)[1]
    headers = {"host": host, **(headers or {})}
    path, _, query = target.partition("?")
    headers.update(sign_request(method, path, query, headers, payload_hash=hashlib.sha256(body).hexdigest(),
                                access_key=key["access_key_id"], secret_key=key["secret_access_key"],
                                region="us-east-1", now=datetime.now(timezone.utc)))
    conn = http.client.HTTPConnection(host, timeout=30)
    try:
        conn.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
        for name, value in headers.items():
            conn.putheader(name, value.encode("utf-8", "surrogateescape"))
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


def test_non_ascii_metadata_is_stored_rfc2047_encoded_as_s3_returns_it(stack, person, workspace):
    status, _, answer = signed_raw(stack, person.key, "PUT", f"/{workspace}/meta",
                                   {"x-amz-meta-n": "日本", "content-type": "text/plain"}, b"m")
    assert status == 200, answer
    head = person.s3.head_object(Bucket=workspace, Key="meta")
    encoded = head["ResponseMetadata"]["HTTPHeaders"]["x-amz-meta-n"]
    assert email.header.decode_header(encoded)[0] == ("日本".encode(), "utf-8")


@pytest.mark.parametrize("headers", [{"content-type": "text/plain; name=€"},
                                     {"content-disposition": "attachment; filename=\udcff.txt"},
                                     {"x-amz-meta-n": "\udcff\udcfe"}])
def test_header_values_a_node_cannot_take_are_refused_with_400(stack, person, workspace, headers):
    status, _, answer = signed_raw(stack, person.key, "PUT", f"/{workspace}/bad-header", headers, b"b")
    assert status == 400 and b"<Code>InvalidArgument</Code>" in answer, (status, answer)


@pytest.mark.parametrize("query", ["list-type=2&prefix=%FF", "uploadId=%FF%FE", "prefix=a%C3&delimiter=/",
                                   "list-type=2&start-after=%ED%A0%80"])
def test_query_values_that_are_not_utf8_are_refused(stack, person, workspace, query):
    target = f"/{workspace}/obj" if "uploadId" in query else f"/{workspace}"
    status, _, answer = signed_raw(stack, person.key, "GET", f"{target}?{query}")
    assert status == 400 and b"<Code>InvalidURI</Code>" in answer, (status, answer)


def test_a_credential_that_is_not_utf8_is_refused(stack, person, workspace):
    url = person.s3.generate_presigned_url("get_object", Params={"Bucket": workspace, "Key": "k"})
    bad = url.replace("X-Amz-Credential=", "X-Amz-Credential=%FF")
    status, answer = _send(bad)
    assert status == 400 and (b"InvalidURI" in answer), answer
    header_signed = {"Authorization": "AWS4-HMAC-SHA256 Credential=\udcff/20260101/us-east-1/s3/aws4_request, "
                                      "SignedHeaders=host;x-amz-date, Signature=" + "0" * 64,
                     "x-amz-date": "20260101T000000Z", "x-amz-content-sha256": "UNSIGNED-PAYLOAD"}
    host = stack.s3_url.split("://", 1)[1]
    conn = http.client.HTTPConnection(host, timeout=30)
    try:
        conn.putrequest("GET", f"/{workspace}/k", skip_accept_encoding=True)
        for name, value in header_signed.items():
            conn.putheader(name, value.encode("utf-8", "surrogateescape"))
        conn.endheaders()
        resp = conn.getresponse()
        assert 400 <= resp.status < 500, (resp.status, resp.read())
    finally:
        conn.close()


# -- 8: one bad request does not stop the audit trail ---------------------------------------------

def test_a_non_utf8_credential_does_not_stop_the_audit_trail(stack, admin_api, person, workspace):
    person.s3.put_object(Bucket=workspace, Key="k", Body=b"k")
    url = person.s3.generate_presigned_url("get_object", Params={"Bucket": workspace, "Key": "k"})
    for _ in range(3):
        assert _send(url.replace("X-Amz-Credential=", "X-Amz-Credential=%FF"))[0] == 400
    with pytest.raises(ClientError):
        person.s3.head_object(Bucket=workspace, Key="after-the-bad-ones")
    wait_for_audit(admin_api, {"workspace": workspace}, lambda e: e["key"] == "after-the-bad-ones")


# -- 13: every wait has a deadline ------------------------------------------------------------------

def test_a_hung_node_is_a_503_within_seconds(stack, person, hangable_node):
    root, workspace = unique("hungroot"), unique("hungws")
    person.api.call("POST", "/roots", {"name": root, "node": hangable_node.name, "bucket": "hung-bucket",
                                       "type": "private"})
    person.api.call("POST", "/workspaces", {"name": workspace, "root": root})
    hangable_node.hang()
    url = person.s3.generate_presigned_url("get_object", Params={"Bucket": workspace, "Key": "anything"})
    started = time.monotonic()
    status, answer = _send(url, timeout=120)     # one attempt (an SDK would retry the 503)
    elapsed = time.monotonic() - started
    assert (status, b"<Code>ServiceUnavailable</Code>" in answer) == (503, True), answer
    assert elapsed < 25, f"the GET waited {elapsed:.0f}s for a hung node"


def test_a_hung_database_is_a_503_from_the_api_within_seconds(pg_service, person):
    pids = pg_service.process_ids()
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        status, body = person.api.request("POST", "/keys", {"name": "while-pg-hangs"})
        elapsed = time.monotonic() - started
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)
    assert (status, body["error"]["code"]) == (503, "ServiceUnavailable"), (status, body)
    assert elapsed < 20, f"POST /keys waited {elapsed:.0f}s for a hung PostgreSQL"
    deadline = time.monotonic() + 30
    while person.api.request("GET", "/keys")[0] != 200:     # and it recovers once PostgreSQL does
        assert time.monotonic() < deadline
        time.sleep(0.5)


# -- 14: a request the client aborts still leaves exactly one record -------------------------------

def test_an_aborted_put_leaves_exactly_one_audit_record(stack, admin_api, person, workspace):
    url = person.s3.generate_presigned_url("put_object", Params={"Bucket": workspace, "Key": "aborted"})
    host, _, rest = url.split("://", 1)[1].partition("/")
    with socket.create_connection(tuple(host.rsplit(":", 1)[0:1]) + (int(host.rsplit(":", 1)[1]),)) as sock:
        sock.sendall(f"PUT /{rest} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {8 << 20}\r\n\r\n".encode())
        sock.sendall(b"x" * (1 << 20))
        time.sleep(0.5)                    # the proxy is streaming it to the node by now
    entries = wait_for_audit(admin_api, {"workspace": workspace}, lambda e: e["key"] == "aborted")
    time.sleep(2)                          # a second record would have arrived by now
    entries = [e for e in admin_api.call("GET", "/audit", params={"workspace": workspace})["entries"]
               if e["key"] == "aborted"]
    assert len(entries) == 1, entries
    assert entries[0]["operation"] == "PutObject" and entries[0]["status"] >= 400
    with pytest.raises(ClientError):
        person.s3.head_object(Bucket=workspace, Key="aborted")


# -- 11: the proxy holds no JWT secret; its own credential authorizes its few calls only -------------

def test_the_proxy_runs_without_the_jwt_secret(stack):
    proxy = next(p for p in stack.processes if "proxy" in p.args)
    pids = [proxy.pid] + [int(c) for c in open(f"/proc/{proxy.pid}/task/{proxy.pid}/children").read().split()]
    for pid in pids:
        environ = open(f"/proc/{pid}/environ", "rb").read().split(b"\0")
        assert not any(v.startswith(b"WIO_JWT_SECRET=") for v in environ), pid
        assert stack.settings.jwt_secret.encode() not in b"\0".join(environ)


def test_the_proxys_credential_authorizes_only_the_proxys_calls(stack, person, workspace):
    proxy = ApiClient(stack.api_url)
    credential = proxy_api_credential(stack.settings.master_key)

    def as_proxy(method, path, body=None, user="admin", credential=credential):
        url = f"{stack.api_url}/api/v1{path}"
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Authorization": f"WioProxy {credential}", "X-Wio-Acting-User": user,
                   "Content-Type": "application/json"}
        status, answer = _send(url, method, data, headers)
        return status, json.loads(answer or b"{}")

    assert as_proxy("GET", "/keys")[0] == 403
    assert as_proxy("GET", "/me")[0] == 403
    assert as_proxy("POST", "/keys", {"name": "forever"}, user=person.name)[0] == 403
    assert as_proxy("POST", "/keys", {"name": "tmp", "expires_in_seconds": 900}, user=person.name)[0] == 403
    assert as_proxy("POST", f"/workspaces/{workspace}/shares", {"user": "admin", "permission": "admin"},
                    user=person.name)[0] == 403
    assert as_proxy("POST", "/workspaces", {"name": unique("viaproxy")}, user=person.name,
                    credential="0" * 64)[0] == 403
    assert proxy.request("GET", "/keys")[0] == 401
    # what it is for: CreateBucket for the caller it authenticated (through the proxy, as users do)
    bucket = unique("made-by-proxy")
    person.s3.create_bucket(Bucket=bucket)
    assert bucket in [w["name"] for w in person.api.call("GET", "/workspaces")["workspaces"]]
    person.s3.delete_bucket(Bucket=bucket)


def test_a_key_minted_from_a_scoped_key_cannot_widen_its_scope(person, workspace):
    scoped = person.api.call("POST", "/keys", {"scope": [{"workspace": workspace, "permission": "read"}]})
    wider = {"expires_in_seconds": 900, "parent": scoped["access_key_id"]}
    assert _api_error(lambda: person.api.call("POST", "/keys", wider))[0] == 400
    same = person.api.call("POST", "/keys", {**wider, "scope": [{"workspace": workspace, "permission": "read"}]})
    assert same["scope"] == [{"workspace": workspace, "permission": "read", "prefix": ""}]
