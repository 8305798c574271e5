"""Single sign-on: the login flows, just-in-time users, and the provider's groups as memberships.

Flows (all end in ``sign_in``, which answers with wio's own login token, as ``/auth/login`` does):

- authorization code + PKCE, for the console and the CLI's loopback redirect:
  ``GET|POST /auth/oidc/login`` stores (state -> PKCE verifier, nonce, redirect URI, login secret) in
  Redis for ten minutes and sends the browser to the provider; ``/auth/oidc/callback`` (GET from the
  browser, POST from the CLI with the login secret) takes the state once (GETDEL), redeems the code
  with the verifier and checks the ID token's nonce.
- device authorization (RFC 8628), for the CLI on a machine without a browser:
  ``POST /auth/oidc/device`` then ``POST /auth/oidc/device/token`` until the user has approved.
- an ID token presented directly (``POST /auth/oidc/token``): the proxy's STS
  ``AssumeRoleWithWebIdentity`` and clients that refreshed their provider tokens.

The client secret, the token exchange and every verification stay in the API; the proxy and the CLI
only ever hold codes, device codes and ID tokens. Users are linked by (issuer, sub), never by name.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import re
import secrets
from contextlib import contextmanager
from typing import Any, Iterator

from aiohttp import web
from sqlalchemy import select
from yarl import URL

from admin_api.context import HTTP, REDIS, SETTINGS, field, json_body, mutation
from admin_api.errors import ApiError
from admin_api.oidc import OidcClient, OidcError, ProviderUnavailable
from admin_api.users import login_response
from policy.models import Group, GroupMember, User
from policy.names import group_name_error, username_error

__all__ = ["routes", "oidc_client", "OIDC"]

log = logging.getLogger("wio.api")
routes = web.RouteTableDef()
OIDC = web.AppKey("oidc", OidcClient)
SCOPE = "openid profile email"
STATE_SECONDS = 600
CONSOLE_HANDOFF_SECONDS = 60
CONSOLE_COOKIE = "wio_console_login"
CALLBACK_PATH = "/api/v1/auth/oidc/callback"
_LOOPBACK_HOSTS = ("127.0.0.1", "::1")


async def oidc_client(app: web.Application):
    """cleanup_ctx: the provider client, when single sign-on is configured."""
    if app[SETTINGS].oidc_issuer:
        app[OIDC] = OidcClient(app[SETTINGS], app[HTTP])
    yield


def _client(request: web.Request) -> OidcClient:
    if OIDC not in request.app:
        raise ApiError("SsoNotConfigured")
    return request.app[OIDC]


@contextmanager
def _provider_errors() -> Iterator[None]:
    """Provider failures as API errors: a refusal is a 401, an unreachable provider a 503."""
    try:
        yield
    except OidcError as exc:
        code, description = exc.args
        raise ApiError("InvalidIdentity", f"the identity provider refused: {code} {description}".strip()) \
            from None
    except ProviderUnavailable as exc:
        raise ApiError("ProviderUnavailable", str(exc)) from None


@routes.get("/api/v1/auth/oidc")
async def sso_config(request: web.Request) -> web.Response:
    """What a login page needs to know: is SSO on, with which issuer, and may passwords be used."""
    settings = request.app[SETTINGS]
    return web.json_response({"enabled": settings.oidc_issuer is not None, "issuer": settings.oidc_issuer,
                              "password_login": settings.password_login})


def _redirect_uri(request: web.Request, requested: str | None) -> str:
    """The API's own callback, or a loopback one (RFC 8252 §7.3, the CLI); anything else could leak the code."""
    settings = request.app[SETTINGS]
    own = settings.oidc_redirect_uri or settings.api_url.rstrip("/") + CALLBACK_PATH
    if requested is None or requested == own:
        return own
    try:
        url = URL(requested)
        loopback = url.scheme == "http" and url.host in _LOOPBACK_HOSTS and url.explicit_port is not None \
            and not url.user and not url.fragment
    except (ValueError, TypeError):
        loopback = False
    if not loopback:
        raise ApiError("InvalidRedirectUri",
                       f"redirect_uri must be {own} or http://127.0.0.1:<port>/... (a loopback redirect)")
    return requested


async def _authorization_url(request: web.Request, requested_redirect: str | None, login_secret: str | None,
                             *, console: str | None = None) -> str:
    client = _client(request)
    redirect_uri = _redirect_uri(request, requested_redirect)
    with _provider_errors():
        discovery = await client.discovery()
    state, nonce, verifier = secrets.token_urlsafe(32), secrets.token_urlsafe(32), secrets.token_urlsafe(64)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    await request.app[REDIS].set(f"wio:oidc:state:{state}", json.dumps(
        {"verifier": verifier, "nonce": nonce, "redirect_uri": redirect_uri, "login_secret": login_secret,
         "console": console}),
        ex=STATE_SECONDS)
    return str(URL(discovery.authorization_endpoint).update_query(
        response_type="code", client_id=client.client_id, redirect_uri=redirect_uri, scope=SCOPE, state=state,
        nonce=nonce, code_challenge=challenge, code_challenge_method="S256"))


@routes.get("/api/v1/auth/oidc/login")
async def login_redirect(request: web.Request) -> web.Response:
    """The browser's entry: a redirect to the provider, which comes back to /auth/oidc/callback.

    ``?console=1`` (the console's "Log in with …" button): the callback then sends the browser back to the
    console with a one-time code (``/#/sso/<code>``, 60 s, redeemed once at ``POST /auth/oidc/console``),
    so the login token itself never appears in a URL. The login is bound to the browser that started it
    (an HttpOnly cookie whose hash the state keeps): a callback or a code carried to another browser is
    refused, so nobody can log a victim's console into the attacker's account (login CSRF)."""
    if request.query.get("console") != "1":
        raise web.HTTPFound(await _authorization_url(request, None, None))
    binding = secrets.token_urlsafe(32)
    response = web.HTTPFound(await _authorization_url(request, None, None, console=_digest(binding)))
    # Lax, not Strict: the provider sends the browser back with a cross-site top-level GET.
    response.set_cookie(CONSOLE_COOKIE, binding, max_age=STATE_SECONDS, path="/api/v1/auth/oidc", httponly=True,
                        samesite="Lax", secure=request.app[SETTINGS].api_url.startswith("https://"))
    raise response


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _same_browser(request: web.Request, expected: str) -> None:
    if not hmac.compare_digest(_digest(request.cookies.get(CONSOLE_COOKIE, "")).encode(), expected.encode()):
        raise ApiError("InvalidState", "this login was started in another browser; log in again")


@routes.post("/api/v1/auth/oidc/login")
async def login_start(request: web.Request) -> web.Response:
    """The entry for programs (the CLI's loopback redirect): the provider URL and a login secret.

    The code comes back to the program's loopback port, where another local process could catch it;
    redeeming it also needs the login secret, which only the program that started the login holds.
    """
    redirect_uri = field(await json_body(request), "redirect_uri", str, default=None)
    login_secret = secrets.token_urlsafe(32)
    return web.json_response({"authorization_url": await _authorization_url(request, redirect_uri, login_secret),
                              "login_secret": login_secret})


@routes.get("/api/v1/auth/oidc/callback")
async def callback(request: web.Request) -> web.Response:
    """Where the provider sends the browser back: redeem the code, verify the ID token, answer a wio token."""
    if "error" in request.query:
        raise ApiError("InvalidIdentity", f"the identity provider refused: {request.query['error']} "
                                               f"{request.query.get('error_description', '')}".strip())
    return await _redeem(request, request.query.get("code"), request.query.get("state"), None)


@routes.post("/api/v1/auth/oidc/callback")
async def program_callback(request: web.Request) -> web.Response:
    """The same for a login started with POST /auth/oidc/login: {code, state, login_secret}."""
    body = await json_body(request)
    return await _redeem(request, field(body, "code", str), field(body, "state", str),
                         field(body, "login_secret", str))


async def _redeem(request: web.Request, code: str | None, state: str | None, login_secret: str | None) -> web.Response:
    client = _client(request)
    if not code or not state:
        raise ApiError("MissingField", "the callback needs 'code' and 'state'")
    raw = await request.app[REDIS].getdel(f"wio:oidc:state:{state}")
    if raw is None:
        raise ApiError("InvalidState")
    pending = json.loads(raw)
    if pending["login_secret"] is not None and not hmac.compare_digest(
            pending["login_secret"].encode(), (login_secret or "").encode()):
        raise ApiError("InvalidState", "this login was started by another program (login secret)")
    with _provider_errors():
        tokens = await client.token({"grant_type": "authorization_code", "code": code,
                                     "redirect_uri": pending["redirect_uri"], "code_verifier": pending["verifier"]})
    binding = pending.get("console")
    if binding:
        _same_browser(request, binding)
    answer = await _sign_in_with(request, tokens, nonce=pending["nonce"])
    if not binding:
        return answer
    handoff = secrets.token_urlsafe(32)
    await request.app[REDIS].set(f"wio:oidc:console:{handoff}", json.dumps({"answer": answer.text, "binding": binding}),
                                 ex=CONSOLE_HANDOFF_SECONDS)
    raise web.HTTPFound(f"/#/sso/{handoff}")


@routes.post("/api/v1/auth/oidc/console")
async def console_handoff(request: web.Request) -> web.Response:
    """The console's end of a browser login: its one-time code for the login token (once, within 60 s)."""
    code = field(await json_body(request), "code", str)
    raw = await request.app[REDIS].getdel(f"wio:oidc:console:{code}")
    if raw is None:
        raise ApiError("InvalidState", "unknown or already used login code; log in again")
    handoff = json.loads(raw)
    _same_browser(request, handoff["binding"])
    response = web.json_response(json.loads(handoff["answer"]))
    response.del_cookie(CONSOLE_COOKIE, path="/api/v1/auth/oidc")
    return response


@routes.post("/api/v1/auth/oidc/device")
async def device_start(request: web.Request) -> web.Response:
    """Start a device login: the URL and code to show the user, and the device code to poll with."""
    with _provider_errors():
        started = await _client(request).device_authorization(SCOPE)
    if started is None:
        raise ApiError("DeviceFlowUnavailable")
    if not all(isinstance(started.get(k), str) for k in ("device_code", "user_code", "verification_uri")):
        raise ApiError("ProviderUnavailable", "the identity provider's device authorization answer is incomplete")
    answer = {k: started[k] for k in ("device_code", "user_code", "verification_uri")}
    if isinstance(started.get("verification_uri_complete"), str):
        answer["verification_uri_complete"] = started["verification_uri_complete"]
    for name in ("expires_in", "interval"):  # seconds; anything else is left out (the CLI has defaults)
        value = started.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and 0 < value <= 86400:
            answer[name] = value
    return web.json_response(answer)


@routes.post("/api/v1/auth/oidc/device/token")
async def device_token(request: web.Request) -> web.Response:
    """Poll a device login: AuthorizationPending/SlowDown until the user approved, then a wio token."""
    device_code = field(await json_body(request), "device_code", str)
    with _provider_errors():
        try:
            tokens = await _client(request).token({"grant_type": "urn:ietf:params:oauth:grant-type:device_code",
                                                   "device_code": device_code})
        except OidcError as exc:
            # RFC 8628 §3.5: authorization_pending and slow_down mean "ask again later"; the CLI keeps polling.
            if exc.args[0] in ("authorization_pending", "slow_down"):
                raise ApiError("AuthorizationPending" if exc.args[0] == "authorization_pending" else "SlowDown") from None
            raise
    return await _sign_in_with(request, tokens, nonce=None)


@routes.post("/api/v1/auth/oidc/token")
async def id_token_login(request: web.Request) -> web.Response:
    """Exchange a provider ID token for a wio login token (STS web identity, refreshed CLI logins)."""
    id_token = field(await json_body(request), "id_token", str)
    with _provider_errors():
        claims = await _client(request).verify_id_token(id_token, nonce=None)
    return await _answer(request, claims)


async def _sign_in_with(request: web.Request, tokens: dict[str, Any], *, nonce: str | None) -> web.Response:
    id_token = tokens.get("id_token")
    if not isinstance(id_token, str):
        raise ApiError("InvalidIdentity", "the identity provider returned no ID token (is 'openid' allowed?)")
    with _provider_errors():
        claims = await _client(request).verify_id_token(id_token, nonce=nonce)
    return await _answer(request, claims)


async def _answer(request: web.Request, claims: dict[str, Any]) -> web.Response:
    user = await sign_in(request.app, claims)
    return web.json_response({**login_response(request.app[SETTINGS], user.username), "username": user.username,
                              "subject": claims["sub"]})


# --- just-in-time users and provider groups ---------------------------------------------------------------

def _slug(value: str, *, dots: bool) -> str:
    """A provider name as a wio name: lowercase, other characters as '-', path separators as '.' for groups."""
    value = value.strip().strip("/").lower()
    if dots:
        value = value.replace("/", ".")
    return re.sub(r"[^a-z0-9_.-]", "-", value).lstrip("-_.")[:56]


async def _free_username(session, claims: dict[str, Any], username_claim: str) -> str:
    """A name for a new user: the claim if free, else with a suffix; never an existing user's name."""
    wanted = claims.get(username_claim)
    fallback = "sso-" + hashlib.sha256(f"{claims['iss']}\0{claims['sub']}".encode()).hexdigest()[:12]
    base = _slug(wanted, dots=False) if isinstance(wanted, str) else ""
    base = base if username_error(base) is None else fallback
    for candidate in [base] + [f"{base}-{n}" for n in range(2, 10)] + [f"{base}-{fallback[4:]}"]:
        if await session.scalar(select(User.id).where(User.username == candidate)) is None:
            return candidate
    raise ApiError("UserExists", "could not find a free username for this identity")


def _provider_groups(claims: dict[str, Any], groups_claim: str) -> set[str]:
    raw = claims.get(groups_claim)
    names = [raw] if isinstance(raw, str) else raw if isinstance(raw, list) else []
    return {slug for slug in (_slug(n, dots=True) for n in names if isinstance(n, str)) if group_name_error(slug) is None}


async def _sync_groups(session, change, user: User, wanted: set[str]) -> None:
    """Make the user's provider-managed memberships exactly ``wanted``; wio-managed ones are left alone.

    A provider group joins a wio group of the same name only if a system administrator owns it (a missing
    group is created owned by the first administrator): an ordinary user cannot squat a provider group's
    name and collect its members.
    """
    rows = (await session.execute(select(GroupMember, Group.name).join(Group, Group.id == GroupMember.group_id)
                                  .where(GroupMember.user_id == user.id))).all()
    have = {name: member for member, name in rows}
    for name, member in have.items():
        if member.source == "oidc" and name not in wanted:
            await session.delete(member)
    owner = None
    for name in sorted(wanted - set(have)):
        group = await session.scalar(select(Group).where(Group.name == name))
        if group is None:
            owner = owner or await session.scalar(select(User).where(User.is_admin.is_(True)).order_by(User.id))
            if owner is None:
                log.warning("sso: no administrator to own provider group %s; membership skipped", name)
                continue
            group = Group(name=name, owner_id=owner.id)
            session.add(group)
            await session.flush()
            change.groups.add(name)
        elif not group.owner.is_admin:
            log.warning("sso: group %s is owned by a non-administrator; provider membership skipped", name)
            continue
        session.add(GroupMember(group_id=group.id, user_id=user.id, source="oidc"))
    change.users.add(user.username)


async def sign_in(app: web.Application, claims: dict[str, Any]) -> User:
    """The wio user for verified ID-token claims: found by (iss, sub) or created; groups synced; never disabled."""
    settings = app[SETTINGS]
    async with mutation(app) as (session, change):
        user = await session.scalar(select(User).where(User.oidc_issuer == claims["iss"],
                                                       User.oidc_subject == claims["sub"]))
        if user is None:
            email = claims.get("email")
            user = User(username=await _free_username(session, claims, settings.oidc_username_claim),
                        email=email[:254] if isinstance(email, str) else None, password_hash=None,
                        oidc_issuer=claims["iss"], oidc_subject=claims["sub"])
            session.add(user)
            await session.flush()
            log.info("sso: created user %s for subject %s", user.username, claims["sub"])
        if user.disabled:
            raise ApiError("AccountDisabled")
        await _sync_groups(session, change, user, _provider_groups(claims, settings.oidc_groups_claim))
    return user
