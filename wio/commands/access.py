"""Who may do what: access keys, groups, and (for administrators) user accounts."""
from __future__ import annotations

import click

from wio.client import ApiClient
from wio.commands.core import CliState, WioGroup, pass_state, q, split_ref, workspace_name
from wio.commands.output import LIFETIME, emit, print_fields, print_table, short_time

__all__ = ["register_commands", "key_options", "create_key", "ScopeType"]

LEVELS = ("read", "write", "admin")


class ScopeType(click.ParamType):
    """``ws:read``, ``alice/ws:write:results/`` -> (workspace ref, permission, prefix); checked as typed."""
    name = "scope"

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
        ref, _, rest = value.partition(":")
        permission, _, prefix = rest.partition(":")
        if not ref or permission not in LEVELS:
            self.fail(f"{value!r}: a scope is WORKSPACE:read|write|admin[:PREFIX]", param, ctx)
        try:
            split_ref(ref)
        except click.BadParameter as exc:
            self.fail(exc.message, param, ctx)
        return ref, permission, prefix


def create_key(api: ApiClient, *, name: str | None, expires_in: int | None,
               scopes: tuple[tuple[str, str, str], ...]) -> dict:
    body: dict = {}
    if name:
        body["name"] = name
    if expires_in is not None:
        body["expires_in_seconds"] = expires_in
    if scopes:
        body["scope"] = [{"workspace": workspace_name(api, ref), "permission": permission, "prefix": prefix}
                         for ref, permission, prefix in scopes]
    return api.call("POST", "/keys", body)


def key_options(*, default_expires: str | None):
    """--name, --expires, --scope: the shape of a key created on the fly."""
    expires_help = ("Make a temporary key (with a session token) valid this long: 3600, 15m, 12h, 7d"
                    + (f"; 'never' for a long-lived key [default: {default_expires}]" if default_expires else
                       " (default: a long-lived key)"))

    def decorate(f):
        f = click.option("--scope", "scopes", type=ScopeType(), metavar="WS:PERM[:PREFIX]", multiple=True,
                         help="Limit the key to a workspace, a permission (read|write|admin) and optionally a "
                              "prefix; repeat for several. Default: everything you may do.")(f)
        f = click.option("--expires", "expires_in", type=LIFETIME, metavar="DURATION", default=default_expires,
                         help=expires_help)(f)
        f = click.option("--name", "key_name", metavar="TEXT", default=None, help="A label for the key.")(f)
        return f
    return decorate


def _scope_text(key: dict) -> str | None:
    scope = key.get("scope")
    if not scope:
        return None
    return ",".join(f"{s['workspace']}:{s['permission']}" + (f":{s['prefix']}" if s.get("prefix") else "")
                    for s in scope)


KEY_COLUMNS = [("access key id", "access_key_id"), ("name", "name"), ("temporary", "temporary"),
               ("expires", lambda k: short_time(k.get("expires_at"))), ("scope", _scope_text),
               ("created", lambda k: short_time(k.get("created_at")))]


@click.group(cls=WioGroup)
def key():
    """Access keys for S3 tools (aws, mc, rclone, boto3 …).

    \b
    Examples:
      wio key create --name laptop
      wio key create --expires 1h --scope climate-runs:read
      wio key create --scope climate-runs:write:results/ --scope bob/shared:read
      wio key ls
      wio key rm AKWIO0123456789
    """


@key.command("create")
@key_options(default_expires=None)
@pass_state
def key_create(state: CliState, key_name: str | None, expires_in: int | None, scopes: tuple):
    """Create a key. The secret is shown this once: keep it."""
    created = create_key(state.client(), name=key_name, expires_in=expires_in, scopes=scopes)

    def render(k: dict) -> None:
        print_fields([("access key id", k["access_key_id"]), ("secret access key", k["secret_access_key"]),
                      *([("session token", k["session_token"])] if k.get("session_token") else []),
                      ("expires", k.get("expires_at") or "never"), ("scope", _scope_text(k) or "everything you may do"),
                      ("s3 endpoint", state.s3_url)])
        click.echo("The secret is shown only now. For tools, see 'wio env', 'wio aws-profile', 'wio mc alias'.",
                   err=True)
    emit(state, created, render)


@key.command("ls")
@pass_state
def key_ls(state: CliState):
    """List your keys (secrets are never shown again)."""
    keys = state.client().call("GET", "/keys")["keys"]
    emit(state, {"keys": keys}, lambda d: print_table(d["keys"], KEY_COLUMNS))


@key.command("rm")
@click.argument("key_ids", metavar="ACCESS_KEY_ID...", nargs=-1, required=True)
@pass_state
def key_rm(state: CliState, key_ids: tuple[str, ...]):
    """Revoke keys. The next request signed with them is denied."""
    api = state.client()
    for key_id in key_ids:
        api.call("DELETE", f"/keys/{q(key_id)}")
    emit(state, {"revoked": list(key_ids)}, lambda d: click.echo(f"Revoked {', '.join(key_ids)}."))


# --- groups -------------------------------------------------------------------------------------

@click.group(cls=WioGroup)
def group():
    """Groups of users, to share workspaces with many people at once.

    \b
    Examples:
      wio group create lab
      wio group add lab bob carol
      wio share add climate-runs --group lab --permission write
      wio group remove lab carol
      wio group ls
    """


@group.command("create")
@click.argument("name")
@pass_state
def group_create(state: CliState, name: str):
    """Create a group; you own it."""
    created = state.client().call("POST", "/groups", {"name": name})
    emit(state, created, lambda g: click.echo(f"Created group {g['name']}."))


@group.command("ls")
@pass_state
def group_ls(state: CliState):
    """List the groups you own or belong to (administrators: all)."""
    groups = state.client().call("GET", "/groups")["groups"]
    emit(state, {"groups": groups}, lambda d: print_table(d["groups"], [
        ("name", "name"), ("owner", "owner"), ("members", "members")]))


@group.command("rm")
@click.argument("name")
@pass_state
def group_rm(state: CliState, name: str):
    """Delete a group; every share granted to it is revoked with it."""
    state.client().call("DELETE", f"/groups/{q(name)}")
    emit(state, {"deleted": name}, lambda d: click.echo(f"Deleted group {name}."))


@group.command("add")
@click.argument("name")
@click.argument("users", metavar="USER...", nargs=-1, required=True)
@pass_state
def group_add(state: CliState, name: str, users: tuple[str, ...]):
    """Add users to a group."""
    api = state.client()
    result: dict = {}
    for user in users:
        result = api.call("POST", f"/groups/{q(name)}/members", {"user": user})
    emit(state, result, lambda g: click.echo(f"Group {name}: {', '.join(g.get('members', []))}."))


@group.command("remove")
@click.argument("name")
@click.argument("users", metavar="USER...", nargs=-1, required=True)
@pass_state
def group_remove(state: CliState, name: str, users: tuple[str, ...]):
    """Remove users from a group. Their access through it ends on the next request."""
    api = state.client()
    for user in users:
        api.call("DELETE", f"/groups/{q(name)}/members/{q(user)}")
    emit(state, {"group": name, "removed": list(users)},
         lambda d: click.echo(f"Removed {', '.join(users)} from group {name}."))


# --- users (administrators) ----------------------------------------------------------------------

@click.group(cls=WioGroup)
def user():
    """Manage accounts (system administrators).

    \b
    Examples:
      wio user ls
      wio user disable mallory
      wio user enable mallory
      wio user promote carol     (a system administrator; SSO users too)
    """


@user.command("ls")
@pass_state
def user_ls(state: CliState):
    """List every account."""
    users = state.client().call("GET", "/users")["users"]
    emit(state, {"users": users}, lambda d: print_table(d["users"], [
        ("username", "username"), ("email", "email"), ("admin", "is_admin"), ("disabled", "disabled"),
        ("created", lambda u: short_time(u.get("created_at")))]))


def _set_disabled(state: CliState, username: str, disabled: bool) -> None:
    verb = "disable" if disabled else "enable"
    answer = state.client().call("POST", f"/users/{q(username)}/{verb}")
    emit(state, answer, lambda u: click.echo(
        f"{'Disabled' if disabled else 'Enabled'} {u.get('username', username)}"
        + (": their keys stop working on the next request." if disabled else ".")))


@user.command("disable")
@click.argument("username")
@pass_state
def user_disable(state: CliState, username: str):
    """Disable an account: its logins and keys are refused at once."""
    _set_disabled(state, username, True)


@user.command("enable")
@click.argument("username")
@pass_state
def user_enable(state: CliState, username: str):
    """Enable a disabled account again."""
    _set_disabled(state, username, False)


def _set_admin(state: CliState, username: str, is_admin: bool) -> None:
    answer = state.client().call("POST", f"/users/{q(username)}/{'promote' if is_admin else 'demote'}")
    emit(state, answer, lambda u: click.echo(
        f"{u.get('username', username)} is {'now' if is_admin else 'no longer'} a system administrator."))


@user.command("promote")
@click.argument("username")
@pass_state
def user_promote(state: CliState, username: str):
    """Make an account a system administrator (a single sign-on account too)."""
    _set_admin(state, username, True)


@user.command("demote")
@click.argument("username")
@pass_state
def user_demote(state: CliState, username: str):
    """Take system administration back from an account (never from the last one)."""
    _set_admin(state, username, False)


def register_commands(cli: click.Group) -> None:
    for command in (key, group, user):
        cli.add_command(command)
