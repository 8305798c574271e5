"""A small synchronous client for the admin REST API (the CLI and the tests use it)."""
from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

__all__ = ["ApiClient", "ApiClientError"]


class ApiClientError(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(f"{message} ({code}, HTTP {status})" if status else message)
        self.status, self.code, self.message = status, code, message


class ApiClient:
    def __init__(self, base_url: str, token: str | None = None, *, timeout: float = 30,
                 context: ssl.SSLContext | None = None):
        self.base_url = base_url.rstrip("/")
        self.token, self.timeout, self.context = token, timeout, context

    def request(self, method: str, path: str, body: Any = None,
                params: dict[str, Any] | None = None) -> tuple[int, Any]:
        url = self.base_url + "/api/v1" + path
        if params:
            url += "?" + urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        req = urllib.request.Request(url, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout, context=self.context) as resp:
                raw = resp.read()
                return resp.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                return exc.code, json.loads(raw) if raw else None
            except ValueError:
                return exc.code, {"error": {"code": "HTTPError", "message": raw.decode(errors="replace")[:200]}}
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ApiClientError(0, "Unreachable", f"cannot reach {self.base_url}: {reason}") from None

    def call(self, method: str, path: str, body: Any = None, params: dict[str, Any] | None = None) -> Any:
        status, data = self.request(method, path, body, params)
        if status >= 400:
            error = (data or {}).get("error", {}) if isinstance(data, dict) else {}
            raise ApiClientError(status, error.get("code", "HTTPError"), error.get("message", f"HTTP {status}"))
        return data

    def login(self, username: str, password: str) -> str:
        self.token = self.call("POST", "/auth/login", {"username": username, "password": password})["access_token"]
        return self.token
