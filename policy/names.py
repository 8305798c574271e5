"""Naming rules shared by the admin API and the proxy."""
from __future__ import annotations

import ipaddress
import re

__all__ = ["workspace_name_error", "RESERVED_NAMES"]

_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
RESERVED_NAMES = frozenset({"api", "metrics", "health", "healthz", "wio"})


def workspace_name_error(name: str) -> str | None:
    """Why ``name`` is not a valid workspace (= S3 bucket) name, or None when it is."""
    if not _BUCKET_RE.match(name):
        return ("workspace names are 3-63 characters of lowercase letters, digits, '.' and '-', "
                "starting and ending with a letter or digit")
    if ".." in name or ".-" in name or "-." in name:
        return "workspace names cannot contain '..', '.-' or '-.'"
    try:
        ipaddress.IPv4Address(name)
        return "workspace names cannot look like an IP address"
    except ValueError:
        pass
    if name.startswith(("xn--", "sthree-")) or name.endswith(("-s3alias", "--ol-s3", "--x-s3")):
        return "this workspace name uses a prefix or suffix that S3 reserves"
    if name in RESERVED_NAMES:
        return f"'{name}' is reserved"
    return None
