"""Secrets at rest: AES-256-GCM under the operator's ``WIO_MASTER_KEY``.

Access-key secrets and node credentials are stored encrypted in PostgreSQL and in the Redis
projection. The proxy decrypts on use; ``SecretBox.open_cached`` memoises by ciphertext, which is
safe for revocation because the ciphertext itself is still fetched from Redis on every request.
"""
from __future__ import annotations

import base64
import hmac
import os
import secrets
import string
from functools import lru_cache

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = ["SecretBox", "new_access_key_id", "new_secret_key", "new_session_token", "constant_time_equal",
           "proxy_api_credential"]

_AKID_ALPHABET = string.ascii_uppercase + string.digits


class SecretBox:
    def __init__(self, key: bytes):
        self._aead = AESGCM(key)
        self.open_cached = lru_cache(maxsize=4096)(self.open)

    def seal(self, plaintext: str) -> str:
        nonce = os.urandom(12)
        return base64.b64encode(nonce + self._aead.encrypt(nonce, plaintext.encode(), b"wio")).decode()

    def open(self, token: str) -> str:
        raw = base64.b64decode(token)
        return self._aead.decrypt(raw[:12], raw[12:], b"wio").decode()


def proxy_api_credential(master_key: bytes) -> str:
    """The proxy's own credential for the few admin-API calls it makes for a caller it authenticated
    (CreateBucket, DeleteBucket, STS AssumeRole). Derived from the master key, which both hold; the
    proxy never holds the JWT signing secret, which would let it act as anyone on every call."""
    return hmac.new(master_key, b"wio: proxy -> admin API", "sha256").hexdigest()


def new_access_key_id() -> str:
    return "WIO" + "".join(secrets.choice(_AKID_ALPHABET) for _ in range(17))


def new_secret_key() -> str:
    return secrets.token_urlsafe(30)[:40]


def new_session_token() -> str:
    return secrets.token_urlsafe(48)


def constant_time_equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
