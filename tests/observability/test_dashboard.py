"""Every PromQL query of the Grafana dashboard refers to series the code exports.

The dashboard is parsed, each expression is lexed (strings, label matchers, ranges, grouping
clauses and function calls are told apart from vector selectors), and every metric name it selects
must be declared by a scrape of the running proxy or admin API after some traffic; a histogram's
``_bucket``/``_sum``/``_count`` and a counter's ``_total``/``_created`` count as its family's.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from botocore.exceptions import ClientError

from tests.conftest import make_person, unique
from tests.observability.helpers import scrape

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "wio.json"

_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless",
             "offset", "atan2"}
_GROUPING = {"by", "without", "on", "ignoring", "group_left", "group_right"}
_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
  | (?P<number>\d+(?:\.\d+)?(?:e[+-]?\d+)?(?:ms|s|m|h|d|w|y)?)
  | (?P<ident>[A-Za-z_:][A-Za-z0-9_:]*)
  | (?P<op>==|!=|<=|>=|=~|!~|[-+*/%^<>=(),{}\[\]@])
""", re.X)
_SUFFIXES = ("_bucket", "_sum", "_count", "_total", "_created")


class PromQLError(ValueError):
    pass


def _tokens(expr: str) -> list[tuple[str, str]]:
    # Grafana's interval variables only ever stand for a duration.
    expr = re.sub(r"\$(__rate_interval|__interval|__range)\b", "5m", expr)
    out, pos = [], 0
    while pos < len(expr):
        m = _TOKEN.match(expr, pos)
        if m is None:
            raise PromQLError(f"unexpected {expr[pos:pos + 10]!r} at {pos} in {expr!r}")
        if m.lastgroup != "space":
            out.append((m.lastgroup, m.group()))
        pos = m.end()
    return out


def metric_names(expr: str) -> set[str]:
    """The metric names ``expr`` selects; raises PromQLError on unbalanced or malformed input."""
    tokens = _tokens(expr)
    names: set[str] = set()
    depth = {"(": 0, "{": 0, "[": 0}
    closing = {")": "(", "}": "{", "]": "["}
    i = 0
    while i < len(tokens):
        kind, text = tokens[i]
        nxt = tokens[i + 1][1] if i + 1 < len(tokens) else ""
        if text in depth:
            depth[text] += 1
        elif text in closing:
            depth[closing[text]] -= 1
            if depth[closing[text]] < 0:
                raise PromQLError(f"unbalanced {text!r} in {expr!r}")
        elif kind == "ident" and depth["{"] == 0 and depth["["] == 0:
            if text in _GROUPING:
                if nxt != "(":
                    raise PromQLError(f"{text} without a label list in {expr!r}")
                end = next(j for j in range(i + 1, len(tokens)) if tokens[j][1] == ")")
                i = end + 1  # label names, not metrics
                continue
            # Followed by "(" it is a function; by "by"/"without" an aggregation (sum by (le) (…)).
            if text not in _KEYWORDS and nxt not in ("(", "by", "without"):
                names.add(text)
        i += 1
    if any(depth.values()):
        raise PromQLError(f"unbalanced brackets in {expr!r}")
    if not names:
        raise PromQLError(f"no metric selected by {expr!r}")
    return names


def dashboard_queries() -> list[tuple[str, str]]:
    data = json.loads(DASHBOARD.read_text())
    out = []

    def walk(panels):
        for panel in panels:
            for target in panel.get("targets", []):
                out.append((panel["title"], target["expr"]))
            walk(panel.get("panels", []))
    walk(data["panels"])
    for variable in data.get("templating", {}).get("list", []):
        query = variable.get("query")
        if isinstance(query, dict):
            query = query.get("query")
        if query:
            out.append((f"variable {variable['name']}", query))
    return out


def test_the_lexer_finds_metrics_and_only_metrics():
    assert metric_names('histogram_quantile(0.99, sum by (le, node) (rate(wio_a_bucket{x="y",z=~"5.."}[5m])))'
                        ) == {"wio_a_bucket"}
    assert metric_names('sum(rate(a_total[$__rate_interval])) / on (job) group_left (le) sum(b) > bool 0'
                        ) == {"a_total", "b"}
    assert metric_names("topk(10, sum without (instance) (c offset 1h))") == {"c"}
    for bad in ("sum(rate(a[5m])", "sum by a (b)", "rate(x[5m]) $", "sum(1)"):
        with pytest.raises(PromQLError):
            metric_names(bad)


def test_dashboard_is_well_formed_and_provisioned():
    data = json.loads(DASHBOARD.read_text())
    assert data["uid"] and data["title"]
    ids = [p["id"] for p in data["panels"]]
    assert len(ids) == len(set(ids))
    datasource = yaml.safe_load((ROOT / "deploy/grafana/provisioning/datasources/prometheus.yml").read_text())
    uid = datasource["datasources"][0]["uid"]
    for panel in data["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == uid, panel["title"]
            assert panel["targets"], panel["title"]
    provider = yaml.safe_load((ROOT / "deploy/grafana/provisioning/dashboards/wio.yml").read_text())
    compose = (ROOT / "docker-compose.yml").read_text()
    assert f"./deploy/grafana/dashboards:{provider['providers'][0]['options']['path']}" in compose
    assert "./deploy/prometheus.yml:/etc/prometheus/prometheus.yml" in compose
    jobs = {j["metrics_path"] for j in yaml.safe_load((ROOT / "deploy/prometheus.yml").read_text())["scrape_configs"]}
    assert jobs == {"/_wio/metrics", "/metrics"}
    titles = " ".join(p["title"].lower() for p in data["panels"])
    for topic in ("requests", "latency", "errors", "denials", "workspace", "node"):
        assert topic in titles, topic


def test_every_dashboard_query_uses_exported_series(stack):
    person, other = make_person(stack, "dash"), make_person(stack, "dash")
    ws = unique("dashws")
    person.api.call("POST", "/workspaces", {"name": ws})
    person.s3.put_object(Bucket=ws, Key="k", Body=b"12345")
    person.s3.get_object(Bucket=ws, Key="k")["Body"].read()
    with pytest.raises(ClientError):
        other.s3.get_object(Bucket=ws, Key="k")
    exported = scrape(stack.s3_url + "/_wio/metrics").names() | scrape(stack.api_url + "/metrics").names()

    def is_exported(name: str) -> bool:
        return name in exported or any(name.endswith(s) and name[:-len(s)] in exported for s in _SUFFIXES)

    queries = dashboard_queries()
    assert len(queries) >= 20
    missing = {}
    for title, expr in queries:
        names = metric_names(expr)
        if "histogram_quantile" in expr:
            assert all(n.endswith("_bucket") for n in names) and re.search(r"\ble\b", expr), (title, expr)
        for name in names:
            assert name.startswith("wio_"), (title, name)
            if not is_exported(name):
                missing.setdefault(name, title)
    assert not missing, f"dashboard queries use series nobody exports: {missing}"
