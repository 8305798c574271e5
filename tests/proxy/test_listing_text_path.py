"""The node's real listing pages take the text path (issue 21): were SeaweedFS to change its XML, the
speed would silently fall back to the tree path; this says so instead."""
from __future__ import annotations

import re

import boto3
import pytest
from botocore.config import Config

from foundation.secrets import SecretBox
from policy.decide import ListingFilter
from proxy.listing import ListingView, _stream_listing, _tree_listing
from tests.conftest import unique


@pytest.fixture
def node_pages(s3_node):
    """Raw pages of the four listing kinds the text path takes, straight from the node."""
    s3 = boto3.client("s3", endpoint_url=s3_node.endpoint, aws_access_key_id=s3_node.access_key,
                      aws_secret_access_key=s3_node.secret_key, region_name=s3_node.region,
                      config=Config(s3={"addressing_style": "path"}))
    bucket = unique("textpath")
    s3.create_bucket(Bucket=bucket)
    for key in ["ws/a", "ws/b&c", "ws/d/e", "ws/d/f", "ws/é z"]:
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    raw: dict[str, bytes] = {}
    current = [""]

    def keep(response_dict, **_):
        raw[current[0]] = response_dict["body"]
    s3.meta.events.register("before-parse.s3.*", keep)
    for name, call, kw in [("ListObjectsV2", s3.list_objects_v2, {"MaxKeys": 3}),
                           ("ListObjectsV2 delimited", s3.list_objects_v2, {"Delimiter": "/"}),
                           ("ListObjects", s3.list_objects, {"MaxKeys": 2}),
                           ("ListObjectVersions", s3.list_object_versions, {})]:
        current[0] = name
        call(Bucket=bucket, Prefix="ws/", **kw)
    yield raw
    for key in ["ws/a", "ws/b&c", "ws/d/e", "ws/d/f", "ws/é z"]:
        s3.delete_object(Bucket=bucket, Key=key)
    s3.delete_bucket(Bucket=bucket)


def test_the_nodes_listing_pages_take_the_text_path(node_pages):
    assert len(node_pages) == 4
    for name, body in node_pages.items():
        view = ListingView(operation=name.split()[0], workspace="ws", physical_prefix="ws/", owner="alice",
                           box=SecretBox(b"\x01" * 32), echo={"prefix": ""}, listing=ListingFilter(("d/",)))
        out = _stream_listing(body, view, False)
        assert out is not None, f"{name}: the text path declined the node's page {body[:300]!r}"
        names = re.findall(rb"<(?:Key|Prefix)>([^<]*)</", out)   # (the empty echoed prefix is <Prefix />)
        assert all(name.startswith(b"d/") for name in names), names
        assert names == re.findall(rb"<(?:Key|Prefix)>([^<]*)</", _tree_listing(body, view, False))
