"""The admin API's error table (admin_api/errors.py): every error the API raises names a code of the table,
every code of the table is raised somewhere, and the middleware renders each one in the one JSON shape."""
from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
from aiohttp import web

from admin_api.errors import ERRORS, HTTP_STATUS_CODES, ApiError, error_middleware

ADMIN_API = Path(__file__).resolve().parents[2] / "admin_api"


def _api_error_calls() -> list[tuple[str, ast.Call]]:
    calls = []
    for path in sorted(ADMIN_API.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "ApiError":
                calls.append((f"{path.name}:{node.lineno}", node))
    return calls


def _literal_codes(node: ast.expr) -> list[str] | None:
    """The codes a first argument can take: a string literal, or a conditional between literals."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.IfExp):
        body, orelse = _literal_codes(node.body), _literal_codes(node.orelse)
        return body + orelse if body is not None and orelse is not None else None
    return None


def test_every_api_error_names_a_code_of_the_table():
    calls = _api_error_calls()
    assert len(calls) > 80  # the scan sees the handlers' raises
    wrong = []
    for where, call in calls:
        codes = _literal_codes(call.args[0]) if call.args else None
        if codes is None:
            # the one computed code: aiohttp's HTTP errors, mapped through HTTP_STATUS_CODES in the middleware
            if where.startswith("errors.py:") and isinstance(call.args[0], ast.Name) and call.args[0].id == "code":
                continue
            wrong.append(f"{where}: the code is not a literal of the table")
        elif any(code not in ERRORS for code in codes):
            wrong.append(f"{where}: {codes} not all in ERRORS")
        if any(isinstance(arg, ast.Constant) and isinstance(arg.value, int) for arg in call.args):
            wrong.append(f"{where}: restates a status; the table has it")
    assert not wrong, "\n".join(wrong)


def test_every_code_of_the_table_is_used():
    used = set(HTTP_STATUS_CODES.values())
    for _, call in _api_error_calls():
        used.update(_literal_codes(call.args[0]) or [])
    assert set(ERRORS) - used == set(), "codes in ERRORS that nothing raises"


def test_the_api_raises_no_aiohttp_http_error_of_its_own():
    """Errors go through ApiError; aiohttp's HTTP exceptions are raised only for redirects."""
    for path in sorted(ADMIN_API.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
                func = node.exc.func
                name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                if name.startswith("HTTP"):
                    assert getattr(web, name).status_code < 400, f"{path.name}:{node.lineno} raises {name}"


def test_table_entries_are_error_statuses_and_http_codes_match_their_status():
    for code, (status, message) in ERRORS.items():
        assert 400 <= status <= 599 and message, code
    for status, code in HTTP_STATUS_CODES.items():
        assert ERRORS[code][0] == status


def test_api_error_takes_status_and_default_message_from_the_table():
    error = ApiError("NoSuchUser")
    assert (error.status, error.code, error.message) == (404, "NoSuchUser", "no such user")
    assert ApiError("NoSuchUser", "no user named 'x'").message == "no user named 'x'"
    assert ApiError("Forbidden", status=418).status == 403  # only HTTPError carries another status
    with pytest.raises(KeyError):
        ApiError("NoSuchThing")


@pytest.fixture
async def error_app(aiohttp_client):
    async def raise_api_error(request: web.Request) -> web.Response:
        raise ApiError("WorkspaceNotEmpty", "workspace 'w' still holds objects")

    async def raise_range(request: web.Request) -> web.Response:
        raise web.HTTPRequestRangeNotSatisfiable()

    async def read_json(request: web.Request) -> web.Response:
        return web.json_response(await request.json())

    async def crash(request: web.Request) -> web.Response:
        raise ZeroDivisionError

    app = web.Application(middlewares=[error_middleware], client_max_size=16)
    app.router.add_get("/api-error", raise_api_error)
    app.router.add_get("/range", raise_range)
    app.router.add_post("/json", read_json)
    app.router.add_get("/crash", crash)
    return await aiohttp_client(app)


@pytest.mark.parametrize("method, path, body, status, code, message", [
    ("GET", "/api-error", None, 409, "WorkspaceNotEmpty", "workspace 'w' still holds objects"),
    ("GET", "/nowhere", None, 404, "NotFound", "Not Found"),
    ("DELETE", "/api-error", None, 405, "MethodNotAllowed", "Method Not Allowed"),
    ("GET", "/range", None, 416, "HTTPError", "Requested Range Not Satisfiable"),
    ("POST", "/json", b"{not json", 400, "InvalidJSON", "the request body is not valid JSON"),
    ("POST", "/json", b"[" * 64, 413, "PayloadTooLarge", "Request Entity Too Large"),
    ("GET", "/crash", None, 500, "InternalError", "internal error; quote the request id"),
])
async def test_middleware_renders_every_error_in_one_shape(error_app, method, path, body, status, code, message):
    resp = await error_app.request(method, path, data=body, headers={"X-Request-Id": "rid-1"})
    answer = json.loads(await resp.read())
    assert resp.status == status
    assert answer == {"error": {"code": code, "message": message, "request_id": "rid-1"}}
    assert resp.headers["X-Request-Id"] == "rid-1"
