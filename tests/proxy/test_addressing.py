import pytest

from proxy.addressing import parse_address
from proxy.errors import S3Error
from proxy.operations import classify
from signing import s3_request_target


def test_path_style_keeps_key_bytes():
    a = parse_address("/ws/a%20b%2Bc+d/%E2%9C%93?x=1", "localhost:9000", None)
    assert (a.bucket, a.key) == ("ws", "a b+c+d/✓")
    assert s3_request_target("ws", a.key, [])[0] == "/ws/a%20b%2Bc%2Bd/%E2%9C%93"   # and back to the node byte for byte


def test_virtual_host_style():
    a = parse_address("/k/ey", "proj.s3.example.org:9000", "s3.example.org")
    assert (a.bucket, a.key, a.virtual_host) == ("proj", "k/ey", True)
    assert parse_address("/", "s3.example.org", "s3.example.org").bucket is None


@pytest.mark.parametrize("raw", ["/ws/../x", "/ws/a/%2e%2e/b", "/ws/a%2F..%2Fb", "/ws/a\\..\\b", "/ws/./a",
                                 "/ws/a%00b"])
def test_traversal_and_control_keys_are_refused(raw):
    with pytest.raises(S3Error) as exc:
        parse_address(raw, "h", None)
    assert exc.value.status == 400


def test_absolute_form_target_is_refused():
    with pytest.raises(S3Error):
        parse_address("http://evil/ws/k", "h", None)


@pytest.mark.parametrize("method,bucket,key,query,headers,name", [
    ("GET", None, None, {}, {}, "ListBuckets"),
    ("GET", "b", None, {"list-type": "2"}, {}, "ListObjectsV2"),
    ("GET", "b", None, {}, {}, "ListObjects"),
    ("PUT", "b", None, {}, {}, "CreateBucket"),
    ("POST", "b", None, {"delete": ""}, {}, "DeleteObjects"),
    ("PUT", "b", "k", {}, {}, "PutObject"),
    ("PUT", "b", "k", {}, {"x-amz-copy-source": "/a/b"}, "CopyObject"),
    ("PUT", "b", "k", {"partNumber": "1", "uploadId": "u"}, {}, "UploadPart"),
    ("PUT", "b", "k", {"partNumber": "1", "uploadId": "u"}, {"x-amz-copy-source": "/a/b"}, "UploadPartCopy"),
    ("POST", "b", "k", {"uploads": ""}, {}, "CreateMultipartUpload"),
    ("POST", "b", "k", {"uploadId": "u"}, {}, "CompleteMultipartUpload"),
    ("DELETE", "b", "k", {"uploadId": "u"}, {}, "AbortMultipartUpload"),
    ("GET", "b", "k", {"uploadId": "u"}, {}, "ListParts"),
    ("GET", "b", "k", {"tagging": ""}, {}, "GetObjectTagging"),
    ("PUT", "b", None, {"acl": ""}, {}, "PutBucketAcl"),   # a canned ACL: who may read (proxy/buckets.py)
])
def test_classify(method, bucket, key, query, headers, name):
    assert classify(method, bucket, key, query, headers).name == name


@pytest.mark.parametrize("sub", ["policy", "lifecycle", "cors", "notification", "replication", "encryption"])
def test_bucket_configuration_is_refused(sub):
    with pytest.raises(S3Error) as exc:
        classify("PUT", "b", None, {sub: ""}, {})
    assert exc.value.code == "NotImplemented" and "managed by wio" in exc.value.message


def test_bucket_acl_write_is_alone():
    """PUT ?acl is PutBucketAcl (a canned ACL wio applies); with another configuration subresource it is refused."""
    assert classify("PUT", "b", None, {"acl": "", "x-id": "PutBucketAcl"}, {}).name == "PutBucketAcl"
    with pytest.raises(S3Error) as exc:
        classify("PUT", "b", None, {"acl": "", "policy": ""}, {})
    assert exc.value.code == "NotImplemented"
