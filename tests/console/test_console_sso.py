"""The console's "Log in with <provider>" button, in a real browser, against a real OpenID provider
(oidc-provider-mock on loopback): provider page, code flow with PKCE, back to the console logged in."""
from __future__ import annotations

import json
import urllib.error
import urllib.request
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
    expect(page.get_by_role("main")).to_have_text(f"Log in{button.inner_text()}")
    screenshot(page, "login-sso")
    button.click()
    page.get_by_placeholder("sub").fill(sub)
    page.get_by_role("button", name="Authorize").click()
    expect(page.get_by_role("heading", name="Workspaces")).to_be_visible(timeout=TIMEOUT_MS)
    expect(page.get_by_text(name, exact=True)).to_be_visible()
    assert "#/workspaces" in page.url and "sso" not in page.url   # the one-time code left the address bar
    context.close()


def _redirect(url: str, cookie: str | None = None) -> tuple[str, str | None]:
    """One step of a browser without cookie jar: the Location and the cookie set, if any."""
    request = urllib.request.Request(url, headers={"Cookie": cookie} if cookie else {})
    try:
        _browser.open(request, timeout=10)
    except urllib.error.HTTPError as exc:
        assert exc.code == 302, exc.read()
        set_cookie = exc.headers.get("Set-Cookie")
        return exc.headers["Location"], set_cookie.split(";")[0] if set_cookie else None
    raise AssertionError(f"{url} did not redirect")


def _start(stack, idp) -> tuple[dict, str]:
    sub = str(uuid.uuid4())
    idp.set_user(sub, preferred_username=unique("fay"))
    location, cookie = _redirect(stack.api_url + "/api/v1/auth/oidc/login?console=1")
    assert cookie and cookie.startswith("wio_console_login=")
    return idp.approve(location, sub), cookie


def test_the_console_handoff_is_single_use_and_bound_to_the_browser(sso, provider):  # noqa: F811 - fixtures
    back, cookie = _start(sso, provider)
    location, _ = _redirect(back["_location"], cookie)
    assert location.startswith("/#/sso/")   # no token in the URL: a one-time code for the console
    code = location.rsplit("/", 1)[1]
    api = ApiClient(sso.api_url)
    # Carried to another browser (no cookie, or another one), the code is refused ... and spent.
    status, body = api.request("POST", "/auth/oidc/console", {"code": code})
    assert status == 401 and "another browser" in body["error"]["message"]

    back, cookie = _start(sso, provider)
    code = _redirect(back["_location"], cookie)[0].rsplit("/", 1)[1]
    redeem = urllib.request.Request(sso.api_url + "/api/v1/auth/oidc/console", method="POST",
                                    data=json.dumps({"code": code}).encode(),
                                    headers={"Content-Type": "application/json", "Cookie": cookie})
    with urllib.request.urlopen(redeem, timeout=10) as resp:
        answer = json.load(resp)
    assert ApiClient(sso.api_url, answer["access_token"]).call("GET", "/me")["username"] == answer["username"]
    try:
        urllib.request.urlopen(redeem, timeout=10)
        raise AssertionError("a code was redeemed twice")
    except urllib.error.HTTPError as exc:
        assert exc.code == 401 and json.load(exc)["error"]["code"] == "InvalidState"


def test_a_console_callback_in_another_browser_is_refused(sso, provider):  # noqa: F811 - fixtures
    """Login CSRF: the attacker's own callback URL, opened in the victim's browser, logs nobody in."""
    back, _ = _start(sso, provider)
    status, body = ApiClient(sso.api_url).request("GET", "/auth/oidc/callback",
                                                  params={"code": back["code"], "state": back["state"]})
    assert status == 401 and body["error"]["code"] == "InvalidState"
