"""Issue 2's walk-through, end to end against the real stack: API -> key -> proxy -> SeaweedFS."""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import pytest
from botocore.exceptions import ClientError

from tests.conftest import s3_client, unique
from wio.client import ApiClientError


def error_code(exc_info) -> str:
    return exc_info.value.response["Error"]["Code"]


def aws_cli(stack, person, *args, check=True):
    env = {**os.environ, "AWS_ACCESS_KEY_ID": person.key["access_key_id"],
           "AWS_SECRET_ACCESS_KEY": person.key["secret_access_key"], "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"}
    env.pop("AWS_SESSION_TOKEN", None)
    return subprocess.run([sys.executable, "-m", "awscli", "--endpoint-url", stack.s3_url, *args],
                          env=env, capture_output=True, text=True, check=check, timeout=120)


def test_health_endpoints(stack):
    import urllib.request
    with urllib.request.urlopen(stack.api_url + "/healthz") as r:
        assert r.status == 200
    with urllib.request.urlopen(stack.s3_url + "/_wio/health") as r:
        assert r.status == 200


def test_aws_cli_round_trip_10mb(stack, person, workspace, tmp_path):
    src = tmp_path / "ten.bin"
    src.write_bytes(os.urandom(10 * 1024 * 1024 + 123))
    aws_cli(stack, person, "s3", "cp", str(src), f"s3://{workspace}/data/ten.bin")
    back = tmp_path / "back.bin"
    aws_cli(stack, person, "s3", "cp", f"s3://{workspace}/data/ten.bin", str(back))
    assert hashlib.sha256(back.read_bytes()).digest() == hashlib.sha256(src.read_bytes()).digest()
    listing = aws_cli(stack, person, "s3", "ls", f"s3://{workspace}/data/").stdout
    assert "ten.bin" in listing and str(src.stat().st_size) in listing


def test_boto3_put_get_head_delete(person, workspace):
    s3 = person.s3
    body = b"hello wio " * 1000
    s3.put_object(Bucket=workspace, Key="a/b c+d%e~f.txt", Body=body, ContentType="text/plain",
                  Metadata={"project": "x"})
    head = s3.head_object(Bucket=workspace, Key="a/b c+d%e~f.txt")
    assert head["ContentLength"] == len(body) and head["Metadata"] == {"project": "x"}
    assert head["ContentType"] == "text/plain"
    assert s3.get_object(Bucket=workspace, Key="a/b c+d%e~f.txt")["Body"].read() == body
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=workspace)["Contents"]]
    assert keys == ["a/b c+d%e~f.txt"]
    s3.delete_object(Bucket=workspace, Key="a/b c+d%e~f.txt")
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=workspace, Key="a/b c+d%e~f.txt")
    assert error_code(exc) == "NoSuchKey"


def test_second_user_denied_until_shared_and_after_revoke(stack, person, other, workspace):
    person.s3.put_object(Bucket=workspace, Key="report.csv", Body=b"1,2,3")
    with pytest.raises(ClientError) as exc:
        other.s3.get_object(Bucket=workspace, Key="report.csv")
    assert error_code(exc) == "AccessDenied"
    assert workspace not in [b["Name"] for b in other.s3.list_buckets()["Buckets"]]

    share = person.api.call("POST", f"/workspaces/{workspace}/shares", {"user": other.name, "permission": "read"})
    assert other.s3.get_object(Bucket=workspace, Key="report.csv")["Body"].read() == b"1,2,3"
    assert workspace in [b["Name"] for b in other.s3.list_buckets()["Buckets"]]
    with pytest.raises(ClientError) as exc:
        other.s3.put_object(Bucket=workspace, Key="mine.txt", Body=b"x")
    assert error_code(exc) == "AccessDenied"

    person.api.call("DELETE", f"/workspaces/{workspace}/shares/{share['id']}")
    with pytest.raises(ClientError) as exc:
        other.s3.get_object(Bucket=workspace, Key="report.csv")
    assert error_code(exc) == "AccessDenied"


def test_deleted_key_is_refused_on_next_request(stack, person, workspace):
    key = person.api.call("POST", "/keys", {"name": "short-lived"})
    s3 = s3_client(stack.s3_url, key)
    s3.head_bucket(Bucket=workspace)
    person.api.call("DELETE", f"/keys/{key['access_key_id']}")
    with pytest.raises(ClientError) as exc:
        s3.head_bucket(Bucket=workspace)
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    with pytest.raises(ClientError) as exc:
        s3.list_objects_v2(Bucket=workspace)
    assert error_code(exc) == "InvalidAccessKeyId"


def test_wrong_secret_is_signature_mismatch(stack, person, workspace):
    secret = person.key["secret_access_key"]
    bad = {**person.key, "secret_access_key": secret[:-1] + ("y" if secret.endswith("x") else "x")}   # always another
    with pytest.raises(ClientError) as exc:
        s3_client(stack.s3_url, bad).list_objects_v2(Bucket=workspace)
    assert error_code(exc) == "SignatureDoesNotMatch"


def test_create_bucket_is_a_workspace_and_delete_needs_empty(stack, person, other):
    name = unique("bucket")
    person.s3.create_bucket(Bucket=name)
    assert name in [w["name"] for w in person.api.call("GET", "/workspaces")["workspaces"]]
    with pytest.raises(ClientError) as exc:
        person.s3.create_bucket(Bucket=name)
    assert error_code(exc) == "BucketAlreadyOwnedByYou"
    with pytest.raises(ClientError) as exc:
        other.s3.create_bucket(Bucket=name)
    assert error_code(exc) == "BucketAlreadyExists"

    person.s3.put_object(Bucket=name, Key="keep.txt", Body=b"x")
    with pytest.raises(ClientError) as exc:
        person.s3.delete_bucket(Bucket=name)
    assert error_code(exc) == "BucketNotEmpty"
    with pytest.raises(ClientError) as exc:
        other.s3.delete_bucket(Bucket=name)
    assert error_code(exc) == "AccessDenied"
    person.s3.delete_object(Bucket=name, Key="keep.txt")
    person.s3.delete_bucket(Bucket=name)
    with pytest.raises(ApiClientError) as api_exc:
        person.api.call("GET", f"/workspaces/{name}")
    assert api_exc.value.status == 404
    with pytest.raises(ClientError) as exc:
        person.s3.head_bucket(Bucket=name)
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_unknown_bucket_and_anonymous(stack, person):
    import urllib.error
    import urllib.request
    with pytest.raises(ClientError) as exc:
        person.s3.list_objects_v2(Bucket=unique("nope"))
    assert error_code(exc) == "NoSuchBucket"
    with pytest.raises(urllib.error.HTTPError) as http_exc:
        urllib.request.urlopen(stack.s3_url + "/anything/key")
    assert http_exc.value.code == 403
    assert b"<Code>AccessDenied</Code>" in http_exc.value.read()
