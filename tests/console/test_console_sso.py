"""The console's "Log in with <provider>" button, in a real browser, against a real OpenID provider
(oidc-provider-mock on loopback): provider page, code flow with PKCE, back to the console logged in."""
from __future__ import annotations

import urllib.error
import uuid

from playwright.sync_api import expect

from tests.api.test_sso import _browser, provider, sso  # noqa: F401 - the provider and the SSO-enabled stack (fixtures)
from tests.conftest import unique
from wio.client import ApiClient

TIMEOUT_MS = 20_000


def test_log_in_with_the_provider(sso, provider, browser, screenshot):  # noqa: F811 - fixtures
    sub, name = str(uuid.uuid4()), unique("erin")
    provider.set_user(sub, preferred_username=name, email="erin@example.org")
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(sso.api_url + "/")
    button = page.get_by_role("link", name=f"Log in with {provider.url.split('://')[1]}")
    expect(button).to_be_visible(timeout=TIMEOUT_MS)
    # Password login is off on this server: the console offers no password form.
    expect(page.get_by_label("Password")).to_have_count(0)
    screenshot(page, "login-sso")
    button.click()
    page.get_by_placeholder("sub").fill(sub)
    page.get_by_role("button", name="Authorize").click()
    expect(page.get_by_role("heading", name="Workspaces")).to_be_visible(timeout=TIMEOUT_MS)
    expect(page.get_by_text(name, exact=True)).to_be_visible()
    assert "#/workspaces" in page.url and "sso" not in page.url   # the one-time code left the address bar
    context.close()


def _redirect(url: str) -> str:
    try:
        _browser.open(url, timeout=10)
    except urllib.error.HTTPError as exc:
        assert exc.code == 302, exc.read()
        return exc.headers["Location"]
    raise AssertionError(f"{url} did not redirect")


def test_the_console_handoff_code_is_single_use(sso, provider):  # noqa: F811 - fixtures
    sub = str(uuid.uuid4())
    provider.set_user(sub, preferred_username=unique("fay"))
    back = provider.approve(_redirect(sso.api_url + "/api/v1/auth/oidc/login?console=1"), sub)
    location = _redirect(back["_location"])
    assert location.startswith("/#/sso/")   # no token in the URL: a one-time code for the console
    code = location.rsplit("/", 1)[1]
    api = ApiClient(sso.api_url)
    answer = api.call("POST", "/auth/oidc/console", {"code": code})
    assert ApiClient(sso.api_url, answer["access_token"]).call("GET", "/me")["username"] == answer["username"]
    status, body = api.request("POST", "/auth/oidc/console", {"code": code})
    assert status == 401 and body["error"]["code"] == "InvalidState"
    assert api.request("POST", "/auth/oidc/console", {"code": "made-up"})[0] == 401
