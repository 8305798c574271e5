"""The Lua scripts of this package (authorization, anonymous reads, quotas, key locks), as Redis runs them.

A script may take a shared part from another file of this folder: a line ``--@include <file>`` (a Lua
comment) stands where that file's text goes. authorize.lua and list_buckets.lua both open with
caller_lookup.lua. Load a script with ``lua()``, never by reading its file: read alone, a script with
an include is incomplete. The ``#!lua`` shebang stays the first line (an include comes after it).
"""
from __future__ import annotations

from pathlib import Path

__all__ = ["lua"]

_HERE = Path(__file__).parent
_INCLUDE = "--@include "


def lua(name: str) -> str:
    """The source of ``name`` (``authorize.lua`` ...) with each ``--@include`` line replaced by its file."""
    parts = []
    for line in (_HERE / name).read_text().splitlines(keepends=True):
        if line.startswith(_INCLUDE):
            line = lua(line[len(_INCLUDE):].strip()).rstrip("\n") + "\n"
        parts.append(line)
    return "".join(parts)
