import json
import time

from policy.decide import (ANONYMOUS_OPERATIONS, WorkspaceView, anonymous_grants, decide_listing, decide_object,
                           effective_grants)

WS = WorkspaceView("proj", "node", "bucket", "u/owner/proj/", "owner", False)


def grants_for(user, shares=None, groups=(), scope=None, ws=WS):
    fields = [f"u:{user}"] + [f"g:{g}" for g in groups]
    lists = [json.dumps((shares or {}).get(f, [])) for f in fields]
    return effective_grants(user=user, groups=list(groups), ws=ws, share_lists=lists, now=time.time(), scope=scope)


def test_owner_is_admin_everywhere():
    g = grants_for("owner")
    assert decide_object(g, "admin", "any/key").allowed
    assert decide_object(g, "write", "").reason == "owner"


def test_stranger_has_nothing():
    g = grants_for("mallory")
    assert not decide_object(g, "read", "a").allowed
    assert not decide_listing(g, "read", "")[0].allowed


def test_prefix_share_does_not_cover_look_alikes():
    g = grants_for("bob", {"u:bob": [["read", "results/", 0, 7]]})
    assert decide_object(g, "read", "results/x.csv").allowed
    assert not decide_object(g, "read", "results").allowed
    assert not decide_object(g, "read", "resultsX/x.csv").allowed
    assert not decide_object(g, "write", "results/x.csv").allowed


def test_listing_with_prefix_share_is_filtered():
    g = grants_for("bob", {"u:bob": [["read", "results/", 0, 7]]})
    decision, listing = decide_listing(g, "read", "")
    assert decision.allowed and not listing.everything
    assert listing.shows_key("results/a") and not listing.shows_key("resultsX/a")
    assert listing.shows_common_prefix("results/") and not listing.shows_common_prefix("other/")
    decision, listing = decide_listing(g, "read", "results/sub/")
    assert decision.allowed and listing.everything
    assert not decide_listing(g, "read", "other/")[0].allowed


def test_expired_share_is_ignored():
    g = grants_for("bob", {"u:bob": [["write", "", int(time.time()) - 1, 3]]})
    assert not decide_object(g, "read", "a").allowed


def test_group_share_and_label():
    g = grants_for("carol", {"g:eng": [["write", "", 0, 9]]}, groups=["eng"])
    decision = decide_object(g, "write", "k")
    assert decision.allowed and decision.reason == "group:eng/share:9"


def test_public_is_read_only():
    ws = WorkspaceView("pub", "node", "bucket", "p/", "owner", True)
    g = grants_for("anyone", ws=ws)
    assert decide_object(g, "read", "k").allowed
    assert not decide_object(g, "write", "k").allowed


def test_scope_narrows_permission_and_prefix():
    scope = [{"workspace": "proj", "permission": "read", "prefix": "in/"}]
    g = grants_for("owner", scope=scope)
    assert decide_object(g, "read", "in/a").allowed
    assert not decide_object(g, "write", "in/a").allowed
    assert not decide_object(g, "read", "out/a").allowed
    assert not grants_for("owner", scope=[{"workspace": "other", "permission": "admin", "prefix": ""}])


def test_anonymous_reads_need_the_switch_the_mark_and_a_plain_read():
    marked = WorkspaceView("ws", "n", "b", "p/", "alice", True, "r", anonymous_read=True)
    unmarked = WorkspaceView("ws", "n", "b", "p/", "alice", True, "r")
    granted = anonymous_grants("GetObject", marked, allowed_by_operator=True)
    assert [(g.permission, g.prefix, g.label) for g in granted] == [("read", "", "anonymous")]
    for operation in ANONYMOUS_OPERATIONS:
        assert anonymous_grants(operation, marked, allowed_by_operator=True) == granted
        assert anonymous_grants(operation, marked, allowed_by_operator=False) == []
        assert anonymous_grants(operation, unmarked, allowed_by_operator=True) == []
        assert anonymous_grants(operation, None, allowed_by_operator=True) == []
    assert ANONYMOUS_OPERATIONS == {"GetObject", "HeadObject", "ListObjects", "ListObjectsV2"}
    for operation in ("PutObject", "DeleteObject", "DeleteObjects", "CopyObject", "CreateMultipartUpload",
                      "UploadPart", "PutBucketAcl", "GetObjectAcl", "GetBucketAcl", "ListObjectVersions",
                      "ListMultipartUploads", "GetObjectTagging", "HeadBucket", "ListBuckets", "Unsupported"):
        assert anonymous_grants(operation, marked, allowed_by_operator=True) == [], operation
    # read only: the anonymous grant allows no write, on any key
    assert not decide_object(granted, "write", "k").allowed
    assert decide_object(granted, "read", "any/key").reason == "anonymous"
