"""Bucket-level reads, error codes and S3 XML error bodies, the 5 GiB single-PUT limit, and what wio
refuses by design (bucket configuration, object ACLs, '.'/'..' key segments, SigV2) — the same cases
directly on the node and through wio."""
from __future__ import annotations

import http.client
import secrets
import socket
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET

import pytest

from tests.conformance.conftest import outcome

differs = pytest.mark.differs
GiB = 1024 ** 3


def test_head_bucket(target, bucket, observe):
    """HeadBucket on an existing bucket: 200; on a missing one: 404."""
    got = (outcome(target.s3.head_bucket, Bucket=bucket), outcome(target.s3.head_bucket, Bucket="no-such-bkt-x1"))
    observe(got)
    assert got == ("200", "404 404")


def test_get_bucket_location(target, bucket, observe):
    """GetBucketLocation: us-east-1 is an empty LocationConstraint."""
    loc = target.s3.get_bucket_location(Bucket=bucket).get("LocationConstraint")
    observe(repr(loc))
    assert loc in (None, "")


def test_get_bucket_versioning(target, bucket, observe):
    """GetBucketVersioning on a never-versioned bucket: no Status."""
    resp = target.s3.get_bucket_versioning(Bucket=bucket)
    observe(resp.get("Status"))
    assert resp.get("Status") is None


def test_list_buckets_contains_bucket(target, bucket, observe):
    """ListBuckets lists the caller's bucket."""
    names = [b["Name"] for b in target.s3.list_buckets()["Buckets"]]
    observe(bucket in names)
    assert bucket in names


_AUTOCREATE = differs(direct="SeaweedFS creates the missing bucket on the fly instead of answering NoSuchBucket")


@pytest.mark.parametrize("op", ["get_object", pytest.param("put_object", marks=_AUTOCREATE), "list_objects_v2",
                                "list_objects", "delete_object",
                                pytest.param("create_multipart_upload", marks=_AUTOCREATE)])
def test_no_such_bucket(target, observe, op):
    """Object and listing calls on a missing bucket: 404 NoSuchBucket."""
    kwargs = {"Bucket": f"no-such-{secrets.token_hex(5)}"}
    if op in ("get_object", "put_object", "delete_object", "create_multipart_upload"):
        kwargs["Key"] = "k"
    result = outcome(getattr(target.s3, op), **kwargs)
    observe(result)
    assert result == "404 NoSuchBucket"


def _raw(target, method, bucket, key=None, params=None, headers=None, body=None, client_method=None):
    """A presigned request sent with urllib: (status, headers, body bytes)."""
    params = {"Bucket": bucket, **({"Key": key} if key is not None else {}), **(params or {})}
    url = target.s3.generate_presigned_url(client_method, Params=params, ExpiresIn=60, HttpMethod=method)
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


def _xml_error(body: bytes) -> dict:
    root = ET.fromstring(body)
    assert root.tag == "Error", root.tag
    return {child.tag: (child.text or "") for child in root}


@pytest.mark.parametrize("case", ["NoSuchKey", "NoSuchBucket", "InvalidRange", "PreconditionFailed", "NoSuchUpload"])
def test_error_body_is_s3_xml(target, bucket, observe, case):
    """Error bodies are S3 XML <Error> with Code, Message and RequestId (matching x-amz-request-id)."""
    target.s3.put_object(Bucket=bucket, Key="here", Body=b"0123456789")
    if case == "NoSuchKey":
        status, headers, body = _raw(target, "GET", bucket, "missing", client_method="get_object")
    elif case == "NoSuchBucket":
        status, headers, body = _raw(target, "GET", f"no-such-{secrets.token_hex(5)}", "k", client_method="get_object")
    elif case == "InvalidRange":
        status, headers, body = _raw(target, "GET", bucket, "here", headers={"Range": "bytes=50-60"},
                                     client_method="get_object")
    elif case == "PreconditionFailed":
        status, headers, body = _raw(target, "GET", bucket, "here", headers={"If-Match": '"0000"'},
                                     client_method="get_object")
    else:
        status, headers, body = _raw(target, "GET", bucket, "here", params={"UploadId": "nope"},
                                     client_method="list_parts")
    fields = _xml_error(body)
    observe(f"{status} {fields.get('Code')} RequestId={'yes' if fields.get('RequestId') else 'no'} "
            f"Resource={fields.get('Resource', '-')!r}")
    assert fields.get("Code") == case and fields.get("Message") and fields.get("RequestId")
    assert status == {"NoSuchKey": 404, "NoSuchBucket": 404, "InvalidRange": 416, "PreconditionFailed": 412,
                      "NoSuchUpload": 404}[case]
    assert headers.get("x-amz-request-id") == fields["RequestId"]
    assert (headers.get("Content-Type") or "").startswith("application/xml")


def test_error_body_well_formed_for_control_character_key(target, bucket, observe):
    """The error for a key with a control character is still well-formed S3 XML with a Code."""
    status, _, body = _raw(target, "GET", bucket, "missing\x01key", client_method="get_object")
    try:
        code = _xml_error(body).get("Code")
    except ET.ParseError as exc:
        code = f"ill-formed XML ({exc})"
    observe(f"{status} {code}")
    assert code in ("NoSuchKey", "InvalidArgument")


def _put_headers_only(target, bucket, length: int, expect_continue: bool):
    """Send a presigned PUT's headers with Content-Length ``length`` and no body; return the early answer."""
    url = target.s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "huge"}, ExpiresIn=60)
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=3)
    try:
        conn.putrequest("PUT", f"{parts.path}?{parts.query}", skip_accept_encoding=True)
        conn.putheader("Content-Length", str(length))
        if expect_continue:
            conn.putheader("Expect", "100-continue")
        conn.endheaders()
        try:
            resp = conn.getresponse()
        except (socket.timeout, TimeoutError):
            return "no answer within 3 s (server waits for the body)"
        body = resp.read(4096)
        try:
            code = _xml_error(body).get("Code")
        except ET.ParseError:
            code = body[:60]
        return f"{resp.status} {code}"
    finally:
        conn.close()


@pytest.mark.parametrize("expect_continue", [False, True], ids=["plain", "expect-100-continue"])
@differs(direct="SeaweedFS does not check Content-Length against S3's 5 GiB single-PUT limit")
def test_entity_too_large_before_body(target, bucket, observe, expect_continue):
    """A single PUT declaring 5 GiB + 1 bytes is refused with 400 EntityTooLarge before any body is sent."""
    result = _put_headers_only(target, bucket, 5 * GiB + 1, expect_continue)
    observe(result)
    assert result == "400 EntityTooLarge"


# --- refused by design at the proxy ----------------------------------------------------------------

BUCKET_CONFIG = [
    ("put_bucket_policy", {"Policy": '{"Version":"2012-10-17","Statement":[]}'}),
    ("put_bucket_cors", {"CORSConfiguration": {"CORSRules": [{"AllowedMethods": ["GET"], "AllowedOrigins": ["*"]}]}}),
    ("put_bucket_tagging", {"Tagging": {"TagSet": [{"Key": "a", "Value": "b"}]}}),
    ("put_bucket_acl", {"ACL": "public-read-write"}),   # a canned ACL wio cannot say (private … public-read: it can)
    ("get_bucket_encryption", {}),
    ("get_bucket_notification_configuration", {}),
    ("put_bucket_versioning", {"VersioningConfiguration": {"Status": "Enabled"}}),
]


@pytest.mark.parametrize("op, kwargs", BUCKET_CONFIG,
                         ids=[getattr(c, "values", c)[0] for c in BUCKET_CONFIG])
def test_bucket_configuration_refused_by_proxy(target, bucket, observe, op, kwargs):
    """By design: bucket configuration is wio's business; the proxy answers 501 NotImplemented (the node answers)."""
    result = outcome(getattr(target.s3, op), Bucket=bucket, **kwargs)
    observe(result)
    if target.kind == "proxy":
        assert result == "501 NotImplemented"
    else:
        assert not result.startswith("5"), result       # the node handles (or cleanly refuses) it itself


_POLICY_FIRST = "SeaweedFS validates the policy document before looking for the bucket (400 InvalidPolicyDocument)"


@pytest.mark.parametrize("op, kwargs", [
    pytest.param(op, kwargs, id=op, marks=[differs(direct=_POLICY_FIRST)] if op == "put_bucket_policy" else [])
    for op, kwargs in BUCKET_CONFIG if op.startswith("put_")])
def test_bucket_configuration_on_missing_bucket(target, observe, op, kwargs):
    """A configuration call on a bucket that does not exist answers 404 NoSuchBucket, before any 'not implemented'."""
    result = outcome(getattr(target.s3, op), Bucket=f"no-such-{secrets.token_hex(5)}", **kwargs)
    observe(result)
    assert result == "404 NoSuchBucket"


UNCONFIGURED_READS = [
    ("get_bucket_policy", "404 NoSuchBucketPolicy"),
    ("get_bucket_cors", "404 NoSuchCORSConfiguration"),
    ("get_bucket_lifecycle_configuration", "404 NoSuchLifecycleConfiguration"),
    ("get_bucket_tagging", "404 NoSuchTagSet"),
    ("get_bucket_replication", "404 ReplicationConfigurationNotFoundError"),
    ("get_bucket_website", "404 NoSuchWebsiteConfiguration"),
    ("get_object_lock_configuration", "404 ObjectLockConfigurationNotFoundError"),
]


@pytest.mark.parametrize("op, expected", UNCONFIGURED_READS, ids=[op for op, _ in UNCONFIGURED_READS])
def test_unconfigured_bucket_configuration_reads(target, bucket, observe, op, expected):
    """Reading configuration a bucket does not have answers S3's 404 'not configured' error (wio offers none
    of these, so that is the truth through wio; a 501 breaks tools that read configuration)."""
    result = outcome(getattr(target.s3, op), Bucket=bucket)
    observe(result)
    assert result == expected


@pytest.mark.parametrize("acl", ["public-read", "authenticated-read"])
def test_object_acl_refused_by_proxy(target, bucket, observe, acl):
    """By design: access is granted with wio shares, so an ACL that would change it answers 501 NotImplemented."""
    target.s3.put_object(Bucket=bucket, Key="acl", Body=b"x")
    result = outcome(target.s3.put_object_acl, Bucket=bucket, Key="acl", ACL=acl)
    observe(result)
    if target.kind == "proxy":
        assert result == "501 NotImplemented"


def test_acl_views(target, bucket, observe):
    """GetBucketAcl/GetObjectAcl show the owner's FULL_CONTROL; GetBucketPolicyStatus is not public;
    setting the ACL an unshared object already has (private) succeeds."""
    s3 = target.s3
    s3.put_object(Bucket=bucket, Key="acl", Body=b"x")
    bucket_acl, object_acl = s3.get_bucket_acl(Bucket=bucket), s3.get_object_acl(Bucket=bucket, Key="acl")
    observe(f"{bucket_acl['Grants']} {object_acl['Grants']}")
    for acl in (bucket_acl, object_acl):
        assert [(g["Grantee"]["ID"], g["Permission"]) for g in acl["Grants"]] == [(acl["Owner"]["ID"], "FULL_CONTROL")]
    assert outcome(s3.put_object_acl, Bucket=bucket, Key="acl", ACL="private") == "200"
    assert outcome(s3.get_object_acl, Bucket=bucket, Key="missing") == "404 NoSuchKey"
    if target.kind == "proxy":   # (the node has no policy: its answer is an error of its own)
        assert s3.get_bucket_policy_status(Bucket=bucket)["PolicyStatus"] == {"IsPublic": False}


@pytest.mark.parametrize("key", ["a/../b", "../escape", "a/./b", "./x", "a/..", "."],
                         ids=["dotdot-inner", "dotdot-leading", "dot-inner", "dot-leading", "dotdot-trailing", "dot"])
def test_dot_segments(target, bucket, observe, key):
    """By design: the proxy refuses keys with '.'/'..' segments; the node's own behaviour is recorded."""
    result = outcome(target.s3.put_object, Bucket=bucket, Key=key, Body=b"x")
    listed = [o["Key"] for o in target.s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    observe(f"{result} listed={listed}")
    if target.kind == "proxy":
        assert result.startswith("400 ") and listed == []


def test_sigv2_refused_by_proxy(target, bucket, observe):
    """By design: the proxy accepts only SigV4; a SigV2-signed request is refused."""
    v2 = target.client(signature_version="s3")
    result = outcome(v2.list_objects, Bucket=bucket)
    observe(result)
    if target.kind == "proxy":
        assert result.split()[0] in ("400", "403") and result != "200"


def test_backslash_dotdot_stays_inside(target, bucket, observe, s3_node):
    """A key made of backslash '..' segments either is refused or stays an ordinary key of this bucket."""
    key = "in\\..\\..\\..\\conformance-escape-probe"
    result = outcome(target.s3.put_object, Bucket=bucket, Key=key, Body=b"x")
    listed = [o["Key"] for o in target.s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    observe(f"{result} listed={listed}")
    assert result.startswith("400 ") or len(listed) == 1
