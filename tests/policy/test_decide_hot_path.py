"""The decision's caches and fast paths answer as the general way does.

Share lists are cached by their exact text (with the field they came from), so a change in Redis
(a revoked or new share) is a different key; expiry is still checked against ``now`` every time.
Also here: the fast paths of the request's first steps (key checks, classify without a query).
"""
from __future__ import annotations

import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policy.decide import Decision, Grant, WorkspaceView, decide_object, effective_grants
from proxy.addressing import _CONTROL, _DOT_SEGMENT, check_key, parse_address
from proxy.errors import S3Error
from proxy.operations import classify

WS = WorkspaceView("proj", "node", "bucket", "u/owner/proj/", "owner", False)


def grants(share_lists, *, user="alice", groups=("eng", "lab"), ws=WS, now=1000.0, scope=None):
    return effective_grants(user=user, groups=list(groups), ws=ws, share_lists=share_lists, now=now, scope=scope)


def test_labels_follow_the_field_even_for_the_same_text() -> None:
    text = json.dumps([["read", "data/", None, 12]])
    assert [g.label for g in grants([text, text, text])] == ["share:12", "group:eng/share:12", "group:lab/share:12"]
    assert [g.label for g in grants([None, text], groups=["ops"])] == ["group:ops/share:12"]


def test_a_changed_list_is_a_new_answer() -> None:
    before = json.dumps([["write", "", None, 14]])
    after = json.dumps([])  # the share was revoked: Redis returns other text
    assert decide_object(grants([before]), "write", "k").allowed
    assert not decide_object(grants([after]), "write", "k").allowed
    assert decide_object(grants([before.encode()]), "write", "k").allowed  # bytes from Redis too


def test_expiry_is_checked_on_every_request_with_a_cached_list() -> None:
    text = json.dumps([["read", "data/", 2000, 3], ["read", "", 0, 4]])
    assert [g.label for g in grants([text], now=1999.0)] == ["share:3", "share:4"]
    assert [g.label for g in grants([text], now=2000.0)] == ["share:4"]
    assert [g.label for g in grants([text], now=1999.0)] == ["share:3", "share:4"]


def test_extra_lists_beyond_the_groups_are_ignored_as_before() -> None:
    text = json.dumps([["read", "", None, 1]])
    assert [g.label for g in grants([None, None, None, text], groups=["a", "b"])] == []
    assert [g.label for g in grants([text], groups=["a", "b"])] == ["share:1"]
    assert grants([], user="owner") == [Grant("admin", "", "owner")]


def test_owner_public_and_scope() -> None:
    public = WorkspaceView("proj", "node", "bucket", "p/", "owner", True)
    labels = [g.label for g in grants([None], user="owner", ws=public)]
    assert labels == ["owner", "public"]
    scoped = grants([None], user="owner", scope=[{"workspace": "proj", "permission": "read", "prefix": "a/"}])
    assert scoped == [Grant("read", "a/", "owner+scope")]


def test_decide_object_takes_the_first_sufficient_covering_grant() -> None:
    g = [Grant("read", "a/", "r"), Grant("write", "b/", "wb"), Grant("write", "", "w"), Grant("admin", "", "o")]
    assert decide_object(g, "read", "a/x") == Decision(True, "r")
    assert decide_object(g, "write", "a/x") == Decision(True, "w")
    assert decide_object(g, "write", "b/x") == Decision(True, "wb")
    assert decide_object(g, "admin", "") == Decision(True, "o")
    assert decide_object(g[:2], "write", "a/x") == Decision(False, "no write grant covers this key")
    assert decide_object([], "read", "a") == Decision(False, "no grant on this workspace")
    assert decide_object(g, "read", "a/x") is decide_object(g, "read", "a/x")  # shared, immutable


# -- addressing and classify ------------------------------------------------------------------------


def _reference_key_error(key: str) -> bool:
    return bool(_DOT_SEGMENT.search(key) or _CONTROL.search(key) or key.startswith("/") or "//" in key)


@settings(database=None, max_examples=300, deadline=None)
@given(key=st.text(st.sampled_from(list("a./\\\x00\x1f\x7f\x85 é")), min_size=1, max_size=10))
def test_key_checks_refuse_exactly_what_the_regexes_refuse(key) -> None:
    try:
        check_key(key)
        refused = False
    except S3Error:
        refused = True
    assert refused == _reference_key_error(key)


@pytest.mark.parametrize("key", ["..", ".", "./a", "a/..", "a/./b", "a\\..\\b", "a\x00b", "a\x7f", "a\nb"])
def test_bad_keys_are_refused(key) -> None:
    with pytest.raises(S3Error):
        check_key(key)


def test_parse_address_buckets_and_keys() -> None:
    a = parse_address("/ws/a/b.txt?x=1", "h:1", None)
    assert (a.bucket, a.key, a.virtual_host) == ("ws", "a/b.txt", False)
    assert parse_address("/w%73/k", None, None).bucket == "ws"
    assert parse_address("/ws%ff/k", None, None).bucket == "ws\ufffd"
    assert parse_address("/wé/k", None, None).bucket == "wé"
    v = parse_address("/k%20x", "ws.s3.example:443", "s3.example")
    assert (v.bucket, v.key, v.virtual_host) == ("ws", "k x", True)
    assert parse_address("/", None, None).bucket is None
    with pytest.raises(S3Error):
        parse_address("ws/k", None, None)


@pytest.mark.parametrize("method, query, headers, name", [
    ("GET", {}, {}, "GetObject"),
    ("HEAD", {}, {}, "HeadObject"),
    ("PUT", {}, {}, "PutObject"),
    ("PUT", {}, {"x-amz-copy-source": "/a/b"}, "CopyObject"),
    ("DELETE", {}, {}, "DeleteObject"),
    ("GET", {"X-Amz-Signature": "s"}, {}, "GetObject"),
    ("GET", {"tagging": ""}, {}, "GetObjectTagging"),
])
def test_classify_objects(method, query, headers, name) -> None:
    op = classify(method, "b", "k", query, headers)
    assert op.name == name
    assert op == classify(method, "b", "k", dict(query), dict(headers))


def test_classify_refusals_are_unchanged() -> None:
    for method in ("POST", "PATCH"):
        with pytest.raises(S3Error):
            classify(method, "b", "k", {}, {})
    for sub in ("retention", "torrent"):
        with pytest.raises(S3Error) as caught:
            classify("GET", "b", "k", {sub: "", "x": "1"}, {})
        assert re.search(sub, caught.value.message)
    with pytest.raises(S3Error) as caught:
        classify("PUT", "b", None, {"policy": ""}, {})
    assert "policy" in caught.value.message
    with pytest.raises(S3Error) as caught:
        classify("GET", "b", None, {"list-type": "2", "encryption": ""}, {})
    assert "encryption" in caught.value.message
    # read-only views (proxy.views): ACLs from shares, and S3's "not configured" for what wio does not offer
    assert classify("GET", "b", "k", {"acl": "", "x": "1"}, {}).name == "GetObjectAcl"
    assert classify("PUT", "b", "k", {"acl": ""}, {}).name == "PutObjectAcl"
    assert classify("GET", "b", None, {"acl": ""}, {}).name == "GetBucketAcl"
    assert classify("GET", "b", None, {"list-type": "2", "policy": ""}, {}).name == "GetBucketPolicy"
    assert classify("GET", "b", None, {"list-type": "2", "prefix": "a/"}, {}).name == "ListObjectsV2"
