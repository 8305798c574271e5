"""What the index stores and how it is asked: one shape for every backend.

An indexed object is identified by (workspace, key) — the workspace-relative key, as callers see it
through the proxy. ``version`` is the time its state was observed (the proxy's event time, or the
crawler's listing time); a write carrying an older version than the stored one is ignored, which makes
at-least-once delivery and out-of-order redelivery harmless.

Text search matches words: a key and a content type are split into runs of letters and digits
(``Results/run-01.CSV`` -> ``results run 01 csv``), and every word of a query must prefix-match one of
them (a word of digits only must equal one: ``run 42`` does not find ``run-420``). Both sides use
``words`` so indexing and querying can never tokenize differently.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

__all__ = ["ObjectDoc", "Removal", "Fingerprint", "Readable", "SearchFilters", "SearchHit", "SearchResult",
           "Bucket", "AGGREGATIONS", "words", "extension_of", "MAX_WINDOW"]

# Same as Elasticsearch's default index.max_result_window: offset + limit never go past it.
MAX_WINDOW = 10_000
# What aggregations group by, backend side ("owner" is folded from "workspace" by the caller).
AGGREGATIONS = ("workspace", "extension", "content_type")

_WORD = re.compile(r"[^\W_]+")
_EXTENSION = re.compile(r"^[a-z0-9][a-z0-9_+-]{0,15}$")


def words(text: str) -> list[str]:
    """Runs of letters and digits, lower-cased; the unit of text search."""
    return _WORD.findall(text.lower())


def extension_of(key: str) -> str:
    """``csv`` for ``data/x.CSV``; "" when the last path segment has none (``Makefile``, ``.bashrc``)."""
    name = key.rsplit("/", 1)[-1]
    stem, dot, ext = name.rpartition(".")
    ext = ext.lower()
    return ext if dot and stem and _EXTENSION.match(ext) else ""


@dataclass(frozen=True, slots=True)
class ObjectDoc:
    workspace: str
    key: str
    size: int
    etag: str
    content_type: str
    last_modified: float  # epoch seconds
    version: float        # epoch seconds when this state was observed


@dataclass(frozen=True, slots=True)
class Removal:
    workspace: str
    key: str
    version: float


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """What the crawler compares with a listing entry to decide whether an object changed."""
    size: int
    etag: str


@dataclass(frozen=True, slots=True)
class Readable:
    """What a caller may read right now: workspace -> key prefixes ("" alone means the whole workspace)."""
    prefixes: dict[str, tuple[str, ...]] = field(default_factory=dict)
    owners: dict[str, str] = field(default_factory=dict)

    @property
    def whole(self) -> list[str]:
        return sorted(ws for ws, ps in self.prefixes.items() if ps == ("",))

    @property
    def partial(self) -> list[tuple[str, str]]:
        return sorted((ws, p) for ws, ps in self.prefixes.items() if ps != ("",) for p in ps)

    def only(self, workspace: str | None) -> "Readable":
        if workspace is None:
            return self
        keep = {workspace: self.prefixes[workspace]} if workspace in self.prefixes else {}
        return Readable(keep, {w: o for w, o in self.owners.items() if w in keep})


@dataclass(frozen=True, slots=True)
class SearchFilters:
    text: str = ""
    workspace: str | None = None
    prefix: str = ""
    content_type: str = ""       # exact, or "type/*" for a whole family
    min_size: int | None = None
    max_size: int | None = None
    modified_after: datetime | None = None

    @property
    def words(self) -> list[str]:
        return words(self.text)


@dataclass(frozen=True, slots=True)
class SearchHit:
    workspace: str
    key: str
    size: int
    last_modified: datetime
    content_type: str


@dataclass(frozen=True, slots=True)
class SearchResult:
    total: int
    hits: list[SearchHit]


@dataclass(frozen=True, slots=True)
class Bucket:
    key: str
    objects: int
    bytes: int
