"""Storage nodes: which endpoints may be registered, and the few S3 calls the admin side makes.

The proxy has its own streaming upstream (proxy/upstream.py); this client is for small control-plane
calls: reachability on registration, creating a root's bucket, checking a workspace is empty.
"""
from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import socket
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from datetime import datetime, timezone

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from signing import sign_s3_request
from foundation.safexml import XMLRefused, parse_untrusted_xml

__all__ = ["NodeError", "check_endpoint", "check_address", "resolve_checked", "GuardedResolver", "node_session",
           "NodeClient", "S3_NS", "WIO_SERVICE_HEADER"]

S3_NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
# wio's own API and proxy answer with this header: a "node" that does is wio itself, and is refused (a
# node that calls back into wio would make wio wait on itself).
WIO_SERVICE_HEADER = "X-Wio-Service"
# Cloud metadata services and other addresses a node endpoint must never point at, whatever the operator allows.
_ALWAYS_BLOCKED = [ipaddress.ip_network(n) for n in (
    "169.254.0.0/16", "fe80::/10", "0.0.0.0/8", "100.100.100.200/32", "fd00:ec2::254/128", "224.0.0.0/4",
    "ff00::/8", "::/128")]
# IPv6 forms that carry an IPv4 address a packet may end up at: NAT64 (RFC 6052, RFC 8215). IPv4-mapped
# (::ffff:0:0/96), 6to4 (2002::/16) and Teredo are unwrapped by the ipaddress module's own properties.
_NAT64 = [ipaddress.ip_network(n) for n in ("64:ff9b::/96", "64:ff9b:1::/48")]


class NodeError(Exception):
    """A node endpoint is not acceptable or did not answer as an S3 server should."""


def _embedded_ipv4(addr: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    found = [a for a in (addr.ipv4_mapped, addr.sixtofour) if a is not None]
    if addr.teredo is not None:
        found.extend(addr.teredo)
    if any(addr in net for net in _NAT64):
        found.append(ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF))
    return found


def check_address(raw: str, *, allow_private: bool) -> None:
    """Refuse an address a node must not be reached at (checked on every resolution, not only at
    registration, and on the IPv4 address an IPv6 form wraps)."""
    addr = ipaddress.ip_address(raw.split("%", 1)[0])
    # an address that wraps an IPv4 one (mapped, NAT64, 6to4, Teredo) is judged by what it wraps
    candidates: Sequence[ipaddress.IPv4Address | ipaddress.IPv6Address] = \
        (_embedded_ipv4(addr) if addr.version == 6 else []) or [addr]
    for candidate in candidates:
        if any(candidate in net for net in _ALWAYS_BLOCKED):
            raise NodeError(f"endpoint resolves to {addr}, which is in a blocked network")
        if not allow_private and (candidate.is_private or candidate.is_loopback or candidate.is_reserved):
            raise NodeError(f"endpoint resolves to {addr}, a private address; the operator has not allowed those")


async def resolve_checked(host: str, port: int, *, allow_private: bool) -> list[tuple[int, str]]:
    """(family, address) for ``host``, every one of them checked: connect only to these."""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise NodeError(f"cannot resolve {host}") from None
    if not infos:
        raise NodeError(f"cannot resolve {host}")
    checked: list[tuple[int, str]] = []
    for family, _, _, _, sockaddr in infos:
        address = sockaddr[0]
        if not isinstance(address, str):  # only an AF_INET/AF_INET6 answer names an address to check
            raise NodeError(f"{host} resolves to an address of an unsupported family")
        check_address(address, allow_private=allow_private)
        checked.append((family, address))
    return checked


class GuardedResolver(AbstractResolver):
    """aiohttp's resolver, with every answer checked: a name that resolved to a public address at
    registration and to a metadata or private one now (DNS rebinding) is refused before connecting."""

    def __init__(self, *, allow_private: bool):
        self.allow_private = allow_private

    async def resolve(self, host: str, port: int = 0, family: int = socket.AF_INET) -> list[ResolveResult]:
        return [ResolveResult(hostname=host, host=address, port=port, family=fam, proto=0,
                              flags=socket.AI_NUMERICHOST | socket.AI_NUMERICSERV)
                for fam, address in await resolve_checked(host, port, allow_private=self.allow_private)]

    async def close(self) -> None:
        pass


def node_session(*, allow_private: bool) -> aiohttp.ClientSession:
    """The HTTP session for control-plane calls to nodes (never for wio's own services)."""
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(resolver=GuardedResolver(allow_private=allow_private)))


async def check_endpoint(endpoint: str, *, allow_private: bool) -> str:
    """Validate a node endpoint (http/https, resolvable, not in a disallowed network); return it normalized."""
    try:
        url = URL(endpoint)
    except ValueError:
        raise NodeError(f"endpoint {endpoint!r} is not a URL") from None
    if url.scheme not in ("http", "https") or not url.host or url.port is None:
        raise NodeError("endpoint must be an http:// or https:// URL with a host")
    if url.user or url.password or url.query_string or url.fragment or url.path not in ("", "/"):
        raise NodeError("endpoint must be scheme://host[:port] only")
    await resolve_checked(url.host, url.port, allow_private=allow_private)
    return str(url.origin())


class NodeClient:
    def __init__(self, session: aiohttp.ClientSession, endpoint: str, region: str, access_key: str, secret_key: str):
        self.session, self.endpoint, self.region = session, endpoint.rstrip("/"), region
        self.access_key, self.secret_key = access_key, secret_key

    def signed(self, method: str, bucket: str, key: str, query: list[tuple[str, str]]) -> tuple[URL, dict[str, str]]:
        """The URL and signed headers of a body-less request (``bucket`` "" is the service, ``key`` "" the bucket)."""
        target, headers = sign_s3_request(method, URL(self.endpoint).raw_authority, bucket, key or None, query, {},
                                          payload_hash=EMPTY_SHA256, access_key=self.access_key,
                                          secret_key=self.secret_key, region=self.region,
                                          now=datetime.now(timezone.utc))
        return URL(self.endpoint + target, encoded=True), headers

    async def request(self, method: str, bucket: str, key: str = "", query: list[tuple[str, str]] | None = None,
                      timeout: float = 15) -> tuple[int, bytes]:
        url, headers = self.signed(method, bucket, key, query or [])
        try:
            async with self.session.request(method, url, headers=headers,
                                            timeout=aiohttp.ClientTimeout(total=timeout)) as resp:
                if WIO_SERVICE_HEADER in resp.headers:
                    raise NodeError(f"{self.endpoint} is wio's own {resp.headers[WIO_SERVICE_HEADER]}, not a storage node")
                return resp.status, await resp.read()
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise NodeError(f"node {self.endpoint} did not answer: {exc or type(exc).__name__}") from None

    async def check(self) -> None:
        status, body = await self.request("GET", "", "")  # ListBuckets
        if status != 200:
            raise NodeError(f"node {self.endpoint} refused the credentials (HTTP {status}: {_code(body)})")

    async def ensure_bucket(self, bucket: str) -> None:
        status, body = await self.request("HEAD", bucket)
        if status == 200:
            return
        status, body = await self.request("PUT", bucket)
        if status not in (200, 409):
            raise NodeError(f"cannot create bucket {bucket} on {self.endpoint}: HTTP {status} {_code(body)}")

    async def has_objects(self, bucket: str, prefix: str) -> bool:
        status, body = await self.request("GET", bucket, query=[("list-type", "2"), ("max-keys", "1"),
                                                                ("prefix", prefix)])
        if status != 200:
            raise NodeError(f"cannot list {bucket}/{prefix} on {self.endpoint}: HTTP {status} {_code(body)}")
        return _parse(body, self.endpoint).find(f"{S3_NS}Contents") is not None


    async def count_prefix(self, bucket: str, prefix: str) -> tuple[int, int]:
        """Total bytes and objects under ``prefix`` (paginated ListObjectsV2)."""
        total_bytes = total_objects = 0
        token = None
        while True:
            query = [("list-type", "2"), ("prefix", prefix)] + ([("continuation-token", token)] if token else [])
            status, body = await self.request("GET", bucket, query=query, timeout=60)
            if status != 200:
                raise NodeError(f"cannot list {bucket}/{prefix} on {self.endpoint}: HTTP {status} {_code(body)}")
            root = _parse(body, self.endpoint)
            for item in root.iter(f"{S3_NS}Contents"):
                total_objects += 1
                total_bytes += int(item.findtext(f"{S3_NS}Size") or 0)
            token = root.findtext(f"{S3_NS}NextContinuationToken")
            if root.findtext(f"{S3_NS}IsTruncated") != "true" or not token:
                return total_bytes, total_objects


def _parse(body: bytes, endpoint: str) -> ET.Element:
    try:
        return parse_untrusted_xml(body)
    except XMLRefused:
        raise NodeError(f"{endpoint} answered something that is not acceptable XML") from None


def _code(body: bytes) -> str:
    try:
        return parse_untrusted_xml(body).findtext("Code") or ""
    except XMLRefused:
        return ""
