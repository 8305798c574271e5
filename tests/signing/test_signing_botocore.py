"""Requests signed by botocore itself, verified by signing/.

boto3 clients build and sign real S3 requests (header auth over http and https, unsigned-payload
trailers with every checksum algorithm, presigned URLs, POST policies); a ``before-send`` hook
captures each request instead of sending it, so nothing leaves the process. botocore's clock is
frozen so the tests are reproducible.
"""
from __future__ import annotations

import base64
import hashlib
import json
import zlib
from datetime import datetime, timezone
from urllib.parse import urlsplit

import boto3
import botocore.auth
import botocore.signers
import pytest
from botocore.awsrequest import AWSRequest, AWSResponse
from botocore.config import Config
from botocore.credentials import Credentials
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from signing import (
    HoldBackBody,
    SigningError,
    make_body_verifier,
    parse_post_policy,
    parse_request_auth,
    verify_post_policy,
    verify_signature,
)

NOW = datetime(2024, 3, 9, 16, 30, 5, tzinfo=timezone.utc)
REGION = "us-east-1"
ACCESS = "AKIDWIOTEST"
SECRET = "wio/secret+key=example"


if botocore.auth.HAS_CRT:
    import botocore.crt.auth as botocore_crt_auth

SIGNERS = ["python"] + (["crt"] if botocore.auth.HAS_CRT else [])


@pytest.fixture(autouse=True, params=SIGNERS)
def botocore_signer(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run each test with botocore's pure-Python signer and, when awscrt is installed (then boto3
    uses it by default), with the CRT signer (aws-c-auth); botocore's clock is frozen."""
    frozen = lambda remove_tzinfo=True: NOW.replace(tzinfo=None) if remove_tzinfo else NOW  # noqa: E731
    monkeypatch.setattr(botocore.auth, "get_current_datetime", frozen)
    monkeypatch.setattr(botocore.signers, "get_current_datetime", frozen)
    if botocore.auth.HAS_CRT:
        monkeypatch.setattr(botocore_crt_auth, "get_current_datetime", frozen)
    if request.param == "python":
        for name, cls in (("v4", botocore.auth.SigV4Auth), ("v4-query", botocore.auth.SigV4QueryAuth),
                          ("s3v4", botocore.auth.S3SigV4Auth), ("s3v4-query", botocore.auth.S3SigV4QueryAuth)):
            monkeypatch.setitem(botocore.auth.AUTH_TYPE_MAPS, name, cls)
    return request.param


class _Raw:
    def __init__(self) -> None:
        self._done = False

    def stream(self, *args, **kwargs):
        return iter(())

    def read(self, *args, **kwargs) -> bytes:
        return b""


class Captured:
    """One request as botocore would have sent it."""

    def __init__(self, method: str, url: str, headers, body) -> None:
        self.method = method
        parts = urlsplit(url)
        self.path = parts.path
        self.query = parts.query
        self.headers = [(n, v.decode("utf-8") if isinstance(v, bytes) else v) for n, v in headers]
        if not any(n.lower() == "host" for n, _ in self.headers):
            # the HTTP layer adds it (botocore's Python signer signs the value it will have)
            self.headers.append(("Host", parts.netloc))
        if hasattr(body, "read"):
            body = body.read()
        if isinstance(body, str):
            body = body.encode("utf-8")
        self.body = body or b""


_CLIENTS: dict[tuple, object] = {}


def make_client(endpoint: str = "https://proxy.example:9443", *, secret: str = SECRET, token: str | None = None,
                signature_version: str = "s3v4"):
    """A boto3 S3 client whose requests are captured into ``client.sent`` instead of sent.

    Clients are slow to build (~0.3 s), so one per configuration is kept and its credentials
    swapped; botocore looks the signer class and the credentials up again for every request.
    """
    cache_key = (endpoint, token, signature_version)
    client = _CLIENTS.get(cache_key)
    if client is None:
        client = boto3.session.Session().client(
            "s3", endpoint_url=endpoint, region_name=REGION, aws_access_key_id=ACCESS,
            aws_secret_access_key=SECRET, aws_session_token=token,
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 0},
                          signature_version=signature_version),
        )

        def capture(request, **kwargs):
            client.sent.append(Captured(request.method, request.url, request.headers.items(), request.body))
            return AWSResponse(request.url, 200, {}, _Raw())

        client.meta.events.register("before-send.s3.*", capture)
        _CLIENTS[cache_key] = client
    client.sent = []  # type: ignore[attr-defined]
    client._request_signer._credentials = Credentials(ACCESS, secret, token)
    return client


def verify(request: Captured, secret: str = SECRET, *, now: datetime = NOW, chunk: int = 7):
    """Run the proxy's whole sequence; return (auth, decoded body, verified checksums)."""
    auth = parse_request_auth(request.method, request.path, request.query, request.headers, now=now, region=REGION)
    assert auth is not None
    assert auth.access_key_id == ACCESS
    ctx = verify_signature(auth, secret, request.method, request.path, request.query, request.headers)
    gate = HoldBackBody(make_body_verifier(auth, ctx, request.headers))
    body = request.body
    out = b"".join(gate.feed(body[i:i + chunk]) for i in range(0, len(body), chunk))
    out += gate.finish()
    return auth, out, gate.checksums


# -- header auth, every way boto3 sends a body --------------------------------------------------------


@pytest.mark.parametrize("algorithm", ["CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256"])
def test_put_object_unsigned_trailer_every_checksum(algorithm: str) -> None:
    client = make_client()
    payload = bytes(range(256)) * 41
    client.put_object(Bucket="ws", Key="dir/file.bin", Body=payload, ChecksumAlgorithm=algorithm)
    (request,) = client.sent
    assert dict((n.lower(), v) for n, v in request.headers)["x-amz-content-sha256"] == "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
    auth, out, checksums = verify(request)
    assert out == payload
    name = f"x-amz-checksum-{algorithm.lower()}"
    assert list(checksums) == [name]
    if algorithm == "CRC32":
        assert base64.b64decode(checksums[name]) == zlib.crc32(payload).to_bytes(4, "big")
    if algorithm == "SHA256":
        assert base64.b64decode(checksums[name]) == hashlib.sha256(payload).digest()


def test_put_object_signed_payload_over_http_with_checksum_header() -> None:
    client = make_client("http://proxy.example:9000")
    client.put_object(Bucket="ws", Key="k", Body=b"hello", ChecksumAlgorithm="SHA1",
                      Metadata={"note": "  two   spaces  "}, ContentType="text/plain")
    (request,) = client.sent
    headers = dict((n.lower(), v) for n, v in request.headers)
    assert headers["x-amz-content-sha256"] == hashlib.sha256(b"hello").hexdigest()
    _, out, checksums = verify(request)
    assert out == b"hello"
    assert checksums == {"x-amz-checksum-sha1": base64.b64encode(hashlib.sha1(b"hello").digest()).decode()}

    tampered = Captured(request.method, "http://x" + request.path, request.headers, b"jello")
    with pytest.raises(SigningError) as caught:
        verify(tampered)
    assert caught.value.code == "XAmzContentSHA256Mismatch"


def test_delete_objects_and_copy_and_multipart() -> None:
    client = make_client()
    client.delete_objects(Bucket="ws", Delete={"Objects": [{"Key": "a"}, {"Key": "b c"}]})
    client.copy_object(Bucket="ws", Key="dst", CopySource={"Bucket": "ws", "Key": "src key+%"})
    client.create_multipart_upload(Bucket="ws", Key="big")
    client.upload_part(Bucket="ws", Key="big", UploadId="u-1", PartNumber=3, Body=b"x" * 5000)
    client.complete_multipart_upload(Bucket="ws", Key="big", UploadId="u-1",
                                     MultipartUpload={"Parts": [{"PartNumber": 3, "ETag": '"e"'}]})
    client.get_object(Bucket="ws", Key="big", Range="bytes=0-9")
    client.head_object(Bucket="ws", Key="big")
    assert len(client.sent) == 7
    decoded = [verify(request)[1] for request in client.sent]
    assert decoded[0] == client.sent[0].body and b"<Key>b c</Key>" in decoded[0]
    assert decoded[3] == b"x" * 5000 and client.sent[3].body.startswith(b"1388\r\nxxx")
    assert b"<PartNumber>3</PartNumber>" in decoded[4]
    assert decoded[1] == decoded[2] == decoded[5] == decoded[6] == b""


def test_session_token_is_signed_and_reported() -> None:
    client = make_client(token="session/token+value==")
    client.get_object(Bucket="ws", Key="k")
    auth, _, _ = verify(client.sent[0])
    assert auth.session_token == "session/token+value=="


def test_list_objects_with_awkward_prefix() -> None:
    client = make_client()
    client.list_objects_v2(Bucket="ws", Prefix="a b+c%d~e/ü/", Delimiter="/", StartAfter="x=y&z")
    verify(client.sent[0])


KEY_ALPHABET = st.characters(blacklist_categories=("Cs", "Cc")) | st.sampled_from(list(" +%~/!*'()&=?#;:,$@[]"))


@settings(database=None, max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    key=st.text(KEY_ALPHABET, min_size=1, max_size=40),
    secret=st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=40),
    prefix=st.text(KEY_ALPHABET, max_size=20),
    meta=st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=20),
)
def test_random_keys_and_secrets(key: str, secret: str, prefix: str, meta: str) -> None:
    client = make_client("http://proxy.example:9000", secret=secret)
    client.put_object(Bucket="ws", Key=key, Body=b"data", Metadata={"m": meta})
    client.get_object(Bucket="ws", Key=key)
    client.list_objects_v2(Bucket="ws", Prefix=prefix)
    for request in client.sent:
        verify(request, secret)
    url = client.generate_presigned_url("get_object", Params={"Bucket": "ws", "Key": key}, ExpiresIn=300)
    parts = urlsplit(url)
    headers = [("Host", parts.netloc)]
    auth = parse_request_auth("GET", parts.path, parts.query, headers, now=NOW, region=REGION)
    verify_signature(auth, secret, "GET", parts.path, parts.query, headers)
    with pytest.raises(SigningError):
        verify_signature(auth, secret + "!", "GET", parts.path, parts.query, headers)


@settings(database=None, max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=st.text(KEY_ALPHABET, min_size=1, max_size=30), data=st.data())
def test_sigv4auth_low_level_with_random_headers(key: str, data) -> None:
    """botocore.auth.S3SigV4Auth on a hand-built request: header values with odd white space."""
    from urllib.parse import quote

    value = data.draw(st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=30))
    url = "https://node.example/ws/" + quote(key.encode("utf-8"), safe="/~")
    request = AWSRequest(method="PUT", url=url, data=b"body",
                         headers={"x-amz-meta-v": value, "Content-Type": "application/x y"})
    botocore.auth.S3SigV4Auth(Credentials(ACCESS, SECRET), "s3", REGION).add_auth(request)
    prepared = request.prepare()
    verify(Captured(prepared.method, prepared.url, prepared.headers.items(), prepared.body))


# -- tampering with a botocore-signed request ---------------------------------------------------------


def _signed_put():
    client = make_client("http://proxy.example:9000")
    client.put_object(Bucket="ws", Key="doc.txt", Body=b"content", Metadata={"owner": "ann"})
    return client.sent[0]


def test_changed_signed_header_or_path_or_query_is_refused() -> None:
    request = _signed_put()
    for change in ("header", "path", "query", "method"):
        headers = list(request.headers)
        path, query, method = request.path, request.query, request.method
        if change == "header":
            headers = [(n, "bob" if n.lower() == "x-amz-meta-owner" else v) for n, v in headers]
        elif change == "path":
            path = path.replace("doc", "dog")
        elif change == "query":
            query = "acl="
        else:
            method = "POST"
        auth = parse_request_auth(method, path, query, headers, now=NOW, region=REGION)
        with pytest.raises(SigningError) as caught:
            verify_signature(auth, SECRET, method, path, query, headers)
        assert caught.value.code == "SignatureDoesNotMatch", change


def test_added_unsigned_amz_header_is_refused() -> None:
    request = _signed_put()
    headers = request.headers + [("X-Amz-Copy-Source", "other/secret")]
    with pytest.raises(SigningError) as caught:
        parse_request_auth(request.method, request.path, request.query, headers, now=NOW, region=REGION)
    assert caught.value.code == "AccessDenied"
    assert "x-amz-copy-source" in caught.value.message
    assert caught.value.details["HeadersNotSigned"] == "x-amz-copy-source"


def test_clock_skew() -> None:
    request = _signed_put()
    from datetime import timedelta

    verify(request, now=NOW + timedelta(seconds=899))
    with pytest.raises(SigningError) as caught:
        verify(request, now=NOW - timedelta(seconds=901))
    assert caught.value.code == "RequestTimeTooSkewed"


# -- presigned URLs ------------------------------------------------------------------------------------


def test_presigned_put_with_content_type_and_token() -> None:
    client = make_client(token="tok")
    url = client.generate_presigned_url(
        "put_object", Params={"Bucket": "ws", "Key": "up load.txt", "ContentType": "text/plain"}, ExpiresIn=60)
    parts = urlsplit(url)
    headers = [("Host", parts.netloc), ("Content-Type", "text/plain"), ("Content-Length", "3")]
    auth = parse_request_auth("PUT", parts.path, parts.query, headers, now=NOW, region=REGION)
    assert auth.kind == "presigned" and auth.session_token == "tok" and auth.expires == 60
    ctx = verify_signature(auth, SECRET, "PUT", parts.path, parts.query, headers)
    gate = HoldBackBody(make_body_verifier(auth, ctx, headers))
    assert gate.feed(b"abc") == b"ab" and gate.finish() == b"c"
    from datetime import timedelta

    with pytest.raises(SigningError) as caught:
        parse_request_auth("PUT", parts.path, parts.query, headers, now=NOW + timedelta(seconds=61), region=REGION)
    assert caught.value.code == "AccessDenied"


def test_presigned_url_refuses_unsigned_amz_headers_and_header_auth_together() -> None:
    client = make_client()
    url = client.generate_presigned_url("get_object", Params={"Bucket": "ws", "Key": "k"})
    parts = urlsplit(url)
    with pytest.raises(SigningError) as caught:
        parse_request_auth("GET", parts.path, parts.query, [("Host", parts.netloc), ("x-amz-acl", "public-read")],
                           now=NOW, region=REGION)
    assert caught.value.code == "AccessDenied"
    client.get_object(Bucket="ws", Key="k")
    header_auth = dict(client.sent[0].headers)["Authorization"]
    with pytest.raises(SigningError) as caught:
        parse_request_auth("GET", parts.path, parts.query, [("Host", parts.netloc), ("Authorization", header_auth)],
                           now=NOW, region=REGION)
    assert caught.value.code == "InvalidRequest"


def test_sigv2_is_refused() -> None:
    client = make_client(signature_version="s3")
    url = client.generate_presigned_url("get_object", Params={"Bucket": "ws", "Key": "k"})
    parts = urlsplit(url)
    assert "AWSAccessKeyId=" in parts.query
    with pytest.raises(SigningError) as caught:
        parse_request_auth("GET", parts.path, parts.query, [("Host", parts.netloc)], now=NOW, region=REGION)
    assert caught.value.code == "InvalidRequest"
    client.get_object(Bucket="ws", Key="k")
    with pytest.raises(SigningError) as caught:
        verify(client.sent[0])
    assert caught.value.code == "InvalidRequest"


# -- POST policy ---------------------------------------------------------------------------------------


def _post(conditions=None, fields=None, expires=3600):
    client = make_client()
    return client.generate_presigned_post("ws", "uploads/${filename}", Fields=fields, Conditions=conditions,
                                          ExpiresIn=expires)


def test_presigned_post_policy_from_boto3() -> None:
    post = _post(
        conditions=[["starts-with", "$key", "uploads/"], {"acl": "private"},
                    ["content-length-range", 1, 1048576], ["starts-with", "$Content-Type", "image/"]],
        fields={"acl": "private", "Content-Type": "image/png"},
    )
    fields = dict(post["fields"])
    fields["key"] = fields["key"].replace("${filename}", "cat.png")
    policy = parse_post_policy(fields, now=NOW, region=REGION)
    assert policy.access_key_id == ACCESS
    result = verify_post_policy(policy, SECRET, bucket="ws")
    assert result.content_length_range == (1, 1048576)
    assert result.key == "uploads/cat.png"

    with pytest.raises(SigningError) as caught:
        verify_post_policy(policy, SECRET + "x", bucket="ws")
    assert caught.value.code == "SignatureDoesNotMatch"
    with pytest.raises(SigningError) as caught:
        verify_post_policy(policy, SECRET, bucket="other")
    assert caught.value.code == "AccessDenied"
    for name, value in (("Content-Type", "text/html"), ("acl", "public-read"), ("x-amz-meta-extra", "1")):
        changed = dict(fields, **{name: value})
        with pytest.raises(SigningError) as caught:
            verify_post_policy(parse_post_policy(changed, now=NOW, region=REGION), SECRET, bucket="ws")
        assert caught.value.code == "AccessDenied", name
    ignored = dict(fields, **{"x-ignore-me": "1", "file": "<data>"})
    verify_post_policy(parse_post_policy(ignored, now=NOW, region=REGION), SECRET, bucket="ws")

    from datetime import timedelta

    with pytest.raises(SigningError) as caught:
        parse_post_policy(fields, now=NOW + timedelta(hours=2), region=REGION)
    assert caught.value.code == "AccessDenied" and "expired" in caught.value.message


def test_post_policy_tampered_document_is_refused() -> None:
    post = _post()
    fields = dict(post["fields"])
    document = json.loads(base64.b64decode(fields["policy"]))
    document["conditions"].append(["content-length-range", 0, 10**12])
    fields["policy"] = base64.b64encode(json.dumps(document).encode()).decode()
    policy = parse_post_policy(fields, now=NOW, region=REGION)
    with pytest.raises(SigningError) as caught:
        verify_post_policy(policy, SECRET, bucket="ws")
    assert caught.value.code == "SignatureDoesNotMatch"
