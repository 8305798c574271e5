"""The admin API's error shape: ``{"error": {"code", "message"}}`` with a fitting status.

Handlers raise ``ApiError``; only ``error_middleware`` turns anything into a response. Anything
unexpected becomes a 500 ``InternalError`` carrying the request id that is also logged.
"""
from __future__ import annotations

import json
import logging
import uuid

from aiohttp import web
from redis.exceptions import RedisError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

__all__ = ["ApiError", "error_middleware", "json_error"]

log = logging.getLogger("wio.api")


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def json_error(status: int, code: str, message: str, request_id: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message, "request_id": request_id}},
                             status=status, headers={"X-Request-Id": request_id})


_HTTP_CODES = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound",
               405: "MethodNotAllowed", 409: "Conflict", 413: "PayloadTooLarge", 415: "UnsupportedMediaType"}


def _is_connection_failure(exc: BaseException) -> bool:
    if isinstance(exc, (OperationalError, InterfaceError, PoolTimeout)):
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, (OSError, ConnectionError, TimeoutError))   # asyncpg's command_timeout


@web.middleware
async def error_middleware(request: web.Request, handler):
    request_id = request.headers.get("X-Request-Id") or uuid.uuid4().hex
    request["request_id"] = request_id
    try:
        response = await handler(request)
    except ApiError as exc:
        return json_error(exc.status, exc.code, exc.message, request_id)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = _HTTP_CODES.get(exc.status, "HTTPError")
        return json_error(exc.status, code, exc.reason or code, request_id)
    except json.JSONDecodeError:
        return json_error(400, "InvalidJSON", "the request body is not valid JSON", request_id)
    except RedisError as exc:
        log.warning("redis unavailable request_id=%s: %s", request_id, exc)
        return json_error(503, "ServiceUnavailable", "the permission store (Redis) is unavailable", request_id)
    except Exception as exc:  # noqa: BLE001 - the one place that turns anything into a response
        if _is_connection_failure(exc):
            log.warning("database unavailable request_id=%s: %s", request_id, exc)
            return json_error(503, "ServiceUnavailable", "the database is unavailable", request_id)
        log.exception("internal error request_id=%s", request_id)
        return json_error(500, "InternalError", "internal error; quote the request id", request_id)
    response.headers.setdefault("X-Request-Id", request_id)
    return response
