"""Who may call at all: the checks on an access key and its user, before any workspace is looked at.

Pure: the proxy's Redis loader (``proxy.authz``) gives it what the projection holds on the key and
its user; it answers ``None`` (the caller may go on) or the ``Refusal`` S3 answers with.
"""
from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

__all__ = ["Refusal", "refuse_caller"]


@dataclass(frozen=True, slots=True)
class Refusal:
    code: str                  # the S3 error code
    message: str | None        # None: the code's standard message


UNKNOWN_KEY = Refusal("InvalidAccessKeyId", None)
EXPIRED_KEY = Refusal("InvalidAccessKeyId", "The access key has expired")
EXPIRED_TOKEN = Refusal("ExpiredToken", None)
BAD_TOKEN = Refusal("InvalidToken", "The security token is missing or does not belong to this key")
UNEXPECTED_TOKEN = Refusal("InvalidToken", "This access key does not take a security token")
DISABLED = Refusal("AccessDenied", "The account that owns this key is disabled")


def refuse_caller(*, user: str | None, expires: str | None, token_hash: str | None, disabled: str | None,
                  session_token: str | None, now: float) -> Refusal | None:
    """``user`` is None for an unknown key; ``expires`` epoch seconds ("0" or empty: never); ``token_hash``
    the SHA-256 of a temporary key's session token (empty for a long-lived key); ``disabled`` "1" for a
    disabled user, None when the user is gone."""
    if user is None:
        return UNKNOWN_KEY
    if expires and expires != "0" and int(expires) <= now:
        return EXPIRED_TOKEN if token_hash else EXPIRED_KEY
    if token_hash:
        presented = hashlib.sha256((session_token or "").encode()).hexdigest()
        if not session_token or not hmac.compare_digest(presented, token_hash):
            return BAD_TOKEN
    elif session_token:
        return UNEXPECTED_TOKEN
    if disabled is None or disabled == "1":
        return DISABLED
    return None
