"""Single sign-on against a real OpenID provider (oidc-provider-mock) started on loopback by the tests.

The provider is the library's Flask application served by werkzeug in a thread of this process; the
wio API and proxy run as ``wio serve`` children configured with it (password login off). Test-only
additions to the provider, all on its own routes, keys and Authlib authorization server:

- it *requires* PKCE (S256), as a provider configured that way does: a token request whose
  ``code_verifier`` does not match the authorization request's ``code_challenge`` is refused;
  (``enforce_pkce = False`` simulates a provider that ignores PKCE, to reach wio's own nonce check);
- ``/test/jwk`` hands the test its private signing key, so tests can mint ID tokens with chosen
  claims signed exactly as the provider signs them (wrong audience, expired, another issuer ...);
  ``/test/rotate`` makes it sign with a new key (a new ``kid``) from then on;
- the device authorization grant (RFC 8628), which oidc-provider-mock 0.3 lacks: Authlib's
  ``DeviceAuthorizationEndpoint`` at ``/oauth2/device_authorization`` (advertised as
  ``device_authorization_endpoint`` in the discovery document), a verification page at ``/device``
  where the user approves or denies a code, and Authlib's ``DeviceCodeGrant`` at the token endpoint
  issuing ID tokens with the provider's key (the library's own OpenID extension). wio's client is
  registered with its secret, so the provider checks wio's client authentication too. The grant
  answers ``slow_down`` to a poll that comes sooner than the interval, as RFC 8628 §3.5 says.

The main provider offers the device grant (as the README's Keycloak does); ``browser_provider`` does
not, so ``wio login --sso`` falls back to its loopback redirect there. Both CLI paths run the real
``wio`` in a subprocess.
"""
from __future__ import annotations

import asyncio
import base64
import hashlib
import html
import json
import os
import queue
import re
import secrets
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass, field
from datetime import timedelta

import aiohttp
import boto3
import flask
import jwt
import pytest
import werkzeug.serving
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives.asymmetric import rsa

import oidc_provider_mock
from admin_api.oidc import OidcClient, OidcError
from admin_api.security import issue_token
from authlib.jose import RSAKey
from authlib.oauth2.rfc8628 import DEVICE_CODE_GRANT_TYPE, DeviceAuthorizationEndpoint, DeviceCodeGrant
from authlib.oauth2.rfc8628.models import DeviceCredentialDict
from oidc_provider_mock._app import OpenIDCode
from oidc_provider_mock._storage import Client, ClientAllowAny, User as ProviderUser
from tests.cli.conftest import _SCRUBBED
from tests.conftest import s3_client, unique, wio_settings
from wio.client import ApiClient, ApiClientError
from wio.dev.stack import DevStack, launch_components
from foundation.settings import Settings, SettingsError

CLIENT_ID, CLIENT_SECRET = "wio-tests", "client-secret-for-tests"


# --- the provider -----------------------------------------------------------------------------------------

class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


_browser = urllib.request.build_opener(_NoRedirect)


def _s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


@dataclass
class Provider:
    url: str
    private_jwk: dict
    challenges: dict = field(default_factory=dict)  # code -> (code_challenge, method) seen at /authorize
    enforce_pkce: bool = True
    # the device grant (when offered)
    devices: dict = field(default_factory=dict)     # device_code -> DeviceCredentialDict
    decisions: dict = field(default_factory=dict)   # user_code -> (provider user, approved?)
    polls: list = field(default_factory=list)       # (device_code, monotonic time, answer) at the token endpoint
    slow_down: set = field(default_factory=set)     # device codes whose next poll is answered slow_down
    device_interval: int = 1
    device_expires_in: int = 600
    jwks_fetches: int = 0

    def set_user(self, sub: str, **claims) -> None:
        req = urllib.request.Request(f"{self.url}/users/{sub}", data=json.dumps(claims).encode(), method="PUT",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            assert resp.status == 204

    def approve(self, authorization_url: str, sub: str) -> dict[str, str]:
        """The user's browser: log in as ``sub`` at the provider; the query it is redirected back with."""
        assert authorization_url.startswith(self.url + "/")
        req = urllib.request.Request(authorization_url, data=urllib.parse.urlencode({"sub": sub}).encode())
        try:
            _browser.open(req, timeout=10)
        except urllib.error.HTTPError as exc:
            assert exc.code == 302, exc.read()
            location = exc.headers["Location"]
        else:
            raise AssertionError("the provider did not redirect")
        return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(location).query)) | {"_location": location}

    def id_token(self, sub: str) -> str:
        """An ID token for ``sub`` obtained as any relying party gets one: code flow with PKCE, at the provider."""
        verifier = secrets.token_urlsafe(48)
        redirect = "http://127.0.0.1:9/cb"
        query = urllib.parse.urlencode({"response_type": "code", "client_id": CLIENT_ID, "redirect_uri": redirect,
                                        "scope": "openid profile email", "state": "s", "nonce": secrets.token_hex(8),
                                        "code_challenge": _s256(verifier), "code_challenge_method": "S256"})
        code = self.approve(f"{self.url}/oauth2/authorize?{query}", sub)["code"]
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect, "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET, "code_verifier": verifier}
        with urllib.request.urlopen(f"{self.url}/oauth2/token", urllib.parse.urlencode(form).encode(),
                                    timeout=10) as resp:
            return json.load(resp)["id_token"]

    def decide_device(self, user_code: str, sub: str, *, approve: bool = True) -> int:
        """The user at the verification page: type the code, log in as ``sub``, approve (or deny)."""
        form = {"user_code": user_code, "sub": sub, "action": "approve" if approve else "deny"}
        try:
            with urllib.request.urlopen(self.url + "/device", urllib.parse.urlencode(form).encode(), timeout=10) as r:
                return r.status
        except urllib.error.HTTPError as exc:
            return exc.code

    def polls_of(self, device_code: str) -> list[tuple[float, str]]:
        return [(at, answer) for code, at, answer in self.polls if code == device_code]

    def rotate_key(self) -> None:
        with urllib.request.urlopen(urllib.request.Request(self.url + "/test/rotate", method="POST"), timeout=10) as r:
            self.private_jwk = json.load(r)

    def mint(self, *, alg: str = "RS256", key=None, kid: str | None = None, **overrides) -> str:
        """An ID token signed with the provider's own key (or ``key``), with these claims changed."""
        now = int(time.time())
        claims = {"iss": self.url, "sub": "minted-" + uuid.uuid4().hex[:8], "aud": CLIENT_ID, "iat": now,
                  "exp": now + 300, "preferred_username": "minted"} | overrides
        if alg == "none":
            return jwt.encode(claims, None, algorithm="none", headers={"kid": self.private_jwk["kid"]})
        return jwt.encode(claims, key if key is not None else jwt.PyJWK(self.private_jwk).key, algorithm=alg,
                          headers={"kid": kid or self.private_jwk["kid"]})


class _WioClient(Client):
    """wio's client at the provider: its secret checked, the device grant allowed."""
    GRANT_TYPES_SUPPORTED = Client.GRANT_TYPES_SUPPORTED + (DEVICE_CODE_GRANT_TYPE,)


def _add_device_grant(app: flask.Flask, box: list) -> None:
    """RFC 8628 on the mock's app, with Authlib's endpoint and grant (see the module docstring)."""

    class DeviceAuthorization(DeviceAuthorizationEndpoint):
        def create_endpoint_response(self, request):
            self.INTERVAL, self.EXPIRES_IN = box[0].device_interval, box[0].device_expires_in
            return super().create_endpoint_response(request)

        def get_verification_uri(self):
            return flask.request.host_url + "device"

        def save_device_credential(self, client_id, scope, data):
            box[0].devices[data["device_code"]] = DeviceCredentialDict(
                client_id=client_id, scope=scope, expires_at=time.time() + data["expires_in"], **data)

    class DeviceCode(DeviceCodeGrant):
        def query_device_credential(self, device_code):
            return box[0].devices.get(device_code)

        def query_user_grant(self, user_code):
            return box[0].decisions.get(user_code)

        def should_slow_down(self, credential):
            """Polled sooner than the interval since the last poll (or told to): slow_down (§3.5)."""
            code = credential["device_code"]
            if code in box[0].slow_down:
                box[0].slow_down.discard(code)
                return True
            earlier = box[0].polls_of(code)
            return len(earlier) > 1 and earlier[-1][0] - earlier[-2][0] < credential["interval"]

        def create_token_response(self):
            answer = super().create_token_response()
            del box[0].devices[self.request.credential["device_code"]]  # a device code is good for one token
            return answer

    with app.test_request_context("/"):
        app.preprocess_request()  # the mock keeps its Authlib server and storage in flask.g
        server, storage = flask.g._authlib_authorization_server, flask.g.oidc_provider_mock_storage
    server.register_endpoint(DeviceAuthorization)
    server.register_grant(DeviceCode, [OpenIDCode(require_nonce=False, token_max_age=timedelta(hours=1))])
    storage.store_client(_WioClient(id=CLIENT_ID, secret=CLIENT_SECRET, redirect_uris=ClientAllowAny(),
                                    allowed_scopes=Client.SCOPES_SUPPORTED,
                                    token_endpoint_auth_method=ClientAllowAny()))

    @app.post("/oauth2/device_authorization")
    def device_authorization():
        return server.create_endpoint_response("device_authorization")

    @app.before_request
    def device_token():
        form = flask.request.form
        if flask.request.path != "/oauth2/token" or form.get("grant_type") != DEVICE_CODE_GRANT_TYPE:
            return None
        box[0].polls.append((form.get("device_code"), time.monotonic(), None))
        response = server.create_token_response()
        answer = "token" if response.status_code == 200 else response.get_json().get("error")
        box[0].polls[-1] = box[0].polls[-1][:2] + (answer,)
        return response

    @app.route("/device", methods=["GET", "POST"])
    def verification_page():
        code = flask.request.values.get("user_code", "")
        if flask.request.method == "GET":
            return (f"<!doctype html><form method=post>Code <input name=user_code value='{html.escape(code)}'>"
                    "Subject <input name=sub><button name=action value=approve>Approve</button>"
                    "<button name=action value=deny>Deny</button></form>")
        if not any(d["user_code"] == code and not d.is_expired() for d in box[0].devices.values()):
            return "unknown or expired code", 400
        sub = flask.request.form["sub"]
        user = storage.get_user(sub) or ProviderUser(sub=sub, claims={"email": sub})
        storage.store_user(user)
        box[0].decisions[code] = (user, flask.request.form.get("action") == "approve")
        return "done: you can return to your device"

    @app.after_request
    def advertise(response):
        if flask.request.path == "/.well-known/openid-configuration":
            doc = response.get_json()
            doc["device_authorization_endpoint"] = flask.request.host_url + "oauth2/device_authorization"
            doc["grant_types_supported"] = [*doc["grant_types_supported"], DEVICE_CODE_GRANT_TYPE]
            response.set_data(json.dumps(doc))
        return response


def _start_provider(*, device_grant: bool = False):
    app = oidc_provider_mock.app()
    provider_box: list[Provider] = []

    @app.get("/test/jwk")
    def private_jwk():
        return flask.g.oidc_provider_mock_storage.jwk.as_dict(is_private=True)

    @app.post("/test/rotate")
    def rotate():
        storage = flask.g.oidc_provider_mock_storage
        storage.jwk = RSAKey.generate_key(is_private=True)
        return storage.jwk.as_dict(is_private=True)

    @app.after_request
    def remember(response):
        if flask.request.path == "/jwks":
            provider_box[0].jwks_fetches += 1
        if flask.request.path == "/oauth2/authorize" and response.status_code == 302:
            code = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(response.headers["Location"]).query)).get("code")
            provider_box[0].challenges[code] = (flask.request.args.get("code_challenge"),
                                                flask.request.args.get("code_challenge_method"))
        return response

    @app.before_request
    def require_pkce():
        form = flask.request.form
        if flask.request.path != "/oauth2/token" or form.get("grant_type") != "authorization_code" \
                or not provider_box[0].enforce_pkce:
            return None
        challenge, method = provider_box[0].challenges.get(form.get("code"), (None, None))
        if method != "S256" or challenge != _s256(form.get("code_verifier", "")):
            return {"error": "invalid_grant", "error_description": "PKCE verification failed"}, 400
        return None

    if device_grant:
        _add_device_grant(app, provider_box)
    server = werkzeug.serving.make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_port}"
    with urllib.request.urlopen(url + "/test/jwk", timeout=10) as resp:
        provider_box.append(Provider(url, json.load(resp)))
    return provider_box[0], server, thread


@pytest.fixture(scope="module")
def provider():
    provider, server, thread = _start_provider(device_grant=True)
    yield provider
    server.shutdown()
    thread.join(5)


@pytest.fixture(scope="module")
def browser_provider():
    """A provider without the device grant: ``wio login --sso`` uses its loopback redirect."""
    provider, server, thread = _start_provider()
    yield provider
    server.shutdown()
    thread.join(5)


@pytest.fixture(scope="module")
def other_provider():
    provider, server, thread = _start_provider()
    yield provider
    server.shutdown()
    thread.join(5)


def _sso_stack(pg_service, redis_service, s3_node, provider):
    settings = wio_settings(pg_service, redis_service, s3_node, oidc_issuer=provider.url, oidc_client_id=CLIENT_ID,
                            oidc_client_secret=CLIENT_SECRET, password_login=False)
    stack = DevStack(settings=settings)
    try:
        launch_components(stack, settings)
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="module")
def sso(pg_service, redis_service, s3_node, provider):
    yield from _sso_stack(pg_service, redis_service, s3_node, provider)


@pytest.fixture(scope="module")
def browser_sso(pg_service, redis_service, s3_node, browser_provider):
    yield from _sso_stack(pg_service, redis_service, s3_node, browser_provider)


@pytest.fixture(scope="module")
def operator(sso) -> ApiClient:
    """The bootstrap administrator. Password login is off on this server, so the test (which holds the
    server's JWT secret, like its operator) signs the admin's token itself."""
    return ApiClient(sso.api_url, issue_token(sso.settings.jwt_secret, "admin", 3600))


# --- helpers ---------------------------------------------------------------------------------------------

def sso_login(stack, provider: Provider, sub: str) -> dict:
    """The console's flow: /auth/oidc/login -> the provider -> /auth/oidc/callback; the API's answer."""
    back = provider.approve(_login_redirect(stack), sub)
    assert back["_location"].startswith(stack.api_url + "/api/v1/auth/oidc/callback?")
    return ApiClient(stack.api_url).call("GET", "/auth/oidc/callback", params={"code": back["code"],
                                                                               "state": back["state"]})


def _login_redirect(stack) -> str:
    try:
        _browser.open(stack.api_url + "/api/v1/auth/oidc/login", timeout=10)
    except urllib.error.HTTPError as exc:
        assert exc.code == 302
        return exc.headers["Location"]
    raise AssertionError("/auth/oidc/login did not redirect")


@dataclass
class SsoUser:
    sub: str
    name: str
    api: ApiClient


def new_user(stack, provider: Provider, prefix: str = "sso", **claims) -> SsoUser:
    sub = str(uuid.uuid4())
    provider.set_user(sub, **({"preferred_username": unique(prefix), "email": f"{sub}@example.org"} | claims))
    answer = sso_login(stack, provider, sub)
    return SsoUser(sub, answer["username"], ApiClient(stack.api_url, answer["access_token"]))


def denied(call) -> str:
    with pytest.raises(ClientError) as info:
        call()
    return info.value.response["Error"]["Code"]


def sts_client(stack):
    return boto3.client("sts", endpoint_url=stack.s3_url, region_name="us-east-1", aws_access_key_id="unused",
                        aws_secret_access_key="unused")


def assume(stack, token: str) -> dict:
    """AssumeRoleWithWebIdentity at the proxy (unsigned, as the SDKs send it)."""
    return sts_client(stack).assume_role_with_web_identity(RoleArn="arn:aws:iam::wio:role/user",
                                                           RoleSessionName="tests", WebIdentityToken=token)


def sts_refused(stack, token: str) -> str:
    """AssumeRoleWithWebIdentity must be refused with 403; the refusal's message.

    (The proxy answers STS errors in S3's <Error> shape, not STS's <ErrorResponse>, so botocore leaves
    the fields at the top of the response instead of under "Error".)
    """
    with pytest.raises(ClientError) as info:
        assume(stack, token)
    response = info.value.response
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 403, response
    return response.get("Error", response)["Message"]


# --- settings --------------------------------------------------------------------------------------------

BASE_ENV = {"WIO_DATABASE_URL": "postgresql://x@127.0.0.1/x", "WIO_REDIS_URL": "redis://127.0.0.1",
            "WIO_MASTER_KEY": "k", "WIO_JWT_SECRET": "j" * 32}


def test_settings_read_the_oidc_variables():
    settings = Settings.from_env(BASE_ENV | {"WIO_OIDC_ISSUER": "https://id.example.org/realms/lab/",
                                             "WIO_OIDC_CLIENT_ID": "wio", "WIO_PASSWORD_LOGIN": "false",
                                             "WIO_OIDC_REDIRECT_URI": "https://wio.example.org/api/v1/auth/oidc/callback"})
    assert settings.oidc_issuer == "https://id.example.org/realms/lab"
    assert (settings.oidc_username_claim, settings.oidc_groups_claim) == ("preferred_username", "groups")
    assert settings.password_login is False and settings.oidc_client_secret is None
    assert Settings.from_env(settings.to_env()) == settings
    assert Settings.from_env(BASE_ENV).oidc_issuer is None


@pytest.mark.parametrize("env, variable", [
    ({"WIO_OIDC_ISSUER": "https://id.example.org"}, "WIO_OIDC_CLIENT_ID"),
    ({"WIO_OIDC_ISSUER": "id.example.org", "WIO_OIDC_CLIENT_ID": "wio"}, "WIO_OIDC_ISSUER"),
    ({"WIO_PASSWORD_LOGIN": "false"}, "WIO_PASSWORD_LOGIN"),
])
def test_settings_refuse_an_incomplete_sso_configuration(env, variable):
    with pytest.raises(SettingsError, match=variable):
        Settings.from_env(BASE_ENV | env)


# --- the flows -------------------------------------------------------------------------------------------

def test_code_flow_with_pkce_creates_the_user_just_in_time(sso, provider):
    assert ApiClient(sso.api_url).call("GET", "/auth/oidc") == {"enabled": True, "issuer": provider.url,
                                                                "password_login": False}
    info = ApiClient(sso.api_url).call("GET", "/info")  # what clients read before they log in
    assert info["oidc_issuer"] == provider.url and info["password_login"] is False
    location = _login_redirect(sso)
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(location).query))
    assert location.startswith(provider.url + "/oauth2/authorize?")
    assert query["code_challenge_method"] == "S256" and len(query["code_challenge"]) == 43
    assert query["client_id"] == CLIENT_ID and query["nonce"] and query["state"]

    sub, name = str(uuid.uuid4()), unique("carol")
    provider.set_user(sub, preferred_username=name, email="carol@example.org")
    first = sso_login(sso, provider, sub)
    assert first["username"] == name and first["subject"] == sub and first["token_type"] == "bearer"
    me = ApiClient(sso.api_url, first["access_token"]).call("GET", "/me")
    assert me["username"] == name and me["email"] == "carol@example.org" and not me["is_admin"]
    # Linked by sub: a later login with another preferred_username is the same account.
    provider.set_user(sub, preferred_username=unique("renamed"))
    assert sso_login(sso, provider, sub)["username"] == name
    # And it is a full account: keys that work on the proxy.
    api = ApiClient(sso.api_url, first["access_token"])
    key = api.call("POST", "/keys", {"name": "sso"})
    # Nothing of its own and nothing shared: what it lists are public workspaces (other tests make some).
    listed = {b["Name"] for b in s3_client(sso.s3_url, key).list_buckets()["Buckets"]}
    assert all(api.call("GET", f"/workspaces/{name}")["public"] for name in listed)
    assert not [w for w in api.call("GET", "/workspaces")["workspaces"] if not w["public"]]


def test_the_provider_refuses_a_code_without_its_verifier(sso, provider):
    """The harness really enforces PKCE, so the flow above could only pass if wio sent the right verifier."""
    location = _login_redirect(sso)
    back = provider.approve(location, str(uuid.uuid4()))
    form = {"grant_type": "authorization_code", "code": back["code"], "client_id": CLIENT_ID,
            "redirect_uri": sso.api_url + "/api/v1/auth/oidc/callback", "code_verifier": "x" * 64}
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(provider.url + "/oauth2/token", urllib.parse.urlencode(form).encode(), timeout=10)
    assert info.value.code == 400 and b"PKCE" in info.value.read()


def test_a_local_user_is_never_taken_over_by_name(sso, provider, operator):
    taken = new_user(sso, provider, preferred_username="admin")
    assert taken.name != "admin" and taken.name.startswith("admin-")
    assert taken.api.call("GET", "/me")["is_admin"] is False
    assert operator.call("GET", "/me")["username"] == "admin"
    # Another identity with the same preferred_username gets yet another name.
    twin = new_user(sso, provider, preferred_username=taken.name)
    assert twin.name not in ("admin", taken.name)
    # A name that is not a wio username becomes one.
    odd = new_user(sso, provider, preferred_username="Dr. Eve O'Neil")
    assert odd.name.startswith("dr.-eve-o-neil")


def test_password_login_can_be_turned_off(sso, provider):
    user = new_user(sso, provider)
    anonymous = ApiClient(sso.api_url)
    for path, body in (("/auth/login", {"username": "admin", "password": "admin-password-for-tests"}),
                       ("/auth/login", {"username": user.name, "password": "anything-at-all"}),
                       ("/auth/register", {"username": unique("pw"), "password": "long-enough-password"})):
        with pytest.raises(ApiClientError) as info:
            anonymous.call("POST", path, body)
        assert (info.value.status, info.value.code) == (403, "PasswordLoginDisabled")


def test_login_state_is_single_use_and_bound_to_its_nonce(sso, provider):
    sub = str(uuid.uuid4())
    provider.set_user(sub, preferred_username=unique("nonce"))
    anonymous = ApiClient(sso.api_url)
    first, second = provider.approve(_login_redirect(sso), sub), provider.approve(_login_redirect(sso), sub)
    anonymous.call("GET", "/auth/oidc/callback", params={"code": first["code"], "state": first["state"]})
    with pytest.raises(ApiClientError) as replay:
        anonymous.call("GET", "/auth/oidc/callback", params={"code": first["code"], "state": first["state"]})
    assert (replay.value.status, replay.value.code) == (401, "InvalidState")
    # A provider that ignores PKCE would redeem the first login's code under the second login's state:
    # the ID token then carries the first login's nonce, which wio refuses.
    third = provider.approve(_login_redirect(sso), sub)
    provider.enforce_pkce = False
    try:
        with pytest.raises(ApiClientError) as crossed:
            anonymous.call("GET", "/auth/oidc/callback", params={"code": third["code"], "state": second["state"]})
    finally:
        provider.enforce_pkce = True
    assert crossed.value.status == 401 and "nonce" in crossed.value.message


def test_a_loopback_login_needs_the_programs_login_secret(sso, provider):
    anonymous = ApiClient(sso.api_url)
    sub = str(uuid.uuid4())
    provider.set_user(sub, preferred_username=unique("loop"))
    for bad in ("https://evil.example.org/cb", "http://localhost:8765/cb", "http://127.0.0.1/cb",
                "http://user@127.0.0.1:8765/cb", "http://10.0.0.1:8765/cb"):
        with pytest.raises(ApiClientError) as info:
            anonymous.call("POST", "/auth/oidc/login", {"redirect_uri": bad})
        assert info.value.code == "InvalidRedirectUri", bad
    results = []
    for secret_of in ("another", "own"):
        started = anonymous.call("POST", "/auth/oidc/login", {"redirect_uri": "http://127.0.0.1:8765/callback"})
        back = provider.approve(started["authorization_url"], sub)
        assert back["_location"].startswith("http://127.0.0.1:8765/callback?")
        secret = started["login_secret"] if secret_of == "own" else secrets.token_urlsafe(32)
        status, body = anonymous.request("POST", "/auth/oidc/callback",
                                         {"code": back["code"], "state": back["state"], "login_secret": secret})
        results.append((status, body.get("error", {}).get("code") if status >= 400 else body["subject"]))
    assert results == [(401, "InvalidState"), (200, sub)]


def test_provider_groups_become_memberships_and_their_removal_revokes(sso, provider, operator):
    lab, handmade = unique("lab"), unique("handmade")
    owner = new_user(sso, provider, "owner")
    ws = unique("ws")
    owner.api.call("POST", "/workspaces", {"name": ws})
    owner_s3 = s3_client(sso.s3_url, owner.api.call("POST", "/keys", {}))
    owner_s3.put_object(Bucket=ws, Key="data.csv", Body=b"a,b\n")

    # Keycloak sends group paths; a leading '/' is dropped and nested paths use '.'.
    org = unique("Org")
    team = f"{org.lower()}.team-a"
    member = new_user(sso, provider, "member", groups=[f"/{lab}", f"/{org}/Team A", 42, "-"])
    operator.call("POST", "/groups", {"name": handmade})
    operator.call("POST", f"/groups/{handmade}/members", {"user": member.name})
    groups = {g["name"]: g["members"] for g in member.api.call("GET", "/groups")["groups"]}
    assert member.name in groups[lab] and member.name in groups[team] and member.name in groups[handmade]

    owner.api.call("POST", f"/workspaces/{ws}/shares", {"group": lab, "permission": "read"})
    member_s3 = s3_client(sso.s3_url, member.api.call("POST", "/keys", {}))
    assert member_s3.get_object(Bucket=ws, Key="data.csv")["Body"].read() == b"a,b\n"
    assert ws in [b["Name"] for b in member_s3.list_buckets()["Buckets"]]

    # The provider drops the group; the next token refresh (a new ID token exchanged at the API) syncs it,
    # and the very next request with the key the member already holds is denied.
    provider.set_user(member.sub, preferred_username="ignored", groups=[f"/{org}/Team A"])
    ApiClient(sso.api_url).call("POST", "/auth/oidc/token", {"id_token": provider.id_token(member.sub)})
    assert denied(lambda: member_s3.get_object(Bucket=ws, Key="data.csv")) == "AccessDenied"
    groups = {g["name"]: g["members"] for g in operator.call("GET", "/groups")["groups"]}
    assert member.name not in groups[lab] and member.name in groups[team]
    assert member.name in groups[handmade]  # wio-managed: the provider's sync never removes it

    # A login (not only a refresh) syncs too: the group comes back, and so does access.
    provider.set_user(member.sub, groups=[f"/{lab}"])
    sso_login(sso, provider, member.sub)
    assert member_s3.get_object(Bucket=ws, Key="data.csv")["Body"].read() == b"a,b\n"


def test_a_group_owned_by_an_ordinary_user_never_receives_provider_members(sso, provider):
    squatter = new_user(sso, provider, "squatter")
    name = unique("squat")
    squatter.api.call("POST", "/groups", {"name": name})
    victim = new_user(sso, provider, "victim", groups=[name])
    assert [g["members"] for g in squatter.api.call("GET", "/groups")["groups"] if g["name"] == name] == [[]]
    assert name not in [g["name"] for g in victim.api.call("GET", "/groups")["groups"]]


def test_web_identity_accepts_a_provider_id_token(sso, provider):
    user = new_user(sso, provider, "sts")
    ws = unique("ws")
    user.api.call("POST", "/workspaces", {"name": ws})
    answer = assume(sso, provider.id_token(user.sub))
    assert answer["SubjectFromWebIdentityToken"] == user.sub
    creds = answer["Credentials"]
    key = {"access_key_id": creds["AccessKeyId"], "secret_access_key": creds["SecretAccessKey"],
           "session_token": creds["SessionToken"]}
    s3 = s3_client(sso.s3_url, key)
    s3.put_object(Bucket=ws, Key="k", Body=b"v")
    listed = {k["access_key_id"]: k for k in user.api.call("GET", "/keys")["keys"]}
    assert listed[creds["AccessKeyId"]]["temporary"] is True
    user.api.call("DELETE", f"/keys/{creds['AccessKeyId']}")
    assert denied(lambda: s3.get_object(Bucket=ws, Key="k")) == "InvalidAccessKeyId"


@pytest.mark.parametrize("case", ["wrong-audience", "expired", "unknown-kid", "alg-none", "another-issuer",
                                  "hs256-with-client-secret", "no-subject", "several-audiences-no-azp"])
def test_bad_id_tokens_are_refused(sso, provider, case):
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = {
        "wrong-audience": lambda: provider.mint(aud="someone-else"),
        "expired": lambda: provider.mint(exp=int(time.time()) - 120, iat=int(time.time()) - 600),
        "unknown-kid": lambda: provider.mint(key=other_key, kid="rotated-" + secrets.token_hex(4)),
        "alg-none": lambda: provider.mint(alg="none"),
        "another-issuer": lambda: provider.mint(iss="https://id.example.org"),
        "hs256-with-client-secret": lambda: provider.mint(alg="HS256", key=CLIENT_SECRET.encode() * 2),
        "no-subject": lambda: provider.mint(sub=""),
        "several-audiences-no-azp": lambda: provider.mint(aud=[CLIENT_ID, "someone-else"]),
    }[case]()
    status, body = ApiClient(sso.api_url).request("POST", "/auth/oidc/token", {"id_token": token})
    assert (status, body["error"]["code"]) == (401, "InvalidIdentity"), body
    assert "identity provider refused" in sts_refused(sso, token)


def test_a_well_formed_minted_token_is_accepted(sso, provider):
    """The control for the refusals above: the same minting, with nothing wrong, logs in."""
    sub = "minted-" + uuid.uuid4().hex[:8]
    answer = ApiClient(sso.api_url).call("POST", "/auth/oidc/token", {"id_token": provider.mint(sub=sub)})
    assert answer["subject"] == sub
    assert assume(sso, provider.mint(sub=sub, aud=[CLIENT_ID, "x"], azp=CLIENT_ID))["SubjectFromWebIdentityToken"] == sub


def test_signing_keys_are_cached_and_a_rotated_key_is_fetched_without_hammering_the_provider():
    """wio's verifier against a provider of its own (rotating the shared one would break the other tests):
    the JWKS is fetched once for many tokens; made-up ``kid``s do not make it fetch again within the
    cooldown; after the provider rotates its key, a token with the new ``kid`` is accepted once the
    cooldown since the last fetch has passed, and tokens signed with the retired key are refused."""
    provider, server, thread = _start_provider()
    cooldown = 3.0
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    async def refused(client: OidcClient, token: str) -> str:
        with pytest.raises(OidcError) as info:
            await client.verify_id_token(token, nonce=None)
        return info.value.args[1]

    async def scenario() -> None:
        settings = Settings.from_env(BASE_ENV | {"WIO_OIDC_ISSUER": provider.url, "WIO_OIDC_CLIENT_ID": CLIENT_ID})
        async with aiohttp.ClientSession() as http:
            client = OidcClient(settings, http, jwks_cooldown=cooldown)
            for _ in range(3):
                await client.verify_id_token(provider.mint(), nonce=None)
            assert provider.jwks_fetches == 1
            fetched = time.monotonic()
            for _ in range(5):
                assert "kid" in await refused(client, provider.mint(key=stranger, kid=secrets.token_hex(8)))
            retired = provider.mint()
            provider.rotate_key()
            rotated = provider.mint()
            assert "kid" in await refused(client, rotated)  # within the cooldown: not fetched yet
            assert provider.jwks_fetches == 1 and time.monotonic() - fetched < cooldown  # (the premise held)
            await asyncio.sleep(cooldown + 0.1)
            claims = await client.verify_id_token(rotated, nonce=None)
            assert claims["iss"] == provider.url and provider.jwks_fetches == 2
            assert "kid" in await refused(client, retired)
            await client.verify_id_token(provider.mint(), nonce=None)
            assert provider.jwks_fetches == 2

    try:
        asyncio.run(scenario())
    finally:
        server.shutdown()
        thread.join(5)


def test_a_token_from_another_provider_is_refused(sso, other_provider):
    sub = str(uuid.uuid4())
    other_provider.set_user(sub, preferred_username=unique("foreign"))
    token = other_provider.id_token(sub)
    status, body = ApiClient(sso.api_url).request("POST", "/auth/oidc/token", {"id_token": token})
    assert (status, body["error"]["code"]) == (401, "InvalidIdentity")
    assert "identity provider refused" in sts_refused(sso, token)


def test_disabling_a_user_in_wio_wins_over_the_provider(sso, provider, operator):
    user = new_user(sso, provider, "gone")
    ws = unique("ws")
    user.api.call("POST", "/workspaces", {"name": ws})
    s3 = s3_client(sso.s3_url, user.api.call("POST", "/keys", {}))
    s3.put_object(Bucket=ws, Key="k", Body=b"v")
    operator.call("POST", f"/users/{user.name}/disable")
    assert denied(lambda: s3.get_object(Bucket=ws, Key="k")) == "AccessDenied"
    with pytest.raises(ApiClientError) as info:
        sso_login(sso, provider, user.sub)
    assert (info.value.status, info.value.code) == (403, "AccountDisabled")
    status, body = ApiClient(sso.api_url).request("POST", "/auth/oidc/token", {"id_token": provider.id_token(user.sub)})
    assert (status, body["error"]["code"]) == (403, "AccountDisabled")
    assert "disabled" in sts_refused(sso, provider.id_token(user.sub))


def test_sso_endpoints_refuse_bad_input_with_json_errors(sso):
    anonymous = ApiClient(sso.api_url)
    for method, path, body, params, code in (
            ("GET", "/auth/oidc/callback", None, {}, "MissingField"),
            ("GET", "/auth/oidc/callback", None, {"code": "c", "state": "never-issued"}, "InvalidState"),
            ("GET", "/auth/oidc/callback", None, {"error": "access_denied"}, "InvalidIdentity"),
            ("POST", "/auth/oidc/callback", {"code": "c"}, None, "MissingField"),
            ("POST", "/auth/oidc/token", {"id_token": "not.a.jwt"}, None, "InvalidIdentity"),
            ("POST", "/auth/oidc/token", {"id_token": 7}, None, "InvalidField"),
            ("POST", "/auth/oidc/device/token", {"device_code": "never-issued"}, None, "InvalidIdentity"),
            ("POST", "/auth/oidc/device/token", {"device_code": 5}, None, "InvalidField"),
            ("POST", "/auth/oidc/device/token", {}, None, "MissingField")):
        status, answer = anonymous.request(method, path, body, params)
        assert 400 <= status < 500 and answer["error"]["code"] == code, (path, status, answer)


# --- the CLI: the real ``wio`` in a subprocess ----------------------------------------------------------

class WioProcess:
    """``wio ARGS`` running in its own process, with its own config dir; stderr read line by line as it comes."""

    def __init__(self, env: dict[str, str], *args: str):
        self.proc = subprocess.Popen([sys.executable, "-m", "wio", *args], env=env, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: queue.Queue[str] = queue.Queue()
        self.stderr: list[str] = []
        self.stdout: list[str] = []
        self._readers = [threading.Thread(target=self._read, args=(self.proc.stderr, self.stderr, self.lines),
                                          daemon=True),
                         threading.Thread(target=self._read, args=(self.proc.stdout, self.stdout, None), daemon=True)]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _read(stream, into: list[str], lines: queue.Queue | None) -> None:
        for line in stream:
            into.append(line)
            if lines is not None:
                lines.put(line)

    def next_line(self, timeout: float = 30) -> str:
        try:
            return self.lines.get(timeout=timeout)
        except queue.Empty:
            self.proc.kill()
            raise AssertionError(f"wio printed nothing within {timeout} s; stderr: {self.stderr}") from None

    def finish(self, timeout: float = 60) -> tuple[int, str, str]:
        """Exit code, stdout, stderr (the process is killed, and the test fails, if it does not end in time)."""
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise AssertionError(f"wio did not finish within {timeout} s; stderr: {self.stderr}") from None
        for reader in self._readers:
            reader.join(10)
        return self.proc.returncode, "".join(self.stdout), "".join(self.stderr)


def cli_env(stack, home) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED}
    home.mkdir(exist_ok=True)
    return env | {"XDG_CONFIG_HOME": str(home / "xdg"), "HOME": str(home), "WIO_API": stack.api_url}


def wio_json(env: dict[str, str], *args: str):
    code, out, err = WioProcess(env, *args, "--json").finish()
    assert code == 0, err
    return json.loads(out)


def one_error_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert "Traceback" not in stderr and lines[-1].startswith("Error: "), stderr
    return lines[-1]


DEVICE_PROMPT = re.compile(r"^To log in, open (\S+) and enter the code (\S+)$")


def start_device_login(provider: Provider, env: dict[str, str]) -> tuple[WioProcess, str, str]:
    """``wio login --sso`` up to its prompt; the process, the URL it printed, the code it printed."""
    cli = WioProcess(env, "login", "--sso")
    line = cli.next_line()
    match = DEVICE_PROMPT.match(line.strip())
    assert match, line
    url, user_code = match.groups()
    # The URL is the provider's verification page, with the code filled in (verification_uri_complete).
    assert url.startswith(provider.url + "/device?")
    assert dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query)) == {"user_code": user_code}
    with urllib.request.urlopen(url, timeout=10) as page:
        assert page.status == 200 and user_code in page.read().decode()
    [device_code] = [d for d, c in provider.devices.items() if c["user_code"] == user_code]
    return cli, user_code, device_code


def device_login(provider: Provider, env: dict[str, str], sub: str) -> tuple[str, str]:
    """A whole device login as the user does it: run the CLI, approve its code, wait. (stdout, device code)."""
    cli, user_code, device_code = start_device_login(provider, env)
    time.sleep(1.5)  # the CLI polls (pending) while the user types the code
    assert provider.decide_device(user_code, sub) == 200
    code, out, err = cli.finish()
    assert code == 0, err
    return out, device_code


def test_wio_login_sso_with_the_device_grant(sso, provider, operator, tmp_path):
    """RFC 8628 end to end: the CLI prints the URL and code, the user approves, the CLI polls until it
    has wio's session; the new user (created just in time) makes a key and, through boto3, sees the
    workspace shared with the group the provider puts it in."""
    lab, ws = unique("devlab"), unique("devws")
    operator.call("POST", "/groups", {"name": lab})
    operator.call("POST", "/workspaces", {"name": ws})
    admin_s3 = s3_client(sso.s3_url, operator.call("POST", "/keys", {}))
    admin_s3.put_object(Bucket=ws, Key="shared.txt", Body=b"for the lab")
    operator.call("POST", f"/workspaces/{ws}/shares", {"group": lab, "permission": "read"})

    sub, name = str(uuid.uuid4()), unique("dev")
    provider.set_user(sub, preferred_username=name, email=f"{name}@example.org", groups=[f"/{lab}"])
    assert name not in [u["username"] for u in operator.call("GET", "/users")["users"]]
    env = cli_env(sso, tmp_path / "home")

    out, device_code = device_login(provider, env, sub)
    assert f"Logged in to {sso.api_url} as {name}" in out
    polls = provider.polls_of(device_code)
    assert [answer for _, answer in polls][-1] == "token" and len(polls) >= 2, polls
    assert {answer for _, answer in polls[:-1]} == {"authorization_pending"}, polls
    gaps = [later - earlier for (earlier, _), (later, _) in zip(polls, polls[1:], strict=False)]
    assert min(gaps) >= provider.device_interval, gaps  # never faster than the provider asked
    assert device_code not in provider.devices  # redeemed once

    users = {u["username"]: u for u in operator.call("GET", "/users")["users"]}
    assert users[name]["oidc_subject"] == sub and not users[name]["is_admin"]
    assert wio_json(env, "whoami")["username"] == name
    key = wio_json(env, "key", "create")
    s3 = s3_client(sso.s3_url, key)
    assert ws in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert s3.get_object(Bucket=ws, Key="shared.txt")["Body"].read() == b"for the lab"
    assert denied(lambda: s3.put_object(Bucket=ws, Key="mine.txt", Body=b"x")) == "AccessDenied"  # a read share


def test_the_device_login_backs_off_when_told_to_slow_down(sso, provider, tmp_path):
    sub = str(uuid.uuid4())
    provider.set_user(sub, preferred_username=unique("slow"))
    cli, user_code, device_code = start_device_login(provider, cli_env(sso, tmp_path / "home"))
    provider.slow_down.add(device_code)  # the next poll is answered slow_down
    deadline = time.monotonic() + 15
    while not provider.polls_of(device_code) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert provider.decide_device(user_code, sub) == 200
    code, _, err = cli.finish()
    assert code == 0, err
    (first, said), (second, then) = provider.polls_of(device_code)[:2]
    assert said == "slow_down" and then == "token"
    assert second - first >= provider.device_interval + 5  # RFC 8628 §3.5: five seconds more, from then on


@pytest.mark.parametrize("outcome", ["denied", "expired"])
def test_a_device_login_the_user_denies_or_lets_expire_fails_with_one_line(sso, provider, tmp_path, outcome):
    sub = str(uuid.uuid4())
    provider.set_user(sub, preferred_username=unique("nope"))
    env = cli_env(sso, tmp_path / "home")
    if outcome == "expired":
        provider.device_expires_in = 2
    try:
        cli, user_code, _ = start_device_login(provider, env)
    finally:
        provider.device_expires_in = 600
    if outcome == "denied":
        assert provider.decide_device(user_code, sub, approve=False) == 200
    code, out, err = cli.finish()
    assert code == 1 and out == ""
    line = one_error_line(err)
    assert ("access_denied" in line) if outcome == "denied" else ("expired" in line), line
    assert not (tmp_path / "home" / "xdg" / "wio" / "config.json").exists()  # nothing saved


def test_the_api_passes_on_only_well_formed_device_timings(sso, provider):
    anonymous = ApiClient(sso.api_url)
    started = anonymous.call("POST", "/auth/oidc/device")
    assert (started["interval"], started["expires_in"]) == (provider.device_interval, provider.device_expires_in)
    assert set(started) == {"device_code", "user_code", "verification_uri", "verification_uri_complete",
                            "interval", "expires_in"}
    provider.device_interval, provider.device_expires_in = "soon", -5
    try:
        started = anonymous.call("POST", "/auth/oidc/device")
    finally:
        provider.device_interval, provider.device_expires_in = 1, 600
    assert "interval" not in started and "expires_in" not in started and started["user_code"]


def test_disabling_a_user_in_wio_wins_over_the_provider_for_the_cli_device_login(sso, provider, operator, tmp_path):
    sub, name = str(uuid.uuid4()), unique("devoff")
    provider.set_user(sub, preferred_username=name)
    env = cli_env(sso, tmp_path / "home")
    device_login(provider, env, sub)
    ws = unique("ws")
    wio_json(env, "workspace", "create", ws)
    s3 = s3_client(sso.s3_url, wio_json(env, "key", "create"))
    s3.put_object(Bucket=ws, Key="k", Body=b"v")

    operator.call("POST", f"/users/{name}/disable")
    # The provider still vouches for the user and the user approves: wio refuses the login ...
    cli, user_code, device_code = start_device_login(provider, env)
    assert provider.decide_device(user_code, sub) == 200
    code, out, err = cli.finish()
    assert code == 1 and "disabled" in one_error_line(err)
    assert provider.polls_of(device_code)[-1][1] == "token"  # (the provider did issue its tokens)
    # ... the session the CLI already had, and the keys, stop too.
    code, _, err = WioProcess(env, "whoami").finish()
    assert code == 1 and "disabled" in one_error_line(err)
    assert denied(lambda: s3.get_object(Bucket=ws, Key="k")) == "AccessDenied"

    operator.call("POST", f"/users/{name}/enable")  # wio's decision, undone in wio: the same account again
    out, _ = device_login(provider, env, sub)
    assert f"as {name} " in out
    assert s3.get_object(Bucket=ws, Key="k")["Body"].read() == b"v"


def test_wio_login_sso_through_a_loopback_redirect(browser_sso, browser_provider, tmp_path):
    """The provider offers no device grant: the CLI listens on loopback and opens the browser ($BROWSER,
    here a script that hands the URL to the test), which comes back to it after the user approved."""
    status, body = ApiClient(browser_sso.api_url).request("POST", "/auth/oidc/device")
    assert (status, body["error"]["code"]) == (409, "DeviceFlowUnavailable")
    sub, name = str(uuid.uuid4()), unique("cli")
    browser_provider.set_user(sub, preferred_username=name)
    opened = tmp_path / "opened"
    browser = tmp_path / "browser.sh"
    browser.write_text(f'#!/bin/sh\nprintf "%s\\n" "$1" >> {opened}\n')
    browser.chmod(0o755)
    env = cli_env(browser_sso, tmp_path / "home") | {"BROWSER": str(browser)}

    cli = WioProcess(env, "login", "--sso")
    printed = cli.next_line().strip()
    assert printed.startswith("To log in, open " + browser_provider.url + "/oauth2/authorize?")
    deadline = time.monotonic() + 15
    while not opened.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    [url] = opened.read_text().splitlines()
    assert printed == "To log in, open " + url
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))
    assert query["code_challenge_method"] == "S256" and query["redirect_uri"].startswith("http://127.0.0.1:")
    back = browser_provider.approve(url, sub)  # the user logs in at the provider ...
    assert back["_location"].startswith(query["redirect_uri"] + "?")
    with urllib.request.urlopen(back["_location"], timeout=10) as resp:  # ... and the browser comes back
        assert resp.status == 200 and b"you can close this window" in resp.read()
    code, out, err = cli.finish()
    assert code == 0, err
    assert f"Logged in to {browser_sso.api_url} as {name}" in out
    assert wio_json(env, "whoami")["username"] == name
    s3 = s3_client(browser_sso.s3_url, wio_json(env, "key", "create"))
    assert s3.list_buckets()["Buckets"] == []

    code, _, err = WioProcess(env, "login", "--sso", "alice").finish()
    assert code == 2 and "--sso takes no username" in err


# --- administrators ----------------------------------------------------------------------------------------

def test_an_sso_user_is_promoted_to_administrator_in_wio_only(sso, provider, operator):
    user = new_user(sso, provider, "boss", groups=["admins", "wio-admins"])
    assert user.api.request("GET", "/users")[0] == 403  # no provider group or claim makes an administrator
    promoted = operator.call("POST", f"/users/{user.name}/promote")
    assert promoted["is_admin"] is True and promoted["oidc_subject"] == user.sub
    assert user.name in [u["username"] for u in user.api.call("GET", "/users")["users"]]
    # A later login through the provider (new claims and all) keeps what wio decided.
    provider.set_user(user.sub, preferred_username="whatever", groups=[])
    again = ApiClient(sso.api_url, sso_login(sso, provider, user.sub)["access_token"])
    assert again.call("GET", "/me")["is_admin"] is True
    # The promoted SSO user administers: here, demoting the bootstrap admin and promoting it back.
    assert again.call("POST", "/users/admin/demote")["is_admin"] is False
    assert operator.request("GET", "/users")[0] == 403
    again.call("POST", "/users/admin/promote")
    assert operator.call("POST", f"/users/{user.name}/demote")["is_admin"] is False
    assert user.api.request("GET", "/users")[0] == 403
    # Only administrators promote, and nobody by a name that does not exist.
    outsider = new_user(sso, provider, "outsider")
    status, body = outsider.api.request("POST", f"/users/{outsider.name}/promote")
    assert (status, body["error"]["code"]) == (403, "Forbidden")
    status, body = operator.request("POST", "/users/no-such-user-here/promote")
    assert (status, body["error"]["code"]) == (404, "NoSuchUser")


def test_the_last_administrator_cannot_be_demoted(sso, provider, operator):
    """Else nobody could promote anyone again (with password login off, not even the bootstrap admin)."""
    others = [u["username"] for u in operator.call("GET", "/users")["users"]
              if u["is_admin"] and not u["disabled"] and u["username"] != "admin"]
    for name in others:  # (the database is the session's: other tests may have promoted someone)
        operator.call("POST", f"/users/{name}/demote")
    try:
        status, body = operator.request("POST", "/users/admin/demote")
        assert (status, body["error"]["code"]) == (409, "LastAdministrator")
        deputy = new_user(sso, provider, "deputy")
        operator.call("POST", f"/users/{deputy.name}/promote")
        assert operator.call("POST", "/users/admin/demote")["is_admin"] is False  # now there is another
        status, body = deputy.api.request("POST", f"/users/{deputy.name}/demote")
        assert (status, body["error"]["code"]) == (409, "LastAdministrator")
        deputy.api.call("POST", "/users/admin/promote")
        deputy.api.call("POST", f"/users/{deputy.name}/demote")
    finally:
        for name in others:
            operator.call("POST", f"/users/{name}/promote")
