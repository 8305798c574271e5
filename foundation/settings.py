"""One frozen Settings object, read from ``WIO_*`` environment variables at start-up.

No other module reads ``os.environ``: everything is passed a ``Settings``. A missing or
malformed variable raises ``SettingsError`` naming it, so an operator gets one clear line.
"""
from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass, field, replace
from typing import Mapping

__all__ = ["Settings", "SettingsError", "normalize_database_url"]


class SettingsError(ValueError):
    """A ``WIO_*`` variable is missing or malformed."""


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be an integer, got {raw!r}") from None


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"{name} must be true or false, got {raw!r}")


def _required(env: Mapping[str, str], name: str) -> str:
    raw = env.get(name)
    if not raw:
        raise SettingsError(f"{name} is not set")
    return raw


def _jwt_secret(env: Mapping[str, str]) -> str:
    """Only the admin API signs and checks login tokens; the proxy and the indexer run without it ("")."""
    secret = env.get("WIO_JWT_SECRET", "")
    if secret and len(secret) < 32:
        raise SettingsError("WIO_JWT_SECRET must be at least 32 characters (HS256 needs a 256-bit key)")
    return secret


def _oidc(env: Mapping[str, str]) -> dict:
    issuer = (env.get("WIO_OIDC_ISSUER") or "").rstrip("/") or None
    if issuer is not None:
        if not issuer.startswith(("https://", "http://")):
            raise SettingsError(f"WIO_OIDC_ISSUER must be an https:// URL (http:// for trials), got {issuer!r}")
        _required(env, "WIO_OIDC_CLIENT_ID")
    password_login = _bool(env, "WIO_PASSWORD_LOGIN", True)
    if not password_login and issuer is None:
        raise SettingsError("WIO_PASSWORD_LOGIN=false needs single sign-on (WIO_OIDC_ISSUER): nobody could log in")
    return {"oidc_issuer": issuer, "oidc_client_id": env.get("WIO_OIDC_CLIENT_ID") or None,
            "oidc_client_secret": env.get("WIO_OIDC_CLIENT_SECRET") or None,
            "oidc_username_claim": env.get("WIO_OIDC_USERNAME_CLAIM") or "preferred_username",
            "oidc_groups_claim": env.get("WIO_OIDC_GROUPS_CLAIM") or "groups",
            "oidc_redirect_uri": env.get("WIO_OIDC_REDIRECT_URI") or None,
            "password_login": password_login}


def derive_master_key(secret: str) -> bytes:
    """32 bytes for AES-256-GCM from ``WIO_MASTER_KEY`` (base64 of 32 bytes, or any passphrase)."""
    try:
        raw = base64.urlsafe_b64decode(secret + "=" * (-len(secret) % 4))
        if len(raw) == 32:
            return raw
    except ValueError:
        pass
    return hashlib.sha256(b"wio-master-key:" + secret.encode()).digest()


@dataclass(frozen=True)
class Settings:
    database_url: str
    redis_url: str
    master_key: bytes = field(repr=False)
    jwt_secret: str = field(repr=False)
    jwt_ttl_seconds: int = 3600
    region: str = "us-east-1"
    s3_domain: str | None = None
    api_host: str = "127.0.0.1"
    api_port: int = 8080
    proxy_host: str = "127.0.0.1"
    proxy_port: int = 9000
    api_url: str = "http://127.0.0.1:8080"
    elasticsearch_url: str | None = None
    # The S3 endpoint clients are told to use (GET /api/v1/info): the load balancer in front of the
    # proxies; unset, the proxy's own address. s3_ca_file: a CA certificate (PEM) clients must trust.
    s3_public_url: str | None = None
    s3_ca_file: str | None = None
    # Node endpoints on loopback/private networks are refused unless the operator allows them.
    allow_private_nodes: bool = False
    # Unsigned requests may read workspaces marked anonymous_read (S3's public-read). Off by default,
    # like AWS's Block Public Access: then no such flag can be set and no unsigned request is served.
    anonymous_reads: bool = False
    log_json: bool = True
    # First-start bootstrap (wio dev, docker-compose): the admin user, one node and its two roots.
    admin_password: str | None = field(default=None, repr=False)
    bootstrap_node_endpoint: str | None = None
    bootstrap_node_access_key: str | None = None
    bootstrap_node_secret_key: str | None = field(default=None, repr=False)
    bootstrap_node_region: str = "us-east-1"
    # Single sign-on (OpenID Connect); see docs/design.md#single-sign-on-openid-connect. No issuer: SSO is off.
    oidc_issuer: str | None = None
    oidc_client_id: str | None = None
    oidc_client_secret: str | None = field(default=None, repr=False)
    oidc_username_claim: str = "preferred_username"
    oidc_groups_claim: str = "groups"
    # The callback URL registered at the provider, as browsers reach the API (default: api_url's).
    oidc_redirect_uri: str | None = None
    password_login: bool = True

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Settings":
        env = os.environ if env is None else env
        api_port = _int(env, "WIO_API_PORT", 8080)
        return cls(
            database_url=normalize_database_url(_required(env, "WIO_DATABASE_URL")),
            redis_url=_required(env, "WIO_REDIS_URL"),
            master_key=derive_master_key(_required(env, "WIO_MASTER_KEY")),
            jwt_secret=_jwt_secret(env),
            jwt_ttl_seconds=_int(env, "WIO_JWT_TTL_SECONDS", 3600),
            region=env.get("WIO_REGION") or "us-east-1",
            s3_domain=env.get("WIO_S3_DOMAIN") or None,
            api_host=env.get("WIO_API_HOST") or "127.0.0.1",
            api_port=api_port,
            proxy_host=env.get("WIO_PROXY_HOST") or "127.0.0.1",
            proxy_port=_int(env, "WIO_PROXY_PORT", 9000),
            api_url=env.get("WIO_API_URL") or f"http://127.0.0.1:{api_port}",
            elasticsearch_url=env.get("WIO_ELASTICSEARCH_URL") or None,
            s3_public_url=env.get("WIO_S3_PUBLIC_URL") or None,
            s3_ca_file=env.get("WIO_S3_CA_FILE") or None,
            allow_private_nodes=_bool(env, "WIO_ALLOW_PRIVATE_NODES", False),
            anonymous_reads=_bool(env, "WIO_ANONYMOUS_READS", False),
            log_json=_bool(env, "WIO_LOG_JSON", True),
            admin_password=env.get("WIO_ADMIN_PASSWORD") or None,
            bootstrap_node_endpoint=env.get("WIO_BOOTSTRAP_NODE_ENDPOINT") or None,
            bootstrap_node_access_key=env.get("WIO_BOOTSTRAP_NODE_ACCESS_KEY") or None,
            bootstrap_node_secret_key=env.get("WIO_BOOTSTRAP_NODE_SECRET_KEY") or None,
            bootstrap_node_region=env.get("WIO_BOOTSTRAP_NODE_REGION") or "us-east-1",
            **_oidc(env),
        )

    @property
    def s3_public_endpoint(self) -> str:
        if self.s3_public_url:
            return self.s3_public_url.rstrip("/")
        host = "127.0.0.1" if self.proxy_host in ("0.0.0.0", "::", "") else self.proxy_host
        return f"http://[{host}]:{self.proxy_port}" if ":" in host else f"http://{host}:{self.proxy_port}"

    def with_(self, **changes) -> "Settings":
        return replace(self, **changes)

    def require_jwt_secret(self) -> None:
        if not self.jwt_secret:
            raise SettingsError("WIO_JWT_SECRET is required by the admin API (at least 32 characters)")

    def to_env(self) -> dict[str, str]:
        """The environment that reproduces these settings in a child process (``wio dev`` uses it)."""
        env = {
            "WIO_DATABASE_URL": self.database_url, "WIO_REDIS_URL": self.redis_url,
            "WIO_MASTER_KEY": base64.urlsafe_b64encode(self.master_key).decode(),
            "WIO_JWT_TTL_SECONDS": str(self.jwt_ttl_seconds), "WIO_REGION": self.region,
            "WIO_API_HOST": self.api_host, "WIO_API_PORT": str(self.api_port), "WIO_PROXY_HOST": self.proxy_host,
            "WIO_PROXY_PORT": str(self.proxy_port), "WIO_API_URL": self.api_url,
            "WIO_ALLOW_PRIVATE_NODES": "true" if self.allow_private_nodes else "false",
            "WIO_ANONYMOUS_READS": "true" if self.anonymous_reads else "false",
            "WIO_LOG_JSON": "true" if self.log_json else "false",
            "WIO_BOOTSTRAP_NODE_REGION": self.bootstrap_node_region,
            "WIO_OIDC_USERNAME_CLAIM": self.oidc_username_claim, "WIO_OIDC_GROUPS_CLAIM": self.oidc_groups_claim,
            "WIO_PASSWORD_LOGIN": "true" if self.password_login else "false",
        }
        optional = {"WIO_JWT_SECRET": self.jwt_secret,
                    "WIO_S3_DOMAIN": self.s3_domain, "WIO_ELASTICSEARCH_URL": self.elasticsearch_url,
                    "WIO_S3_PUBLIC_URL": self.s3_public_url, "WIO_S3_CA_FILE": self.s3_ca_file,
                    "WIO_ADMIN_PASSWORD": self.admin_password,
                    "WIO_BOOTSTRAP_NODE_ENDPOINT": self.bootstrap_node_endpoint,
                    "WIO_BOOTSTRAP_NODE_ACCESS_KEY": self.bootstrap_node_access_key,
                    "WIO_BOOTSTRAP_NODE_SECRET_KEY": self.bootstrap_node_secret_key,
                    "WIO_OIDC_ISSUER": self.oidc_issuer, "WIO_OIDC_CLIENT_ID": self.oidc_client_id,
                    "WIO_OIDC_CLIENT_SECRET": self.oidc_client_secret, "WIO_OIDC_REDIRECT_URI": self.oidc_redirect_uri}
        env.update({k: v for k, v in optional.items() if v})
        return env


def normalize_database_url(url: str) -> str:
    """Accept ``postgresql://`` and ``postgres://`` and use the asyncpg driver."""
    for plain in ("postgresql://", "postgres://"):
        if url.startswith(plain):
            return "postgresql+asyncpg://" + url[len(plain):]
    if not url.startswith("postgresql+asyncpg://"):
        raise SettingsError(f"WIO_DATABASE_URL must be a postgresql:// URL, got {url.split(':', 1)[0]}://…")
    return url
