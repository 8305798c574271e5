"""``wio login --sso``: the client side of single sign-on (the API does the protocol; see admin_api/sso.py).

- Device authorization grant (RFC 8628) when the provider offers it: print the URL and the code, poll.
- Otherwise a loopback redirect (RFC 8252 §7.3): listen on 127.0.0.1 on a random port, send the
  browser to the provider with that redirect URI, take the code and state it comes back with, and
  hand them to the API, which redeems them with the PKCE verifier it kept.
"""
from __future__ import annotations

import html
import time
import urllib.parse
import webbrowser
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Callable

from wio.client import ApiClient, ApiClientError

__all__ = ["sso_login", "SsoLoginError"]

LOOPBACK_TIMEOUT_SECONDS = 300


class SsoLoginError(Exception):
    pass


def _device_login(api: ApiClient, started: dict, say: Callable[[str], None]) -> dict:
    url = started.get("verification_uri_complete") or started["verification_uri"]
    say(f"To log in, open {url} and enter the code {started['user_code']}")
    interval = int(started.get("interval") or 5)
    deadline = time.monotonic() + int(started.get("expires_in") or 600)
    while time.monotonic() < deadline:
        time.sleep(interval)
        try:
            return api.call("POST", "/auth/oidc/device/token", {"device_code": started["device_code"]})
        except ApiClientError as exc:
            if exc.code == "SlowDown":
                interval += 5  # RFC 8628 §3.5
            elif exc.code != "AuthorizationPending":
                raise
    raise SsoLoginError("the device code expired before the login was approved")


class _Receiver(HTTPServer):
    """Listens on 127.0.0.1, a port the system picks; ``result`` is the query the browser came back with."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _CallbackHandler)
        self.timeout = 1
        self.result: dict[str, str] | None = None


class _CallbackHandler(BaseHTTPRequestHandler):
    server: _Receiver

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        path, _, query = self.path.partition("?")
        if path != "/callback":
            self.send_error(404)
            return
        self.server.result = dict(urllib.parse.parse_qsl(query))
        body = (f"<!doctype html><title>wio</title><p>{html.escape('Login received: you can close this window.')}"
                .encode())
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the signature http.server calls
        pass


def _loopback_login(api: ApiClient, say: Callable[[str], None], open_browser: bool) -> dict:
    with _Receiver() as server:
        redirect_uri = f"http://127.0.0.1:{server.server_address[1]}/callback"
        started = api.call("POST", "/auth/oidc/login", {"redirect_uri": redirect_uri})
        url = started["authorization_url"]
        say(f"To log in, open {url}")
        if open_browser:
            webbrowser.open(url)
        deadline = time.monotonic() + LOOPBACK_TIMEOUT_SECONDS
        while server.result is None and time.monotonic() < deadline:
            server.handle_request()
    result = server.result
    if result is None:
        raise SsoLoginError(f"no answer from the browser within {LOOPBACK_TIMEOUT_SECONDS} s")
    if "error" in result:
        raise SsoLoginError(f"the identity provider refused: {result['error']} {result.get('error_description', '')}")
    return api.call("POST", "/auth/oidc/callback", {"code": result.get("code"), "state": result.get("state"),
                                                    "login_secret": started["login_secret"]})


def sso_login(api: ApiClient, say: Callable[[str], None], *, open_browser: bool = True) -> dict:
    """Log in through the server's identity provider; the API's answer (access_token, username, ...)."""
    try:
        started = api.call("POST", "/auth/oidc/device")
    except ApiClientError as exc:
        if exc.code != "DeviceFlowUnavailable":
            raise
        return _loopback_login(api, say, open_browser)
    return _device_login(api, started, say)
