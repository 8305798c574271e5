"""Issue 4: the S3 API a data team uses, through the proxy with boto3 against the real node."""
from __future__ import annotations

import io
import urllib.error
import urllib.request

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.conftest import unique

MiB = 1024 * 1024


def code(exc_info) -> str:
    return exc_info.value.response["Error"]["Code"]


def test_listing_v2_pagination_delimiter_and_tokens(person, workspace):
    s3 = person.s3
    keys = [f"dir{d}/file{i:03d}.txt" for d in range(3) for i in range(7)] + ["top.txt", "zz ü+%~.bin"]
    for k in keys:
        s3.put_object(Bucket=workspace, Key=k, Body=k.encode())
    seen, token, pages = [], None, 0
    while True:
        kwargs = {"ContinuationToken": token} if token else {}
        page = s3.list_objects_v2(Bucket=workspace, MaxKeys=5, **kwargs)
        pages += 1
        seen += [o["Key"] for o in page.get("Contents", [])]
        assert page["KeyCount"] == len(page.get("Contents", []))
        token = page.get("NextContinuationToken")
        if not page["IsTruncated"]:
            break
        assert workspace not in token and person.name not in token   # sealed, no physical layout
    assert sorted(seen) == sorted(keys) and pages == 5
    top = s3.list_objects_v2(Bucket=workspace, Delimiter="/")
    assert [p["Prefix"] for p in top["CommonPrefixes"]] == ["dir0/", "dir1/", "dir2/"]
    assert [o["Key"] for o in top["Contents"]] == ["top.txt", "zz ü+%~.bin"]
    sub = s3.list_objects_v2(Bucket=workspace, Prefix="dir1/", StartAfter="dir1/file004.txt")
    assert [o["Key"] for o in sub["Contents"]] == ["dir1/file005.txt", "dir1/file006.txt"]
    assert sub["Prefix"] == "dir1/" and sub["Name"] == workspace
    v1 = s3.list_objects(Bucket=workspace, Prefix="dir2/", MaxKeys=4)
    assert len(v1["Contents"]) == 4 and v1["IsTruncated"]
    v1b = s3.list_objects(Bucket=workspace, Prefix="dir2/", Marker=v1["Contents"][-1]["Key"])
    assert [o["Key"] for o in v1b["Contents"]] == ["dir2/file004.txt", "dir2/file005.txt", "dir2/file006.txt"]
    with pytest.raises(ClientError) as exc:
        s3.list_objects_v2(Bucket=workspace, ContinuationToken="forged-token")
    assert code(exc) == "InvalidArgument"


def test_ranges_conditionals_metadata_and_presigned_overrides(stack, person, workspace):
    s3 = person.s3
    body = bytes(range(256)) * 4096
    put = s3.put_object(Bucket=workspace, Key="data.bin", Body=body, ContentType="application/x-thing",
                        ContentDisposition="attachment", ContentEncoding="identity", Metadata={"owner": "lab-7"},
                        CacheControl="max-age=60")
    assert s3.get_object(Bucket=workspace, Key="data.bin", Range="bytes=100-199")["Body"].read() == body[100:200]
    head = s3.head_object(Bucket=workspace, Key="data.bin")
    assert head["ContentType"] == "application/x-thing" and head["Metadata"] == {"owner": "lab-7"}
    assert head["ContentDisposition"] == "attachment" and head["CacheControl"] == "max-age=60"
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=workspace, Key="data.bin", IfNoneMatch=put["ETag"])
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 304
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=workspace, Key="data.bin", IfMatch='"0000"')
    assert code(exc) == "PreconditionFailed"
    url = s3.generate_presigned_url("get_object", Params={"Bucket": workspace, "Key": "data.bin",
                                                          "ResponseContentType": "text/csv"}, ExpiresIn=60)
    with urllib.request.urlopen(url) as resp:
        assert resp.headers["Content-Type"] == "text/csv" and resp.read() == body
    s3.put_object(Bucket=workspace, Key="empty", Body=b"")
    assert s3.get_object(Bucket=workspace, Key="empty")["Body"].read() == b""


def test_tagging_and_bucket_level_reads(person, workspace):
    s3 = person.s3
    s3.put_object(Bucket=workspace, Key="t", Body=b"t")
    s3.put_object_tagging(Bucket=workspace, Key="t", Tagging={"TagSet": [{"Key": "stage", "Value": "raw"}]})
    assert s3.get_object_tagging(Bucket=workspace, Key="t")["TagSet"] == [{"Key": "stage", "Value": "raw"}]
    s3.delete_object_tagging(Bucket=workspace, Key="t")
    assert s3.get_object_tagging(Bucket=workspace, Key="t")["TagSet"] == []
    s3.head_bucket(Bucket=workspace)
    assert s3.get_bucket_location(Bucket=workspace)["LocationConstraint"] in (None, "")
    assert "Status" not in s3.get_bucket_versioning(Bucket=workspace)


@pytest.mark.parametrize("call", [
    lambda s3, b: s3.put_bucket_policy(Bucket=b, Policy="{}"),
    lambda s3, b: s3.delete_bucket_policy(Bucket=b),
    lambda s3, b: s3.put_bucket_cors(Bucket=b, CORSConfiguration={"CORSRules": [{"AllowedMethods": ["GET"],
                                                                                 "AllowedOrigins": ["*"]}]}),
    lambda s3, b: s3.put_bucket_lifecycle_configuration(Bucket=b, LifecycleConfiguration={"Rules": [
        {"ID": "r", "Status": "Enabled", "Filter": {"Prefix": ""}, "Expiration": {"Days": 1}}]}),
    lambda s3, b: s3.get_bucket_encryption(Bucket=b),
])
def test_bucket_configuration_gets_a_clear_error(person, workspace, call):
    with pytest.raises(ClientError) as exc:
        call(person.s3, workspace)
    assert code(exc) == "NotImplemented"
    assert "managed by wio" in exc.value.response["Error"]["Message"]


def test_multipart_listing_and_parts_are_rewritten(person, workspace):
    s3 = person.s3
    mpu = s3.create_multipart_upload(Bucket=workspace, Key="dir/big.bin")
    assert mpu["Bucket"] == workspace and mpu["Key"] == "dir/big.bin"
    s3.upload_part(Bucket=workspace, Key="dir/big.bin", UploadId=mpu["UploadId"], PartNumber=1, Body=b"a" * MiB)
    parts = s3.list_parts(Bucket=workspace, Key="dir/big.bin", UploadId=mpu["UploadId"])
    assert parts["Bucket"] == workspace and parts["Key"] == "dir/big.bin" and len(parts["Parts"]) == 1
    uploads = s3.list_multipart_uploads(Bucket=workspace).get("Uploads", [])
    assert [u["Key"] for u in uploads] == ["dir/big.bin"]
    s3.abort_multipart_upload(Bucket=workspace, Key="dir/big.bin", UploadId=mpu["UploadId"])


def test_upload_fileobj_multipart_and_upload_part_copy(person, workspace):
    s3 = person.s3
    data = bytes(range(256)) * (80 * 1024)  # 20 MiB: boto3 uses multipart
    s3.upload_fileobj(io.BytesIO(data), workspace, "multi.bin")
    assert s3.get_object(Bucket=workspace, Key="multi.bin")["Body"].read() == data
    mpu = s3.create_multipart_upload(Bucket=workspace, Key="assembled")["UploadId"]
    etag = s3.upload_part_copy(Bucket=workspace, Key="assembled", UploadId=mpu, PartNumber=1,
                               CopySource={"Bucket": workspace, "Key": "multi.bin"},
                               CopySourceRange="bytes=0-5242879")["CopyPartResult"]["ETag"]
    s3.complete_multipart_upload(Bucket=workspace, Key="assembled", UploadId=mpu,
                                 MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]})
    assert s3.get_object(Bucket=workspace, Key="assembled")["Body"].read() == data[:5 * MiB]


def test_copy_across_workspaces_needs_read_on_source(person, other, workspace):
    mine = workspace
    theirs = unique("theirs")
    other.api.call("POST", "/workspaces", {"name": theirs})
    other.s3.put_object(Bucket=theirs, Key="secret.txt", Body=b"secret", Metadata={"a": "1"})
    with pytest.raises(ClientError) as exc:
        person.s3.copy_object(Bucket=mine, Key="stolen", CopySource={"Bucket": theirs, "Key": "secret.txt"})
    assert code(exc) == "AccessDenied"
    other.api.call("POST", f"/workspaces/{theirs}/shares", {"user": person.name, "permission": "read"})
    person.s3.copy_object(Bucket=mine, Key="copied", CopySource={"Bucket": theirs, "Key": "secret.txt"})
    got = person.s3.get_object(Bucket=mine, Key="copied")
    assert got["Body"].read() == b"secret" and got["Metadata"] == {"a": "1"}
    person.s3.copy_object(Bucket=mine, Key="replaced", CopySource={"Bucket": mine, "Key": "copied"},
                          MetadataDirective="REPLACE", Metadata={"b": "2"}, ContentType="text/plain")
    head = person.s3.head_object(Bucket=mine, Key="replaced")
    assert head["Metadata"] == {"b": "2"} and head["ContentType"] == "text/plain"
    with pytest.raises(ClientError) as exc:   # read on the source is not write on it
        person.s3.copy_object(Bucket=theirs, Key="x", CopySource={"Bucket": mine, "Key": "copied"})
    assert code(exc) == "AccessDenied"


def test_copy_between_nodes_streams_through_the_proxy(stack, admin_api, person, s3_node2):
    node = unique("node").replace("-", "")
    admin_api.call("POST", "/nodes", {"name": node, "endpoint": s3_node2.endpoint, "access_key": s3_node2.access_key,
                                      "secret_key": s3_node2.secret_key})
    root = unique("root").replace("-", "")
    admin_api.call("POST", "/roots", {"name": root, "node": node, "bucket": "second-node", "type": "private"})
    local, remote = unique("local"), unique("remote")
    person.api.call("POST", "/workspaces", {"name": local})
    person.api.call("POST", "/workspaces", {"name": remote, "root": root})
    data = b"cross-node " * 300_000
    person.s3.put_object(Bucket=local, Key="src.bin", Body=data, ContentType="application/octet-stream",
                         Metadata={"origin": "node1"})
    person.s3.copy_object(Bucket=remote, Key="dst.bin", CopySource={"Bucket": local, "Key": "src.bin"})
    got = person.s3.get_object(Bucket=remote, Key="dst.bin")
    assert got["Body"].read() == data and got["Metadata"] == {"origin": "node1"}
    direct = boto3.client("s3", endpoint_url=s3_node2.endpoint, aws_access_key_id=s3_node2.access_key,
                          aws_secret_access_key=s3_node2.secret_key, region_name="us-east-1",
                          config=Config(s3={"addressing_style": "path"}))
    assert direct.head_object(Bucket="second-node", Key=f"{person.name}/{remote}/dst.bin")["ContentLength"] == len(data)
    mpu = person.s3.create_multipart_upload(Bucket=remote, Key="parts.bin")["UploadId"]
    etag = person.s3.upload_part_copy(Bucket=remote, Key="parts.bin", UploadId=mpu, PartNumber=1,
                                      CopySource={"Bucket": local, "Key": "src.bin"})["CopyPartResult"]["ETag"]
    person.s3.complete_multipart_upload(Bucket=remote, Key="parts.bin", UploadId=mpu,
                                        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]})
    assert person.s3.get_object(Bucket=remote, Key="parts.bin")["Body"].read() == data


def test_delete_objects_authorizes_every_key(person, other, workspace):
    for k in ("open/a", "open/b", "closed/c"):
        person.s3.put_object(Bucket=workspace, Key=k, Body=b"x")
    person.api.call("POST", f"/workspaces/{workspace}/shares", {"user": other.name, "permission": "write",
                                                                 "prefix": "open/"})
    result = other.s3.delete_objects(Bucket=workspace, Delete={"Objects": [{"Key": "open/a"}, {"Key": "closed/c"},
                                                                           {"Key": "open/b"}]})
    assert sorted(d["Key"] for d in result["Deleted"]) == ["open/a", "open/b"]
    assert [(e["Key"], e["Code"]) for e in result["Errors"]] == [("closed/c", "AccessDenied")]
    assert [o["Key"] for o in person.s3.list_objects_v2(Bucket=workspace)["Contents"]] == ["closed/c"]


def test_unsupported_operations_check_bucket_and_access_first(stack, person, other, workspace):
    """S3's order: a missing bucket (404) or no access (403) answers before 'not implemented' (501)."""
    for bucket, s3, expected in ((unique("missing"), person.s3, "NoSuchBucket"), (workspace, other.s3, "AccessDenied"),
                                 (workspace, person.s3, "NotImplemented")):
        with pytest.raises(ClientError) as exc:
            s3.put_bucket_policy(Bucket=bucket, Policy="{}")
        assert code(exc) == expected


def test_unknown_operations_answer_not_implemented(stack, person, workspace):
    with pytest.raises(ClientError) as exc:
        person.s3.put_object_acl(Bucket=workspace, Key="k", ACL="public-read")
    assert code(exc) == "NotImplemented"
    with pytest.raises(ClientError) as exc:
        person.s3.restore_object(Bucket=workspace, Key="k", RestoreRequest={"Days": 1})
    assert code(exc) == "NotImplemented"
