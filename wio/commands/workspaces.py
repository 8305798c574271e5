"""Workspaces and what hangs off them: shares, imports, quotas and usage.

A workspace is named ``name`` or ``owner/name`` everywhere (the owner is checked when given).
"""
from __future__ import annotations

import click

from wio.client import ApiClient, ApiClientError
from wio.commands.core import (CliState, WioCommand, WioGroup, busy, call_feature, common_options,
                               complete_workspaces, pass_state, q, route_missing, split_ref, workspace_name)
from wio.commands.output import (COUNT_LIMIT, EXPIRY, SIZE_LIMIT, UNLIMITED, emit, human_bytes, print_fields,
                                 print_table, short_time)

__all__ = ["register_commands"]

PERMISSIONS = click.Choice(["read", "write", "admin"])
WORKSPACE = dict(metavar="WORKSPACE", shell_complete=complete_workspaces)

WORKSPACE_COLUMNS = [("name", "name"), ("owner", "owner"), ("access", "permission"), ("public", "public"),
                     ("root", "root"), ("node", "node"), ("created", lambda w: short_time(w.get("created_at")))]


@click.group(cls=WioGroup)
def workspace():
    """Workspaces: the folders you share. Through S3 each one is a bucket.

    \b
    Examples:
      wio workspace create climate-runs
      wio workspace ls
      wio workspace info alice/climate-runs
      wio workspace rm climate-runs --yes
    """


@workspace.command("ls")
@click.option("--owner", default=None, help="Only the workspaces this user owns.")
@click.option("--mine", is_flag=True, help="Only the workspaces you own.")
@pass_state
def workspace_ls(state: CliState, owner: str | None, mine: bool):
    """List the workspaces you can see, with your access to each."""
    api = state.client()
    workspaces = api.call("GET", "/workspaces")["workspaces"]
    if mine:
        owner = state.profile.username or api.call("GET", "/me")["username"]
    if owner:
        workspaces = [w for w in workspaces if w.get("owner") == owner]
    emit(state, {"workspaces": workspaces}, lambda d: print_table(d["workspaces"], WORKSPACE_COLUMNS))


@workspace.command("create")
@click.argument("name", **WORKSPACE)
@click.option("--public", is_flag=True, help="Readable and listable by every authenticated user.")
@click.option("--anonymous-read", is_flag=True,
              help="Also readable without any key (S3's public-read); implies --public. The server's "
                   "operator must allow it (WIO_ANONYMOUS_READS).")
@click.option("--root", default=None, help="The root to place it in (default: the server's private/public root).")
@pass_state
def workspace_create(state: CliState, name: str, public: bool, anonymous_read: bool, root: str | None):
    """Create workspace NAME (an S3 bucket name: 3-63 lowercase letters, digits, '-' and '.').

    \b
    Examples:
      wio workspace create climate-runs
      wio workspace create open-data --public
      wio workspace create open-data --anonymous-read
    """
    api = state.client()
    owner, name = split_ref(name)
    if owner is not None:
        me = api.call("GET", "/me")["username"]
        if owner != me:
            raise click.ClickException(f"you create workspaces as yourself ('{me}'), not as '{owner}'")
    body: dict = {"name": name, "public": public or anonymous_read, "anonymous_read": anonymous_read}
    if root:
        body["root"] = root
    ws = api.call("POST", "/workspaces", body)
    emit(state, ws, lambda w: click.echo(
        f"Created workspace {w['name']} ({_access(w)}, root {w['root']} "
        f"on node {w['node']}). Through S3 it is the bucket s3://{w['name']}"))


def _access(w: dict) -> str:
    if w.get("anonymous_read"):
        return "public, readable without a key"
    return "public" if w.get("public") else "private"


def _usage_or_none(api: ApiClient, name: str) -> dict | None:
    try:
        return api.call("GET", f"/workspaces/{q(name)}/usage")
    except ApiClientError as exc:
        if route_missing(exc) or exc.status == 403:
            return None
        raise


@workspace.command("info")
@click.argument("ref", **WORKSPACE)
@pass_state
def workspace_info(state: CliState, ref: str):
    """Show one workspace: owner, your access, where it lives, its usage and quota."""
    api = state.client()
    name = workspace_name(api, ref)
    ws = api.call("GET", f"/workspaces/{q(name)}")
    usage = _usage_or_none(api, name)
    if usage is not None:
        ws = {**ws, "usage": usage}

    def render(w: dict) -> None:
        pairs = [("name", w["name"]), ("owner", w.get("owner")), ("your access", w.get("permission")),
                 ("public", w.get("public")), ("anonymous", w.get("anonymous_read")),
                 ("root", f"{w.get('root')} ({w.get('root_type')})"),
                 ("node", w.get("node")), ("created", short_time(w.get("created_at"))),
                 ("s3", f"s3://{w['name']}/")]
        if "usage" in w:
            u = w["usage"]
            pairs += [("used", f"{human_bytes(u.get('bytes'))} in {u.get('objects')} objects"),
                      ("quota", _quota_text(u))]
        print_fields(pairs)
    emit(state, ws, render)


@workspace.command("rm")
@click.argument("ref", **WORKSPACE)
@click.option("--yes", "-y", is_flag=True, help="Don't ask for confirmation.")
@pass_state
def workspace_rm(state: CliState, ref: str, yes: bool):
    """Delete an empty workspace (needs admin on it). Its shares go with it.

    \b
    Example:
      wio workspace rm alice/old-runs --yes
    """
    api = state.client()
    name = workspace_name(api, ref)
    if not yes:
        click.confirm(f"Delete workspace '{name}' and all its shares?", abort=True, err=True)
    api.call("DELETE", f"/workspaces/{q(name)}")
    emit(state, {"deleted": name}, lambda d: click.echo(f"Deleted workspace {name}."))


# --- shares -------------------------------------------------------------------------------------

def _grantee(share: dict) -> str:
    return f"user:{share['user']}" if share.get("user") else f"group:{share.get('group')}"


SHARE_COLUMNS = [("id", "id"), ("grantee", _grantee), ("permission", "permission"),
                 ("prefix", "prefix"), ("expires", lambda s: short_time(s.get("expires_at"))),
                 ("created", lambda s: short_time(s.get("created_at")))]


@click.group(cls=WioGroup)
def share():
    """Grant others read, write or admin on a workspace (or on a prefix inside it).

    \b
    Examples:
      wio share add climate-runs --user bob --permission read
      wio share add climate-runs --group lab --permission write --prefix results/ --expires 30d
      wio share ls climate-runs
      wio share rm climate-runs 12
      wio share rm climate-runs --user bob
    """


@share.command("add")
@click.argument("ref", **WORKSPACE)
@click.option("--user", "-u", "user", default=None, help="Share with this user.")
@click.option("--group", "-g", "group", default=None, help="Share with this group.")
@click.option("--permission", "-p", type=PERMISSIONS, default="read", show_default=True)
@click.option("--prefix", default="", help="Only keys under this prefix (e.g. results/).")
@click.option("--expires", type=EXPIRY, metavar="WHEN", default=None,
              help="A duration (12h, 30d) or a time (2030-01-31T12:00Z) after which the share lapses.")
@pass_state
def share_add(state: CliState, ref: str, user: str | None, group: str | None, permission: str, prefix: str,
              expires: str | None):
    """Share a workspace with a user or a group."""
    if (user is None) == (group is None):
        raise click.UsageError("give exactly one of --user or --group")
    body: dict = {"permission": permission, "prefix": prefix}
    body["user" if user else "group"] = user or group
    if expires:
        body["expires_at"] = expires
    api = state.client()
    name = workspace_name(api, ref)
    created = api.call("POST", f"/workspaces/{q(name)}/shares", body)
    emit(state, created, lambda s: click.echo(
        f"Shared {name}{'/' + s['prefix'] if s.get('prefix') else ''} with {_grantee(s)}: {s['permission']}"
        f"{' until ' + s['expires_at'] if s.get('expires_at') else ''} (share {s['id']})."))


@share.command("ls")
@click.argument("ref", **WORKSPACE)
@pass_state
def share_ls(state: CliState, ref: str):
    """List a workspace's shares."""
    api = state.client()
    name = workspace_name(api, ref)
    shares = api.call("GET", f"/workspaces/{q(name)}/shares")["shares"]
    emit(state, {"shares": shares}, lambda d: print_table(d["shares"], SHARE_COLUMNS))


@share.command("rm")
@click.argument("ref", **WORKSPACE)
@click.argument("share_ids", metavar="[ID]...", nargs=-1, type=int)
@click.option("--user", "-u", default=None, help="Revoke every share this user holds on the workspace.")
@click.option("--group", "-g", default=None, help="Revoke every share this group holds on the workspace.")
@pass_state
def share_rm(state: CliState, ref: str, share_ids: tuple[int, ...], user: str | None, group: str | None):
    """Revoke shares, by id or by grantee. Takes effect on the very next request."""
    if not share_ids and not user and not group:
        raise click.UsageError("name the shares to revoke: their ids, --user or --group")
    api = state.client()
    name = workspace_name(api, ref)
    ids = list(share_ids)
    if user or group:
        shares = api.call("GET", f"/workspaces/{q(name)}/shares")["shares"]
        matched = [s["id"] for s in shares if (user and s.get("user") == user) or (group and s.get("group") == group)]
        if not matched:
            who = f"user '{user}'" if user else f"group '{group}'"
            raise click.ClickException(f"{who} holds no share on workspace '{name}'")
        ids += [i for i in matched if i not in ids]
    for share_id in ids:
        api.call("DELETE", f"/workspaces/{q(name)}/shares/{share_id}")
    emit(state, {"revoked": ids}, lambda d: click.echo(
        f"Revoked share{'s' if len(ids) > 1 else ''} {', '.join(map(str, ids))} on {name}."))


# --- import -------------------------------------------------------------------------------------

@click.command("import", cls=WioCommand)
@click.argument("name", **WORKSPACE)
@click.option("--root", required=True, help="The unmanaged root holding the data.")
@click.option("--prefix", default="", help="Where the data sits inside the root (e.g. projects/2019/).")
@click.option("--owner", default=None, help="Who owns the new workspace (default: you).")
@click.option("--public", is_flag=True, help="Readable by every authenticated user.")
@click.option("--anonymous-read", is_flag=True,
              help="Also readable without any key (S3's public-read); implies --public. The server's "
                   "operator must allow it (WIO_ANONYMOUS_READS).")
@common_options
@pass_state
def import_(state: CliState, name: str, root: str, prefix: str, owner: str | None, public: bool,
            anonymous_read: bool):
    """Map existing data on an unmanaged root in as workspace NAME, as it is (nothing is copied).

    Only the node's owner or an administrator can import.

    \b
    Examples:
      wio root add archive --node nas1 --bucket archive --type unmanaged
      wio import survey-2019 --root archive --prefix projects/2019/ --owner carol
    """
    ref_owner, name = split_ref(name)
    if ref_owner and owner and ref_owner != owner:
        raise click.UsageError(f"the name says owner '{ref_owner}' but --owner says '{owner}'")
    owner = owner or ref_owner
    prefix = prefix.lstrip("/")
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    body: dict = {"name": name, "root": root, "prefix": prefix, "public": public or anonymous_read,
                  "anonymous_read": anonymous_read}
    if owner:
        body["owner"] = owner
    api = state.client()
    with busy(f"importing {name}"):
        ws = api.call("POST", "/workspaces/import", body)
    emit(state, ws, lambda w: click.echo(
        f"Imported {root}:{prefix or '(whole root)'} as workspace {w['name']} owned by {w['owner']}."))


# --- quotas and usage ---------------------------------------------------------------------------

def _quota_text(u: dict) -> str:
    parts = []
    if u.get("max_bytes") is not None:
        parts.append(human_bytes(u["max_bytes"]))
    if u.get("max_objects") is not None:
        parts.append(f"{u['max_objects']} objects")
    return ", ".join(parts) or "none"


def _target(api: ApiClient, ref: str | None, user: str | None, root: str | None) -> tuple[str, str]:
    """(API path prefix, label) of the one thing a quota command is about."""
    if sum(x is not None for x in (ref, user, root)) != 1:
        raise click.UsageError("give one of: a WORKSPACE, --user USER, --root ROOT")
    if user is not None:
        return f"/users/{q(user)}", f"user {user}"
    if root is not None:
        return f"/roots/{q(root)}", f"root {root}"
    name = workspace_name(api, ref)
    return f"/workspaces/{q(name)}", f"workspace {name}"


def _target_options(f):
    f = click.option("--root", default=None, help="A root's quota (administrators).")(f)
    f = click.option("--user", default=None, help="A user's quota: everything they own (administrators).")(f)
    return click.argument("ref", required=False, **{**WORKSPACE, "metavar": "[WORKSPACE]"})(f)


@click.group(cls=WioGroup)
def quota():
    """Hard quotas on a workspace, on everything a user owns, or on a root.

    Sizes: 500M, 10GiB or 10G (powers of 1024), 2TB (powers of 1000), or bytes; 'none' removes a limit.

    \b
    Examples:
      wio quota set climate-runs --max-bytes 500GiB --max-objects 1000000
      wio quota set --user bob --max-bytes 2TB
      wio quota set climate-runs --max-bytes none
      wio quota show climate-runs
    """


@quota.command("set")
@_target_options
@click.option("--max-bytes", type=SIZE_LIMIT, metavar="SIZE", default=None,
              help="e.g. 500GiB, 2TB, 1048576, or none.")
@click.option("--max-objects", type=COUNT_LIMIT, metavar="N", default=None, help="A number of objects, or none.")
@pass_state
def quota_set(state: CliState, ref: str | None, user: str | None, root: str | None, max_bytes, max_objects):
    """Set a quota (a workspace's needs admin on it). It holds from the next request on."""
    body = {key: None if value == UNLIMITED else value
            for key, value in (("max_bytes", max_bytes), ("max_objects", max_objects)) if value is not None}
    if not body:
        raise click.UsageError("give --max-bytes and/or --max-objects")
    api = state.client()
    base, what = _target(api, ref, user, root)
    answer = call_feature(api, "quotas", "PUT", f"{base}/quota", body)
    emit(state, answer, lambda r: click.echo(f"Quota of {what}: {_quota_text(r)}."))


@quota.command("show")
@_target_options
@pass_state
def quota_show(state: CliState, ref: str | None, user: str | None, root: str | None):
    """Show a quota and how much of it is used."""
    api = state.client()
    base, what = _target(api, ref, user, root)
    u = call_feature(api, "usage reports", "GET", f"{base}/usage")

    def render(u: dict) -> None:
        max_bytes, max_objects = u.get("max_bytes"), u.get("max_objects")
        pairs = [("quota of", what), ("max bytes", human_bytes(max_bytes) if max_bytes is not None else "unlimited"),
                 ("max objects", max_objects if max_objects is not None else "unlimited"),
                 ("used", f"{human_bytes(u.get('bytes'))} in {u.get('objects')} objects")]
        if max_bytes is not None:
            pairs.append(("bytes left", human_bytes(max(0, max_bytes - u.get("bytes", 0)))))
        if max_objects is not None:
            pairs.append(("objects left", max(0, max_objects - u.get("objects", 0))))
        print_fields(pairs)
    emit(state, u, render)


def _fullness(u: dict) -> str | None:
    """The fuller of the two limits, as a percentage."""
    ratios = [used / limit for used, limit in ((u.get("bytes"), u.get("max_bytes")),
                                               (u.get("objects"), u.get("max_objects")))
              if used is not None and limit]
    return f"{100 * max(ratios):.0f}%" if ratios else None


USAGE_COLUMNS = [("workspace", "workspace"), ("used", lambda u: human_bytes(u.get("bytes"))),
                 ("objects", "objects"), ("max bytes", lambda u: human_bytes(u.get("max_bytes"))),
                 ("max objects", "max_objects"), ("full", _fullness)]


@click.command(cls=WioCommand)
@click.argument("refs", nargs=-1, **WORKSPACE)
@click.option("--reconcile", is_flag=True,
              help="First recount what is really on the node (a crawl; needs admin on the workspace).")
@common_options
@pass_state
def usage(state: CliState, refs: tuple[str, ...], reconcile: bool):
    """How much each workspace stores, against its quota (default: every workspace you own).

    Usage is counted by the proxy as objects come and go; --reconcile recounts from the node,
    which also picks up data written around wio.

    \b
    Examples:
      wio usage
      wio usage climate-runs bob/shared-data
      wio usage climate-runs --reconcile
    """
    api = state.client()
    if refs:
        names = [workspace_name(api, r) for r in refs]
    else:
        me = api.call("GET", "/me")["username"]
        names = [w["name"] for w in api.call("GET", "/workspaces")["workspaces"] if w.get("owner") == me]
    if reconcile:
        for name in names:
            with busy(f"recounting {name}"):
                call_feature(api, "reconciliation", "POST", f"/workspaces/{q(name)}/usage/reconcile")
    rows = [{"workspace": name, **call_feature(api, "usage reports", "GET", f"/workspaces/{q(name)}/usage")}
            for name in names]
    emit(state, {"usage": rows}, lambda d: print_table(d["usage"], USAGE_COLUMNS))


def register_commands(cli: click.Group) -> None:
    for command in (workspace, share, import_, quota, usage):
        cli.add_command(command)
