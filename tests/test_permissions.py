"""Issue 5: the permission model through the proxy, and the attacks a permission proxy must stop."""
from __future__ import annotations

import asyncio
import time
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone

import aiohttp
import boto3
import pytest
from botocore.exceptions import ClientError

from tests.conftest import make_person, s3_client, unique
from wio.client import ApiClientError


def code(exc_info) -> str:
    return exc_info.value.response["Error"]["Code"]


def denied(fn) -> str:
    with pytest.raises(ClientError) as exc:
        fn()
    return code(exc)


def test_group_share_and_membership_removal(stack, person, other, workspace):
    person.s3.put_object(Bucket=workspace, Key="g.txt", Body=b"g")
    group = unique("team")
    person.api.call("POST", "/groups", {"name": group})
    person.api.call("POST", f"/groups/{group}/members", {"user": other.name})
    person.api.call("POST", f"/workspaces/{workspace}/shares", {"group": group, "permission": "write"})
    other.s3.put_object(Bucket=workspace, Key="from-other", Body=b"o")
    person.api.call("DELETE", f"/groups/{group}/members/{other.name}")
    assert denied(lambda: other.s3.get_object(Bucket=workspace, Key="g.txt")) == "AccessDenied"


def test_prefix_share_and_look_alike_prefixes(person, other, workspace):
    for k in ("results/a.csv", "results", "resultsX/b.csv", "raw/c.csv"):
        person.s3.put_object(Bucket=workspace, Key=k, Body=k.encode())
    person.api.call("POST", f"/workspaces/{workspace}/shares", {"user": other.name, "permission": "read",
                                                                 "prefix": "results/"})
    assert other.s3.get_object(Bucket=workspace, Key="results/a.csv")["Body"].read() == b"results/a.csv"
    for k in ("results", "resultsX/b.csv", "raw/c.csv"):
        assert denied(lambda: other.s3.get_object(Bucket=workspace, Key=k)) == "AccessDenied"
    listing = other.s3.list_objects_v2(Bucket=workspace)
    assert [o["Key"] for o in listing["Contents"]] == ["results/a.csv"]
    top = other.s3.list_objects_v2(Bucket=workspace, Delimiter="/")
    assert [p["Prefix"] for p in top.get("CommonPrefixes", [])] == ["results/"]
    assert "Contents" not in top
    assert denied(lambda: other.s3.list_objects_v2(Bucket=workspace, Prefix="raw/")) == "AccessDenied"


def test_workspace_names_that_prefix_each_other(stack, person, other):
    proj, proj2 = unique("proj"), None
    proj2 = proj + "2"
    person.api.call("POST", "/workspaces", {"name": proj})
    other.api.call("POST", "/workspaces", {"name": proj2})
    other.s3.put_object(Bucket=proj2, Key="private.txt", Body=b"p2")
    assert [o["Key"] for o in person.s3.list_objects_v2(Bucket=proj).get("Contents", [])] == []
    assert denied(lambda: person.s3.get_object(Bucket=proj2, Key="private.txt")) == "AccessDenied"


@pytest.mark.parametrize("raw_key", ["../x", "a/%2e%2e/b", "a%2F..%2F..%2Fother", "a\\..\\b", "%2e%2e", "./a"])
def test_traversal_keys_are_refused(stack, person, workspace, raw_key):
    url = person.s3.generate_presigned_url("get_object", Params={"Bucket": workspace, "Key": "placeholder"})
    url = url.replace("/placeholder?", "/" + raw_key + "?")
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(url)
    assert exc.value.code in (400, 403)


def test_disabled_user_with_old_keys_and_reenable(stack, admin_api, workspace, person):
    person.s3.head_bucket(Bucket=workspace)
    admin_api.call("POST", f"/users/{person.name}/disable")
    assert denied(lambda: person.s3.head_bucket(Bucket=workspace)) in ("403", "AccessDenied")
    assert denied(lambda: person.s3.list_objects_v2(Bucket=workspace)) == "AccessDenied"
    with pytest.raises(ApiClientError) as exc:
        person.api.call("GET", "/me")
    assert exc.value.status == 403
    admin_api.call("POST", f"/users/{person.name}/enable")
    person.s3.list_objects_v2(Bucket=workspace)


def test_jwt_is_not_an_s3_signature(stack, person, workspace):
    req = urllib.request.Request(f"{stack.s3_url}/{workspace}", headers={"Authorization": f"Bearer {person.api.token}"})
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(req)
    assert exc.value.code in (400, 403)


def test_share_expiry_is_enforced(person, other, workspace):
    person.s3.put_object(Bucket=workspace, Key="e", Body=b"e")
    soon = (datetime.now(timezone.utc) + timedelta(seconds=2)).isoformat()
    person.api.call("POST", f"/workspaces/{workspace}/shares", {"user": other.name, "permission": "read",
                                                                 "expires_at": soon})
    assert other.s3.get_object(Bucket=workspace, Key="e")["Body"].read() == b"e"
    time.sleep(2.5)
    assert denied(lambda: other.s3.get_object(Bucket=workspace, Key="e")) == "AccessDenied"


def test_resharing_cannot_exceed_what_the_granter_holds(person, other, workspace, stack):
    third = make_person(stack, "carol")
    person.api.call("POST", f"/workspaces/{workspace}/shares", {"user": other.name, "permission": "write"})
    with pytest.raises(ApiClientError) as exc:
        other.api.call("POST", f"/workspaces/{workspace}/shares", {"user": third.name, "permission": "read"})
    assert exc.value.status == 403
    person.api.call("POST", f"/workspaces/{workspace}/shares", {"user": other.name, "permission": "admin",
                                                                 "prefix": "team/"})
    other.api.call("POST", f"/workspaces/{workspace}/shares", {"user": third.name, "permission": "read",
                                                                "prefix": "team/sub/"})
    with pytest.raises(ApiClientError) as exc:
        other.api.call("POST", f"/workspaces/{workspace}/shares", {"user": third.name, "permission": "read"})
    assert exc.value.status == 403


def test_public_workspace_is_readable_by_everyone(stack, person, other):
    name = unique("pub")
    person.api.call("POST", "/workspaces", {"name": name, "public": True})
    person.s3.put_object(Bucket=name, Key="open-data.csv", Body=b"1")
    assert other.s3.get_object(Bucket=name, Key="open-data.csv")["Body"].read() == b"1"
    assert name in [b["Name"] for b in other.s3.list_buckets()["Buckets"]]
    assert denied(lambda: other.s3.put_object(Bucket=name, Key="vandal", Body=b"x")) == "AccessDenied"


def test_temporary_and_scoped_keys(stack, person, workspace):
    person.s3.put_object(Bucket=workspace, Key="in/a", Body=b"a")
    person.s3.put_object(Bucket=workspace, Key="out/b", Body=b"b")
    scoped = person.api.call("POST", "/keys", {"name": "pipeline", "expires_in_seconds": 60,
                                               "scope": [{"workspace": workspace, "permission": "read",
                                                          "prefix": "in/"}]})
    assert scoped["session_token"] and scoped["expires_at"]
    s3 = s3_client(stack.s3_url, scoped)
    assert s3.get_object(Bucket=workspace, Key="in/a")["Body"].read() == b"a"
    assert denied(lambda: s3.get_object(Bucket=workspace, Key="out/b")) == "AccessDenied"
    assert denied(lambda: s3.put_object(Bucket=workspace, Key="in/new", Body=b"n")) == "AccessDenied"
    no_token = s3_client(stack.s3_url, {**scoped, "session_token": None})
    assert denied(lambda: no_token.get_object(Bucket=workspace, Key="in/a")) == "InvalidToken"
    person.api.call("DELETE", f"/keys/{scoped['access_key_id']}")
    assert denied(lambda: s3.get_object(Bucket=workspace, Key="in/a")) == "InvalidAccessKeyId"


def test_presigned_urls_expire_and_die_with_their_key(stack, person, workspace):
    person.s3.put_object(Bucket=workspace, Key="p", Body=b"p")
    key = person.api.call("POST", "/keys", {"name": "presign"})
    s3 = s3_client(stack.s3_url, key)
    short = s3.generate_presigned_url("get_object", Params={"Bucket": workspace, "Key": "p"}, ExpiresIn=1)
    longer = s3.generate_presigned_url("get_object", Params={"Bucket": workspace, "Key": "p"}, ExpiresIn=300)
    assert urllib.request.urlopen(longer).read() == b"p"
    time.sleep(2)
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(short)
    assert exc.value.code == 403
    person.api.call("DELETE", f"/keys/{key['access_key_id']}")
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(longer)
    assert exc.value.code == 403


def test_sts_assume_role_and_web_identity(stack, person, workspace):
    sts = boto3.client("sts", endpoint_url=stack.s3_url, region_name="us-east-1",
                       aws_access_key_id=person.key["access_key_id"],
                       aws_secret_access_key=person.key["secret_access_key"])
    creds = sts.assume_role(RoleArn="arn:aws:iam::wio:role/any", RoleSessionName="job", DurationSeconds=900)["Credentials"]
    temp = {"access_key_id": creds["AccessKeyId"], "secret_access_key": creds["SecretAccessKey"],
            "session_token": creds["SessionToken"]}
    s3 = s3_client(stack.s3_url, temp)
    s3.put_object(Bucket=workspace, Key="via-sts", Body=b"s")
    assert creds["AccessKeyId"] in [k["access_key_id"] for k in person.api.call("GET", "/keys")["keys"]]
    temp_sts = boto3.client("sts", endpoint_url=stack.s3_url, region_name="us-east-1",
                            aws_access_key_id=temp["access_key_id"], aws_secret_access_key=temp["secret_access_key"],
                            aws_session_token=temp["session_token"])
    with pytest.raises(ClientError):    # temporary credentials cannot extend themselves
        temp_sts.assume_role(RoleArn="arn:aws:iam::wio:role/any", RoleSessionName="again")
    person.api.call("DELETE", f"/keys/{creds['AccessKeyId']}")
    assert denied(lambda: s3.get_object(Bucket=workspace, Key="via-sts")) == "InvalidAccessKeyId"
    web = sts.assume_role_with_web_identity(RoleArn="arn:aws:iam::wio:role/any", RoleSessionName="web",
                                            WebIdentityToken=person.api.token)
    assert web["SubjectFromWebIdentityToken"] == person.name
    with pytest.raises(ClientError):
        sts.assume_role_with_web_identity(RoleArn="arn:aws:iam::wio:role/any", RoleSessionName="web",
                                          WebIdentityToken="not-a-token")


def test_post_policy_upload(stack, person, workspace):
    s3 = person.s3
    post = s3.generate_presigned_post(workspace, "uploads/${filename}", ExpiresIn=300,
                                      Conditions=[["content-length-range", 1, 1000],
                                                  ["starts-with", "$key", "uploads/"]])

    async def send(fields, data, url=post["url"]):
        form = aiohttp.FormData()
        for k, v in fields.items():
            form.add_field(k, v)
        form.add_field("file", data, filename="hello.txt", content_type="text/plain")
        async with aiohttp.ClientSession() as session:
            async with session.post(url, data=form) as resp:
                return resp.status, await resp.text()

    assert asyncio.run(send(post["fields"], b"from a browser"))[0] == 204
    got = s3.get_object(Bucket=workspace, Key="uploads/hello.txt")
    assert got["Body"].read() == b"from a browser" and got["ContentType"] == "text/plain"
    status, body = asyncio.run(send(post["fields"], b"x" * 2000))
    assert status == 400 and "EntityTooLarge" in body
    status, body = asyncio.run(send({**post["fields"], "key": "elsewhere/x"}, b"y"))
    assert status == 403 and "AccessDenied" in body
    other_ws = unique("otherws")
    person.api.call("POST", "/workspaces", {"name": other_ws})
    status, body = asyncio.run(send(post["fields"], b"z", url=f"{stack.s3_url}/{other_ws}"))
    assert status == 403   # the form is bound to its bucket


def test_explain_says_which_grant_decided(stack, person, other, workspace):
    share = person.api.call("POST", f"/workspaces/{workspace}/shares", {"user": other.name, "permission": "read",
                                                                         "prefix": "docs/"})
    allowed = person.api.call("POST", "/explain", {"user": other.name, "workspace": workspace,
                                                   "operation": "GetObject", "key": "docs/a.txt"})
    assert allowed["allowed"] and allowed["decided_by"] == f"share:{share['id']}"
    refused = person.api.call("POST", "/explain", {"user": other.name, "workspace": workspace,
                                                   "operation": "PutObject", "key": "docs/a.txt"})
    assert not refused["allowed"] and "write" in refused["decided_by"]
    with pytest.raises(ApiClientError) as exc:   # only admins of the workspace may ask
        other.api.call("POST", "/explain", {"user": person.name, "workspace": workspace, "operation": "GetObject"})
    assert exc.value.status == 403


def test_node_registration_refuses_disallowed_endpoints(stack, person):
    for endpoint in ("http://169.254.169.254", "file:///etc/passwd", "ftp://example.org", "http://[fe80::1]:9000",
                     "http://127.0.0.1:1/with/path"):
        with pytest.raises(ApiClientError) as exc:
            person.api.call("POST", "/nodes", {"name": unique("n").replace("-", ""), "endpoint": endpoint,
                                               "access_key": "a", "secret_key": "b"})
        assert exc.value.status == 400, endpoint
