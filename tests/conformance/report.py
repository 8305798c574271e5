"""Turn a conformance run's JSON (WIO_CONFORMANCE_REPORT=path) into the Markdown table of docs/conformance.md.

    WIO_CONFORMANCE_REPORT=/tmp/conf.json pytest tests/conformance
    python -m tests.conformance.report /tmp/conf.json > table.md
"""
from __future__ import annotations

import json
import sys

# Cases whose two sides are *expected* to differ because wio refuses by design.
BY_DESIGN = ("test_bucket_configuration_refused_by_proxy", "test_object_acl_refused_by_proxy", "test_dot_segments",
             "test_sigv2_refused_by_proxy")


def _cell(entry: dict | None) -> str:
    if entry is None:
        return "not run"
    observed = (entry.get("observed") or "").replace("|", "\\|").replace("\n", " ")
    if len(observed) > 90:
        observed = observed[:87] + "..."
    mark = {"passed": "S3-conformant", "xfail": "deviates (xfail)", "failed": "FAILED", "XPASS": "XPASS"}.get(
        entry["outcome"], entry["outcome"])
    return f"{mark}: `{observed}`" if observed else mark


def rows(results: dict) -> list[str]:
    out = ["| case | direct (SeaweedFS) | proxy (wio) | same? | why, if different |", "| --- | --- | --- | --- | --- |"]
    for case in sorted(results):
        direct, proxy = results[case].get("direct"), results[case].get("proxy")
        same_obs = direct and proxy and direct.get("observed") == proxy.get("observed")
        same_out = direct and proxy and direct["outcome"] == proxy["outcome"]
        flagged = [e.get("reason") for e in (direct, proxy) if e and e["outcome"] == "xfail" and e.get("reason")]
        if case.split("[")[0] in BY_DESIGN and not flagged:
            same, why = ("yes" if same_obs else "no (by design)"), "" if same_obs else "wio refuses this by design"
        else:
            same = "yes" if (same_obs or same_out) else "no"
            why = ""
            if not same_obs or not same_out:
                reasons = [e.get("reason") for e in (direct, proxy) if e and e.get("reason")]
                why = "; ".join(dict.fromkeys(r for r in reasons if r))
            if same == "yes" and not same_obs and not why:
                why = "same verdict, details differ"
        out.append(f"| `{case}` | {_cell(direct)} | {_cell(proxy)} | {same} | {why.replace('|', '/')} |")
    return out


def main(argv: list[str]) -> None:
    with open(argv[1]) as fh:
        results = json.load(fh)
    print("\n".join(rows(results)))


if __name__ == "__main__":
    main(sys.argv)
