"""CopyObject (metadata directives, copy-source conditionals) and multipart uploads (incl. UploadPartCopy
with ranges, wrong part order, missing parts), the same cases directly on the node and through wio."""
from __future__ import annotations

import datetime as dt
import hashlib
import pytest

from tests.conformance.conftest import outcome

differs = pytest.mark.differs
MiB = 1024 * 1024
PART = bytes(range(256)) * (5 * MiB // 256)          # exactly 5 MiB, the minimum non-last part


def _src(bucket, key):
    return {"Bucket": bucket, "Key": key}


@differs(direct="SeaweedFS returns CopyObjectResult/ETag without the double quotes S3 puts around it",
         proxy="passes the node's unquoted CopyObjectResult ETag through")
def test_copy_metadata_directive_copy(target, bucket, observe):
    """CopyObject with the default COPY directive keeps body, user metadata and Content-Type."""
    s3 = target.s3
    s3.put_object(Bucket=bucket, Key="src", Body=b"payload", ContentType="text/x-src", Metadata={"a": "1"})
    resp = s3.copy_object(Bucket=bucket, Key="dst", CopySource=_src(bucket, "src"))
    head = s3.head_object(Bucket=bucket, Key="dst")
    observe(f"{head['ContentType']} {head['Metadata']}")
    assert resp["CopyObjectResult"]["ETag"] == f'"{hashlib.md5(b"payload").hexdigest()}"'
    assert head["ContentType"] == "text/x-src" and head["Metadata"] == {"a": "1"}
    assert s3.get_object(Bucket=bucket, Key="dst")["Body"].read() == b"payload"


def test_copy_metadata_directive_replace(target, bucket, observe):
    """CopyObject with REPLACE stores exactly the new metadata and Content-Type."""
    s3 = target.s3
    s3.put_object(Bucket=bucket, Key="src", Body=b"payload", ContentType="text/x-src", Metadata={"a": "1"})
    s3.copy_object(Bucket=bucket, Key="dst", CopySource=_src(bucket, "src"), MetadataDirective="REPLACE",
                   Metadata={"b": "2"}, ContentType="text/x-new")
    head = s3.head_object(Bucket=bucket, Key="dst")
    observe(f"{head['ContentType']} {head['Metadata']}")
    assert head["ContentType"] == "text/x-new" and head["Metadata"] == {"b": "2"}


def test_copy_onto_itself_with_replace(target, bucket, observe):
    """Copying an object onto itself with REPLACE updates its metadata (the documented way to edit it)."""
    s3 = target.s3
    s3.put_object(Bucket=bucket, Key="self", Body=b"payload", Metadata={"a": "1"})
    s3.copy_object(Bucket=bucket, Key="self", CopySource=_src(bucket, "self"), MetadataDirective="REPLACE",
                   Metadata={"a": "2"})
    head = s3.head_object(Bucket=bucket, Key="self")
    observe(head["Metadata"])
    assert head["Metadata"] == {"a": "2"}
    assert s3.get_object(Bucket=bucket, Key="self")["Body"].read() == b"payload"


def test_copy_onto_itself_without_change(target, bucket, observe):
    """Copying an object onto itself with nothing changed: 400 InvalidRequest."""
    s3 = target.s3
    s3.put_object(Bucket=bucket, Key="self", Body=b"payload")
    result = outcome(s3.copy_object, Bucket=bucket, Key="self", CopySource=_src(bucket, "self"))
    observe(result)
    assert result == "400 InvalidRequest"


def test_copy_special_character_key(target, bucket, observe):
    """A copy source with spaces, +, %, unicode and emoji is URL-decoded exactly once."""
    s3 = target.s3
    key = "dir/a b+c%20d~\u00fc\U0001F600.txt"
    s3.put_object(Bucket=bucket, Key=key, Body=b"special")
    s3.copy_object(Bucket=bucket, Key="copied", CopySource=_src(bucket, key))
    body = s3.get_object(Bucket=bucket, Key="copied")["Body"].read()
    observe(body)
    assert body == b"special"


def test_copy_source_string_form(target, bucket, observe):
    """x-amz-copy-source given as a '/bucket/key' string with a leading slash."""
    s3 = target.s3
    s3.put_object(Bucket=bucket, Key="a b", Body=b"str")
    s3.copy_object(Bucket=bucket, Key="c", CopySource=f"/{bucket}/a b")
    assert s3.get_object(Bucket=bucket, Key="c")["Body"].read() == b"str"
    observe("ok")


def test_copy_missing_source(target, bucket, observe):
    """CopyObject from a missing key: 404 NoSuchKey."""
    result = outcome(target.s3.copy_object, Bucket=bucket, Key="d", CopySource=_src(bucket, "missing"))
    observe(result)
    assert result == "404 NoSuchKey"


def test_copy_between_buckets(target, observe):
    """CopyObject across two buckets (workspaces) of the same caller."""
    b1, b2 = target.bucket(), target.bucket()
    target.s3.put_object(Bucket=b1, Key="x", Body=b"cross")
    target.s3.copy_object(Bucket=b2, Key="y", CopySource=_src(b1, "x"))
    body = target.s3.get_object(Bucket=b2, Key="y")["Body"].read()
    observe(body)
    assert body == b"cross"


def _copy_conditions():
    past = dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc)
    future = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=2)
    return [
        ("if-match-ok", lambda e: {"CopySourceIfMatch": e}, "200"),
        ("if-match-wrong", lambda e: {"CopySourceIfMatch": '"0123"'}, "412 PreconditionFailed"),
        ("if-none-match-same", lambda e: {"CopySourceIfNoneMatch": e}, "412 PreconditionFailed"),
        ("if-none-match-other", lambda e: {"CopySourceIfNoneMatch": '"0123"'}, "200"),
        ("if-modified-since-past", lambda e: {"CopySourceIfModifiedSince": past}, "200"),
        ("if-modified-since-future", lambda e: {"CopySourceIfModifiedSince": future}, "412 PreconditionFailed"),
        ("if-unmodified-since-past", lambda e: {"CopySourceIfUnmodifiedSince": past}, "412 PreconditionFailed"),
        ("if-unmodified-since-future", lambda e: {"CopySourceIfUnmodifiedSince": future}, "200"),
        ("if-match-true+unmodified-false", lambda e: {"CopySourceIfMatch": e, "CopySourceIfUnmodifiedSince": past},
         "200"),
    ]


@pytest.mark.parametrize("name, headers, expected", _copy_conditions(), ids=[c[0] for c in _copy_conditions()])
def test_copy_source_conditionals(target, bucket, observe, name, headers, expected):
    """x-amz-copy-source-if-* on CopyObject: 412 PreconditionFailed when a condition fails."""
    etag = target.s3.put_object(Bucket=bucket, Key="s", Body=b"cond")["ETag"]
    result = outcome(target.s3.copy_object, Bucket=bucket, Key="d", CopySource=_src(bucket, "s"), **headers(etag))
    observe(result)
    assert result == expected
    stored = outcome(target.s3.head_object, Bucket=bucket, Key="d")
    assert stored == ("200" if expected == "200" else "404 404")


# --- multipart -------------------------------------------------------------------------------------

def _mpu(s3, bucket, key, parts):
    upload = s3.create_multipart_upload(Bucket=bucket, Key=key, ContentType="text/x-mp", Metadata={"m": "1"})
    uid = upload["UploadId"]
    etags = [s3.upload_part(Bucket=bucket, Key=key, UploadId=uid, PartNumber=n, Body=body)["ETag"]
             for n, body in parts]
    return uid, [{"PartNumber": n, "ETag": e} for (n, _), e in zip(parts, etags, strict=True)]


def test_multipart_complete(target, bucket, observe):
    """Create/UploadPart/ListParts/Complete; ETag is md5-of-md5s with '-N'; metadata from Create kept."""
    s3 = target.s3
    uid, parts = _mpu(s3, bucket, "mp", [(1, PART), (2, b"tail")])
    listed = s3.list_parts(Bucket=bucket, Key="mp", UploadId=uid)
    assert [(p["PartNumber"], p["Size"], p["ETag"]) for p in listed["Parts"]] == \
        [(1, len(PART), parts[0]["ETag"]), (2, 4, parts[1]["ETag"])]
    done = s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=uid, MultipartUpload={"Parts": parts})
    digest = hashlib.md5(hashlib.md5(PART).digest() + hashlib.md5(b"tail").digest()).hexdigest()
    observe(done["ETag"])
    assert done["ETag"] == f'"{digest}-2"' and done["Key"] == "mp" and done["Bucket"] == bucket
    head = s3.head_object(Bucket=bucket, Key="mp")
    assert head["ContentLength"] == len(PART) + 4 and head["ContentType"] == "text/x-mp"
    assert head["Metadata"] == {"m": "1"}
    assert s3.get_object(Bucket=bucket, Key="mp", Range=f"bytes={len(PART) - 2}-")["Body"].read() == PART[-2:] + b"tail"


def test_multipart_list_parts_pagination(target, bucket, observe):
    """ListParts with MaxParts=1 pages through PartNumberMarker/NextPartNumberMarker."""
    s3 = target.s3
    uid, _ = _mpu(s3, bucket, "lp", [(1, b"a"), (2, b"b"), (3, b"c")])
    page = s3.list_parts(Bucket=bucket, Key="lp", UploadId=uid, MaxParts=1)
    nxt = s3.list_parts(Bucket=bucket, Key="lp", UploadId=uid, PartNumberMarker=page["NextPartNumberMarker"])
    observe(f"{[p['PartNumber'] for p in page['Parts']]} truncated={page['IsTruncated']} "
            f"then {[p['PartNumber'] for p in nxt['Parts']]}")
    assert [p["PartNumber"] for p in page["Parts"]] == [1] and page["IsTruncated"]
    assert [p["PartNumber"] for p in nxt["Parts"]] == [2, 3]
    s3.abort_multipart_upload(Bucket=bucket, Key="lp", UploadId=uid)


def test_multipart_wrong_part_order(target, bucket, observe):
    """Complete with parts listed out of order: 400 InvalidPartOrder."""
    s3 = target.s3
    uid, parts = _mpu(s3, bucket, "o", [(1, PART), (2, b"tail")])
    result = outcome(s3.complete_multipart_upload, Bucket=bucket, Key="o", UploadId=uid,
                     MultipartUpload={"Parts": list(reversed(parts))})
    observe(result)
    assert result == "400 InvalidPartOrder"


def test_multipart_missing_part(target, bucket, observe):
    """Complete naming a part that was never uploaded: 400 InvalidPart."""
    s3 = target.s3
    uid, parts = _mpu(s3, bucket, "m", [(1, PART), (2, b"tail")])
    parts = [parts[0], {"PartNumber": 3, "ETag": parts[1]["ETag"]}]
    result = outcome(s3.complete_multipart_upload, Bucket=bucket, Key="m", UploadId=uid,
                     MultipartUpload={"Parts": parts})
    observe(result)
    assert result == "400 InvalidPart"


def test_multipart_wrong_etag(target, bucket, observe):
    """Complete with a part's ETag wrong: 400 InvalidPart."""
    s3 = target.s3
    uid, parts = _mpu(s3, bucket, "w", [(1, PART), (2, b"tail")])
    parts[1]["ETag"] = '"00000000000000000000000000000000"'
    result = outcome(s3.complete_multipart_upload, Bucket=bucket, Key="w", UploadId=uid,
                     MultipartUpload={"Parts": parts})
    observe(result)
    assert result == "400 InvalidPart"


def test_multipart_part_too_small(target, bucket, observe):
    """A non-last part under 5 MiB: Complete answers 400 EntityTooSmall."""
    s3 = target.s3
    uid, parts = _mpu(s3, bucket, "s", [(1, b"small"), (2, b"tail")])
    result = outcome(s3.complete_multipart_upload, Bucket=bucket, Key="s", UploadId=uid,
                     MultipartUpload={"Parts": parts})
    observe(result)
    assert result == "400 EntityTooSmall"


def test_multipart_abort_then_no_such_upload(target, bucket, observe):
    """After Abort, ListParts/UploadPart/Complete on that upload id answer 404 NoSuchUpload."""
    s3 = target.s3
    uid, parts = _mpu(s3, bucket, "ab", [(1, b"x")])
    assert s3.abort_multipart_upload(Bucket=bucket, Key="ab", UploadId=uid)["ResponseMetadata"]["HTTPStatusCode"] == 204
    results = [outcome(s3.list_parts, Bucket=bucket, Key="ab", UploadId=uid),
               outcome(s3.upload_part, Bucket=bucket, Key="ab", UploadId=uid, PartNumber=2, Body=b"y"),
               outcome(s3.complete_multipart_upload, Bucket=bucket, Key="ab", UploadId=uid,
                       MultipartUpload={"Parts": parts})]
    observe(results)
    assert results == ["404 NoSuchUpload"] * 3
    assert outcome(s3.head_object, Bucket=bucket, Key="ab") == "404 404"


def test_multipart_unknown_upload_id(target, bucket, observe):
    """UploadPart with an upload id that never existed: 404 NoSuchUpload."""
    result = outcome(target.s3.upload_part, Bucket=bucket, Key="u", UploadId="does-not-exist",
                     PartNumber=1, Body=b"x")
    observe(result)
    assert result == "404 NoSuchUpload"


def test_multipart_abort_unknown_upload_id(target, bucket, observe):
    """AbortMultipartUpload with an upload id that never existed: 404 NoSuchUpload."""
    result = outcome(target.s3.abort_multipart_upload, Bucket=bucket, Key="u", UploadId="does-not-exist")
    observe(result)
    assert result == "404 NoSuchUpload"


def test_list_multipart_uploads(target, bucket, observe):
    """ListMultipartUploads shows in-progress uploads with their keys; Prefix filters them."""
    s3 = target.s3
    ids = {key: s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"] for key in ("up/a", "up/b", "other")}
    every = s3.list_multipart_uploads(Bucket=bucket)
    some = s3.list_multipart_uploads(Bucket=bucket, Prefix="up/")
    seen = sorted((u["Key"], u["UploadId"]) for u in every.get("Uploads", []))
    observe(f"all={[k for k, _ in seen]} prefix={[u['Key'] for u in some.get('Uploads', [])]}")
    assert seen == sorted(ids.items())
    assert sorted(u["Key"] for u in some.get("Uploads", [])) == ["up/a", "up/b"]
    assert every["Bucket"] == bucket
    for key, uid in ids.items():
        s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=uid)
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


@differs(direct="SeaweedFS ignores Delimiter on ListMultipartUploads (no CommonPrefixes)",
         proxy="the node ignores Delimiter and wio does not group uploads itself")
def test_list_multipart_uploads_delimiter(target, bucket, observe):
    """ListMultipartUploads with Delimiter='/' groups keys into CommonPrefixes."""
    s3 = target.s3
    for key in ("d1/a", "d2/b", "top"):
        s3.create_multipart_upload(Bucket=bucket, Key=key)
    resp = s3.list_multipart_uploads(Bucket=bucket, Delimiter="/")
    result = ([u["Key"] for u in resp.get("Uploads", [])], [p["Prefix"] for p in resp.get("CommonPrefixes", [])])
    observe(result)
    assert result == (["top"], ["d1/", "d2/"])


def test_upload_part_copy_with_ranges(target, bucket, observe):
    """UploadPartCopy with CopySourceRange assembles an object from byte ranges of another."""
    s3 = target.s3
    src = PART + b"0123456789"
    s3.put_object(Bucket=bucket, Key="src", Body=src)
    uid = s3.create_multipart_upload(Bucket=bucket, Key="assembled")["UploadId"]
    p1 = s3.upload_part_copy(Bucket=bucket, Key="assembled", UploadId=uid, PartNumber=1,
                             CopySource=_src(bucket, "src"), CopySourceRange=f"bytes=0-{len(PART) - 1}")
    p2 = s3.upload_part_copy(Bucket=bucket, Key="assembled", UploadId=uid, PartNumber=2,
                             CopySource=_src(bucket, "src"), CopySourceRange=f"bytes={len(PART) + 2}-{len(PART) + 4}")
    parts = [{"PartNumber": 1, "ETag": p1["CopyPartResult"]["ETag"]},
             {"PartNumber": 2, "ETag": p2["CopyPartResult"]["ETag"]}]
    s3.complete_multipart_upload(Bucket=bucket, Key="assembled", UploadId=uid, MultipartUpload={"Parts": parts})
    body = s3.get_object(Bucket=bucket, Key="assembled")["Body"].read()
    observe(f"len={len(body)} tail={body[-3:]!r}")
    assert body == PART + b"234"


@differs(direct="SeaweedFS's CopyPartResult/ETag is neither quoted nor the MD5 of the copied range",
         proxy="passes the node's CopyPartResult ETag through")
def test_upload_part_copy_etag(target, bucket, observe):
    """UploadPartCopy's CopyPartResult ETag is the quoted MD5 of the copied bytes."""
    s3 = target.s3
    s3.put_object(Bucket=bucket, Key="src", Body=b"0123456789")
    uid = s3.create_multipart_upload(Bucket=bucket, Key="e")["UploadId"]
    etag = s3.upload_part_copy(Bucket=bucket, Key="e", UploadId=uid, PartNumber=1, CopySource=_src(bucket, "src"),
                               CopySourceRange="bytes=2-4")["CopyPartResult"]["ETag"]
    s3.abort_multipart_upload(Bucket=bucket, Key="e", UploadId=uid)
    observe(etag)
    assert etag == f'"{hashlib.md5(b"234").hexdigest()}"'


def test_upload_part_copy_invalid_range(target, bucket, observe):
    """UploadPartCopy with a range beyond the source: 416 InvalidRange (AWS: InvalidRange / InvalidArgument)."""
    s3 = target.s3
    s3.put_object(Bucket=bucket, Key="src", Body=b"0123456789")
    uid = s3.create_multipart_upload(Bucket=bucket, Key="bad")["UploadId"]
    result = outcome(s3.upload_part_copy, Bucket=bucket, Key="bad", UploadId=uid, PartNumber=1,
                     CopySource=_src(bucket, "src"), CopySourceRange="bytes=5-100")
    observe(result)
    s3.abort_multipart_upload(Bucket=bucket, Key="bad", UploadId=uid)
    assert result in ("416 InvalidRange", "400 InvalidArgument", "400 InvalidRange")
