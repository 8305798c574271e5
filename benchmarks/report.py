"""results.json -> the table (Markdown), the targets of docs/design.md checked, and PNG charts."""
from __future__ import annotations

import statistics
from pathlib import Path

__all__ = ["check_targets", "table", "charts"]

MiB = 1 << 20


def _get(results: dict, section: str, **match) -> dict | None:
    for entry in results.get(section) or []:
        if all(entry.get(k) == v for k, v in match.items()):
            return entry
    return None


def _target(name: str, value, target, op: str, unit: str = "") -> dict:
    met = None
    if value is not None:
        met = value >= target if op == ">=" else value <= target
    return {"target": name, "value": value, "goal": f"{op} {target}{unit}", "met": met}


def check_targets(results: dict) -> list[dict]:
    out = []
    large = results.get("large") or []
    for entry in large:
        goal = 0.9 if entry["op"] == "PUT" else 0.8
        out.append(_target(f"large {entry['op']} {entry['size'] // MiB} MiB x{entry['streams']}, wio/direct",
                           entry["ratios"]["wio/direct"], goal, ">=", " x"))
    for op in ("GET", "PUT"):
        c32 = _get(results, "small", op=op, concurrency=32)
        if c32:
            out.append(_target(f"4 KiB {op} ops/s at c32, wio/direct", c32["ratios"]["wio/direct"], 0.6, ">=", " x"))
        c1 = _get(results, "small", op=op, concurrency=1)
        if c1 and c1.get("added_p50_ms"):
            out.append(_target(f"4 KiB {op} added median latency at c1", c1["added_p50_ms"]["wio"], 1.0, "<=",
                               " ms"))
    if results.get("decision"):
        out.append(_target("decisions/s/core (header-signed GetObject)",
                           results["decision"]["decisions_per_second_per_core"], 20000, ">="))
    if results.get("revocation"):
        out.append(_target("revocation: first request after revoke denied",
                           results["revocation"]["fraction_denied"], 1.0, ">="))
    if results.get("rss"):
        size = results["rss"]["object_bytes"] // MiB
        out.append(_target(f"proxy RSS growth on a {size} MiB object", results["rss"]["growth_mib"], 64, "<=",
                           " MiB"))
    return out


def _fmt(value, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def table(results: dict) -> str:
    meta = results["meta"]
    git = meta.get("git", {})
    lines = [f"wio benchmarks, {meta['mode']} mode, {meta['date']}, {meta['cores']} cores, {meta['machine']}, "
             f"commit {git.get('commit', '?')[:10]}"
             + (f" (+{git['dirty_files']} uncommitted files)" if git.get("dirty_files") else "")
             + f", proxy workers {meta['proxy_workers']}, nginx {meta.get('nginx') or 'absent'}", ""]
    paths = meta.get("paths", ["direct", "nginx", "wio"])
    others = [run["cores"].get("other", 0) for section in ("large", "small", "list")
              for entry in results.get(section) or [] for p in entry["paths"].values() for run in p["runs"]]
    if others and statistics.median(others) > 0.3:
        lines += [f"WARNING: other processes used a median of {statistics.median(others):.2f} of the "
                  f"{meta['cores']} cores during the runs (column 'other load'): the machine was shared, the "
                  "absolute figures are low and the ratios noisy. Re-run on a quiet machine.", ""]
    head = ("| measurement | " + " | ".join(paths)
            + " | wio/direct | wio/nginx | client cores (direct) | other load (cores) |")
    lines += [head, "|" + "---|" * (len(paths) + 5)]

    def row(label: str, entry: dict, figure: str, digits: int = 1, extra: str = "") -> None:
        cells = [_fmt(entry["paths"].get(p, {}).get(figure), digits) for p in paths]
        client = entry["paths"].get("direct", {}).get("cores", {}).get("client")
        other = max((entry["paths"][p].get("cores", {}).get("other") or 0 for p in entry["paths"]), default=None)
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {_fmt(entry['ratios']['wio/direct'], 2)} | "
                     f"{_fmt(entry['ratios']['wio/nginx'], 2)} | {_fmt(client, 2)}{extra} | {_fmt(other, 2)} |")

    for entry in results.get("large") or []:
        row(f"{entry['op']} {entry['size'] // MiB} MiB x{entry['streams']} (MiB/s)", entry, "mib_s")
    for entry in results.get("small") or []:
        row(f"{entry['op']} 4 KiB c{entry['concurrency']} (ops/s)", entry, "ops_s")
        cells = [f"{_fmt(entry['paths'][p].get('p50_ms'), 2)} / {_fmt(entry['paths'][p].get('p99_ms'), 2)}"
                 for p in paths]
        added = entry.get("added_p50_ms", {}).get("wio")
        lines.append(f"| {entry['op']} 4 KiB c{entry['concurrency']} p50 / p99 (ms) | " + " | ".join(cells)
                     + f" | +{_fmt(added, 2)} ms p50 | | | |")
    for entry in results.get("list") or []:
        row(f"LIST {entry['keys']:,} keys c{entry['concurrency']} (pages/s)", entry, "pages_s", 2)
    lines.append("")
    dec = results.get("decision")
    if dec:
        lines.append(f"authorization decision, no I/O: {_fmt(dec['header']['decisions_per_second'], 0)}/s/core "
                     f"header-signed ({dec['header']['us_per_decision']} us), "
                     f"{_fmt(dec['presigned']['decisions_per_second'], 0)}/s/core presigned; "
                     "stages (us): " + ", ".join(f"{k} {v}" for k, v in dec["stages_us"].items()))
    rev = results.get("revocation")
    if rev:
        lines.append(f"revocation: {rev['denied_after_revocation']}/{rev['trials']} first requests after revoke "
                     f"denied ({rev['fraction_denied']:.2%}), proxy workers {rev['proxy_workers']}, "
                     f"{rev['workers_reached_by_pooled_connections']} workers reached by the pooled connections, "
                     f"{rev['allowed_before_revocation']}/{rev['trials']} allowed before")
    quota = results.get("quota")
    if quota:
        if not quota.get("available"):
            lines.append(f"quota reservation: not available ({quota.get('note')})")
        else:
            c1, c32 = quota["c1"], quota["c32"]
            lines.append(f"quota: 4 KiB PUT c1 p50 {c1['wio']['p50_ms']} ms -> {c1['wio-quota']['p50_ms']} ms with a "
                         f"quota; c32 {_fmt(c32['wio']['ops_s'])} -> {_fmt(c32['wio-quota']['ops_s'])} ops/s; "
                         f"reserve+settle alone {quota.get('reservation_us')} us")
            ledger = quota.get("accounting_us")
            if ledger:
                lines.append(f"quota ledger per request (locks, recorded reservation, settle): "
                             f"PUT {ledger['put_us']} us, DELETE {ledger['delete_us']} us")
    rss = results.get("rss")
    if rss:
        lines.append(f"proxy RSS, {rss['object_bytes'] // MiB} MiB object: PUT +{rss['PUT']['growth_mib']} MiB "
                     f"(baseline {rss['PUT']['baseline_mib']}), GET +{rss['GET']['growth_mib']} MiB "
                     f"(sum over {rss['proxy_pids']} worker processes)")
    lines += ["", "| target | value | goal | met |", "|---|---|---|---|"]
    for t in results.get("targets") or []:
        met = {True: "yes", False: "NO", None: "-"}[t["met"]]
        lines.append(f"| {t['target']} | {_fmt(t['value'], 3)} | {t['goal']} | {met} |")
    return "\n".join(lines)


_MET, _MISSED = "#55a868", "#c44e52"


def charts(results: dict, out_dir: Path) -> str:
    """PNG charts next to results.json; a message instead when matplotlib is missing."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "charts skipped: matplotlib is not installed (pip install matplotlib)"
    paths = results["meta"].get("paths", ["direct", "nginx", "wio"])
    colours = {"direct": "#4c72b0", "nginx": "#55a868", "wio": "#c44e52"}
    stamp = f"{results['meta']['date']} · {results['meta']['cores']} cores · {results['meta']['mode']}"
    written = []

    def grouped(entries: list[tuple[str, dict]], figure: str, ylabel: str, title: str, name: str) -> None:
        if not entries:
            return
        fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(entries)), 4))
        width = 0.8 / len(paths)
        for i, path in enumerate(paths):
            values = [e["paths"].get(path, {}).get(figure) or 0 for _, e in entries]
            xs = [j + (i - (len(paths) - 1) / 2) * width for j in range(len(entries))]
            ax.bar(xs, values, width, label=path, color=colours.get(path))
        ax.set_xticks(range(len(entries)), [label for label, _ in entries], fontsize=8)
        ax.set_ylabel(ylabel)
        ax.set_title(f"{title}\n{stamp}", fontsize=10)
        ax.legend()
        fig.tight_layout()
        fig.savefig(out_dir / name, dpi=110)
        plt.close(fig)
        written.append(name)

    grouped([(f"{e['op']} {e['size'] // MiB} MiB x{e['streams']}", e) for e in results.get("large") or []],
            "mib_s", "MiB/s", "Large objects", "large.png")
    grouped([(f"{e['op']} c{e['concurrency']}", e) for e in results.get("small") or []],
            "ops_s", "ops/s", "4 KiB objects", "small.png")
    grouped([(f"{e['op']} c{e['concurrency']}", e) for e in results.get("small") or [] if e["concurrency"] == 1],
            "p50_ms", "median latency (ms)", "4 KiB objects, concurrency 1, median latency", "latency.png")
    ratio_targets = [t for t in results.get("targets") or [] if t["goal"].endswith(" x")]
    if ratio_targets:
        fig, ax = plt.subplots(figsize=(9, 0.45 * len(ratio_targets) + 1.5))
        labels = [t["target"].replace(", wio/direct", "") for t in ratio_targets]
        values = [t["value"] or 0 for t in ratio_targets]
        goals = [float(t["goal"].split()[1]) for t in ratio_targets]
        ax.barh(labels, values, color=[_MET if t["met"] else _MISSED for t in ratio_targets])
        ax.scatter(goals, labels, marker="|", s=300, color="black", label="target", zorder=3)
        ax.barh([labels[0]], [0], color=_MET, label="met")        # legend entries only
        ax.barh([labels[0]], [0], color=_MISSED, label="missed")
        ax.axvline(1.0, color="#4c72b0", linewidth=0.8)
        ax.set_xlabel("wio / direct")
        ax.set_title(f"wio against the targets\n{stamp}", fontsize=10)
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
        fig.tight_layout()
        fig.savefig(out_dir / "targets.png", dpi=110)
        plt.close(fig)
        written.append("targets.png")
    return f"charts: {', '.join(written)} in {out_dir}" if written else "no charts (nothing measured)"
