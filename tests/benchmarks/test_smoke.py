"""Smoke tests of the benchmark harness: it runs and returns figures. No timing assertions."""
from __future__ import annotations

from pathlib import Path

from benchmarks.decision import decide_once, decision_case, measure_decisions
from benchmarks.profile import summarise_collapsed


def test_decision_benchmark_returns_a_positive_rate():
    for kind in ("header", "presigned"):
        assert decide_once(decision_case(kind)).allowed
        result = measure_decisions(seconds=0.1, kind=kind)
        assert result["decisions"] > 0
        assert result["decisions_per_second"] > 0


def test_profile_summary_reads_py_spy_raw_stacks():
    repo = str(Path(__file__).resolve().parents[2])
    lines = [f"run (asyncio/runners.py:118);authorize ({repo}/proxy/app.py:80);"
             f"verify_signature ({repo}/signing/verify.py:100) 30",
             "run (asyncio/runners.py:118);_write (site-packages/aiohttp/http_writer.py:70) 10"]
    summary = summarise_collapsed(lines, seconds=1.0, rate=100)
    assert summary["samples"] == 40
    assert summary["busy"] == 0.4
    assert summary["self"][0] == ("verify_signature (signing/verify.py)", 0.75)
    assert dict(summary["areas"]) == {"signing": 0.75, "aiohttp": 0.25}
