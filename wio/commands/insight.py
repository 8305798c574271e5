"""Finding things and understanding decisions: search, crawl, audit, explain."""
from __future__ import annotations

import time
from typing import Any

import click

from wio.client import ApiClientError
from wio.commands.core import (CliState, WioCommand, call_feature, common_options, complete_workspaces, pass_state,
                               busy, workspace_name)
from wio.commands.output import LIFETIME, SINCE, SIZE, emit, human_bytes, print_fields, print_table, short_time

__all__ = ["register_commands"]


HIT_COLUMNS = [("workspace", "workspace"), ("key", "key"), ("size", lambda h: human_bytes(h.get("size"))),
               ("modified", lambda h: short_time(h.get("last_modified"))), ("type", "content_type")]


@click.command(cls=WioCommand)
@click.argument("query", required=False)
@click.option("--workspace", "-w", "ref", default=None, metavar="WORKSPACE", shell_complete=complete_workspaces,
              help="Only this workspace.")
@click.option("--prefix", default=None, help="Only keys under this prefix (with --workspace).")
@click.option("--type", "content_type", default=None, metavar="TYPE",
              help="A content type (text/csv) or a family (image/*).")
@click.option("--min-size", type=SIZE, default=None, metavar="SIZE", help="At least this big (e.g. 10M).")
@click.option("--max-size", type=SIZE, default=None, metavar="SIZE", help="At most this big.")
@click.option("--since", type=SINCE, default=None, metavar="WHEN", help="Modified since: 2d ago, or a time.")
@click.option("--limit", type=click.IntRange(1, 1000), default=None, help="At most this many hits [server: 50].")
@click.option("--by", type=click.Choice(["workspace", "extension", "owner", "content_type"]), default=None,
              help="Instead of hits, totals (objects, bytes) grouped this way.")
@common_options
@pass_state
def search(state: CliState, query: str | None, ref: str | None, prefix: str | None, content_type: str | None,
           min_size: int | None, max_size: int | None, since: str | None, limit: int | None, by: str | None):
    """Search object keys and metadata across every workspace you can read.

    Words in QUERY match parts of keys (case-insensitive); the options narrow further.

    \b
    Examples:
      wio search temperature
      wio search "run 2019" --workspace climate-runs --type text/csv --limit 20
      wio search --min-size 1G --since 7d
      wio search --by extension
    """
    filters = {"q": query, "prefix": prefix, "content_type": content_type, "min_size": min_size,
               "max_size": max_size, "modified_after": since}
    if not by and not any(v is not None for v in filters.values()):
        raise click.UsageError("give a QUERY or a filter (or --by workspace|extension|owner|content_type for totals)")
    api = state.client()
    filters["workspace"] = workspace_name(api, ref) if ref else None
    if by:
        data = call_feature(api, "search aggregations", "GET", "/search/aggregations", params={"by": by, **filters})
        emit(state, data, lambda d: print_table(d.get("buckets", []), [
            (by.replace("_", " "), "key"), ("objects", "objects"), ("bytes", lambda b: human_bytes(b.get("bytes")))]))
        return
    data = call_feature(api, "search", "GET", "/search", params={**filters, "limit": limit})

    def render(d: dict) -> None:
        hits = d.get("hits", [])
        print_table(hits, HIT_COLUMNS)
        total = d.get("total")
        if not hits:
            click.echo("no matches", err=True)
        elif total is not None and total > len(hits):
            click.echo(f"({len(hits)} of {total} hits shown; use --limit)", err=True)
    emit(state, data, render)


def _crawl_rows(api, names: list[str] | None) -> list[dict] | None:
    """The indexer's crawl rows for ``names`` (None: all), or None when this caller may not see them."""
    try:
        crawls = api.call("GET", "/search/status").get("crawls", [])
    except ApiClientError as exc:
        if exc.status in (403, 404, 405):
            return None
        raise
    return [c for c in crawls if names is None or c.get("workspace") in names]


@click.command(cls=WioCommand)
@click.argument("ref", required=False, metavar="[WORKSPACE]", shell_complete=complete_workspaces)
@click.option("--wait", is_flag=True, help="Follow the crawl until it has finished (administrators).")
@click.option("--timeout", type=LIFETIME, default="1h", show_default=True, metavar="DURATION",
              help="With --wait: give up after this long.")
@common_options
@pass_state
def crawl(state: CliState, ref: str | None, wait: bool, timeout: int | None):
    """Re-index a workspace from its node now (picks up data written around wio).

    Without WORKSPACE every workspace is crawled (administrators). Workspace admins may crawl their
    own; following the progress with --wait needs an administrator.

    \b
    Examples:
      wio crawl climate-runs
      wio crawl --wait
    """
    api = state.client()
    body = {"workspace": workspace_name(api, ref)} if ref else {}
    requested = call_feature(api, "crawls", "POST", "/search/crawl", body).get("requested", [])
    if not wait:
        emit(state, {"requested": requested}, lambda d: click.echo(
            f"Crawl requested for {len(requested)} workspace{'s' if len(requested) != 1 else ''}: "
            f"{', '.join(requested[:5])}{' …' if len(requested) > 5 else ''}."))
        return
    deadline = time.monotonic() + (timeout or 3600)
    with busy(f"crawling {len(requested)} workspace(s)") as show:
        while True:
            rows = _crawl_rows(api, requested)
            if rows is None:
                raise click.ClickException("the crawl was requested, but following it needs an administrator")
            done = [r for r in rows if r.get("finished_at") and not r.get("in_progress")
                    and (r.get("started_at") or "") >= (r.get("requested_at") or "")]
            listed = sum(r.get("listed") or 0 for r in rows)
            show(f"{len(done)}/{len(requested)} done, {listed} objects listed")
            if len(done) >= len(requested):
                break
            if time.monotonic() > deadline:
                raise click.ClickException(f"the crawl is still running after {timeout}s (it goes on)")
            time.sleep(1)
    errors = [f"{r['workspace']}: {r['error']}" for r in rows if r.get("error")]
    emit(state, {"crawls": rows}, lambda d: print_table(d["crawls"], [
        ("workspace", "workspace"), ("listed", "listed"), ("changed", "changed"), ("removed", "removed"),
        ("finished", lambda r: short_time(r.get("finished_at"))), ("error", "error")]))
    if errors:
        raise click.ClickException(f"{len(errors)} crawl(s) failed; first: {errors[0]}")


_AUDIT_ORDER = ("time", "user", "access_key", "workspace", "operation", "key", "decision", "status", "reason")


def _audit_cell(name: str):
    if name == "time":
        return lambda r: (r.get("time") or "").replace("T", " ")[:19] or None
    return name


def _records(data: Any) -> list[dict]:
    """The list of records in an answer, whatever the envelope key ({entries: [...]}, [...])."""
    if isinstance(data, list):
        return data
    if isinstance(data, dict):
        for value in data.values():
            if isinstance(value, list):
                return value
    return []


@click.command(cls=WioCommand)
@click.option("--workspace", "-w", "ref", default=None, metavar="WORKSPACE", shell_complete=complete_workspaces)
@click.option("--user", "-u", default=None)
@click.option("--decision", type=click.Choice(["allow", "deny"]), default=None)
@click.option("--since", type=SINCE, metavar="WHEN", default=None,
              help="Only since then: a duration ago (15m, 2d) or a time.")
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@common_options
@pass_state
def audit(state: CliState, ref: str | None, user: str | None, decision: str | None, since: str | None, limit: int):
    """Recent authorization decisions at the proxy, newest first.

    Administrators see everything; a workspace's admins see that workspace (name it with -w).

    \b
    Examples:
      wio audit --workspace climate-runs
      wio audit --user bob --decision deny --since 1h --limit 20
    """
    api = state.client()
    params = {"workspace": workspace_name(api, ref) if ref else None, "user": user, "decision": decision,
              "since": since, "limit": limit}
    data = call_feature(api, "the audit log", "GET", "/audit", params=params)

    def render(d: Any) -> None:
        rows = _records(d)
        present = [k for k in _AUDIT_ORDER if any(k in r for r in rows)]
        print_table(rows, [(k.replace("_", " "), _audit_cell(k)) for k in present])
    emit(state, data, render)


def _grant_text(grant: dict) -> str:
    where = f" on {grant['prefix']}" if grant.get("prefix") else ""
    return f"{grant.get('permission')}{where} (via {grant.get('via')})"


@click.command(cls=WioCommand)
@click.argument("who")
@click.argument("ref", metavar="WORKSPACE", shell_complete=complete_workspaces)
@click.argument("operation")
@click.argument("key", required=False, default="")
@click.option("--access-key", "by_key", is_flag=True,
              help="WHO is an access key id: also apply that key's scope and expiry.")
@common_options
@pass_state
def explain(state: CliState, who: str, ref: str, operation: str, key: str, by_key: bool):
    """Would WHO be allowed OPERATION (an S3 name such as GetObject) on KEY, and why?

    Needs admin on the workspace. Computed by the same rules the proxy applies.

    \b
    Examples:
      wio explain bob climate-runs GetObject results/run1.nc
      wio explain bob alice/climate-runs ListObjectsV2 raw/
      wio explain --access-key AKWIO0123456789 climate-runs PutObject raw/x.csv --json
    """
    api = state.client()
    body = {"access_key" if by_key else "user": who, "workspace": workspace_name(api, ref),
            "operation": operation, "key": key}
    data = call_feature(api, "explanations", "POST", "/explain", body)

    def render(d: dict) -> None:
        pairs = [("allowed", d.get("allowed")), ("decided by", d.get("decided_by")),
                 ("needs", d.get("permission_needed")),
                 ("user", d.get("user") + (f" (groups: {', '.join(d['groups'])})" if d.get("groups") else "")),
                 ("operation", f"{d.get('operation')} on {d.get('workspace')}/{d.get('key') or ''}")]
        if d.get("access_key"):
            k = d["access_key"]
            scope = ",".join(f"{s['workspace']}:{s['permission']}" + (f":{s['prefix']}" if s.get("prefix") else "")
                             for s in k.get("scope") or []) or "everything"
            expires = k.get("expires_at") or "never"
            pairs.append(("access key", f"{k.get('access_key_id')} (scope {scope}; expires {expires})"))
        grants = d.get("grants") or []
        pairs += [("grants", _grant_text(g)) for g in grants] or [("grants", "none")]
        if "listing_limited_to" in d:
            pairs.append(("listing", "everything" if d["listing_limited_to"] is None
                          else ", ".join(d["listing_limited_to"]) or "nothing"))
        print_fields(pairs)
    emit(state, data, render)


def register_commands(cli: click.Group) -> None:
    for command in (search, crawl, audit, explain):
        cli.add_command(command)
