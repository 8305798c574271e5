"""The three paths a request can take, measured side by side.

- ``direct``: the node itself, with the node's own credentials, on the workspace's physical bucket
  and prefix: the physical limit.
- ``nginx``: Debian's nginx, ``proxy_pass`` to the node, no auth: requests are signed for the node
  (Host is passed through), so this is the cost of one extra HTTP hop written in C.
- ``wio``: the proxy, with a wio key, on the workspace (bucket = workspace, no prefix).

Every request is presigned (signing.presign_url): the client then only sends bytes, which keeps it
cheap (docs/design.md calibration: "presigned requests over keep-alive").
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timezone
from urllib.parse import quote

from signing import presign_query

__all__ = ["Target", "PATH_NAMES"]

PATH_NAMES = ("direct", "nginx", "wio")


@dataclass(frozen=True)
class Target:
    name: str          # direct | nginx | wio | wio-quota ...
    host: str
    port: int
    bucket: str
    prefix: str        # key prefix inside the bucket ("" for wio: the workspace is the bucket)
    access_key: str
    secret_key: str
    region: str = "us-east-1"
    session_token: str | None = None

    @property
    def authority(self) -> str:
        return f"{self.host}:{self.port}"

    def with_name(self, name: str, **changes) -> "Target":
        return replace(self, name=name, **changes)

    def path(self, key: str | None = None) -> str:
        path = "/" + quote(self.bucket, safe="")
        if key is not None:
            path += "/" + quote((self.prefix + key).encode(), safe="/~")
        return path

    def presign(self, method: str, key: str | None = None, query: list[tuple[str, str]] | None = None,
                *, expires: int = 3600, now: datetime | None = None) -> str:
        """The request target (raw path and query) of a presigned request for ``key``."""
        path = self.path(key)
        raw_query = presign_query(method, path, query or [], [("host", self.authority)],
                                  access_key=self.access_key, secret_key=self.secret_key, region=self.region,
                                  now=now or datetime.now(timezone.utc), expires=expires,
                                  session_token=self.session_token)
        return f"{path}?{raw_query}"
