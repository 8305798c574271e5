"""``GET /api/v1/openapi.json``: an OpenAPI 3.1 document generated from the routes the app really serves.

Paths, methods and path parameters come from the router; each operation's summary and description
from its handler's docstring; the shared error shape is declared once. Generated, not hand-written,
so it cannot drift from the code.
"""
from __future__ import annotations

import inspect
import re

from aiohttp import web

__all__ = ["routes", "build_document"]

routes = web.RouteTableDef()
_PARAM = re.compile(r"\{(\w+)(?::[^}]*)?\}")
_PUBLIC = {("POST", "/api/v1/auth/register"), ("POST", "/api/v1/auth/login"), ("GET", "/api/v1/openapi.json"),
           ("GET", "/api/v1/info"), ("POST", "/api/v1/links/{link_id}/presign")}
_PUBLIC_PREFIX = "/api/v1/auth/oidc"  # single sign-on: the caller is logging in


def build_document(app: web.Application) -> dict:
    paths: dict[str, dict] = {}
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource is not None else {}
        template = info.get("formatter") or info.get("path")
        if not template or not template.startswith("/api/v1/") or route.method == "HEAD":
            continue
        path = _PARAM.sub(r"{\1}", template)
        doc = inspect.getdoc(route.handler) or ""
        summary, _, description = doc.partition("\n")
        operation = {
            "operationId": route.handler.__name__,
            "summary": summary or route.handler.__name__.replace("_", " "),
            "parameters": [{"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
                           for name in _PARAM.findall(template)],
            "responses": {"2XX": {"description": "success (JSON)"},
                          "default": {"description": "error", "content": {"application/json": {
                              "schema": {"$ref": "#/components/schemas/Error"}}}}},
        }
        if description.strip():
            operation["description"] = description.strip()
        if (route.method, template) in _PUBLIC or template.startswith(_PUBLIC_PREFIX):
            operation["security"] = []
        if route.method in ("POST", "PUT", "PATCH"):
            operation["requestBody"] = {"required": False, "content": {"application/json": {
                "schema": {"type": "object"}}}}
        paths.setdefault(path, {})[route.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": "wio admin API", "version": "1",
                 "description": "Users, login, keys, nodes, roots, workspaces, shares, groups, quotas, usage, "
                                "search, audit and explain. See docs/design.md for the contract."},
        "paths": dict(sorted(paths.items())),
        "security": [{"bearer": []}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
            "schemas": {"Error": {"type": "object", "required": ["error"], "properties": {"error": {
                "type": "object", "required": ["code", "message"],
                "properties": {"code": {"type": "string"}, "message": {"type": "string"},
                               "request_id": {"type": "string"}}}}}},
        },
    }


@routes.get("/api/v1/openapi.json")
async def openapi(request: web.Request) -> web.Response:
    """This document."""
    return web.json_response(build_document(request.app))
