"""Read-only S3 views of who may do what: GetBucketAcl, GetObjectAcl, GetBucketPolicyStatus.

wio decides access from its own shares (DESIGN.md "Permission levels"); these calls only show that
decision in S3's shapes, so tools that read bucket configuration work. Writing ACLs or policies stays
refused (``proxy.operations``). The owner holds FULL_CONTROL; each live share is a grant to its user
(CanonicalUser, ID = username) or group (Group, URI ``wio:group/{name}``); a public workspace grants
READ to S3's AuthenticatedUsers group, as every authenticated wio user may read it. An ACL cannot
say "only under this prefix": the bucket's ACL lists whole-workspace shares, an object's ACL the
shares whose prefix covers its key.
"""
from __future__ import annotations

import time
from xml.sax.saxutils import escape

from aiohttp import web

from policy.decide import workspace_shares
from proxy.call import Call
from proxy.errors import S3Error
from proxy.listing import S3_NS
from proxy.objects import head_size
from proxy.relay import xml_response
from proxy.resources import AUTHZ

__all__ = ["get_bucket_acl", "get_object_acl", "get_bucket_policy_status"]

AUTHENTICATED_USERS = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers"
_XSI = 'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'
# wio permission level -> S3 ACL permissions, on a bucket and on an object (objects have no WRITE)
_BUCKET_PERMISSIONS = {"read": ("READ",), "write": ("READ", "WRITE"), "admin": ("FULL_CONTROL",)}
_OBJECT_PERMISSIONS = {"read": ("READ",), "write": ("READ",), "admin": ("FULL_CONTROL",)}


def _user(name: str) -> str:
    return (f'<Grantee {_XSI} xsi:type="CanonicalUser"><ID>{escape(name)}</ID>'
            f"<DisplayName>{escape(name)}</DisplayName></Grantee>")


def _group(uri: str) -> str:
    return f'<Grantee {_XSI} xsi:type="Group"><URI>{escape(uri)}</URI></Grantee>'


async def _acl(call: Call, covers, permissions: dict[str, tuple[str, ...]]) -> web.Response:
    ws = call.target.ws
    grants = [(_user(ws.owner), "FULL_CONTROL")]
    shares = workspace_shares(await call.request.app[AUTHZ].share_lists(ws.name), time.time())
    for kind, name, level, prefix in shares:
        if covers(prefix):
            grantee = _user(name) if kind == "user" else _group(f"wio:group/{name}")
            grants += [(grantee, permission) for permission in permissions[level]]
    if ws.public:
        grants.append((_group(AUTHENTICATED_USERS), "READ"))
    body = "".join(f"<Grant>{grantee}<Permission>{permission}</Permission></Grant>" for grantee, permission in grants)
    return xml_response(f'<AccessControlPolicy xmlns="{S3_NS}"><Owner><ID>{escape(ws.owner)}</ID><DisplayName>'
                        f"{escape(ws.owner)}</DisplayName></Owner><AccessControlList>{body}</AccessControlList>"
                        "</AccessControlPolicy>")


async def get_bucket_acl(call: Call) -> web.Response:
    return await _acl(call, lambda prefix: prefix == "", _BUCKET_PERMISSIONS)


async def get_object_acl(call: Call) -> web.Response:
    if await head_size(call, call.target, call.key) is None:
        raise S3Error("NoSuchKey")
    return await _acl(call, call.key.startswith, _OBJECT_PERMISSIONS)


async def get_bucket_policy_status(call: Call) -> web.Response:
    public = "true" if call.target.ws.public else "false"
    return xml_response(f'<PolicyStatus xmlns="{S3_NS}"><IsPublic>{public}</IsPublic></PolicyStatus>')
