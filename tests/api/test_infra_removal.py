"""Removing roots and nodes through the admin API: who may, what is refused, and what goes from the
projection the proxy reads (and what stays on the node: the buckets and their data)."""
from __future__ import annotations

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from redis import Redis

from tests.conftest import Person, unique
from wio.client import ApiClientError


def _error(call) -> tuple[int, str, str]:
    with pytest.raises(ApiClientError) as exc:
        call()
    return exc.value.status, exc.value.code, str(exc.value)


def _node_of(person: Person, s3_node) -> str:
    """A node registered by ``person`` (named to sort after the bootstrap node 'local', which other
    tests take as the first node an administrator sees)."""
    name = unique("rmnode")
    person.api.call("POST", "/nodes", {"name": name, "endpoint": s3_node.endpoint, "region": s3_node.region,
                                       "access_key": s3_node.access_key, "secret_key": s3_node.secret_key})
    return name


def _root_on(person: Person, node: str, kind: str = "private") -> tuple[str, str]:
    root, bucket = unique("rmroot"), unique("rm-bucket-")
    person.api.call("POST", "/roots", {"name": root, "node": node, "bucket": bucket, "type": kind})
    return root, bucket


def _direct(s3_node):
    return boto3.client("s3", endpoint_url=s3_node.endpoint, aws_access_key_id=s3_node.access_key,
                        aws_secret_access_key=s3_node.secret_key, region_name=s3_node.region,
                        config=Config(s3={"addressing_style": "path"}))


@pytest.fixture
def redis(stack):
    client = Redis.from_url(stack.settings.redis_url, decode_responses=True)
    yield client
    client.close()


def _root_names(api) -> set[str]:
    return {r["name"] for r in api.call("GET", "/roots")["roots"]}


def test_a_root_is_removed_by_its_nodes_owner_or_an_administrator(stack, person, other, admin_api, s3_node, redis):
    node = _node_of(person, s3_node)
    try:
        mine, bucket = _root_on(person, node)
        by_admin, _ = _root_on(person, node)
        _direct(s3_node).put_object(Bucket=bucket, Key="kept.txt", Body=b"still here")
        admin_api.call("PUT", f"/roots/{mine}/quota", {"max_bytes": 1000})
        assert redis.hgetall(f"wio:r:{mine}") == {"qb": "1000", "qo": ""}
        redis.hset(f"wio:use:r:{mine}", mapping={"bytes": "10", "objects": "1"})   # as the proxy counts

        # Another user sees the root (GET /roots lists every root) but may not remove it.
        assert mine in _root_names(other.api)
        status, code, _ = _error(lambda: other.api.call("DELETE", f"/roots/{mine}"))
        assert (status, code) == (403, "Forbidden")
        assert mine in _root_names(person.api)

        person.api.call("DELETE", f"/roots/{mine}")
        admin_api.call("DELETE", f"/roots/{by_admin}")   # an administrator may remove roots on any node
        assert not {mine, by_admin} & _root_names(person.api)
        # Gone from the projection, usage counts included; the bucket and its data stay on the node.
        assert not redis.exists(f"wio:r:{mine}", f"wio:use:r:{mine}", f"wio:r:{by_admin}")
        assert _direct(s3_node).get_object(Bucket=bucket, Key="kept.txt")["Body"].read() == b"still here"
        assert _error(lambda: person.api.call("DELETE", f"/roots/{mine}"))[:2] == (404, "NoSuchRoot")
        assert _error(lambda: person.api.call("GET", f"/roots/{mine}/usage"))[:2] == (404, "NoSuchRoot")
    finally:
        person.api.call("DELETE", f"/nodes/{node}")


def test_a_root_holding_workspaces_is_refused_with_their_number(person, admin_api, s3_node):
    node = _node_of(person, s3_node)
    try:
        root, _ = _root_on(person, node)
        names = [unique("rmws") for _ in range(2)]
        for name in names:
            person.api.call("POST", "/workspaces", {"name": name, "root": root})
        for api in (person.api, admin_api):
            status, code, message = _error(lambda: api.call("DELETE", f"/roots/{root}"))
            assert (status, code) == (409, "RootNotEmpty") and "still holds 2 workspaces" in message
        person.api.call("DELETE", f"/workspaces/{names[0]}")
        assert "still holds 1 workspace;" in _error(lambda: person.api.call("DELETE", f"/roots/{root}"))[2]
        assert {w["name"] for w in person.api.call("GET", "/workspaces")["workspaces"]} >= set(names[1:])
        person.api.call("DELETE", f"/workspaces/{names[1]}")
        person.api.call("DELETE", f"/roots/{root}")
        assert root not in _root_names(person.api)
    finally:
        person.api.call("DELETE", f"/nodes/{node}")


def test_an_unknown_root_is_not_found(person):
    status, code, message = _error(lambda: person.api.call("DELETE", f"/roots/{unique('nothing')}"))
    assert (status, code) == (404, "NoSuchRoot") and "no root named" in message


def test_a_removed_node_takes_its_roots_and_workspaces_out_of_the_proxy(stack, person, other, admin_api, s3_node,
                                                                        redis):
    node = _node_of(person, s3_node)
    root, bucket = _root_on(person, node)
    ws = unique("rmws")
    person.api.call("POST", "/workspaces", {"name": ws, "root": root})
    person.s3.put_object(Bucket=ws, Key="data.csv", Body=b"a,b\n")
    person.api.call("POST", f"/workspaces/{ws}/shares", {"user": other.name, "permission": "read"})
    assert other.s3.get_object(Bucket=ws, Key="data.csv")["Body"].read() == b"a,b\n"
    assert ws in redis.smembers(f"wio:uw:{other.name}")

    # Only its owner (or an administrator) may; to anyone else the node does not exist.
    assert _error(lambda: other.api.call("DELETE", f"/nodes/{node}"))[:2] == (404, "NoSuchNode")
    person.api.call("DELETE", f"/nodes/{node}")

    for s3 in (person.s3, other.s3):
        with pytest.raises(ClientError) as exc:
            s3.get_object(Bucket=ws, Key="data.csv")
        assert exc.value.response["Error"]["Code"] == "NoSuchBucket"
    assert ws not in {b["Name"] for b in other.s3.list_buckets()["Buckets"]}
    assert not redis.exists(f"wio:n:{node}", f"wio:r:{root}", f"wio:use:r:{root}", f"wio:w:{ws}", f"wio:s:{ws}")
    assert ws not in redis.smembers(f"wio:uw:{other.name}") | redis.smembers(f"wio:uw:{person.name}")
    assert root not in _root_names(admin_api)
    assert _error(lambda: person.api.call("GET", f"/workspaces/{ws}"))[:2] == (404, "NoSuchWorkspace")
    # The data is where it was, on the node.
    objects = _direct(s3_node).list_objects_v2(Bucket=bucket)["Contents"]
    assert [o["Key"] for o in objects] == [f"{person.name}/{ws}/data.csv"]
