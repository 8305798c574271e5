"""Object basics: Put/Get/Head/Delete, empty objects, ranges, conditionals, metadata, presigned
response overrides, tagging — the same cases directly on the node and through wio."""
from __future__ import annotations

import datetime as dt
import hashlib
import urllib.error
import urllib.request

import pytest

from tests.conformance.conftest import outcome

differs = pytest.mark.differs
BODY = bytes(range(100))


def _status(exc_or_resp) -> int:
    return exc_or_resp["ResponseMetadata"]["HTTPStatusCode"]


def test_put_get_head_delete_roundtrip(target, bucket, observe):
    """PutObject/GetObject/HeadObject/DeleteObject round trip; ETag is the MD5."""
    s3 = target.s3
    put = s3.put_object(Bucket=bucket, Key="a/b.txt", Body=BODY)
    assert put["ETag"] == f'"{hashlib.md5(BODY).hexdigest()}"'
    got = s3.get_object(Bucket=bucket, Key="a/b.txt")
    assert got["Body"].read() == BODY and got["ContentLength"] == 100 and got["ETag"] == put["ETag"]
    head = s3.head_object(Bucket=bucket, Key="a/b.txt")
    assert head["ContentLength"] == 100 and head["ETag"] == put["ETag"] and head["LastModified"]
    assert _status(s3.delete_object(Bucket=bucket, Key="a/b.txt")) == 204
    observe(outcome(s3.get_object, Bucket=bucket, Key="a/b.txt"))
    assert outcome(s3.get_object, Bucket=bucket, Key="a/b.txt") == "404 NoSuchKey"
    assert outcome(s3.head_object, Bucket=bucket, Key="a/b.txt") == "404 404"


def test_delete_missing_key_is_204(target, bucket, observe):
    """DeleteObject on a key that never existed answers 204."""
    resp = target.s3.delete_object(Bucket=bucket, Key="never-was")
    observe(_status(resp))
    assert _status(resp) == 204


def test_empty_object(target, bucket, observe):
    """A zero-byte object: ETag of the empty string, Content-Length 0, listed with Size 0."""
    s3 = target.s3
    put = s3.put_object(Bucket=bucket, Key="empty", Body=b"")
    head = s3.head_object(Bucket=bucket, Key="empty")
    got = s3.get_object(Bucket=bucket, Key="empty")
    listed = s3.list_objects_v2(Bucket=bucket)["Contents"]
    observe(f"etag={put['ETag']} len={head['ContentLength']} size={listed[0]['Size']}")
    assert put["ETag"] == '"d41d8cd98f00b204e9800998ecf8427e"' == head["ETag"]
    assert got["Body"].read() == b"" and head["ContentLength"] == 0 and listed[0]["Size"] == 0


@pytest.mark.parametrize("rng, status, body, content_range", [
    ("bytes=0-9", 206, BODY[0:10], "bytes 0-9/100"),
    ("bytes=90-", 206, BODY[90:], "bytes 90-99/100"),
    ("bytes=-10", 206, BODY[90:], "bytes 90-99/100"),
    ("bytes=-1000", 206, BODY, "bytes 0-99/100"),
    ("bytes=95-200", 206, BODY[95:], "bytes 95-99/100"),
    ("bytes=99-99", 206, BODY[99:], "bytes 99-99/100"),
], ids=["first10", "open-ended", "suffix", "suffix-longer-than-object", "end-past-size", "last-byte"])
def test_range_get(target, bucket, observe, rng, status, body, content_range):
    """GetObject with a satisfiable Range: 206, the right bytes and Content-Range."""
    target.s3.put_object(Bucket=bucket, Key="r", Body=BODY)
    got = target.s3.get_object(Bucket=bucket, Key="r", Range=rng)
    data = got["Body"].read()
    observe(f"{_status(got)} {got.get('ContentRange')}")
    assert (_status(got), data, got.get("ContentRange")) == (status, body, content_range)


@pytest.mark.parametrize("rng", ["bytes=100-", "bytes=200-300"], ids=["start-at-size", "start-past-size"])
def test_range_unsatisfiable(target, bucket, observe, rng):
    """A range starting at or past the end: 416 InvalidRange."""
    target.s3.put_object(Bucket=bucket, Key="r", Body=BODY)
    result = outcome(target.s3.get_object, Bucket=bucket, Key="r", Range=rng)
    observe(result)
    assert result == "416 InvalidRange"


def test_range_on_empty_object(target, bucket, observe):
    """bytes=0-0 on an empty object: 416 InvalidRange."""
    target.s3.put_object(Bucket=bucket, Key="e", Body=b"")
    result = outcome(target.s3.get_object, Bucket=bucket, Key="e", Range="bytes=0-0")
    observe(result)
    assert result == "416 InvalidRange"


@pytest.mark.parametrize("rng", ["bytes=abc", "items=0-5", "bytes=0-1,5-6"],
                         ids=["garbage", "other-unit", "multi-range"])
def test_range_ignored(target, bucket, observe, rng):
    """A syntactically invalid or multi-range Range is ignored: 200 with the whole object."""
    target.s3.put_object(Bucket=bucket, Key="r", Body=BODY)
    result = outcome(target.s3.get_object, Bucket=bucket, Key="r", Range=rng)
    observe(result)
    assert result == "200"
    assert target.s3.get_object(Bucket=bucket, Key="r", Range=rng)["Body"].read() == BODY


@differs(direct="SeaweedFS answers 416 InvalidRange for a reversed range; S3 ignores it (200, whole object)",
         proxy="passes the node's 416 through")
def test_range_reversed_is_ignored(target, bucket, observe):
    """Range bytes=5-2 (last < first) is syntactically invalid: S3 ignores it and answers 200."""
    target.s3.put_object(Bucket=bucket, Key="r", Body=BODY)
    result = outcome(target.s3.get_object, Bucket=bucket, Key="r", Range="bytes=5-2")
    observe(result)
    assert result == "200"


def _conditional_cases():
    past = dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc)
    future = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=2)
    return [
        ("if-match-ok", lambda e: {"IfMatch": e}, "200"),
        ("if-match-star", lambda e: {"IfMatch": "*"}, "200"),
        ("if-match-wrong", lambda e: {"IfMatch": '"0123"'}, "412 PreconditionFailed"),
        ("if-none-match-same", lambda e: {"IfNoneMatch": e}, "304 304"),
        ("if-none-match-star", lambda e: {"IfNoneMatch": "*"}, "304 304"),
        ("if-none-match-other", lambda e: {"IfNoneMatch": '"0123"'}, "200"),
        ("if-modified-since-past", lambda e: {"IfModifiedSince": past}, "200"),
        ("if-modified-since-future", lambda e: {"IfModifiedSince": future}, "304 304"),
        ("if-unmodified-since-past", lambda e: {"IfUnmodifiedSince": past}, "412 PreconditionFailed"),
        ("if-unmodified-since-future", lambda e: {"IfUnmodifiedSince": future}, "200"),
        # RFC 7232 precedence, as S3 documents it:
        ("if-match-true+unmodified-false", lambda e: {"IfMatch": e, "IfUnmodifiedSince": past}, "200"),
        ("if-none-match-false+modified-true", lambda e: {"IfNoneMatch": e, "IfModifiedSince": past}, "304 304"),
    ]


@pytest.mark.parametrize("method", ["get_object", "head_object"])
@pytest.mark.parametrize("name, headers, expected", _conditional_cases(), ids=[c[0] for c in _conditional_cases()])
def test_conditional_headers(target, bucket, observe, method, name, headers, expected):
    """GetObject/HeadObject with If-Match, If-None-Match, If-Modified-Since, If-Unmodified-Since."""
    etag = target.s3.put_object(Bucket=bucket, Key="c", Body=BODY)["ETag"]
    result = outcome(getattr(target.s3, method), Bucket=bucket, Key="c", **headers(etag))
    observe(result)
    if method == "head_object" and expected.startswith("412"):
        expected = "412 412"      # HEAD has no body: boto3 only sees the status
    assert result == expected


def test_user_metadata_and_content_headers(target, bucket, observe):
    """User metadata (lower-cased names) and Content-Type/Encoding/Disposition/Language, Cache-Control, Expires."""
    s3 = target.s3
    expires = dt.datetime(2030, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)
    s3.put_object(Bucket=bucket, Key="m", Body=b"x", Metadata={"Project": "lab 7", "x-y": "a=b;c"},
                  ContentType="application/x-thing; charset=utf-8", ContentEncoding="gzip",
                  ContentDisposition='attachment; filename="report.txt"',
                  ContentLanguage="de-CH", CacheControl="no-cache", Expires=expires)
    for resp in (s3.head_object(Bucket=bucket, Key="m"), s3.get_object(Bucket=bucket, Key="m")):
        observe(f"{resp['Metadata']} {resp['ContentType']}")
        assert resp["Metadata"] == {"project": "lab 7", "x-y": "a=b;c"}
        assert resp["ContentType"] == "application/x-thing; charset=utf-8"
        assert resp["ContentEncoding"] == "gzip"
        assert resp["ContentDisposition"] == 'attachment; filename="report.txt"'
        assert resp["ContentLanguage"] == "de-CH"
        assert resp["CacheControl"] == "no-cache"
        assert resp["Expires"] == expires


@differs(direct="SeaweedFS sniffs the body and stores text/plain; charset=utf-8 instead of binary/octet-stream",
         proxy="passes through what the node stored (SeaweedFS content sniffing)")
def test_default_content_type(target, bucket, observe):
    """Without Content-Type the object is served as binary/octet-stream (S3's default)."""
    target.s3.put_object(Bucket=bucket, Key="noct", Body=b"x")
    ct = target.s3.head_object(Bucket=bucket, Key="noct")["ContentType"]
    observe(ct)
    assert ct == "binary/octet-stream"


OVERRIDES = {
    "ResponseContentType": ("Content-Type", "text/csv"),
    "ResponseContentDisposition": ("Content-Disposition", 'attachment; filename="x.csv"'),
    "ResponseContentEncoding": ("Content-Encoding", "identity"),
    "ResponseContentLanguage": ("Content-Language", "fr"),
    "ResponseCacheControl": ("Cache-Control", "max-age=5"),
    "ResponseExpires": ("Expires", "Thu, 01 Dec 2033 16:00:00 GMT"),
}


@pytest.mark.parametrize("param", list(OVERRIDES))
def test_presigned_get_response_overrides(target, bucket, observe, param):
    """A presigned GET with response-* overrides answers with the overridden header."""
    target.s3.put_object(Bucket=bucket, Key="p.bin", Body=BODY, ContentType="application/octet-stream")
    header, value = OVERRIDES[param]
    params = {"Bucket": bucket, "Key": "p.bin", param: value}
    if param == "ResponseExpires":
        params[param] = dt.datetime(2033, 12, 1, 16, 0, 0, tzinfo=dt.timezone.utc)
    url = target.s3.generate_presigned_url("get_object", Params=params, ExpiresIn=120)
    with urllib.request.urlopen(url, timeout=10) as resp:
        seen = resp.headers.get(header)
        observe(f"{header}: {seen}")
        assert resp.read() == BODY and seen == value


def test_presigned_put_then_get(target, bucket, observe):
    """A presigned PUT stores the body; a presigned GET reads it back."""
    url = target.s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "pp"}, ExpiresIn=60)
    req = urllib.request.Request(url, data=b"presigned", method="PUT")
    with urllib.request.urlopen(req, timeout=10) as resp:
        observe(resp.status)
        assert resp.status == 200
    assert target.s3.get_object(Bucket=bucket, Key="pp")["Body"].read() == b"presigned"


def test_put_bad_content_md5(target, bucket, observe):
    """PutObject whose Content-MD5 doesn't match the body: 400 BadDigest, nothing stored."""
    import base64
    wrong = base64.b64encode(hashlib.md5(b"other").digest()).decode()
    result = outcome(target.s3.put_object, Bucket=bucket, Key="md5", Body=b"body", ContentMD5=wrong)
    observe(result)
    assert result == "400 BadDigest"
    assert outcome(target.s3.head_object, Bucket=bucket, Key="md5") == "404 404"


def test_tagging_put_get_delete(target, bucket, observe):
    """Put/Get/DeleteObjectTagging, and tags given on PutObject."""
    s3 = target.s3
    s3.put_object(Bucket=bucket, Key="t", Body=b"t", Tagging="team=lab&stage=raw")
    tags = {t["Key"]: t["Value"] for t in s3.get_object_tagging(Bucket=bucket, Key="t")["TagSet"]}
    assert tags == {"team": "lab", "stage": "raw"}
    s3.put_object_tagging(Bucket=bucket, Key="t", Tagging={"TagSet": [{"Key": "k", "Value": "v w"}]})
    assert s3.get_object_tagging(Bucket=bucket, Key="t")["TagSet"] == [{"Key": "k", "Value": "v w"}]
    assert s3.head_object(Bucket=bucket, Key="t").get("ResponseMetadata")
    assert _status(s3.delete_object_tagging(Bucket=bucket, Key="t")) == 204
    left = s3.get_object_tagging(Bucket=bucket, Key="t")["TagSet"]
    observe(f"after delete: {left}")
    assert left == []


def test_tag_count_header_on_get(target, bucket, observe):
    """GetObject reports x-amz-tagging-count for a tagged object."""
    target.s3.put_object(Bucket=bucket, Key="t", Body=b"t", Tagging="a=1&b=2")
    got = target.s3.get_object(Bucket=bucket, Key="t")
    observe(got.get("TagCount"))
    assert got.get("TagCount") == 2


def test_tagging_missing_key(target, bucket, observe):
    """GetObjectTagging on a missing key: 404 NoSuchKey."""
    result = outcome(target.s3.get_object_tagging, Bucket=bucket, Key="nope")
    observe(result)
    assert result == "404 NoSuchKey"


def test_tagging_too_many_tags(target, bucket, observe):
    """More than 10 tags on an object: 400 BadRequest (S3's code for a tag-set limit)."""
    target.s3.put_object(Bucket=bucket, Key="t", Body=b"t")
    tags = [{"Key": f"k{i}", "Value": "v"} for i in range(11)]
    result = outcome(target.s3.put_object_tagging, Bucket=bucket, Key="t", Tagging={"TagSet": tags})
    observe(result)
    assert result.startswith("400 ")
