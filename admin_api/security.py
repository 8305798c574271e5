"""Passwords (Argon2id, off the event loop) and login tokens (JWT, HS256)."""
from __future__ import annotations

import asyncio
import time

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

__all__ = ["hash_password", "verify_password", "issue_token", "decode_token", "TokenError"]

_hasher = PasswordHasher()
# A fixed hash to verify against for unknown users, so login timing does not reveal which names exist.
_DUMMY_HASH = _hasher.hash("wio-dummy-password")


class TokenError(Exception):
    pass


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_hasher.hash, password)


async def verify_password(password_hash: str | None, password: str) -> bool:
    def check() -> bool:
        try:
            return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
        except (VerificationError, InvalidHashError):
            return False
    return await asyncio.to_thread(check)


def issue_token(secret: str, username: str, ttl_seconds: int, *, now: float | None = None) -> str:
    now = time.time() if now is None else now
    return jwt.encode({"sub": username, "iat": int(now), "exp": int(now) + ttl_seconds, "typ": "wio-login"},
                      secret, algorithm="HS256")


def decode_token(secret: str, token: str) -> str:
    try:
        claims = jwt.decode(token, secret, algorithms=["HS256"], options={"require": ["sub", "exp"]})
    except jwt.ExpiredSignatureError:
        raise TokenError("the login token has expired; log in again") from None
    except jwt.PyJWTError:
        raise TokenError("the login token is invalid") from None
    if claims.get("typ") != "wio-login":
        raise TokenError("the login token is invalid")
    return claims["sub"]
