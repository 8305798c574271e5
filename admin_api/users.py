"""Users: register, login, /me; disable/enable and promote/demote (system admins)."""
from __future__ import annotations

from aiohttp import web
from sqlalchemy import func, select

from admin_api.context import (DB, SETTINGS, caller, field, find, insert_unique, iso, json_body, mutation,
                                read_session)
from admin_api.errors import ApiError
from admin_api.security import hash_password, issue_token, verify_password
from policy.models import User
from policy.names import username_error

__all__ = ["routes", "user_json", "require_admin", "create_user", "login_response"]

routes = web.RouteTableDef()


def user_json(user: User) -> dict:
    return {"username": user.username, "email": user.email, "is_admin": user.is_admin,
            "disabled": user.disabled, "created_at": iso(user.created_at),
            # set for single sign-on users: which identity at the provider this account is
            "oidc_subject": user.oidc_subject}


def require_admin(user: User) -> None:
    if not user.is_admin:
        raise ApiError("Forbidden", "this needs a system administrator")


def _validate_credentials(username: str, password: str) -> None:
    error = username_error(username)
    if error is not None:
        raise ApiError("InvalidUsername", error)
    if len(password) < 8 or len(password) > 1024:
        raise ApiError("WeakPassword")


async def create_user(session, change, username: str, password: str, email: str | None = None,
                      is_admin: bool = False) -> User:
    _validate_credentials(username, password)
    user = User(username=username, email=email, password_hash=await hash_password(password), is_admin=is_admin)
    await insert_unique(session, user, ApiError("UserExists", f"the username '{username}' is taken"))
    change.users.add(username)
    return user


def login_response(settings, username: str) -> dict:
    """The answer to a successful login (password or single sign-on): wio's own token."""
    return {"access_token": issue_token(settings.jwt_secret, username, settings.jwt_ttl_seconds),
            "token_type": "bearer", "expires_in": settings.jwt_ttl_seconds}


def _require_password_login(request: web.Request) -> None:
    if not request.app[SETTINGS].password_login:
        raise ApiError("PasswordLoginDisabled")


@routes.post("/api/v1/auth/register")
async def register(request: web.Request) -> web.Response:
    _require_password_login(request)
    body = await json_body(request)
    username, password = field(body, "username", str), field(body, "password", str)
    email = field(body, "email", str, default=None)
    _validate_credentials(username, password)
    async with mutation(request.app) as (session, change):
        user = await create_user(session, change, username, password, email)
    return web.json_response(user_json(user), status=201)


@routes.post("/api/v1/auth/login")
async def login(request: web.Request) -> web.Response:
    _require_password_login(request)
    body = await json_body(request)
    username, password = field(body, "username", str), field(body, "password", str)
    async with read_session(request.app) as session:
        user = await session.scalar(select(User).where(User.username == username))
    if not await verify_password(user.password_hash if user else None, password):
        raise ApiError("InvalidCredentials")
    if user.disabled:
        raise ApiError("AccountDisabled")
    return web.json_response(login_response(request.app[SETTINGS], user.username))


@routes.get("/api/v1/me")
async def me(request: web.Request) -> web.Response:
    async with request.app[DB]() as session:
        return web.json_response(user_json(await caller(request, session)))


async def _set_disabled(request: web.Request, disabled: bool) -> web.Response:
    async with mutation(request.app) as (session, change):
        require_admin(await caller(request, session))
        user = await find(session, User.username, request.match_info["username"], ApiError("NoSuchUser"))
        user.disabled = disabled
        change.users.add(user.username)
    return web.json_response(user_json(user))


async def _set_admin(request: web.Request, is_admin: bool) -> web.Response:
    """Make a user a system administrator or take it back; SSO and password users alike.

    The provider has no say in this (no claim makes anyone an administrator), and wio keeps at
    least one enabled administrator: demoting the last one would leave nobody able to undo it.
    """
    async with mutation(request.app) as (session, change):
        require_admin(await caller(request, session))
        user = await find(session, User.username, request.match_info["username"], ApiError("NoSuchUser"))
        if user.is_admin and not is_admin:
            others = await session.scalar(select(func.count()).select_from(User).where(
                User.is_admin.is_(True), User.disabled.is_(False), User.id != user.id))
            if not others:
                raise ApiError("LastAdministrator")
        user.is_admin = is_admin
        change.users.add(user.username)
    return web.json_response(user_json(user))


@routes.post("/api/v1/users/{username}/promote")
async def promote_user(request: web.Request) -> web.Response:
    """Make a user a system administrator (system admins; single sign-on users too)."""
    return await _set_admin(request, True)


@routes.post("/api/v1/users/{username}/demote")
async def demote_user(request: web.Request) -> web.Response:
    """Take system administration back from a user (system admins; 409 for the last enabled one)."""
    return await _set_admin(request, False)


@routes.post("/api/v1/users/{username}/disable")
async def disable_user(request: web.Request) -> web.Response:
    return await _set_disabled(request, True)


@routes.post("/api/v1/users/{username}/enable")
async def enable_user(request: web.Request) -> web.Response:
    return await _set_disabled(request, False)


@routes.get("/api/v1/users")
async def list_users(request: web.Request) -> web.Response:
    async with read_session(request.app) as session:
        require_admin(await caller(request, session))
        users = (await session.scalars(select(User).order_by(User.username))).all()
    return web.json_response({"users": [user_json(u) for u in users]})
