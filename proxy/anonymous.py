"""Unsigned requests: S3's anonymous caller (AllUsers), recognised here and nowhere else.

A request with no Authorization header, no credential in its query and no session token is the
anonymous caller. It may read objects and list them (``policy.decide.ANONYMOUS_OPERATIONS``) in a
workspace marked ``anonymous_read`` (S3's canned ACL ``public-read``), and only while the operator
allows anonymous reads (``WIO_ANONYMOUS_READS``, off by default like AWS's Block Public Access). The
mark is read from the Redis projection on every request (``policy/anonymous.lua``): clearing it takes
effect on the next request, and Redis unreachable answers 503 (fail closed). Everything else answers
403 AccessDenied, as every unsigned request did before; a request carrying any credential is never
anonymous: a bad presigned URL fails its signature check.
"""
from __future__ import annotations

from collections.abc import Mapping

from aiohttp import web

from policy.decide import ANONYMOUS, ANONYMOUS_OPERATIONS, anonymous_grants
from policy.operations import Operation
from proxy.authz import Caller, Target
from proxy.call import CALL, Call
from proxy.errors import S3Error
from proxy.resources import AUTHZ, SETTINGS
from proxy.state import USER
from signing import QUERY_AUTH_PARAMS

__all__ = ["is_anonymous", "authorize_anonymous", "ANONYMOUS_CALLER"]

# Query parameters and headers that carry (or belong to) a credential: SigV4 presigned, SigV2 presigned.
_CREDENTIAL_PARAMS = QUERY_AUTH_PARAMS | {"AWSAccessKeyId", "Signature"}
_CREDENTIAL_HEADERS = ("authorization", "x-amz-security-token")
ANONYMOUS_CALLER = Caller(access_key_id="", user=ANONYMOUS, groups=[], is_admin=False, scope=None, secret_key="")
_DENIED = "Anonymous requests are not allowed; sign with a wio access key"


def is_anonymous(headers: Mapping[str, str], params: list[tuple[str, str]]) -> bool:
    """Whether the request carries no credential at all (``headers``: lower-cased names)."""
    return (not any(name in headers for name in _CREDENTIAL_HEADERS)
            and not any(name in _CREDENTIAL_PARAMS for name, _ in params))


async def authorize_anonymous(request: web.Request, op: Operation, bucket: str | None, key: str | None,
                              params: list[tuple[str, str]]) -> Call:
    """Steps 2-3 for the anonymous caller: the Call to serve, or S3Error (403, or 503 without Redis)."""
    request[USER] = ANONYMOUS
    allowed_by_operator = request.app[SETTINGS].anonymous_reads
    found = None
    if allowed_by_operator and op.name in ANONYMOUS_OPERATIONS and bucket is not None:
        found = await request.app[AUTHZ].load_anonymous(bucket)
    grants = anonymous_grants(op.name, found[0] if found else None, allowed_by_operator=allowed_by_operator)
    if not grants or found is None:
        raise S3Error("AccessDenied", _DENIED)
    ws, node = found
    call = Call(request=request, op=op, bucket=bucket, key=key, params=params, caller=ANONYMOUS_CALLER,
                auth=None, signing_ctx=None, target=Target(ws, node, grants))
    call.decided_by = call.decide(call.param("prefix") or "", denied=_DENIED)
    request[CALL] = call
    return call
