"""ListObjects V1/V2 and ListObjectVersions: prefix, delimiter, marker/start-after, max-keys 0/1/1000,
continuation tokens, encoding-type=url with unicode and special-character keys, very long keys,
DeleteObjects — the same cases directly on the node and through wio."""
from __future__ import annotations

from urllib.parse import quote, unquote_plus

import pytest

from tests.conformance.conftest import outcome

differs = pytest.mark.differs

SPECIAL = ["a b", "a+b", "a%b", "a%2Fb", "a~b", "caf\u00e9", "\u65e5\u672c\u8a9e/\u30d5\u30a1\u30a4\u30eb",
           "emoji-\U0001F600", "q?x=1&y=2", "hash#frag", "semi;colon", "quote'\"", "angle<>",
           "sp ace/ in/dir ", "star*", "comma,", "at@", "excl!", "paren()", "eq=", "dollar$",
           "caret^", "pipe|", "brace{}", "bracket[]", "colon:", "tick`"]
TREE = ["a/1", "a/2", "a/b/3", "b/4", "c", "d/e/f/5", "z"]


def _put_all(s3, bucket, keys, body=b"x"):
    # Sequential on purpose: concurrent first writes into a brand-new SeaweedFS bucket (a new collection)
    # can stall for ~30 s while the node grows volumes.
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=body)


def _v2_all(s3, bucket, **kw):
    keys, prefixes, token, pages = [], [], None, 0
    while True:
        extra = {"ContinuationToken": token} if token else {}
        page = s3.list_objects_v2(Bucket=bucket, **kw, **extra)
        pages += 1
        keys += [o["Key"] for o in page.get("Contents", [])]
        prefixes += [p["Prefix"] for p in page.get("CommonPrefixes", [])]
        assert page["KeyCount"] == len(page.get("Contents", [])) + len(page.get("CommonPrefixes", []))
        if not page["IsTruncated"]:
            return keys, prefixes, pages
        token = page["NextContinuationToken"]


@pytest.fixture
def tree(target, bucket):
    _put_all(target.s3, bucket, TREE)
    return bucket


def test_v2_prefix_and_delimiter(target, tree, observe):
    """ListObjectsV2 Delimiter='/' at the top and under a prefix."""
    s3 = target.s3
    top = s3.list_objects_v2(Bucket=tree, Delimiter="/")
    sub = s3.list_objects_v2(Bucket=tree, Prefix="a/", Delimiter="/")
    got = ([o["Key"] for o in top["Contents"]], [p["Prefix"] for p in top["CommonPrefixes"]],
           [o["Key"] for o in sub["Contents"]], [p["Prefix"] for p in sub["CommonPrefixes"]])
    observe(got)
    assert got == (["c", "z"], ["a/", "b/", "d/"], ["a/1", "a/2"], ["a/b/"])
    assert top["Name"] == tree and sub["Prefix"] == "a/" and sub["Delimiter"] == "/"


@differs(direct="SeaweedFS returns CommonPrefixes for a non-'/' delimiter unsorted (['b', 'a/b'])")
def test_v2_non_slash_delimiter(target, tree, observe):
    """A delimiter other than '/' groups on that character."""
    resp = target.s3.list_objects_v2(Bucket=tree, Delimiter="b")
    got = ([o["Key"] for o in resp.get("Contents", [])], [p["Prefix"] for p in resp.get("CommonPrefixes", [])])
    observe(got)
    assert got == (["a/1", "a/2", "c", "d/e/f/5", "z"], ["a/b", "b"])


def test_v2_start_after(target, tree, observe):
    """StartAfter skips keys up to and including it, and is echoed back."""
    resp = target.s3.list_objects_v2(Bucket=tree, StartAfter="a/b/3")
    got = [o["Key"] for o in resp["Contents"]]
    observe(got)
    assert got == ["b/4", "c", "d/e/f/5", "z"] and resp["StartAfter"] == "a/b/3"


@pytest.mark.parametrize("delimiter", [None, "/"], ids=["flat", "delimited"])
def test_v2_max_keys_1_pagination(target, tree, observe, delimiter):
    """MaxKeys=1 with continuation tokens visits every key (and common prefix) exactly once."""
    kw = {"MaxKeys": 1, **({"Delimiter": delimiter} if delimiter else {})}
    keys, prefixes, pages = _v2_all(target.s3, tree, **kw)
    observe(f"pages={pages} keys={keys} prefixes={prefixes}")
    if delimiter:
        assert (keys, prefixes, pages) == (["c", "z"], ["a/", "b/", "d/"], 5)
    else:
        assert (keys, pages) == (TREE, 7)


def test_v2_max_keys_0(target, tree, observe):
    """MaxKeys=0: no contents, KeyCount 0, MaxKeys echoed as 0."""
    resp = target.s3.list_objects_v2(Bucket=tree, MaxKeys=0)
    got = (resp.get("Contents", []), resp["KeyCount"], resp["MaxKeys"], resp["IsTruncated"])
    observe(got)
    assert got[:3] == ([], 0, 0)


def test_v1_max_keys_0(target, tree, observe):
    """ListObjects (V1) MaxKeys=0: no contents."""
    resp = target.s3.list_objects(Bucket=tree, MaxKeys=0)
    got = (resp.get("Contents", []), resp["MaxKeys"])
    observe(got)
    assert got == ([], 0)


def test_v1_marker_and_next_marker(target, tree, observe):
    """ListObjects V1: Marker skips, MaxKeys truncates, NextMarker is given when a Delimiter is used."""
    s3 = target.s3
    page = s3.list_objects(Bucket=tree, MaxKeys=2, Delimiter="/")
    nxt = s3.list_objects(Bucket=tree, Marker=page["NextMarker"], Delimiter="/")
    flat = s3.list_objects(Bucket=tree, Marker="b/4")
    got = ([o["Key"] for o in page.get("Contents", [])] + [p["Prefix"] for p in page.get("CommonPrefixes", [])],
           page["IsTruncated"], page.get("NextMarker"),
           [o["Key"] for o in nxt.get("Contents", [])] + [p["Prefix"] for p in nxt.get("CommonPrefixes", [])],
           [o["Key"] for o in flat["Contents"]])
    observe(got)
    assert got == (["a/", "b/"], True, "b/", ["c", "z", "d/"], ["c", "d/e/f/5", "z"])
    assert flat["Marker"] == "b/4"


def test_v1_pagination_max_keys_1(target, tree, observe):
    """ListObjects V1 with MaxKeys=1 and the last key as the next Marker visits everything once."""
    s3, keys, marker = target.s3, [], ""
    while True:
        page = s3.list_objects(Bucket=tree, MaxKeys=1, Marker=marker)
        keys += [o["Key"] for o in page.get("Contents", [])]
        if not page["IsTruncated"]:
            break
        marker = page.get("NextMarker") or keys[-1]
    observe(keys)
    assert keys == TREE


@pytest.fixture(scope="module")
def big_buckets():
    return {}


@pytest.fixture
def big(target, big_buckets):
    """A bucket with 1010 keys (made once per target, straight on the node; read-only afterwards)."""
    if target.kind not in big_buckets:
        bucket = target.bucket()
        target.seed(bucket, [f"k{i:04d}" for i in range(1010)])
        big_buckets[target.kind] = bucket
    return big_buckets[target.kind]


@pytest.mark.parametrize("max_keys", [None, 1000,
                                      pytest.param(5000, marks=differs(
                                          direct="SeaweedFS honours MaxKeys above 1000 (returns all 1010 keys)"))],
                         ids=["default", "1000", "5000"])
def test_v2_max_keys_1000_cap(target, big, observe, max_keys):
    """Default, 1000 and 5000 all return at most 1000 keys per page, truncated, and the rest on page 2."""
    s3 = target.s3
    kw = {"MaxKeys": max_keys} if max_keys else {}
    page = s3.list_objects_v2(Bucket=big, **kw)
    rest = s3.list_objects_v2(Bucket=big, ContinuationToken=page["NextContinuationToken"], **kw) \
        if page["IsTruncated"] else {"Contents": []}
    got = (page["KeyCount"], page["IsTruncated"], len(rest.get("Contents", [])))
    observe(got)
    assert got == (1000, True, 10)


def test_v1_max_keys_1000_cap(target, big, observe):
    """ListObjects V1 returns 1000 keys, truncated; the Marker continues to the last 10."""
    s3 = target.s3
    page = s3.list_objects(Bucket=big)
    rest = s3.list_objects(Bucket=big, Marker=page["Contents"][-1]["Key"])
    got = (len(page["Contents"]), page["IsTruncated"], len(rest["Contents"]))
    observe(got)
    assert got == (1000, True, 10)


def test_special_keys_roundtrip_and_listing(target, bucket, observe):
    """Unicode and special-character keys: Put/Get each, and they list back exactly (boto3 uses encoding-type=url)."""
    s3 = target.s3
    for key in SPECIAL:           # one at a time: concurrent PUTs of these keys stall SeaweedFS for ~30 s
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    bad = [k for k in SPECIAL if outcome(s3.head_object, Bucket=bucket, Key=k) != "200"]
    listed, _, _ = _v2_all(s3, bucket)
    v1 = [o["Key"] for o in s3.list_objects(Bucket=bucket)["Contents"]]
    missing = sorted(set(SPECIAL) - set(listed))
    observe(f"head-failed={bad} missing-from-v2={missing}")
    assert bad == [] and sorted(listed) == sorted(SPECIAL) and sorted(v1) == sorted(SPECIAL)


def test_encoding_type_url_raw(target, bucket, observe):
    """EncodingType=url given explicitly: keys come back percent-encoded and decode to the originals."""
    s3 = target.s3
    keys = ["a b", "a+b", "caf\u00e9", "emoji-\U0001F600", "x<y&z"]
    _put_all(s3, bucket, keys)
    resp = s3.list_objects_v2(Bucket=bucket, EncodingType="url")
    raw = [o["Key"] for o in resp["Contents"]]
    observe(raw)
    assert resp.get("EncodingType") == "url"
    assert sorted(unquote_plus(k) for k in raw) == sorted(keys)
    assert all(" " not in k and "\x01" not in k for k in raw)


@differs(direct="SeaweedFS turns '\\' in a key into '/': 'back\\slash' lists as 'back/slash'",
         proxy="the node's backslash rewriting shows through (wio passes the key on unchanged)")
def test_backslash_key(target, bucket, observe):
    """A key with a backslash is stored and listed byte for byte."""
    target.s3.put_object(Bucket=bucket, Key="back\\slash", Body=b"x")
    listed = [o["Key"] for o in target.s3.list_objects_v2(Bucket=bucket)["Contents"]]
    observe(listed)
    assert listed == ["back\\slash"]


@differs(proxy="wio refuses keys with control characters (400 InvalidArgument 'Object keys cannot contain control "
               "characters'); S3 and the node accept them (they are why encoding-type=url exists)")
def test_control_character_key(target, bucket, observe):
    """A key with a control character (U+0001) can be stored and listed with encoding-type=url."""
    result = outcome(target.s3.put_object, Bucket=bucket, Key="ctl\x01char", Body=b"x")
    observe(result)
    assert result == "200"
    assert [o["Key"] for o in target.s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["ctl\x01char"]


def test_encoding_type_url_prefix_and_delimiter(target, bucket, observe):
    """With encoding-type=url, CommonPrefixes and Prefix are encoded too."""
    s3 = target.s3
    _put_all(s3, bucket, ["d\u00ef r/x", "d\u00ef r/y", "other"])
    resp = s3.list_objects_v2(Bucket=bucket, Prefix="d\u00ef", Delimiter="/", EncodingType="url")
    got = ([p["Prefix"] for p in resp.get("CommonPrefixes", [])], resp.get("Prefix"))
    observe(got)
    assert [unquote_plus(p) for p in got[0]] == ["d\u00ef r/"] and unquote_plus(got[1]) == "d\u00ef"
    assert " " not in got[0][0]


@differs(proxy="the node caps the *physical* key at 1024 bytes and wio adds '{owner}/{workspace}/' in front, so "
               "a 1024-byte key answers 400 KeyTooLongError through wio (usable length = 1024 - physical prefix)")
def test_long_key(target, bucket, observe):
    """A key of exactly 1024 UTF-8 bytes (the S3 maximum; '/'-separated segments of <= 200 bytes) round-trips."""
    s3 = target.s3
    key = "/".join(["\u00e9" * 100] * 4) + "/" + "k" * 220
    assert len(key.encode()) == 1024
    result = outcome(s3.put_object, Bucket=bucket, Key=key, Body=b"long")
    observe(result)
    assert result == "200"
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == b"long"
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == [key]


@differs(direct="SeaweedFS stores each '/'-separated key segment as a filer entry name, limited to 255 bytes",
         proxy="the node's per-segment limit, passed through")
def test_long_key_segment(target, bucket, observe):
    """A single 256-byte key segment (no '/') is a valid S3 key."""
    result = outcome(target.s3.put_object, Bucket=bucket, Key="s" * 256, Body=b"x")
    observe(result)
    assert result == "200"


def test_key_too_long(target, bucket, observe):
    """A key of 1025 bytes: 400 KeyTooLongError."""
    result = outcome(target.s3.put_object, Bucket=bucket, Key="k" * 1025, Body=b"x")
    observe(result)
    assert result == "400 KeyTooLongError"


def test_list_object_versions(target, tree, observe):
    """ListObjectVersions on an unversioned bucket: every key once, VersionId 'null', IsLatest."""
    resp = target.s3.list_object_versions(Bucket=tree)
    got = [(v["Key"], v.get("VersionId"), v.get("IsLatest")) for v in resp.get("Versions", [])]
    observe(got)
    assert got == [(k, "null", True) for k in TREE]


def test_list_object_versions_prefix_delimiter(target, tree, observe):
    """ListObjectVersions with Prefix and Delimiter."""
    resp = target.s3.list_object_versions(Bucket=tree, Prefix="a/", Delimiter="/")
    got = ([v["Key"] for v in resp.get("Versions", [])], [p["Prefix"] for p in resp.get("CommonPrefixes", [])])
    observe(got)
    assert got == (["a/1", "a/2"], ["a/b/"])


def test_list_object_versions_pagination(target, tree, observe):
    """ListObjectVersions MaxKeys=2 with KeyMarker/NextKeyMarker visits every key once."""
    s3, keys, kw = target.s3, [], {}
    for _ in range(10):
        page = s3.list_object_versions(Bucket=tree, MaxKeys=2, **kw)
        keys += [v["Key"] for v in page.get("Versions", [])]
        if not page["IsTruncated"]:
            break
        kw = {"KeyMarker": page["NextKeyMarker"]}
        if page.get("NextVersionIdMarker"):
            kw["VersionIdMarker"] = page["NextVersionIdMarker"]
    observe(keys)
    assert keys == TREE


def test_delete_objects_with_missing_keys(target, bucket, observe):
    """DeleteObjects: existing and missing keys are all reported Deleted; special characters survive."""
    s3 = target.s3
    present = ["x", "sp ace", "caf\u00e9", "a+b"]
    _put_all(s3, bucket, present)
    resp = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in present + ["missing"]]})
    deleted = sorted(d["Key"] for d in resp.get("Deleted", []))
    observe(f"deleted={deleted} errors={resp.get('Errors', [])}")
    assert deleted == sorted(present + ["missing"]) and not resp.get("Errors")
    assert s3.list_objects_v2(Bucket=bucket).get("Contents", []) == []


def test_delete_objects_quiet(target, bucket, observe):
    """DeleteObjects Quiet=true: no Deleted entries in the answer, objects gone."""
    s3 = target.s3
    _put_all(s3, bucket, ["q1", "q2"])
    resp = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "q1"}, {"Key": "q2"}, {"Key": "nope"}],
                                                    "Quiet": True})
    observe(f"deleted={resp.get('Deleted', [])} errors={resp.get('Errors', [])}")
    assert resp.get("Deleted", []) == [] and resp.get("Errors", []) == []
    assert s3.list_objects_v2(Bucket=bucket).get("Contents", []) == []


# --- every printable character, encoding-type=url on all four listings (issue 18) ------------------

# Every printable ASCII character in a key, plus the characters URL encoding gets wrong most often.
# '\\' is left out: SeaweedFS turns it into '/' (test_backslash_key).
ASCII_KEYS = [f"k{c}x" for c in map(chr, range(0x20, 0x7F)) if c != "\\"] + [
    "a b", "a+b", "a%b", "a%2Bb", "a%20b", "+", "%", " lead", "trail ", "caf\u00e9", "\u65e5\u672c/\u8a9e",
    "emoji-\U0001F600"]


def _s3_order(names):
    return sorted(names, key=lambda n: n.encode())


LISTED_KEYS = {
    "v1": lambda s3, b, **kw: [o["Key"] for o in s3.list_objects(Bucket=b, **kw).get("Contents", [])],
    "v2": lambda s3, b, **kw: [o["Key"] for o in s3.list_objects_v2(Bucket=b, **kw).get("Contents", [])],
    "versions": lambda s3, b, **kw: [v["Key"] for v in s3.list_object_versions(Bucket=b, **kw).get("Versions", [])],
}


@pytest.fixture(scope="module")
def ascii_buckets():
    return {}


@pytest.fixture
def ascii_bucket(target, ascii_buckets):
    """A bucket holding ASCII_KEYS (made once per target; read-only afterwards)."""
    if target.kind not in ascii_buckets:
        bucket = target.bucket()
        _put_all(target.s3, bucket, ASCII_KEYS)
        ascii_buckets[target.kind] = bucket
    return ascii_buckets[target.kind]


_WALK_ORDER = differs(direct="SeaweedFS lists a directory walk, not in byte order ('k/x' before 'k x')")


@pytest.mark.parametrize("listing", [pytest.param("v1", marks=_WALK_ORDER), pytest.param("v2", marks=_WALK_ORDER),
                                     "versions"])
def test_printable_ascii_keys_list_back(target, ascii_bucket, observe, listing):
    """Keys with every printable ASCII character, spaces, '+', '%' and unicode list back exactly, in S3's
    order (boto3 asks for encoding-type=url and decodes)."""
    got = LISTED_KEYS[listing](target.s3, ascii_bucket)
    observe(f"missing={sorted(set(ASCII_KEYS) - set(got))} extra={sorted(set(got) - set(ASCII_KEYS))} "
            f"ordered={got == _s3_order(got)}")
    assert got == _s3_order(ASCII_KEYS)


ENCODING_KEYS = ["foo+1/bar", "foo/bar/xyzzy", "quux ab/thud", "asdf+b", "p%q", "caf\u00e9"]


def _raw_listing(target, bucket, listing, **kw):
    """(keys, common prefixes, EncodingType) as sent, with encoding-type=url asked for explicitly (boto3 then
    leaves the names encoded)."""
    s3 = target.s3
    if listing == "uploads":
        for key in ENCODING_KEYS:
            s3.create_multipart_upload(Bucket=bucket, Key=key)
        page = s3.list_multipart_uploads(Bucket=bucket, EncodingType="url", **kw)
        keys = [u["Key"] for u in page.get("Uploads", [])]
    else:
        _put_all(s3, bucket, ENCODING_KEYS)
        page = {"v1": s3.list_objects, "v2": s3.list_objects_v2, "versions": s3.list_object_versions}[listing](
            Bucket=bucket, EncodingType="url", **kw)
        keys = [o["Key"] for o in page.get("Versions" if listing == "versions" else "Contents", [])]
    return keys, [p["Prefix"] for p in page.get("CommonPrefixes", [])], page.get("EncodingType"), page


@differs(direct="SeaweedFS ignores encoding-type=url in ListObjectVersions (raw keys, no EncodingType) and does "
                "not encode the keys of ListMultipartUploads")
@pytest.mark.parametrize("listing", ["v1", "v2", "versions", "uploads"])
def test_encoding_type_url_on_every_listing(target, bucket, observe, listing):
    """EncodingType=url: every key percent-encoded ('+' as %2B, ' ' as %20, '%' as %25, UTF-8 bytes), in S3's
    order, and EncodingType echoed (s3-tests test_bucket_listv2_encoding_basic)."""
    keys, _, encoding, _ = _raw_listing(target, bucket, listing)
    observe(f"{keys} {encoding}")
    assert keys == [quote(k, safe="/~") for k in _s3_order(ENCODING_KEYS)] and encoding == "url"


_WALK = "SeaweedFS lists 'foo/' before 'foo+1/' (a directory walk, not byte order)"
_NO_ENCODING = "SeaweedFS ignores encoding-type=url in ListObjectVersions and ListMultipartUploads"


@pytest.mark.parametrize("listing", [
    pytest.param("v1", marks=differs(direct=_WALK)), pytest.param("v2", marks=differs(direct=_WALK)),
    pytest.param("versions", marks=differs(direct=_NO_ENCODING)),
    pytest.param("uploads", marks=differs(direct=_NO_ENCODING, proxy="SeaweedFS ignores Delimiter in "
                                          "ListMultipartUploads (no CommonPrefixes); wio passes the uploads on"))])
def test_encoding_type_url_common_prefixes(target, bucket, observe, listing):
    """EncodingType=url with Delimiter='/': CommonPrefixes encoded and in byte order, Delimiter echoed."""
    keys, prefixes, encoding, page = _raw_listing(target, bucket, listing, Delimiter="/")
    observe(f"{keys} {prefixes} {encoding}")
    assert keys == ["asdf%2Bb", "caf%C3%A9", "p%25q"]
    assert prefixes == ["foo%2B1/", "foo/", "quux%20ab/"] and page.get("Delimiter") == "/" and encoding == "url"


def test_v2_continuation_token_empty(target, bucket, observe):
    """An empty ContinuationToken lists from the start and is echoed empty (s3-tests ..._continuationtoken_empty)."""
    _put_all(target.s3, bucket, ["bar", "baz", "foo", "quxx"])
    resp = target.s3.list_objects_v2(Bucket=bucket, ContinuationToken="")
    got = (resp.get("ContinuationToken"), resp["IsTruncated"], [o["Key"] for o in resp.get("Contents", [])])
    observe(got)
    assert got == ("", False, ["bar", "baz", "foo", "quxx"])


@pytest.mark.parametrize("listing", ["v1", "v2"])
def test_prefix_with_leading_slash_lists_nothing(target, bucket, observe, listing):
    """No key starts with '/': Prefix='/' with Delimiter='d' lists nothing (s3-tests ..._prefix_not_exist)."""
    _put_all(target.s3, bucket, ["b/a/r", "b/a/c", "b/a/g", "g"])
    call = target.s3.list_objects if listing == "v1" else target.s3.list_objects_v2
    resp = call(Bucket=bucket, Delimiter="d", Prefix="/")
    got = ([o["Key"] for o in resp.get("Contents", [])], [p["Prefix"] for p in resp.get("CommonPrefixes", [])])
    observe(got)
    assert got == ([], [])


def test_prefix_unreadable(target, bucket, observe):
    """A prefix holding a newline is echoed and lists nothing (s3-tests test_bucket_list_prefix_unreadable)."""
    _put_all(target.s3, bucket, ["foo/bar", "foo/baz", "quux"])
    resp = target.s3.list_objects(Bucket=bucket, Prefix="\x0a")
    got = (resp.get("Prefix"), resp.get("Contents", []), resp.get("CommonPrefixes", []))
    observe(got)
    assert got == ("\x0a", [], [])


def test_v1_return_data(target, bucket, observe):
    """ListObjects entries carry the ETag, Size and LastModified HeadObject gives, and an Owner."""
    s3 = target.s3
    _put_all(s3, bucket, ["bar", "baz", "foo"])
    heads = {k: s3.head_object(Bucket=bucket, Key=k) for k in ("bar", "baz", "foo")}
    listed = s3.list_objects(Bucket=bucket)["Contents"]
    got = [(o["Key"], o["ETag"] == heads[o["Key"]]["ETag"], o["Size"] == heads[o["Key"]]["ContentLength"],
            abs((o["LastModified"] - heads[o["Key"]]["LastModified"]).total_seconds()) < 2,
            bool(o.get("Owner", {}).get("ID"))) for o in listed]
    observe(got)
    assert got == [(k, True, True, True, True) for k in ("bar", "baz", "foo")]


@differs(direct="SeaweedFS (a filer) stores 'a//b' as 'a/b' and '/lead' as 'lead': the keys alias",
         proxy="wio refuses keys with a leading '/' or '//' (400 InvalidArgument) because its nodes may alias them")
def test_double_slash_keys_round_trip(target, bucket, observe):
    """'a//b', 'a/b' and '/lead' are three distinct keys."""
    s3 = target.s3
    results = [outcome(s3.put_object, Bucket=bucket, Key=k, Body=k.encode()) for k in ("a/b", "a//b", "/lead")]
    got = (results, s3.get_object(Bucket=bucket, Key="a/b")["Body"].read(),
           [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])])
    observe(got)
    assert got == (["200"] * 3, b"a/b", _s3_order(["/lead", "a//b", "a/b"]))
