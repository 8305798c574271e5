"""Scraping Prometheus text and waiting for the audit trail, shared by the observability tests."""
from __future__ import annotations

import time
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

__all__ = ["Scrape", "scrape", "wait_for_audit"]


class Scrape:
    """One scrape: samples by name, and the family names that were declared (HELP/TYPE)."""

    def __init__(self, text: str):
        self.text = text
        self.families: set[str] = set()
        self.samples: list[tuple[str, dict[str, str], float]] = []
        for family in text_string_to_metric_families(text):
            self.families.add(family.name)
            for sample in family.samples:
                self.samples.append((sample.name, sample.labels, sample.value))
        # TYPE lines name counters with their _total, which the parser strips from family.name.
        for line in text.splitlines():
            if line.startswith("# TYPE "):
                self.families.add(line.split()[2])

    def value(self, name: str, **labels: str) -> float:
        """The sum over samples of ``name`` whose labels include ``labels`` (0 when there are none)."""
        return sum(v for n, lbl, v in self.samples
                   if n == name and all(lbl.get(k) == want for k, want in labels.items()))

    def names(self) -> set[str]:
        return self.families | {n for n, _, _ in self.samples}


def scrape(url: str) -> Scrape:
    with urllib.request.urlopen(url, timeout=10) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain")
        return Scrape(resp.read().decode())


def wait_for_audit(api, params: dict, predicate, timeout: float = 15.0) -> list[dict]:
    """Poll ``GET /audit`` until some entry satisfies ``predicate`` (the trail is asynchronous)."""
    deadline = time.monotonic() + timeout
    while True:
        entries = api.call("GET", "/audit", params=params)["entries"]
        if any(predicate(e) for e in entries):
            return entries
        if time.monotonic() > deadline:
            raise AssertionError(f"no audit entry matched within {timeout}s; got {entries[:5]}")
        time.sleep(0.2)
