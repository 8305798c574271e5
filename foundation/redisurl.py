"""Redis addresses: one URL names a single server or a Sentinel-monitored primary.

Forms (``WIO_REDIS_URL``):

* ``redis://[[user]:password@]host[:port][/db]``, ``rediss://…`` (TLS), ``unix:///path?db=N``: one
  server, as redis-py's ``Redis.from_url`` reads them.
* ``redis+sentinel://[[user]:password@]host[:port][,host[:port]…]/service[/db][?options]``: the
  primary that the Sentinels at those addresses (port 26379 by default) know as ``service``. The
  user and password are the primary's. ``rediss+sentinel://`` speaks TLS to the Sentinels and the
  primary. Options: ``sentinel_username`` and ``sentinel_password`` (when the Sentinels require AUTH),
  ``db``, and redis-py's ``ssl_*`` options (``ssl_cert_reqs``, ``ssl_ca_certs``, ``ssl_certfile``,
  ``ssl_keyfile``, ``ssl_check_hostname``).

Every Redis client of wio (the proxy's request path, its event sink, the API, the indexer) opens its
connection through :func:`parse_redis_url`, so every one of them follows a failover: on each new
connection it asks the Sentinels for the current primary and checks that the server it reached says
it is the primary.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from redis.asyncio import Redis

__all__ = ["SentinelTarget", "parse_redis_url", "is_sentinel_url", "redis_client", "SENTINEL_PORT"]

SENTINEL_PORT = 26379
_SCHEMES = {"redis+sentinel": False, "rediss+sentinel": True}
_SSL_OPTIONS = ("ssl_cert_reqs", "ssl_ca_certs", "ssl_certfile", "ssl_keyfile", "ssl_check_hostname")


@dataclass(frozen=True)
class SentinelTarget:
    """A Sentinel URL, parsed."""
    sentinels: tuple[tuple[str, int], ...]
    service: str
    db: int = 0
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    sentinel_username: str | None = None
    sentinel_password: str | None = field(default=None, repr=False)
    tls: bool = False
    ssl_options: dict[str, str] = field(default_factory=dict)


def is_sentinel_url(url: str) -> bool:
    return url.split("://", 1)[0].lower() in _SCHEMES


def _host_port(item: str) -> tuple[str, int]:
    if item.startswith("["):  # [v6]:port
        host, _, rest = item[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    else:
        host, _, port = item.rpartition(":") if item.count(":") == 1 else (item, "", "")
    if not host:
        raise ValueError(f"Sentinel address {item!r} has no host")
    try:
        number = int(port) if port else SENTINEL_PORT
    except ValueError:
        raise ValueError(f"Sentinel address {item!r} has an invalid port") from None
    if not 0 < number < 65536:
        raise ValueError(f"Sentinel address {item!r} has an invalid port")
    return unquote(host), number


def parse_redis_url(url: str) -> SentinelTarget | None:
    """The Sentinel target of a ``redis+sentinel://`` URL; None for a single-server URL.
    Raises ValueError with a readable message for a malformed Sentinel URL."""
    scheme = url.split("://", 1)[0].lower()
    if scheme not in _SCHEMES:
        return None
    parts = urlsplit(url)
    userinfo, _, hosts = parts.netloc.rpartition("@")
    username = password = None
    if userinfo:
        user, colon, secret = userinfo.partition(":")
        username = unquote(user) or None
        password = unquote(secret) if colon else None
    sentinels = tuple(_host_port(item) for item in hosts.split(",") if item)
    if not sentinels:
        raise ValueError("a redis+sentinel:// URL names at least one Sentinel host")
    path = [unquote(p) for p in parts.path.split("/") if p]
    if not path:
        raise ValueError("a redis+sentinel:// URL names the service: redis+sentinel://host:26379/mymaster")
    query = {k: v[-1] for k, v in parse_qs(parts.query).items() if v}
    db_text = query.pop("db", None) or (path[1] if len(path) > 1 else "0")
    try:
        db = int(db_text)
    except ValueError:
        raise ValueError(f"invalid database number {db_text!r} in the Redis URL") from None
    unknown = set(query) - {"sentinel_username", "sentinel_password", *_SSL_OPTIONS}
    if unknown:
        raise ValueError(f"unknown option(s) in the Redis URL: {', '.join(sorted(unknown))}")
    return SentinelTarget(
        sentinels=sentinels, service=path[0], db=db, username=username, password=password,
        sentinel_username=query.get("sentinel_username"), sentinel_password=query.get("sentinel_password"),
        tls=_SCHEMES[scheme], ssl_options={k: query[k] for k in _SSL_OPTIONS if k in query})


def _redis_py_ssl(target: SentinelTarget) -> dict[str, Any]:
    if not target.tls:
        return {}
    options: dict[str, Any] = {"ssl": True}
    for name, value in target.ssl_options.items():
        options[name] = value.lower() in ("1", "true", "yes") if name == "ssl_check_hostname" else value
    return options


def redis_client(url: str, **kwargs: Any) -> Redis:
    """A redis-py asyncio client for ``url``: ``Redis.from_url`` for one server, a Sentinel-managed
    client (which looks up the primary on every new connection) for a Sentinel URL."""
    target = parse_redis_url(url)
    if target is None:
        return Redis.from_url(url, **kwargs)
    from redis.asyncio.sentinel import Sentinel

    tls = _redis_py_ssl(target)
    sentinel_kwargs: dict[str, Any] = {**tls, "socket_connect_timeout": kwargs.get("socket_connect_timeout", 2)}
    if target.sentinel_password is not None:
        sentinel_kwargs.update(username=target.sentinel_username, password=target.sentinel_password)
    sentinel = Sentinel(list(target.sentinels), sentinel_kwargs=sentinel_kwargs)
    return sentinel.master_for(target.service, redis_class=Redis, db=target.db, username=target.username,
                               password=target.password, **tls, **kwargs)
