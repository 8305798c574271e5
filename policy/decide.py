"""The per-request decision: pure Python over what one Redis round trip returned.

A caller's rights on a workspace are a set of *effective grants*: (permission, key prefix, label).
They come from ownership, shares to the user, shares to the user's groups and public workspaces, and
are intersected with the access key's scope when the key is down-scoped. A request is allowed when a
grant of at least the needed level covers the key (object operations) or overlaps the prefix
(listings, which are then filtered to what the grants cover).
"""
from __future__ import annotations

import json
from functools import lru_cache
from dataclasses import dataclass, field
from typing import Any

__all__ = ["LEVELS", "Grant", "Decision", "WorkspaceView", "effective_grants", "decide_object", "decide_listing",
           "ListingFilter", "workspace_shares", "ANONYMOUS", "ANONYMOUS_OPERATIONS", "anonymous_grants"]

LEVELS = {"read": 1, "write": 2, "admin": 3}


@dataclass(frozen=True, slots=True)
class Grant:
    permission: str
    prefix: str
    label: str  # what decided: "owner", "share:12", "group:eng/share:14", "public", narrowed by "scope"


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    reason: str           # the grant label when allowed, the reason when denied
    grants: tuple[Grant, ...] = ()


@dataclass(frozen=True, slots=True)
class WorkspaceView:
    name: str
    node: str
    bucket: str
    prefix: str
    owner: str
    public: bool
    root: str = ""
    anonymous_read: bool = False   # unsigned requests may read it (when the operator allows them)


@lru_cache(maxsize=16384)
def _share_list(raw: str) -> tuple[tuple[str, str, int | None, int], ...]:
    """Parse one share list as the projection stores it. Keyed by its exact text, so a cached parse
    can never outlive a change: a revoked share changes the text Redis returns on the next request."""
    return tuple((permission, prefix, expires, share_id) for permission, prefix, expires, share_id in json.loads(raw))


@lru_cache(maxsize=16384)
def _share_grants(via: str, raw: str) -> tuple[tuple[int | None, Grant], ...]:
    """The grants of one share list as ``(expires, Grant)``, for the field it came from (``via`` is
    "" for the user's own list, ``group:<name>/`` for a group's). Keyed by the exact text like
    ``_share_list``; a Grant is immutable, so one object serves every request that reads that text."""
    return tuple((expires, Grant(permission, prefix, f"{via}share:{share_id}"))
                 for permission, prefix, expires, share_id in _share_list(raw))


_OWNER = Grant("admin", "", "owner")
_PUBLIC = Grant("read", "", "public")


def effective_grants(*, user: str, groups: list[str], ws: WorkspaceView, share_lists: list[str | None], now: float,
                     scope: list[dict[str, Any]] | None) -> list[Grant]:
    """All grants the caller holds on ``ws``, already narrowed by the key's scope."""
    # share_lists[0] is the user's own list (u:<user>), share_lists[i] that of groups[i - 1]
    grants: list[Grant] = []
    for index, raw in enumerate(share_lists):
        if not raw:
            continue
        if index == 0:
            via = ""
        elif index <= len(groups):
            via = f"group:{groups[index - 1]}/"
        else:
            break
        for expires, grant in _share_grants(via, raw):
            if expires and expires <= now:
                continue
            grants.append(grant)
    if ws.owner == user:
        grants.append(_OWNER)
    if ws.public:
        grants.append(_PUBLIC)
    if scope is None:
        return grants
    narrowed: list[Grant] = []
    for entry in scope:
        if entry.get("workspace") != ws.name:
            continue
        s_level, s_prefix = LEVELS[entry["permission"]], entry.get("prefix") or ""
        for g in grants:
            level = min(LEVELS[g.permission], s_level)
            if g.prefix.startswith(s_prefix):
                prefix = g.prefix
            elif s_prefix.startswith(g.prefix):
                prefix = s_prefix
            else:
                continue
            permission = next(name for name, lv in LEVELS.items() if lv == level)
            narrowed.append(Grant(permission, prefix, f"{g.label}+scope"))
    return narrowed


# The caller of an unsigned request (audit, metrics, the grant label), and what it may ever do: read
# objects and list them, as S3's AllUsers READ (public-read) allows. Nothing else is served anonymously.
ANONYMOUS = "anonymous"
ANONYMOUS_OPERATIONS = frozenset({"GetObject", "HeadObject", "ListObjects", "ListObjectsV2"})
_ANONYMOUS = Grant("read", "", ANONYMOUS)


def anonymous_grants(operation: str, ws: WorkspaceView | None, *, allowed_by_operator: bool) -> list[Grant]:
    """The grants of an unsigned request: read on the whole workspace, only for ANONYMOUS_OPERATIONS,
    only when the operator allows anonymous reads (WIO_ANONYMOUS_READS) and ``ws`` (as the projection
    holds it on this request) is marked anonymous_read. Empty otherwise: the request is denied."""
    if not allowed_by_operator or operation not in ANONYMOUS_OPERATIONS or ws is None or not ws.anonymous_read:
        return []
    return [_ANONYMOUS]


def _sufficient(grants: list[Grant], needed: str) -> list[Grant]:
    level = LEVELS[needed]
    return [g for g in grants if LEVELS[g.permission] >= level]


@lru_cache(maxsize=4096)
def _allowed(label: str) -> Decision:
    # a Decision is immutable: one object per grant label serves every request it allows
    return Decision(True, label)


def decide_object(grants: list[Grant], needed: str, key: str) -> Decision:
    """An operation on one key (or on the workspace itself when ``key`` is empty and needed is admin)."""
    level = LEVELS[needed]
    for g in grants:  # the first sufficient grant covering the key, in order (as _sufficient)
        if LEVELS[g.permission] >= level and key.startswith(g.prefix):
            return _allowed(g.label)
    if not grants:
        return Decision(False, "no grant on this workspace")
    return Decision(False, f"no {needed} grant covers this key")


@dataclass(frozen=True, slots=True)
class ListingFilter:
    """Which keys of a listing the caller may see. ``prefixes`` empty-string member means all."""
    prefixes: tuple[str, ...] = field(default=("",))

    @property
    def everything(self) -> bool:
        return "" in self.prefixes

    def shows_key(self, key: str) -> bool:
        return self.everything or any(key.startswith(p) for p in self.prefixes)

    def shows_common_prefix(self, common: str) -> bool:
        return self.everything or any(common.startswith(p) or p.startswith(common) for p in self.prefixes)


def decide_listing(grants: list[Grant], needed: str, prefix: str) -> tuple[Decision, ListingFilter]:
    """A listing under ``prefix``: allowed if some grant overlaps it; results are filtered to the grants."""
    usable = [g for g in _sufficient(grants, needed) if prefix.startswith(g.prefix) or g.prefix.startswith(prefix)]
    if not usable:
        reason = "no grant on this workspace" if not grants else f"no {needed} grant overlaps this prefix"
        return Decision(False, reason), ListingFilter(())
    covering = [g for g in usable if prefix.startswith(g.prefix)]
    if covering:
        return Decision(True, covering[0].label), ListingFilter(("",))
    return Decision(True, usable[0].label), ListingFilter(tuple(sorted({g.prefix for g in usable})))


def workspace_shares(share_hash: dict[str, str], now: float) -> list[tuple[str, str, str, str]]:
    """Every live share of a workspace, ``(kind, name, permission, prefix)`` with kind ``user`` or
    ``group``, from its projection hash (``wio:s:{workspace}``: ``u:{user}``/``g:{group}`` -> share list)."""
    out = []
    for field_name, raw in sorted(share_hash.items()):
        kind, _, name = field_name.partition(":")
        for permission, prefix, expires, _share_id in _share_list(raw):
            if not expires or expires > now:
                out.append(("user" if kind == "u" else "group", name, permission, prefix))
    return out
