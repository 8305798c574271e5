"""Single sign-on against a real OpenID provider (oidc-provider-mock) started on loopback by the tests.

The provider is the library's Flask application served by werkzeug in a thread of this process; the
wio API and proxy run as ``wio serve`` children configured with it (password login off). Two test-only
additions to the provider, both on its own routes and keys:

- it *requires* PKCE (S256), as a provider configured that way does: a token request whose
  ``code_verifier`` does not match the authorization request's ``code_challenge`` is refused;
  (``enforce_pkce = False`` simulates a provider that ignores PKCE, to reach wio's own nonce check);
- ``/test/jwk`` hands the test its private signing key, so tests can mint ID tokens with chosen
  claims signed exactly as the provider signs them (wrong audience, expired, another issuer ...).

oidc-provider-mock 0.3 has no device authorization endpoint: ``wio login --sso`` is tested through
its loopback redirect (the device grant is the API's ``/auth/oidc/device*`` and is not exercised here).
"""
from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass, field

import boto3
import flask
import jwt
import pytest
import werkzeug.serving
from botocore.exceptions import ClientError
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric import rsa

import oidc_provider_mock
from admin_api.security import issue_token
from tests.conftest import s3_client, unique, wio_settings
from wio.cli import cli
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

    def mint(self, *, alg: str = "RS256", key=None, kid: str | None = None, **overrides) -> str:
        """An ID token signed with the provider's own key (or ``key``), with these claims changed."""
        now = int(time.time())
        claims = {"iss": self.url, "sub": "minted-" + uuid.uuid4().hex[:8], "aud": CLIENT_ID, "iat": now,
                  "exp": now + 300, "preferred_username": "minted"} | overrides
        if alg == "none":
            return jwt.encode(claims, None, algorithm="none", headers={"kid": self.private_jwk["kid"]})
        return jwt.encode(claims, key if key is not None else jwt.PyJWK(self.private_jwk).key, algorithm=alg,
                          headers={"kid": kid or self.private_jwk["kid"]})


def _start_provider():
    app = oidc_provider_mock.app()
    provider_box: list[Provider] = []

    @app.get("/test/jwk")
    def private_jwk():
        return flask.g.oidc_provider_mock_storage.jwk.as_dict(is_private=True)

    @app.after_request
    def remember_challenge(response):
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

    server = werkzeug.serving.make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_port}"
    with urllib.request.urlopen(url + "/test/jwk", timeout=10) as resp:
        provider_box.append(Provider(url, json.load(resp)))
    return provider_box[0], server, thread


@pytest.fixture(scope="module")
def provider():
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


@pytest.fixture(scope="module")
def sso(pg_service, redis_service, s3_node, provider):
    settings = wio_settings(pg_service, redis_service, s3_node, oidc_issuer=provider.url, oidc_client_id=CLIENT_ID,
                            oidc_client_secret=CLIENT_SECRET, password_login=False)
    stack = DevStack(settings=settings)
    try:
        launch_components(stack, settings)
        yield stack
    finally:
        stack.stop()


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
    key = ApiClient(sso.api_url, first["access_token"]).call("POST", "/keys", {"name": "sso"})
    assert s3_client(sso.s3_url, key).list_buckets()["Buckets"] == []


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
            ("POST", "/auth/oidc/device", None, None, "DeviceFlowUnavailable")):
        status, answer = anonymous.request(method, path, body, params)
        assert 400 <= status < 500 and answer["error"]["code"] == code, (path, status, answer)


# --- the CLI ---------------------------------------------------------------------------------------------

def test_wio_login_sso_through_a_loopback_redirect(sso, provider, tmp_path, monkeypatch):
    sub, name = str(uuid.uuid4()), unique("cli")
    provider.set_user(sub, preferred_username=name)
    browsed = []

    def browser(url: str) -> bool:
        """The user's browser: approve at the provider, then follow the redirect to the CLI's loopback port."""
        def visit():
            back = provider.approve(url, sub)
            with urllib.request.urlopen(back["_location"], timeout=10) as resp:
                browsed.append((back["_location"], resp.status))
        threading.Thread(target=visit, daemon=True).start()
        return True

    monkeypatch.setattr("wio.sso.webbrowser.open", browser)
    env = {"XDG_CONFIG_HOME": str(tmp_path / "xdg"), "HOME": str(tmp_path), "WIO_API": sso.api_url,
           "WIO_PROFILE": None, "WIO_CONFIG_DIR": None}
    runner = CliRunner()
    result = runner.invoke(cli, ["login", "--sso", "--s3", sso.s3_url], env=env, prog_name="wio")
    assert result.exit_code == 0, result.output
    assert "To log in, open " + provider.url in result.stderr
    assert f"Logged in to {sso.api_url} as {name}" in result.stdout
    [(location, status)] = browsed
    assert location.startswith("http://127.0.0.1:") and "/callback?" in location and status == 200
    whoami = runner.invoke(cli, ["whoami", "--json"], env=env, prog_name="wio")
    assert whoami.exit_code == 0 and json.loads(whoami.stdout)["username"] == name
    refused = runner.invoke(cli, ["login", "--sso", "alice"], env=env, prog_name="wio")
    assert refused.exit_code == 2 and "--sso takes no username" in refused.output
