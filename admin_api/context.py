"""What every handler needs: app resources (AppKeys), the caller, JSON bodies, mutations."""
from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from typing import Any, AsyncIterator

import aiohttp
from aiohttp import web
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from admin_api.errors import ApiError
from admin_api.security import TokenError, decode_token
from policy.models import User
from policy.projection import ProjectionChange, apply_change, lock_model
from foundation.secrets import SecretBox, proxy_api_credential
from foundation.settings import Settings

__all__ = ["SETTINGS", "DB", "REDIS", "BOX", "HTTP", "NODE_HTTP", "VIA_PROXY", "caller", "json_body", "field", "mutation",
           "read_session", "parse_time", "iso", "find", "manages", "insert_unique", "PROXY_AUTH_SCHEME"]

SETTINGS = web.AppKey("settings", Settings)
DB = web.AppKey("db", async_sessionmaker)
REDIS = web.AppKey("redis", Redis)
BOX = web.AppKey("box", SecretBox)
HTTP = web.AppKey("http", aiohttp.ClientSession)
# calls to user-supplied node endpoints: every resolution checked (nodeclient/client.py GuardedResolver)
NODE_HTTP = web.AppKey("node_http", aiohttp.ClientSession)
# set by caller(): this call came from the proxy, acting for the user it authenticated
VIA_PROXY = web.RequestKey("via_proxy", bool)

_MISSING = object()
PROXY_AUTH_SCHEME = "WioProxy"


async def json_body(request: web.Request) -> dict:
    if not request.body_exists:
        return {}
    if request.content_length is not None and request.content_length > 1 << 20:
        raise ApiError("PayloadTooLarge")
    body = await request.json()
    if not isinstance(body, dict):
        raise ApiError("InvalidJSON", "the request body must be a JSON object")
    return body


def field(body: dict, name: str, kind: type | tuple, *, default: Any = _MISSING) -> Any:
    value = body.get(name, _MISSING)
    if value is _MISSING or value is None:
        if default is _MISSING:
            raise ApiError("MissingField", f"'{name}' is required")
        return default
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise ApiError("InvalidField", f"'{name}' must be of type {names}")
    return value


def parse_time(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except (ValueError, AttributeError):
        raise ApiError("InvalidField", f"'{name}' must be an ISO 8601 time") from None
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


def iso(dt: datetime | None) -> str | None:
    return dt.astimezone(timezone.utc).isoformat().replace("+00:00", "Z") if dt else None


async def find(session: AsyncSession, column: Any, value: object, missing: ApiError,
               visible: Callable[[Any], bool] | None = None) -> Any:
    """The row whose ``column`` (e.g. ``User.username``) equals ``value``. ``missing`` (a ``NoSuch*``
    error) is raised when there is none, or when ``visible(row)`` is false: the caller may not learn
    that it exists."""
    row = await session.scalar(select(column.class_).where(column == value))
    if row is None or (visible is not None and not visible(row)):
        raise missing
    return row


def manages(user: User, owner_id: int) -> bool:
    """May ``user`` manage what ``owner_id`` owns: the owner, or a system administrator."""
    return user.is_admin or user.id == owner_id


async def insert_unique(session: AsyncSession, row, clash: ApiError) -> None:
    """Add ``row`` and flush; a unique-name clash raises ``clash`` (a 409 such as ``UserExists``)."""
    session.add(row)
    try:
        await session.flush()
    except IntegrityError:
        raise clash from None


async def caller(request: web.Request, session: AsyncSession, *, proxy_may_act: bool = False) -> User:
    """The authenticated, enabled user making this request (Bearer JWT), loaded fresh from PostgreSQL.

    ``proxy_may_act``: this call may also come from the proxy, with its own credential
    (``WioProxy <credential>``) and the user it authenticated in ``X-Wio-Acting-User``; every other
    call refuses that credential. ``request[VIA_PROXY]`` tells which it was."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    request[VIA_PROXY] = scheme == PROXY_AUTH_SCHEME
    if request[VIA_PROXY]:
        expected = proxy_api_credential(request.app[SETTINGS].master_key)
        if not proxy_may_act or not hmac.compare_digest(token.strip().encode(), expected.encode()):
            raise ApiError("Forbidden", "the proxy's credential does not authorize this call")
        username = request.headers.get("X-Wio-Acting-User", "")
    elif scheme.lower() != "bearer" or not token:
        raise ApiError("Unauthorized")
    else:
        try:
            username = decode_token(request.app[SETTINGS].jwt_secret, token.strip())
        except TokenError as exc:
            raise ApiError("Unauthorized", str(exc)) from None
    user = await session.scalar(select(User).where(User.username == username))
    if user is None:
        raise ApiError("Unauthorized", "the login token names an unknown user")
    if user.disabled:
        raise ApiError("AccountDisabled")
    return user


@asynccontextmanager
async def read_session(app: web.Application) -> AsyncIterator[AsyncSession]:
    async with app[DB]() as session:
        yield session


@asynccontextmanager
async def mutation(app: web.Application) -> AsyncIterator[tuple[AsyncSession, ProjectionChange]]:
    """A change to the model: serialized, projected into Redis before commit (see policy/projection.py)."""
    async with app[DB]() as session:
        async with session.begin():
            await lock_model(session)
            change = ProjectionChange()
            yield session, change
            await session.flush()
            await apply_change(session, app[REDIS], change)


async def _keep(what: str, step: Callable[[], Awaitable[object]], seconds: float) -> None:
    while True:
        try:
            await step()
        except asyncio.CancelledError:
            raise
        except (RedisError, OSError) as exc:
            logging.getLogger("wio.api").warning("%s failed (will retry): %s", what, exc)
        except Exception:  # noqa: BLE001 - keep the keeper alive whatever happens, but say it
            logging.getLogger("wio.api").exception("%s failed (will retry)", what)
        await asyncio.sleep(seconds)


@asynccontextmanager
async def keeping(what: str, step: Callable[[], Awaitable[object]], seconds: float) -> AsyncIterator[None]:
    """Run ``step`` every ``seconds`` in the background for the duration of the block (the API's
    keepers); a failure is logged and retried on the next round, never fatal."""
    task = asyncio.create_task(_keep(what, step, seconds))
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
