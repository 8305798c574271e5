"""Listings reveal only what the caller may read (issue 17, items 1 and 2).

A prefix-limited reader (Bob may read ``results/`` only) and a key scoped to ``results/`` page
through all four listings one entry at a time; no response body may name anything outside
``results/`` (markers included), and the pages must still visit every visible entry exactly once.
A leading or doubled slash in the prefix (which SeaweedFS, a filer, normalises) must not escape
the workspace, and keys that such a node would alias are refused.
"""
from __future__ import annotations

import hashlib
import itertools
import re

import pytest
from botocore.exceptions import ClientError

from tests.conftest import s3_client, unique

VISIBLE = ["results/a.csv", "results/b c+d%.csv", "results/z.csv"]
HIDDEN = ["rawdata/c.csv", "results-old/x", "resultsX", "secret/plan.txt", "zzz-last"]
_SEALED = re.compile(r"wio1\.[A-Za-z0-9_-]+")


class Bodies:
    """Every raw response body a boto3 client receives (sealed markers blanked: they are random text)."""

    def __init__(self, s3):
        self.seen: list[str] = []
        s3.meta.events.register("before-parse.s3.*", self._record)

    def _record(self, response_dict, **_):
        self.seen.append(_SEALED.sub("", response_dict["body"].decode("utf-8", "replace")))

    def leaked(self, *names: str) -> list[str]:
        """The names (or their first segment: a common prefix) that some body mentions."""
        return sorted({n for n in names for body in self.seen if n.split("/")[0] in body})


@pytest.fixture
def hidden_workspace(person, workspace):
    for key in VISIBLE + HIDDEN:
        person.s3.put_object(Bucket=workspace, Key=key, Body=b"x")
    uploads = {key: person.s3.create_multipart_upload(Bucket=workspace, Key=key)["UploadId"]
               for key in ("results/up", "secret/up", "zzz-up")}
    yield workspace
    for key, upload_id in uploads.items():
        person.s3.abort_multipart_upload(Bucket=workspace, Key=key, UploadId=upload_id)


@pytest.fixture(params=["share", "scoped-key"])
def reader(request, stack, person, other, hidden_workspace):
    """A client that may read results/ only: Bob through a prefix share, or the owner's scoped key."""
    if request.param == "share":
        person.api.call("POST", f"/workspaces/{hidden_workspace}/shares",
                        {"user": other.name, "permission": "read", "prefix": "results/"})
        key = other.api.call("POST", "/keys", {"name": unique("k")})
    else:
        key = person.api.call("POST", "/keys", {"name": unique("scoped"), "expires_in_seconds": 600,
                                                "scope": [{"workspace": hidden_workspace, "permission": "read",
                                                           "prefix": "results/"}]})
    return s3_client(stack.s3_url, key)


def _pages(call, next_args, **kw):
    """Call a listing page by page; next_args(page) gives the next request's arguments."""
    pages = []
    for _ in range(20):
        page = call(**kw)
        pages.append(page)
        if not page["IsTruncated"]:
            return pages
        kw = {**kw, **next_args(page)}
    raise AssertionError("the listing does not end")


@pytest.mark.parametrize("delimiter", [None, "/"], ids=["flat", "delimited"])
def test_v1_markers_never_name_hidden_keys(reader, hidden_workspace, delimiter):
    bodies = Bodies(reader)
    kw = {"Bucket": hidden_workspace, "MaxKeys": 1, **({"Delimiter": delimiter} if delimiter else {})}
    pages = _pages(reader.list_objects, lambda p: {"Marker": p.get("NextMarker") or p["Contents"][-1]["Key"]}, **kw)
    keys = [o["Key"] for p in pages for o in p.get("Contents", [])]
    prefixes = [c["Prefix"] for p in pages for c in p.get("CommonPrefixes", [])]
    assert (keys, prefixes) == ((VISIBLE, []) if delimiter is None else ([], ["results/"]))
    assert bodies.leaked(*HIDDEN) == []


def test_v2_pages_never_name_hidden_keys(reader, hidden_workspace):
    bodies = Bodies(reader)
    pages = _pages(reader.list_objects_v2, lambda p: {"ContinuationToken": p["NextContinuationToken"]},
                   Bucket=hidden_workspace, MaxKeys=1, StartAfter="a")
    assert [o["Key"] for p in pages for o in p.get("Contents", [])] == VISIBLE
    assert bodies.leaked(*HIDDEN) == []


def test_versions_markers_never_name_hidden_keys(reader, hidden_workspace):
    bodies = Bodies(reader)
    pages = _pages(reader.list_object_versions,
                   lambda p: {"KeyMarker": p["NextKeyMarker"], "VersionIdMarker": p.get("NextVersionIdMarker", "")},
                   Bucket=hidden_workspace, MaxKeys=1)
    assert [v["Key"] for p in pages for v in p.get("Versions", [])] == VISIBLE
    assert bodies.leaked(*HIDDEN) == []


def _physical_prefix(person, admin_api, workspace: str) -> str:
    # docs/design.md layout of a managed root: {root prefix}/{owner}/{workspace}/ in the root's bucket.
    root_name = person.api.call("GET", f"/workspaces/{workspace}")["root"]
    roots = admin_api.call("GET", "/roots")
    root = next(r for r in (roots.get("roots", roots) if isinstance(roots, dict) else roots) if r["name"] == root_name)
    base = (root.get("prefix") or "").strip("/")
    return f"{base + '/' if base else ''}{person.name}/{workspace}/"


def test_upload_markers_never_name_hidden_uploads(person, admin_api, reader, hidden_workspace):
    """SeaweedFS lists uploads in the order of sha1(physical key): a hidden upload that comes first must not
    reach the reader through NextUploadIdMarker (nor its key through a NextKeyMarker)."""
    physical = _physical_prefix(person, admin_api, hidden_workspace)
    def order(key: str) -> str:
        return hashlib.sha1((physical + key).encode()).hexdigest()
    # a hidden key that the node lists before the visible upload (1 in 2 names qualifies on average)
    first = next(key for key in (f"secret/first{i}" for i in itertools.count()) if order(key) < order("results/up"))
    upload_id = person.s3.create_multipart_upload(Bucket=hidden_workspace, Key=first)["UploadId"]
    try:
        bodies = Bodies(reader)
        pages = _pages(reader.list_multipart_uploads,
                       lambda p: {"KeyMarker": p["NextKeyMarker"], "UploadIdMarker": p["NextUploadIdMarker"]},
                       Bucket=hidden_workspace, MaxUploads=1)
        assert pages[0]["IsTruncated"] and pages[0]["NextUploadIdMarker"].startswith("wio1.")
        assert {u["Key"] for p in pages for u in p.get("Uploads", [])} <= {"results/up"}
        assert [u["Key"] for u in reader.list_multipart_uploads(Bucket=hidden_workspace)["Uploads"]] == ["results/up"]
        assert bodies.leaked("secret", "zzz") == []
        hidden_ids = [u["UploadId"] for u in person.s3.list_multipart_uploads(Bucket=hidden_workspace)["Uploads"]
                      if not u["Key"].startswith("results/")]
        assert len(hidden_ids) == 3 and not [i for i in hidden_ids if any(i in body for body in bodies.seen)]
    finally:
        person.s3.abort_multipart_upload(Bucket=hidden_workspace, Key=first, UploadId=upload_id)


def test_sealed_marker_is_bound_to_its_workspace(stack, person, hidden_workspace, workspace):
    """A sealed marker only positions a listing in the workspace it came from: elsewhere it is a plain key."""
    other_ws = unique("ws")
    person.api.call("POST", "/workspaces", {"name": other_ws})
    person.s3.put_object(Bucket=other_ws, Key="a", Body=b"x")
    scoped = person.api.call("POST", "/keys", {"name": unique("scoped"), "expires_in_seconds": 600,
                                               "scope": [{"workspace": hidden_workspace, "permission": "read",
                                                          "prefix": "results/"}]})
    reader = s3_client(stack.s3_url, scoped)
    page = reader.list_objects(Bucket=hidden_workspace, MaxKeys=1, Marker="results/z.csv")
    sealed = page["NextMarker"]
    assert sealed.startswith("wio1.") and page["IsTruncated"]
    # same workspace: the listing resumes after the hidden key the marker stands for
    assert [o["Key"] for o in reader.list_objects(Bucket=hidden_workspace, Marker=sealed).get("Contents", [])] == []
    # another workspace: the token is just a key sorting after "a"
    assert [o["Key"] for o in person.s3.list_objects(Bucket=other_ws, Marker=sealed).get("Contents", [])] == []
    assert [o["Key"] for o in person.s3.list_objects(Bucket=other_ws, Marker="").get("Contents", [])] == ["a"]


# --- item 2: slashes ------------------------------------------------------------------------------

@pytest.fixture
def slash_workspace(stack, person, other, workspace):
    person.s3.put_object(Bucket=workspace, Key="mine.txt", Body=b"m")
    person.s3.put_object(Bucket=workspace, Key="dir/in.txt", Body=b"i")
    upload = person.s3.create_multipart_upload(Bucket=workspace, Key="dir/up")["UploadId"]
    neighbour = unique("ws")   # another workspace of the same owner, a sibling directory on the node
    person.api.call("POST", "/workspaces", {"name": neighbour})
    person.s3.put_object(Bucket=neighbour, Key="theirs.txt", Body=b"t")
    bobs = unique("bobws")     # another owner's workspace: the directory "above" is theirs too
    other.api.call("POST", "/workspaces", {"name": bobs})
    other.s3.put_object(Bucket=bobs, Key="bobs.txt", Body=b"b")
    yield workspace, [neighbour, other.name, person.name, "mine", "in.txt", "theirs", "bobs"]
    person.s3.abort_multipart_upload(Bucket=workspace, Key="dir/up", UploadId=upload)


LISTINGS = {
    "v1": lambda s3, **kw: s3.list_objects(**kw),
    "v2": lambda s3, **kw: s3.list_objects_v2(**kw),
    "versions": lambda s3, **kw: s3.list_object_versions(**kw),
    "uploads": lambda s3, **kw: s3.list_multipart_uploads(**kw),
}
_ENTRIES = ("Contents", "CommonPrefixes", "Versions", "DeleteMarkers", "Uploads")


@pytest.mark.parametrize("listing", sorted(LISTINGS))
@pytest.mark.parametrize("prefix,delimiter", [("/", "/"), ("/", "d"), ("/", None), ("//", "/"), ("dir//", None),
                                              ("../", "/"), ("dir/../", None), ("./", None)])
def test_slash_and_dot_prefixes_stay_in_the_workspace(person, slash_workspace, listing, prefix, delimiter):
    """No key starts with '/' or holds '//' or a dot segment: such a prefix lists nothing, whatever the node does."""
    workspace, names = slash_workspace
    bodies = Bodies(person.s3)
    kw = {"Bucket": workspace, "Prefix": prefix, **({"Delimiter": delimiter} if delimiter else {})}
    page = LISTINGS[listing](person.s3, **kw)
    assert {k: page[k] for k in _ENTRIES if page.get(k)} == {}
    assert page["IsTruncated"] is False and page["Prefix"] == prefix
    assert bodies.leaked(*names) == []


def _code(fn, **kw) -> str:
    try:
        fn(**kw)
    except ClientError as exc:
        return f"{exc.response['ResponseMetadata']['HTTPStatusCode']} {exc.response['Error']['Code']}"
    return "200"


@pytest.mark.parametrize("key", ["a//b", "/lead", "//x", "a/b//", "dir//in.txt"])
def test_keys_the_node_would_alias_are_refused(person, slash_workspace, key):
    """SeaweedFS stores 'a//b' as 'a/b' and '/x' as 'x': such keys are refused, never silently aliased."""
    workspace, _ = slash_workspace
    s3 = person.s3
    s3.put_object(Bucket=workspace, Key="a/b", Body=b"the real a/b")
    assert _code(s3.put_object, Bucket=workspace, Key=key, Body=b"alias") == "400 InvalidArgument"
    assert _code(s3.get_object, Bucket=workspace, Key=key) == "400 InvalidArgument"
    assert _code(s3.head_object, Bucket=workspace, Key=key) == "400 400"   # HEAD has no body
    assert _code(s3.copy_object, Bucket=workspace, Key="copy", CopySource={"Bucket": workspace, "Key": key}) \
        == "400 InvalidArgument"
    assert _code(s3.create_multipart_upload, Bucket=workspace, Key=key) == "400 InvalidArgument"
    assert s3.get_object(Bucket=workspace, Key="a/b")["Body"].read() == b"the real a/b"
    assert s3.get_object(Bucket=workspace, Key="mine.txt")["Body"].read() == b"m"
