"""An STS-compatible endpoint, so the SDKs' standard credential providers work against wio.

- ``AssumeRoleWithWebIdentity``: the web identity token is a wio login token (JWT), or, with single
  sign-on configured, an ID token from the OpenID provider, which the admin API verifies and exchanges
  for a wio login token (``POST /api/v1/auth/oidc/token``; the proxy holds no provider configuration).
- ``AssumeRole``: signed (SigV4, service ``sts``) with a long-lived wio key; the temporary key
  inherits that key's scope.
Both return temporary credentials (access key, secret, session token, expiry) issued through the
admin API, so they are ordinary wio keys: listed, scoped, and revocable like every other key.
"""
from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape

import aiohttp
from aiohttp import web

from proxy.authz import Caller
from proxy.call import Call, StsForm
from proxy.errors import S3Error
from proxy.operations import Operation
from proxy.resources import API_HTTP, AUTHZ, SETTINGS, proxy_api_headers
from proxy.state import ACCESS_KEY, OPERATION, USER
from signing import SigningError, parse_request_auth, verify_signature

__all__ = ["authorize_sts", "sts_action"]

STS_NS = "https://sts.amazonaws.com/doc/2011-06-15/"
MIN_DURATION, MAX_DURATION, DEFAULT_DURATION = 900, 43200, 3600


def _duration(form: dict[str, str]) -> int:
    raw = form.get("DurationSeconds", str(DEFAULT_DURATION))
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if not MIN_DURATION <= value <= MAX_DURATION:
        raise S3Error("InvalidArgument", f"DurationSeconds must be between {MIN_DURATION} and {MAX_DURATION}")
    return value


async def _api(request: web.Request, method: str, path: str, headers: dict[str, str],
               body: dict[str, Any] | None = None, expect: int = 200) -> dict[str, Any]:
    settings = request.app[SETTINGS]
    try:
        async with request.app[API_HTTP].request(method, settings.api_url.rstrip("/") + path, json=body,
                                                 headers=headers) as resp:
            data = await resp.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError):
        raise S3Error("ServiceUnavailable", "The wio admin service is unavailable") from None
    if resp.status != expect:
        message = (data or {}).get("error", {}).get("message", "could not issue credentials")
        raise S3Error("AccessDenied" if resp.status in (401, 403) else "ServiceUnavailable", message)
    if not isinstance(data, dict):  # an empty (null) or non-object answer: the caller's indexing would be a 500
        raise S3Error("ServiceUnavailable", "The wio admin service gave an unreadable answer")
    return data


async def _issue(request: web.Request, headers: dict[str, str], name: str, duration: int,
                 scope: list[dict[str, Any]] | None, parent: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"name": name[:128], "expires_in_seconds": duration}
    if scope is not None:
        body["scope"] = scope
    if parent is not None:
        body["parent"] = parent  # deleting the parent key revokes this one
    return await _api(request, "POST", "/api/v1/keys", headers, body, expect=201)


async def _web_identity(request: web.Request, token: str) -> tuple[dict[str, str], str, str]:
    """(headers that act as the caller at the API, username, subject) for a web identity token: a wio
    login token (checked by the API: the proxy does not hold the key that signs them), else, with single
    sign-on configured, a provider ID token that the API verifies and exchanges for a wio login token."""
    bearer = {"Authorization": f"Bearer {token}"}
    try:
        username = (await _api(request, "GET", "/api/v1/me", bearer))["username"]
        return bearer, username, username
    except S3Error as exc:
        if exc.code != "AccessDenied":
            raise
        if not request.app[SETTINGS].oidc_issuer:
            raise S3Error("AccessDenied", "The web identity token is not a valid wio login token") from None
    answer = await _api(request, "POST", "/api/v1/auth/oidc/token", {}, {"id_token": token})
    return {"Authorization": f"Bearer {answer['access_token']}"}, answer["username"], answer["subject"]


def _credentials_xml(action: str, creds: dict[str, Any], extra: str) -> web.Response:
    expiration = creds["expires_at"]
    body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<{action}Response xmlns="{STS_NS}"><{action}Result>'
            f"<Credentials><AccessKeyId>{creds['access_key_id']}</AccessKeyId>"
            f"<SecretAccessKey>{escape(creds['secret_access_key'])}</SecretAccessKey>"
            f"<SessionToken>{escape(creds['session_token'])}</SessionToken>"
            f"<Expiration>{expiration}</Expiration></Credentials>{extra}</{action}Result>"
            f"<ResponseMetadata><RequestId>{creds['access_key_id']}</RequestId></ResponseMetadata>"
            f"</{action}Response>")
    return web.Response(body=body.encode(), content_type="text/xml")


async def authorize_sts(request: web.Request, op: Operation) -> Call:
    """The STS door (``Strategy.STS``): read the form, authenticate the action's caller. AssumeRole is
    SigV4-signed (service ``sts``) with a long-lived key; AssumeRoleWithWebIdentity carries a login or ID
    token, which the admin API verifies. An STS answer is accounted without a workspace: its Call is not
    kept on the request (``proxy.accounting``)."""
    raw = await request.content.read((64 << 10) + 1)
    if len(raw) > 64 << 10:
        raise S3Error("MaxMessageLengthExceeded", "STS requests are limited to 64 KiB")
    form = dict(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))
    action = form.get("Action", "")
    request[OPERATION] = action or "STS"
    settings = request.app[SETTINGS]
    if action == "AssumeRoleWithWebIdentity":
        user_token, user, subject = await _web_identity(request, form.get("WebIdentityToken", ""))
        request[USER] = user
        extra = f"<SubjectFromWebIdentityToken>{escape(subject)}</SubjectFromWebIdentityToken>"
        # the caller is who the API found in the token: no wio key, nothing to sign with
        caller = Caller("", user, [], False, None, secret_key="")
        return Call(request=request, op=op, bucket=None, key=None, params=[], caller=caller, auth=None,
                    signing_ctx=None, decided_by="web-identity", sts=StsForm(action, form, user_token, extra))
    if action == "AssumeRole":
        # STS signs the form body itself (no x-amz-content-sha256 header): present its hash as that header.
        headers = list(request.headers.items()) + [("x-amz-content-sha256", hashlib.sha256(raw).hexdigest())]
        raw_path, _, raw_query = request.raw_path.partition("?")
        try:
            auth = parse_request_auth("POST", raw_path, raw_query, headers, now=datetime.now(timezone.utc),
                                      region=settings.region, service="sts")
            if auth is None:
                raise S3Error("AccessDenied", "AssumeRole must be signed with a wio access key")
            caller, _ = await request.app[AUTHZ].load(auth.access_key_id, auth.session_token, [])
            signing_ctx = verify_signature(auth, caller.secret_key, "POST", raw_path, raw_query, headers)
        except SigningError as exc:
            raise S3Error.from_signing(exc) from None
        request[USER], request[ACCESS_KEY] = caller.user, caller.access_key_id
        if caller.temporary:
            raise S3Error("AccessDenied", "Temporary credentials cannot assume a role; use a long-lived key")
        return Call(request=request, op=op, bucket=None, key=None, params=[], caller=caller, auth=auth,
                    signing_ctx=signing_ctx, decided_by="key",
                    sts=StsForm(action, form, proxy_api_headers(settings, caller.user)))
    raise S3Error("NotImplemented", f"The STS action '{action}' is not supported by wio")


async def sts_action(call: Call) -> web.StreamResponse:
    """The STS handler: temporary credentials for the caller ``authorize_sts`` authenticated."""
    sts = call.authorized_sts()
    form, request = sts.form, call.request
    if sts.action == "AssumeRoleWithWebIdentity":
        creds = await _issue(request, sts.api_headers, form.get("RoleSessionName", "web-identity"), _duration(form),
                             None)
        return _credentials_xml(sts.action, creds, sts.result_xml)
    caller = call.caller
    creds = await _issue(request, sts.api_headers, form.get("RoleSessionName", "assumed"), _duration(form),
                         caller.scope, caller.access_key_id)
    arn = f"arn:aws:sts::wio:assumed-role/{escape(caller.user)}/{escape(form.get('RoleSessionName', ''))}"
    extra = f"<AssumedRoleUser><Arn>{arn}</Arn><AssumedRoleId>{creds['access_key_id']}</AssumedRoleId></AssumedRoleUser>"
    return _credentials_xml(sts.action, creds, extra)
