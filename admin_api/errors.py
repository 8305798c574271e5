"""The admin API's errors: one table from code to HTTP status and default message, one exception type,
one renderer (like the proxy's S3 table in ``proxy/errors.py``).

The shape is ``{"error": {"code", "message", "request_id"}}``. Handlers raise ``ApiError(code)`` or
``ApiError(code, message)`` with a code from ``ERRORS``; only ``error_middleware`` turns anything into
a response. aiohttp's own HTTP errors (404 for an unknown route, 405, 413 for an oversized body) get
the code ``HTTP_STATUS_CODES`` names for their status. Anything unexpected becomes a 500
``InternalError`` carrying the request id that is also logged. ``tests/api/test_error_table.py`` checks
that every raise names a code of the table and every code of the table is raised somewhere.
"""
from __future__ import annotations

import json
import logging
import uuid

from aiohttp import web
from redis.exceptions import RedisError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

__all__ = ["ApiError", "ERRORS", "HTTP_STATUS_CODES", "error_middleware", "error_response"]

log = logging.getLogger("wio.api")

ERRORS: dict[str, tuple[int, str]] = {
    # 400: the request itself is wrong
    "BadRequest": (400, "the request is malformed"),
    "InvalidJSON": (400, "the request body is not valid JSON"),
    "MissingField": (400, "a required field is missing"),
    "InvalidField": (400, "a field has a value this call does not accept"),
    "InvalidParameter": (400, "a query parameter has a value this call does not accept"),
    "InvalidName": (400, "the name is not valid"),
    "InvalidUsername": (400, "the username is not valid"),
    "InvalidWorkspaceName": (400, "the workspace name is not valid"),
    "InvalidPrefix": (400, "the prefix is not valid"),
    "InvalidEndpoint": (400, "the node endpoint is not valid"),
    "InvalidRedirectUri": (400, "the redirect URI is not allowed"),
    "WeakPassword": (400, "passwords must be 8 to 1024 characters long"),
    "ManagedRoot": (400, "only unmanaged roots take imported workspaces"),
    "UnmanagedRoot": (400, "workspaces on an unmanaged root are imported: POST /workspaces/import"),
    "AuthorizationPending": (400, "the user has not approved this device yet"),
    "SlowDown": (400, "the user has not approved this device yet"),
    # 401: who is calling is not established
    "Unauthorized": (401, "log in and send 'Authorization: Bearer <token>'"),
    "InvalidCredentials": (401, "wrong username or password"),
    "InvalidIdentity": (401, "the identity provider did not establish who you are"),
    "InvalidState": (401, "unknown or already used login state; start the login again"),
    # 403: the caller may not do this
    "Forbidden": (403, "you are not allowed to do this"),
    "AnonymousReadsDisabled": (403, "anonymous reads are blocked on this server (WIO_ANONYMOUS_READS is not set)"),
    "AccountDisabled": (403, "this account is disabled"),
    "PasswordLoginDisabled": (403, "this server logs users in through single sign-on only"),
    # 404: what the request names does not exist
    "NotFound": (404, "no such resource"),
    "NoSuchUser": (404, "no such user"),
    "NoSuchGroup": (404, "no such group"),
    "NoSuchMember": (404, "that user is not a member of this group"),
    "NoSuchKey": (404, "no such access key"),
    "NoSuchNode": (404, "no such node"),
    "NoSuchRoot": (404, "no such root"),
    "NoSuchWorkspace": (404, "no such workspace"),
    "NoSuchLink": (404, "no such share link, or it has expired or was revoked"),
    "NoSuchShare": (404, "no such share"),
    "SsoNotConfigured": (404, "single sign-on is not configured on this server"),
    "MethodNotAllowed": (405, "this method is not allowed on this resource"),
    # 409: the current state forbids it
    "Conflict": (409, "the request conflicts with the current state"),
    "UserExists": (409, "that username is taken"),
    "GroupExists": (409, "a group with that name already exists"),
    "NodeExists": (409, "a node with that name already exists"),
    "RootExists": (409, "a root with that name already exists"),
    "WorkspaceExists": (409, "a workspace with that name already exists"),
    "WorkspaceOwnedByYou": (409, "you already own a workspace with that name"),
    "WorkspaceNotEmpty": (409, "the workspace still holds objects"),
    "WorkspaceChanged": (409, "the workspace was replaced meanwhile; try again"),
    "RootNotEmpty": (409, "the root still holds workspaces; delete them first"),
    "NoDefaultRoot": (409, "no root of that kind exists yet; an administrator must create one"),
    "LastAdministrator": (409, "this is the last enabled administrator; promote another first"),
    "DeviceFlowUnavailable": (409, "the identity provider does not offer the device grant"),
    "PayloadTooLarge": (413, "request bodies are limited to 1 MiB"),
    "UnsupportedMediaType": (415, "the request body's media type is not supported"),
    # 5xx: wio or what it depends on failed
    "InternalError": (500, "internal error; quote the request id"),
    "HTTPError": (500, "the request failed"),
    "NodeUnavailable": (502, "the storage node is unavailable"),
    "ServiceUnavailable": (503, "the service is unavailable; please retry"),
    "SearchUnavailable": (503, "the search index is unavailable"),
    "ProviderUnavailable": (503, "the identity provider is unavailable"),
}

# aiohttp's own HTTP errors (no route, wrong method, body over client_max_size, ...): the code for each status.
HTTP_STATUS_CODES: dict[int, str] = {ERRORS[code][0]: code for code in (
    "BadRequest", "Unauthorized", "Forbidden", "NotFound", "MethodNotAllowed", "Conflict", "PayloadTooLarge",
    "UnsupportedMediaType")}


class ApiError(Exception):
    """An error answer: ``code`` from ``ERRORS`` (its status), ``message`` or the code's default one.
    ``status`` overrides the table only for ``HTTPError`` (aiohttp errors of other statuses)."""

    def __init__(self, code: str, message: str | None = None, *, status: int | None = None):
        default_status, default_message = ERRORS[code]
        self.code = code
        self.message = message or default_message
        self.status = status if status is not None and code == "HTTPError" else default_status
        super().__init__(self.message)


def error_response(error: ApiError, request_id: str) -> web.Response:
    return web.json_response({"error": {"code": error.code, "message": error.message, "request_id": request_id}},
                             status=error.status, headers={"X-Request-Id": request_id})


def _is_connection_failure(exc: BaseException) -> bool:
    if isinstance(exc, (OperationalError, InterfaceError, PoolTimeout)):
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, (OSError, ConnectionError, TimeoutError))   # asyncpg's command_timeout


@web.middleware
async def error_middleware(request: web.Request, handler):
    request_id = request.headers.get("X-Request-Id") or uuid.uuid4().hex
    try:
        response = await handler(request)
    except ApiError as exc:
        return error_response(exc, request_id)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = HTTP_STATUS_CODES.get(exc.status)
        error = ApiError(code, exc.reason) if code else ApiError("HTTPError", exc.reason, status=exc.status)
        return error_response(error, request_id)
    except json.JSONDecodeError:
        return error_response(ApiError("InvalidJSON"), request_id)
    except RedisError as exc:
        log.warning("redis unavailable request_id=%s: %s", request_id, exc)
        return error_response(ApiError("ServiceUnavailable", "the permission store (Redis) is unavailable"), request_id)
    except Exception as exc:  # noqa: BLE001 - the one place that turns anything into a response
        if _is_connection_failure(exc):
            log.warning("database unavailable request_id=%s: %s", request_id, exc)
            return error_response(ApiError("ServiceUnavailable", "the database is unavailable"), request_id)
        log.exception("internal error request_id=%s", request_id)
        return error_response(ApiError("InternalError"), request_id)
    response.headers.setdefault("X-Request-Id", request_id)
    return response
