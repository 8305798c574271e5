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
from datetime import datetime, timezone

import aiohttp
from yarl import URL

from signing import sign_s3_request

__all__ = ["NodeError", "check_endpoint", "NodeClient", "S3_NS"]

S3_NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
# Cloud metadata services and other addresses a node endpoint must never point at, whatever the operator allows.
_ALWAYS_BLOCKED = [ipaddress.ip_network(n) for n in (
    "169.254.0.0/16", "fe80::/10", "0.0.0.0/8", "100.100.100.200/32", "fd00:ec2::254/128", "224.0.0.0/4",
    "ff00::/8", "::/128")]


class NodeError(Exception):
    """A node endpoint is not acceptable or did not answer as an S3 server should."""


async def check_endpoint(endpoint: str, *, allow_private: bool) -> str:
    """Validate a node endpoint (http/https, resolvable, not in a disallowed network); return it normalized."""
    try:
        url = URL(endpoint)
    except ValueError:
        raise NodeError(f"endpoint {endpoint!r} is not a URL") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise NodeError("endpoint must be an http:// or https:// URL with a host")
    if url.user or url.password or url.query_string or url.fragment or url.path not in ("", "/"):
        raise NodeError("endpoint must be scheme://host[:port] only")
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(url.host, url.port, type=socket.SOCK_STREAM)
    except socket.gaierror:
        raise NodeError(f"cannot resolve {url.host}") from None
    for info in infos:
        addr = ipaddress.ip_address(info[4][0].split("%", 1)[0])
        if any(addr in net for net in _ALWAYS_BLOCKED):
            raise NodeError(f"endpoint resolves to {addr}, which is in a blocked network")
        if not allow_private and (addr.is_private or addr.is_loopback or addr.is_reserved):
            raise NodeError(f"endpoint resolves to {addr}, a private address; the operator has not allowed those")
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
        return ET.fromstring(body).find(f"{S3_NS}Contents") is not None


    async def count_prefix(self, bucket: str, prefix: str) -> tuple[int, int]:
        """Total bytes and objects under ``prefix`` (paginated ListObjectsV2)."""
        total_bytes = total_objects = 0
        token = None
        while True:
            query = [("list-type", "2"), ("prefix", prefix)] + ([("continuation-token", token)] if token else [])
            status, body = await self.request("GET", bucket, query=query, timeout=60)
            if status != 200:
                raise NodeError(f"cannot list {bucket}/{prefix} on {self.endpoint}: HTTP {status} {_code(body)}")
            root = ET.fromstring(body)
            for item in root.iter(f"{S3_NS}Contents"):
                total_objects += 1
                total_bytes += int(item.findtext(f"{S3_NS}Size") or 0)
            token = root.findtext(f"{S3_NS}NextContinuationToken")
            if root.findtext(f"{S3_NS}IsTruncated") != "true" or not token:
                return total_bytes, total_objects


def _code(body: bytes) -> str:
    try:
        return ET.fromstring(body).findtext("Code") or ""
    except ET.ParseError:
        return ""
