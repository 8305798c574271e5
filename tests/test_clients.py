"""Issue 3 end to end: real clients over http and https, every payload mode they choose, and tampering.

Clients sign differently over https (boto3 then sends aws-chunked bodies with trailing checksums),
so each client runs against a plain proxy and a TLS one sharing the same API, Redis and node.
"""
from __future__ import annotations

import hashlib
import http.client
import io
import os
import subprocess
import sys
from datetime import datetime, timezone
from urllib.parse import urlsplit

import boto3
import pytest
import urllib3
from botocore.config import Config
from minio import Minio

from signing import ChunkSigner, sign_request_with_context
from tests.conftest import tool

MiB = 1024 * 1024


@pytest.fixture(params=["http", "https"])
def endpoint(request, stack):
    if request.param == "http":
        return stack.s3_url, None
    tls = request.getfixturevalue("tls_stack")
    return tls.s3_url, tls.cert


def boto(endpoint, key, **config):
    url, cert = endpoint
    return boto3.client("s3", endpoint_url=url, aws_access_key_id=key["access_key_id"],
                        aws_secret_access_key=key["secret_access_key"], region_name="us-east-1",
                        verify=cert if cert else None,
                        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}, **config))


@pytest.mark.parametrize("size", [0, 1, 5 * MiB + 7])
def test_boto3_default_configuration(endpoint, person, workspace, size):
    s3 = boto(endpoint, person.key)
    data = os.urandom(size)
    s3.put_object(Bucket=workspace, Key=f"obj-{size}", Body=data)
    assert s3.get_object(Bucket=workspace, Key=f"obj-{size}")["Body"].read() == data


def test_boto3_upload_fileobj_70mb(endpoint, person, workspace):
    s3 = boto(endpoint, person.key)
    data = os.urandom(70 * MiB)
    s3.upload_fileobj(io.BytesIO(data), workspace, "seventy.bin")
    out = io.BytesIO()
    s3.download_fileobj(workspace, "seventy.bin", out)
    assert hashlib.sha256(out.getvalue()).digest() == hashlib.sha256(data).digest()


@pytest.mark.parametrize("algorithm", ["CRC32", "CRC32C", "SHA1", "SHA256", "CRC64NVME"])
def test_boto3_checksum_algorithms(endpoint, person, workspace, algorithm):
    s3 = boto(endpoint, person.key)
    data = os.urandom(300_000)
    s3.put_object(Bucket=workspace, Key=f"ck-{algorithm}", Body=data, ChecksumAlgorithm=algorithm)
    assert s3.get_object(Bucket=workspace, Key=f"ck-{algorithm}")["Body"].read() == data


def test_aws_cli(endpoint, person, workspace, tmp_path):
    url, cert = endpoint
    src = tmp_path / "cli.bin"
    src.write_bytes(os.urandom(9 * MiB))
    env = {**os.environ, "AWS_ACCESS_KEY_ID": person.key["access_key_id"],
           "AWS_SECRET_ACCESS_KEY": person.key["secret_access_key"], "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"}
    base = [sys.executable, "-m", "awscli", "--endpoint-url", url] + (["--ca-bundle", cert] if cert else [])
    for args in (["s3", "cp", str(src), f"s3://{workspace}/cli.bin"],
                 ["s3", "cp", f"s3://{workspace}/cli.bin", str(tmp_path / "back.bin")]):
        subprocess.run(base + args, env=env, check=True, capture_output=True, timeout=120)
    assert (tmp_path / "back.bin").read_bytes() == src.read_bytes()


def test_minio_sdk(endpoint, person, workspace):
    url, cert = endpoint
    parts = urlsplit(url)
    http = urllib3.PoolManager(cert_reqs="CERT_REQUIRED", ca_certs=cert) if cert else None
    client = Minio(parts.netloc, access_key=person.key["access_key_id"], secret_key=person.key["secret_access_key"],
                   secure=parts.scheme == "https", region="us-east-1", http_client=http)
    data = os.urandom(12 * MiB + 5)   # above minio's 5 MiB part size: multipart with signed parts
    client.put_object(workspace, "minio.bin", io.BytesIO(data), len(data), part_size=5 * MiB)
    response = client.get_object(workspace, "minio.bin")
    try:
        assert response.read() == data
    finally:
        response.close()
        response.release_conn()
    assert [o.object_name for o in client.list_objects(workspace)] == ["minio.bin"]


def test_rclone(endpoint, person, workspace, tmp_path):
    url, cert = endpoint
    src = tmp_path / "rc.bin"
    src.write_bytes(os.urandom(3 * MiB))
    env = {**os.environ, "RCLONE_CONFIG": str(tmp_path / "rclone.conf"), "RCLONE_CONFIG_WIO_TYPE": "s3",
           "RCLONE_CONFIG_WIO_PROVIDER": "Other", "RCLONE_CONFIG_WIO_ACCESS_KEY_ID": person.key["access_key_id"],
           "RCLONE_CONFIG_WIO_SECRET_ACCESS_KEY": person.key["secret_access_key"],
           "RCLONE_CONFIG_WIO_ENDPOINT": url, "RCLONE_CONFIG_WIO_REGION": "us-east-1"}
    extra = ["--ca-cert", cert] if cert else []
    subprocess.run([tool("rclone"), *extra, "copyto", str(src), f"wio:{workspace}/rc/rc.bin"], env=env, check=True,
                   capture_output=True, timeout=120)
    subprocess.run([tool("rclone"), *extra, "copyto", f"wio:{workspace}/rc/rc.bin", str(tmp_path / "back")], env=env,
                   check=True, capture_output=True, timeout=120)
    assert (tmp_path / "back").read_bytes() == src.read_bytes()


def test_s3cmd(endpoint, person, workspace, tmp_path):
    url, cert = endpoint
    host = urlsplit(url).netloc
    src = tmp_path / "s3cmd.bin"
    src.write_bytes(os.urandom(2 * MiB + 3))
    base = [tool("s3cmd"), "--config=/dev/null", f"--access_key={person.key['access_key_id']}",
            f"--secret_key={person.key['secret_access_key']}", f"--host={host}", f"--host-bucket={host}",
            "--region=us-east-1"]
    base += [f"--ca-certs={cert}", "--ssl"] if cert else ["--no-ssl"]
    subprocess.run(base + ["put", str(src), f"s3://{workspace}/s3cmd.bin"], check=True, capture_output=True,
                   timeout=120)
    subprocess.run(base + ["get", "--force", f"s3://{workspace}/s3cmd.bin", str(tmp_path / "back")], check=True,
                   capture_output=True, timeout=120)
    assert (tmp_path / "back").read_bytes() == src.read_bytes()


# ---------------------------------------------------------------- tampering: refused, nothing stored

def _raw_put(stack, person, workspace, key, body_builder, headers=None):
    """PUT with a body we frame ourselves; returns (status, response body)."""
    url = urlsplit(stack.s3_url)
    path = f"/{workspace}/{key}"
    base = {"host": url.netloc, **(headers or {})}
    body, payload_hash, extra = body_builder(base)
    base.update(extra)
    signed, ctx = sign_request_with_context("PUT", path, "", base, payload_hash=payload_hash,
                                            access_key=person.key["access_key_id"],
                                            secret_key=person.key["secret_access_key"], region="us-east-1",
                                            now=datetime.now(timezone.utc))
    base.update(signed)
    if callable(body):
        body = body(ctx)
    base["content-length"] = str(len(body))
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    try:
        conn.request("PUT", path, body=body, headers=base)
        resp = conn.getresponse()
        return resp.status, resp.read().decode()
    finally:
        conn.close()


def _chunked(data: bytes, *, signed: bool, trailer: str | None, tamper):
    def build(headers):
        mode = ("STREAMING-AWS4-HMAC-SHA256-PAYLOAD" if signed else "STREAMING-UNSIGNED-PAYLOAD") + \
               ("-TRAILER" if trailer else "")
        extra = {"content-encoding": "aws-chunked", "x-amz-decoded-content-length": str(len(data))}
        if trailer:
            extra["x-amz-trailer"] = trailer

        def frame(ctx):
            signer = ChunkSigner(ctx if signed else None, trailer)
            out = b"".join(signer.chunk(data[i:i + 65536]) for i in range(0, len(data), 65536)) + signer.final()
            return tamper(out)
        return frame, mode, extra
    return build


def _exists(person, workspace, key) -> bool:
    return bool(person.s3.list_objects_v2(Bucket=workspace, Prefix=key).get("KeyCount"))


def _flip(data: bytes, index: int) -> bytes:
    return data[:index] + bytes([data[index] ^ 1]) + data[index + 1:]


@pytest.mark.parametrize("case,expected", [
    ("chunk-data", "SignatureDoesNotMatch"),
    ("chunk-signature", "SignatureDoesNotMatch"),
    ("trailer-value", "BadDigest"),
])
def test_tampered_aws_chunked_bodies_store_nothing(stack, person, workspace, case, expected):
    data = os.urandom(200_000)
    signed = case != "trailer-value"
    trailer = "x-amz-checksum-crc32c" if case == "trailer-value" else None

    def tamper(framed: bytes) -> bytes:
        if case == "chunk-data":
            return _flip(framed, framed.index(b"\r\n") + 2 + 1000)
        if case == "chunk-signature":
            at = framed.index(b"chunk-signature=") + len(b"chunk-signature=") + 5
            return framed[:at] + (b"0" if framed[at:at + 1] != b"0" else b"1") + framed[at + 1:]
        at = framed.index(b"x-amz-checksum-crc32c:") + len(b"x-amz-checksum-crc32c:") + 2
        return framed[:at] + (b"A" if framed[at:at + 1] != b"A" else b"B") + framed[at + 1:]

    key = f"tampered-{case}"
    status, body = _raw_put(stack, person, workspace, key, _chunked(data, signed=signed, trailer=trailer,
                                                                    tamper=tamper))
    assert status in (400, 403) and f"<Code>{expected}</Code>" in body
    assert not _exists(person, workspace, key)
    # the same request untampered is stored byte for byte
    status, _ = _raw_put(stack, person, workspace, key, _chunked(data, signed=signed, trailer=trailer,
                                                                 tamper=lambda b: b))
    assert status == 200
    assert person.s3.get_object(Bucket=workspace, Key=key)["Body"].read() == data


def test_wrong_payload_hash_and_content_md5_store_nothing(stack, person, workspace):
    data = os.urandom(3 * MiB)   # large enough to be streamed, not buffered
    wrong = hashlib.sha256(data + b"x").hexdigest()
    status, body = _raw_put(stack, person, workspace, "bad-hash", lambda h: (data, wrong, {}))
    assert status == 400 and "XAmzContentSHA256Mismatch" in body
    assert not _exists(person, workspace, "bad-hash")
    import base64
    bad_md5 = base64.b64encode(hashlib.md5(b"other").digest()).decode()
    status, body = _raw_put(stack, person, workspace, "bad-md5",
                            lambda h: (data, "UNSIGNED-PAYLOAD", {"content-md5": bad_md5}))
    assert status == 400 and "BadDigest" in body
    assert not _exists(person, workspace, "bad-md5")
    status, body = _raw_put(stack, person, workspace, "small-bad-hash",
                            lambda h: (b"tiny", hashlib.sha256(b"tinx").hexdigest(), {}))
    assert status == 400 and not _exists(person, workspace, "small-bad-hash")


def test_unsigned_amz_header_is_refused(stack, person, workspace):
    url = urlsplit(stack.s3_url)
    path = f"/{workspace}/sneaky"
    headers = {"host": url.netloc}
    signed, _ = sign_request_with_context("PUT", path, "", headers, payload_hash="UNSIGNED-PAYLOAD",
                                          access_key=person.key["access_key_id"],
                                          secret_key=person.key["secret_access_key"], region="us-east-1",
                                          now=datetime.now(timezone.utc))
    headers.update(signed)
    headers["x-amz-meta-injected"] = "nobody signed me"
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    conn.request("PUT", path, body=b"x", headers=headers)
    resp = conn.getresponse()
    assert resp.status == 403 and b"x-amz-meta-injected" in resp.read()
    assert not _exists(person, workspace, "sneaky")
