"""Readable output (tables, sizes, times) and the parsing of what people type (sizes, durations).

Tables are plain aligned columns on stdout: pipe-friendly, no colours, nothing on stdout for an
empty listing. ``--json`` prints the API's own JSON instead, for scripts.
"""
from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterable, Sequence

import click

__all__ = ["Column", "print_table", "print_json", "print_fields", "human_bytes", "parse_size", "parse_duration",
           "parse_expiry", "parse_ago", "short_time", "emit", "SIZE", "SIZE_LIMIT", "COUNT_LIMIT", "UNLIMITED",
           "LIFETIME", "EXPIRY", "SINCE"]

Column = tuple[str, "str | Callable[[dict], Any]"]


def _cell(row: dict, getter) -> str:
    value = getter(row) if callable(getter) else row.get(getter)
    if value is None or value == "":
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict) or (isinstance(value, (list, tuple)) and any(isinstance(v, dict) for v in value)):
        return json.dumps(value, separators=(",", ":"))
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value) or "-"
    return str(value)


def print_table(rows: Iterable[dict], columns: Sequence[Column]) -> None:
    rows = list(rows)
    if not rows:
        return
    cells = [[h.upper() for h, _ in columns]] + [[_cell(r, g) for _, g in columns] for r in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    for line in cells:
        click.echo("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=False)).rstrip())


def print_fields(pairs: Sequence[tuple[str, Any]]) -> None:
    """``label: value`` lines, labels aligned."""
    width = max((len(label) for label, _ in pairs), default=0)
    for label, value in pairs:
        click.echo(f"{(label + ':').ljust(width + 1)} {_cell({'v': value}, 'v')}")


def print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=False))


def emit(state, data: Any, render: Callable[[Any], None]) -> None:
    """JSON when asked for, else the human rendering."""
    if state.json:
        print_json(data)
    else:
        render(data)


_UNITS = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"]


def human_bytes(n: int | None) -> str | None:
    if n is None:
        return None
    value = float(n)
    for unit in _UNITS:
        if abs(value) < 1024 or unit == _UNITS[-1]:
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return str(n)


_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgtpe]?)(i?)(b?)\s*$", re.IGNORECASE)


def parse_size(text: str) -> int:
    """``1234``, ``10G``/``10GiB`` (powers of 1024), ``10GB`` (powers of 1000) -> bytes."""
    m = _SIZE_RE.match(text)
    if not m:
        raise click.BadParameter(f"{text!r} is not a size (examples: 500M, 10GiB, 2TB, 1048576)")
    number, prefix, binary, b = m.groups()
    power = "kmgtpe".find(prefix.lower()) + 1 if prefix else 0
    base = 1000 if (b and not binary and prefix) else 1024
    value = float(number) * base ** power
    if value != int(value):
        raise click.BadParameter(f"{text!r} is not a whole number of bytes")
    return int(value)


_DURATION_RE = re.compile(r"^\s*(\d+)\s*([smhdw]?)\s*$", re.IGNORECASE)
_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str) -> int:
    """``3600``, ``90s``, ``15m``, ``12h``, ``7d``, ``2w`` -> seconds."""
    m = _DURATION_RE.match(text)
    if not m:
        raise click.BadParameter(f"{text!r} is not a duration (examples: 3600, 15m, 12h, 7d)")
    return int(m.group(1)) * _SECONDS[m.group(2).lower()]


def _iso_utc(when: datetime) -> str:
    return when.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def _parse_time(text: str) -> datetime:
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(f"{text!r} is neither a duration (7d, 12h) nor a time (2030-01-31T12:00Z)") from None
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def parse_expiry(text: str, now: datetime | None = None) -> str:
    """A duration from now (7d) or an ISO 8601 time -> an ISO 8601 UTC time for the API."""
    now = now or datetime.now(timezone.utc)
    if _DURATION_RE.match(text):
        return _iso_utc(now + timedelta(seconds=parse_duration(text)))
    return _iso_utc(_parse_time(text))


def parse_ago(text: str, now: datetime | None = None) -> str:
    """A duration back from now (15m, 2d) or an ISO 8601 time -> an ISO 8601 UTC time for the API."""
    now = now or datetime.now(timezone.utc)
    if _DURATION_RE.match(text):
        return _iso_utc(now - timedelta(seconds=parse_duration(text)))
    return _iso_utc(_parse_time(text))


def short_time(value: str | None) -> str | None:
    """``2026-11-21T22:25:38.123Z`` -> ``2026-11-21 22:25Z`` for tables."""
    if not value:
        return None
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(timezone.utc)
    except ValueError:
        return value
    return dt.strftime("%Y-%m-%d %H:%MZ")


UNLIMITED = "unlimited"  # what a quota option gives for 'none': remove the limit (sent as null)


class _Parsed(click.ParamType):
    """A click type from one of the parsers above, so bad input is a usage error before any request."""

    def __init__(self, name: str, parse: Callable[[str], Any], nothing: tuple[str, ...] = (), nothing_value=None):
        self.name, self._parse, self._nothing, self._nothing_value = name, parse, nothing, nothing_value

    def convert(self, value, param, ctx):
        if not isinstance(value, str):
            return value
        if value.strip().lower() in self._nothing:
            return self._nothing_value
        try:
            return self._parse(value)
        except click.BadParameter as exc:
            self.fail(exc.message, param, ctx)


def _count(text: str) -> int:
    if not text.strip().isdigit():
        raise click.BadParameter(f"{text!r} is not a whole number")
    return int(text)


SIZE = _Parsed("size", parse_size)
SIZE_LIMIT = _Parsed("size", parse_size, ("none", "unlimited", "off"), UNLIMITED)
COUNT_LIMIT = _Parsed("count", _count, ("none", "unlimited", "off"), UNLIMITED)
LIFETIME = _Parsed("duration", parse_duration, ("never", "none"))
EXPIRY = _Parsed("time", parse_expiry)
SINCE = _Parsed("time", parse_ago)
