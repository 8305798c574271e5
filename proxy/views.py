"""Read-only S3 views of what wio decides: ACLs, policy status, and the configuration it does not offer.

wio decides access from its own shares (docs/design.md, "Permission levels"); these calls only show that
decision in S3's shapes, so tools that read bucket configuration work. Writing ACLs or policies stays
refused (``proxy.operations``), except setting an object's ACL to the one it already has.

ACLs: the owner holds FULL_CONTROL; each live share is a grant to its user (CanonicalUser, ID =
username) or group (Group, URI ``wio:group/{name}``); a public workspace grants READ to S3's
AuthenticatedUsers group, as every authenticated wio user may read it, and a workspace marked
anonymous_read READ to AllUsers too, while the operator allows anonymous reads (proxy/anonymous.py).
An ACL cannot say "only under this prefix": the bucket's ACL lists whole-workspace shares, an object's
ACL the shares whose prefix covers its key. Configuration wio does not offer (policy, CORS, lifecycle, tagging, website,
replication, object lock) reads as S3 reads a bucket that has none: its 404 "not configured" error.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from xml.sax.saxutils import escape

from aiohttp import web

from policy.decide import workspace_shares
from proxy.body import read_verified
from proxy.call import Call
from proxy.errors import S3Error
from proxy.listing import S3_NS
from proxy.objects import head_size
from proxy.relay import xml_response
from proxy.resources import AUTHZ, SETTINGS
from signing import make_body_verifier

__all__ = ["get_bucket_acl", "get_object_acl", "put_object_acl", "get_bucket_policy_status", "not_configured",
           "NOT_CONFIGURED"]

AUTHENTICATED_USERS = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers"
ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"
_XSI = 'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'
# wio permission level -> S3 ACL permissions, on a bucket and on an object (objects have no WRITE)
_BUCKET_PERMISSIONS = {"read": ("READ",), "write": ("READ", "WRITE"), "admin": ("FULL_CONTROL",)}
_OBJECT_PERMISSIONS = {"read": ("READ",), "write": ("READ",), "admin": ("FULL_CONTROL",)}


def _user(name: str) -> str:
    return (f'<Grantee {_XSI} xsi:type="CanonicalUser"><ID>{escape(name)}</ID>'
            f"<DisplayName>{escape(name)}</DisplayName></Grantee>")


def _group(uri: str) -> str:
    return f'<Grantee {_XSI} xsi:type="Group"><URI>{escape(uri)}</URI></Grantee>'


async def _grants(call: Call, covers: Callable[[str], bool],
                  permissions: Mapping[str, tuple[str, ...]]) -> list[tuple[str, str]]:
    """(Grantee XML, S3 permission) for the owner, every live share ``covers(prefix)`` accepts, and public."""
    ws = call.authorized_target().ws
    grants = [(_user(ws.owner), "FULL_CONTROL")]
    shares = workspace_shares(await call.request.app[AUTHZ].share_lists(ws.name), time.time())
    for kind, name, level, prefix in shares:
        if covers(prefix):
            grantee = _user(name) if kind == "user" else _group(f"wio:group/{name}")
            grants += [(grantee, permission) for permission in permissions[level]]
    if ws.public:
        grants.append((_group(AUTHENTICATED_USERS), "READ"))
    if _anonymous_reads(call):
        grants.append((_group(ALL_USERS), "READ"))
    return grants


def _anonymous_reads(call: Call) -> bool:
    """Whether unsigned requests may read the workspace now: its mark and the operator's switch."""
    return call.authorized_target().ws.anonymous_read and call.request.app[SETTINGS].anonymous_reads


def _acl_response(owner: str, grants: list[tuple[str, str]]) -> web.Response:
    body = "".join(f"<Grant>{grantee}<Permission>{permission}</Permission></Grant>" for grantee, permission in grants)
    return xml_response(f'<AccessControlPolicy xmlns="{S3_NS}"><Owner><ID>{escape(owner)}</ID><DisplayName>'
                        f"{escape(owner)}</DisplayName></Owner><AccessControlList>{body}</AccessControlList>"
                        "</AccessControlPolicy>")


async def _object_grants(call: Call) -> list[tuple[str, str]]:
    key = call.key
    if key is None:
        raise RuntimeError(f"{call.op.name} has no object key")
    if await head_size(call, call.authorized_target(), key) is None:
        raise S3Error("NoSuchKey")
    return await _grants(call, key.startswith, _OBJECT_PERMISSIONS)


async def get_bucket_acl(call: Call) -> web.Response:
    return _acl_response(call.authorized_target().ws.owner,
                         await _grants(call, lambda prefix: prefix == "", _BUCKET_PERMISSIONS))


async def get_object_acl(call: Call) -> web.Response:
    return _acl_response(call.authorized_target().ws.owner, await _object_grants(call))


async def put_object_acl(call: Call) -> web.Response:
    """Only the ACL the object already has can be "set": the canned ``private`` on an object that no
    share or public workspace opens to anyone but its owner. Any other ACL would be a change wio
    makes with shares, so it is refused as not implemented."""
    verifier = make_body_verifier(call.auth, call.signing_ctx, list(call.request.headers.items()))
    body = await read_verified(call.request, verifier, 64 << 10)
    canned = call.request.headers.get("x-amz-acl", "").strip()
    grant_headers = [name for name in call.request.headers if name.lower().startswith("x-amz-grant-")]
    if body.strip() or grant_headers or canned != "private" or len(await _object_grants(call)) > 1:
        raise S3Error("NotImplemented", "Object access is granted with wio shares, not ACLs; "
                                        "only the ACL the object already has (private) can be set")
    return web.Response(status=200)


async def get_bucket_policy_status(call: Call) -> web.Response:
    public = "true" if call.authorized_target().ws.public or _anonymous_reads(call) else "false"
    return xml_response(f'<PolicyStatus xmlns="{S3_NS}"><IsPublic>{public}</IsPublic></PolicyStatus>')


# operation -> S3's error for a bucket without that configuration
NOT_CONFIGURED = {
    "GetBucketPolicy": "NoSuchBucketPolicy", "GetBucketCors": "NoSuchCORSConfiguration",
    "GetBucketLifecycleConfiguration": "NoSuchLifecycleConfiguration", "GetBucketTagging": "NoSuchTagSet",
    "GetBucketWebsite": "NoSuchWebsiteConfiguration", "GetBucketReplication": "ReplicationConfigurationNotFoundError",
    "GetObjectLockConfiguration": "ObjectLockConfigurationNotFoundError",
}


async def not_configured(call: Call) -> web.Response:
    raise S3Error(NOT_CONFIGURED[call.op.name])
