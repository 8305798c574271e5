"""Issue 22: the caller checks (key, expiry, session token, disabled user) as one pure function."""
from __future__ import annotations

import hashlib

import pytest

from policy.callers import Refusal, refuse_caller

NOW = 1_800_000_000.0
TOKEN = "session-token"
TOKEN_HASH = hashlib.sha256(TOKEN.encode()).hexdigest()


def check(**overrides) -> Refusal | None:
    fields = {"user": "alice", "expires": "", "token_hash": "", "disabled": "0", "session_token": None, "now": NOW}
    fields.update(overrides)
    return refuse_caller(**fields)


def test_a_valid_long_lived_key_passes():
    assert check() is None
    assert check(expires="0") is None                       # "0": never expires
    assert check(expires=str(int(NOW) + 1)) is None


def test_a_valid_temporary_key_passes_with_its_token():
    assert check(token_hash=TOKEN_HASH, session_token=TOKEN, expires=str(int(NOW) + 60)) is None


def test_unknown_key():
    assert check(user=None) == Refusal("InvalidAccessKeyId", None)
    # an unknown key is refused as such whatever else came back
    assert check(user=None, disabled="1", session_token="x") == Refusal("InvalidAccessKeyId", None)


@pytest.mark.parametrize("expires", [str(int(NOW)), str(int(NOW) - 1)])
def test_expired_long_lived_key(expires):
    assert check(expires=expires) == Refusal("InvalidAccessKeyId", "The access key has expired")


def test_expired_temporary_key_is_an_expired_token_even_with_the_right_token():
    assert check(expires=str(int(NOW)), token_hash=TOKEN_HASH, session_token=TOKEN) == Refusal("ExpiredToken", None)


@pytest.mark.parametrize("presented", [None, "", "another-token", TOKEN_HASH])
def test_temporary_key_without_its_token(presented):
    refusal = check(token_hash=TOKEN_HASH, session_token=presented)
    assert refusal is not None and refusal.code == "InvalidToken" and "does not belong" in (refusal.message or "")


def test_long_lived_key_with_a_token():
    refusal = check(session_token=TOKEN)
    assert refusal is not None and refusal.code == "InvalidToken" and "does not take" in (refusal.message or "")


@pytest.mark.parametrize("disabled", ["1", None])   # None: the user is gone from the projection
def test_disabled_or_missing_user(disabled):
    assert check(disabled=disabled) == Refusal("AccessDenied", "The account that owns this key is disabled")


def test_order_expiry_before_token_before_disabled():
    assert check(expires="1", session_token=TOKEN, disabled="1").message == "The access key has expired"
    assert check(session_token=TOKEN, disabled="1").code == "InvalidToken"
