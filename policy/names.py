"""Naming rules shared by the admin API and the proxy."""
from __future__ import annotations

import ipaddress
import re

__all__ = ["workspace_name_error", "bucket_name_error", "username_error", "group_name_error", "infra_name_error",
           "RESERVED_NAMES"]

# Every rule is applied with fullmatch: ``re.match`` with ``$`` accepts a trailing newline ("admin\n").
_BUCKET_RE = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_USERNAME_RE = re.compile(r"[a-z0-9][a-z0-9_.-]{1,62}")
_GROUP_RE = re.compile(r"[a-z0-9][a-z0-9_.-]{0,62}")
_INFRA_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
RESERVED_NAMES = frozenset({"api", "metrics", "health", "healthz", "wio"})


def workspace_name_error(name: str) -> str | None:
    """Why ``name`` is not a valid workspace (= S3 bucket) name, or None when it is."""
    if _BUCKET_RE.fullmatch(name) is None:
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


def bucket_name_error(name: str) -> str | None:
    """Why ``name`` is not a bucket name a node accepts (for a root), or None when it is."""
    return None if _BUCKET_RE.fullmatch(name) else "'bucket' is not a valid S3 bucket name"


def username_error(name: str) -> str | None:
    if _USERNAME_RE.fullmatch(name) is None:
        return "usernames are 2-63 characters: lowercase letters, digits, '.', '_' and '-'"
    return None


def group_name_error(name: str) -> str | None:
    if _GROUP_RE.fullmatch(name) is None:
        return "group names are 1-63 lowercase letters, digits, '.', '_' and '-'"
    return None


def infra_name_error(name: str, what: str) -> str | None:
    """Node and root names."""
    if _INFRA_RE.fullmatch(name) is None:
        return f"{what} names are 1-63 lowercase letters, digits, '_' and '-'"
    return None
