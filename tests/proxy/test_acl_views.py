"""Read-only S3 views of what wio decides (issue 18): ACLs from shares, policy status from public."""
from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from tests.conftest import make_person, unique


def grants(acl: dict) -> list[tuple[str, str]]:
    out = []
    for grant in acl["Grants"]:
        grantee = grant["Grantee"]
        out.append((grantee.get("ID") or grantee.get("URI"), grant["Permission"]))
    return sorted(out)


def error_code(fn) -> str:
    with pytest.raises(ClientError) as exc:
        fn()
    return exc.value.response["Error"]["Code"]


def test_acls_show_owner_and_shares(stack, person, other, workspace):
    third = make_person(stack, "carol")
    group = unique("team")
    person.api.call("POST", "/groups", {"name": group})
    person.s3.put_object(Bucket=workspace, Key="results/a.csv", Body=b"a")
    person.s3.put_object(Bucket=workspace, Key="raw/b.csv", Body=b"b")
    person.api.call("POST", f"/workspaces/{workspace}/shares", {"user": other.name, "permission": "read"})
    person.api.call("POST", f"/workspaces/{workspace}/shares", {"group": group, "permission": "write"})
    share = person.api.call("POST", f"/workspaces/{workspace}/shares",
                            {"user": third.name, "permission": "admin", "prefix": "results/"})
    bucket_acl = person.s3.get_bucket_acl(Bucket=workspace)
    assert bucket_acl["Owner"] == {"ID": person.name, "DisplayName": person.name}
    whole = [(person.name, "FULL_CONTROL"), (other.name, "READ"), (f"wio:group/{group}", "READ"),
             (f"wio:group/{group}", "WRITE")]
    assert grants(bucket_acl) == sorted(whole)     # an ACL cannot say "under results/ only": not listed
    assert grants(person.s3.get_object_acl(Bucket=workspace, Key="results/a.csv")) == sorted(
        [(person.name, "FULL_CONTROL"), (other.name, "READ"), (f"wio:group/{group}", "READ"),
         (third.name, "FULL_CONTROL")])
    assert (third.name, "FULL_CONTROL") not in grants(person.s3.get_object_acl(Bucket=workspace, Key="raw/b.csv"))
    # a revoked share is gone from the next answer
    person.api.call("DELETE", f"/workspaces/{workspace}/shares/{share['id']}")
    assert (third.name, "FULL_CONTROL") not in grants(
        person.s3.get_object_acl(Bucket=workspace, Key="results/a.csv"))


def test_acls_need_admin_and_an_existing_object(person, other, workspace):
    person.s3.put_object(Bucket=workspace, Key="k", Body=b"k")
    person.api.call("POST", f"/workspaces/{workspace}/shares", {"user": other.name, "permission": "write"})
    assert error_code(lambda: other.s3.get_bucket_acl(Bucket=workspace)) == "AccessDenied"
    assert error_code(lambda: other.s3.get_object_acl(Bucket=workspace, Key="k")) == "AccessDenied"
    assert error_code(lambda: person.s3.get_object_acl(Bucket=workspace, Key="missing")) == "NoSuchKey"
    assert other.s3.get_bucket_policy_status(Bucket=workspace)["PolicyStatus"] == {"IsPublic": False}


def test_public_workspace_views(person, other):
    name = unique("pub")
    person.api.call("POST", "/workspaces", {"name": name, "public": True})
    person.s3.put_object(Bucket=name, Key="k", Body=b"k")
    everyone = ("http://acs.amazonaws.com/groups/global/AuthenticatedUsers", "READ")
    assert everyone in grants(person.s3.get_bucket_acl(Bucket=name))
    assert everyone in grants(person.s3.get_object_acl(Bucket=name, Key="k"))
    assert other.s3.get_bucket_policy_status(Bucket=name)["PolicyStatus"] == {"IsPublic": True}
    # an object that everyone can read cannot be made private by an ACL: wio's sharing decides
    assert error_code(lambda: person.s3.put_object_acl(Bucket=name, Key="k", ACL="private")) == "NotImplemented"


def test_acl_writes_stay_refused(person, other, workspace):
    person.s3.put_object(Bucket=workspace, Key="k", Body=b"k")
    assert person.s3.put_object_acl(Bucket=workspace, Key="k", ACL="private")["ResponseMetadata"][
        "HTTPStatusCode"] == 200
    for write in (lambda: person.s3.put_object_acl(Bucket=workspace, Key="k", ACL="public-read"),
                  lambda: person.s3.put_object_acl(Bucket=workspace, Key="k", GrantRead=f"id={other.name}"),
                  lambda: person.s3.put_bucket_acl(Bucket=workspace, GrantRead=f"id={other.name}"),
                  lambda: person.s3.put_bucket_acl(Bucket=workspace, ACL="public-read-write"),
                  lambda: person.s3.put_bucket_policy(Bucket=workspace, Policy="{}"),
                  lambda: person.s3.put_bucket_versioning(Bucket=workspace,
                                                          VersioningConfiguration={"Status": "Enabled"})):
        assert error_code(write) == "NotImplemented"
    person.api.call("POST", f"/workspaces/{workspace}/shares", {"user": other.name, "permission": "read"})
    # "private" would now hide the object from a share: not the ACL it has
    assert error_code(lambda: person.s3.put_object_acl(Bucket=workspace, Key="k", ACL="private")) == "NotImplemented"
    assert "Status" not in person.s3.get_bucket_versioning(Bucket=workspace)
