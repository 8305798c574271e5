"""Logging in and out, who am I, saved profiles, and shell completion."""
from __future__ import annotations

import sys
import time

import click

from wio.commands.core import CliState, WioCommand, WioGroup, common_options, pass_state
from wio.commands.output import emit, print_fields, print_table
from wio.client import ApiClientError
from wio.config import ConfigError, Profile, normalize_url, write_private_file
from wio.sso import SsoLoginError, sso_login

__all__ = ["register_commands"]


def _password(password: str | None, from_stdin: bool, *, confirm: bool) -> str:
    if password is not None and from_stdin:
        raise click.UsageError("give --password or --password-stdin, not both")
    if from_stdin:
        line = sys.stdin.readline().rstrip("\r\n")
        if not line:
            raise click.UsageError("--password-stdin: nothing was read from standard input")
        return line
    if password is not None:
        return password
    return click.prompt("Password", hide_input=True, confirmation_prompt=confirm)


def _store_login(state: CliState, username: str, password: str, s3: str | None) -> dict:
    answer = state.anonymous().call("POST", "/auth/login", {"username": username, "password": password})
    return _save_login(state, username, answer, s3)


def _save_login(state: CliState, username: str, answer: dict, s3: str | None) -> dict:
    """Keep a login token the API answered in this profile."""
    api_url = state.api_url
    config = state.config
    first = not config.profiles
    profile = state.profile
    if profile.api != api_url:
        profile.s3 = profile.ca_bundle = None  # what was saved for another server doesn't apply here
    profile.api, profile.username, profile.token = api_url, username, answer["access_token"]
    expires_in = answer.get("expires_in")
    profile.token_expires_at = time.time() + max(0, int(expires_in) - 30) if expires_in else None
    if s3:
        profile.s3 = normalize_url(s3, "the S3 endpoint")
    else:
        _adopt_server_info(state, profile)
    config.put(profile)
    if first:
        config.current = profile.name
    config.save()
    return {"username": username, "api": api_url, "s3": state.s3_url, "profile": profile.name,
            "expires_in": expires_in}


def _adopt_server_info(state: CliState, profile: Profile) -> None:
    """The S3 endpoint (and the CA to trust for it) as the server advertises them in GET /api/v1/info;
    a server without /info leaves the API-host:9000 guess in place."""
    try:
        info = state.anonymous().call("GET", "/info")
    except ApiClientError:
        return
    if info.get("s3_endpoint"):
        profile.s3 = normalize_url(info["s3_endpoint"], "the S3 endpoint")
    if info.get("ca_certificate"):
        path = state.config.path.parent / f"ca-{profile.name}.pem"
        write_private_file(path, info["ca_certificate"])
        profile.ca_bundle = str(path)
    else:
        profile.ca_bundle = None


_PASSWORD_OPTIONS = [
    click.option("--password", metavar="SECRET", default=None,
                 help="The password (prefer the prompt or --password-stdin: arguments show up in `ps`)."),
    click.option("--password-stdin", is_flag=True, help="Read the password from the first line of standard input."),
    click.option("--s3", metavar="URL", default=None, envvar="WIO_S3", show_envvar=True,
                 help="The S3 endpoint (the proxy) to hand to tools; default: what the server advertises."),
]


def _with_password_options(f):
    for option in reversed(_PASSWORD_OPTIONS):
        f = option(f)
    return f


@click.command(cls=WioCommand)
@click.argument("username", required=False)
@_with_password_options
@click.option("--sso", is_flag=True,
              help="Log in through the server's identity provider (single sign-on) instead of a password.")
@click.option("--no-browser", is_flag=True, help="With --sso: print the login URL, don't open a browser.")
@common_options
@pass_state
def login(state: CliState, username: str | None, password: str | None, password_stdin: bool, s3: str | None,
          sso: bool, no_browser: bool):
    """Log in and keep the token in this profile (file mode 0600).

    \b
    Examples:
      wio login alice
      wio login alice --api https://wio.example.org --s3 https://s3.example.org
      echo "$PASSWORD" | wio login alice --password-stdin --profile lab2
      wio login --sso     (device code where the provider offers it, else your browser)
    """
    if s3:
        normalize_url(s3, "the S3 endpoint")  # fail before asking for a password
    if sso:
        if username or password is not None or password_stdin:
            raise click.UsageError("--sso takes no username or password: the identity provider asks for them")
        try:
            answer = sso_login(state.anonymous(), lambda line: click.echo(line, err=True), open_browser=not no_browser)
        except SsoLoginError as exc:
            raise click.ClickException(str(exc)) from None
        info = _save_login(state, answer["username"], answer, s3)
    else:
        username = username or click.prompt("Username")
        info = _store_login(state, username, _password(password, password_stdin, confirm=False), s3)
    emit(state, info, lambda i: click.echo(
        f"Logged in to {i['api']} as {i['username']} (profile '{i['profile']}'); S3 endpoint {i['s3']}."))


@click.command(cls=WioCommand)
@click.argument("username", required=False)
@click.option("--email", default=None, help="An e-mail address to keep with the account.")
@_with_password_options
@click.option("--no-login", is_flag=True, help="Only create the account; don't log in.")
@common_options
@pass_state
def register(state: CliState, username: str | None, email: str | None, password: str | None, password_stdin: bool,
             s3: str | None, no_login: bool):
    """Create an account on the wio server, then log in to it.

    \b
    Examples:
      wio register alice --email alice@lab.example.org
      wio --api https://wio.example.org register alice
    """
    if s3:
        normalize_url(s3, "the S3 endpoint")
    username = username or click.prompt("Username")
    secret = _password(password, password_stdin, confirm=True)
    body = {"username": username, "password": secret}
    if email:
        body["email"] = email
    user = state.anonymous().call("POST", "/auth/register", body)
    if no_login:
        emit(state, user, lambda u: click.echo(f"Registered {u['username']} at {state.api_url}."))
        return
    info = _store_login(state, username, secret, s3)
    emit(state, {**user, **info}, lambda i: click.echo(
        f"Registered {i['username']} and logged in to {i['api']} (profile '{i['profile']}')."))


@click.command(cls=WioCommand)
@common_options
@pass_state
def logout(state: CliState):
    """Forget this profile's login token (the server address is kept).

    \b
    Example:
      wio logout --profile lab2
    """
    config, profile = state.config, state.profile
    if not profile.token:
        click.echo(f"Not logged in (profile '{profile.name}').")
        return
    profile.token = profile.token_expires_at = None
    config.put(profile)
    config.save()
    click.echo(f"Logged out of {profile.api} (profile '{profile.name}').")


@click.command(cls=WioCommand)
@common_options
@pass_state
def whoami(state: CliState):
    """Who you are logged in as, and where.

    \b
    Examples:
      wio whoami
      wio whoami --json | jq -r .username
    """
    me = state.client().call("GET", "/me")
    info = {**me, "api": state.api_url, "s3": state.s3_url, "profile": state.profile.name}
    emit(state, info, lambda i: print_fields([
        ("user", i["username"]), ("email", i.get("email")), ("admin", i.get("is_admin")),
        ("api", i["api"]), ("s3", i["s3"]), ("profile", i["profile"])]))


@click.group(cls=WioGroup)
def profile():
    """Saved logins, one per wio server.

    \b
    Examples:
      wio login alice --profile lab2 --api https://wio.lab2.example.org
      wio profile ls
      wio profile use lab2
    """


@profile.command("ls")
@pass_state
def profile_ls(state: CliState):
    """List the saved profiles (* marks the one used by default)."""
    config = state.config
    rows = []
    for name, p in sorted(config.profiles.items()):
        login_state = "no" if not p.token else ("expired" if p.token_expired() else "yes")
        rows.append({"name": name, "current": name == config.current, "api": p.api, "s3": p.s3,
                     "username": p.username, "logged_in": login_state})
    emit(state, {"current": config.current, "profiles": rows}, lambda d: print_table(d["profiles"], [
        ("", lambda r: "*" if r["current"] else ""), ("name", "name"), ("user", "username"), ("api", "api"),
        ("s3", "s3"), ("logged in", "logged_in")]))


@profile.command("use")
@click.argument("name")
@pass_state
def profile_use(state: CliState, name: str):
    """Use profile NAME by default from now on."""
    config = state.config
    if name not in config.profiles:
        raise ConfigError(f"no profile named '{name}' (log in with --profile {name} to create it)")
    config.current = name
    config.save()
    click.echo(f"Using profile '{name}' ({config.profiles[name].api}).")


@profile.command("set")
@click.option("--s3", metavar="URL", default=None, help="The S3 endpoint handed to tools.")
@pass_state
def profile_set(state: CliState, s3: str | None):
    """Change a profile's settings (the server it talks to is set by 'wio login --api').

    \b
    Example:
      wio profile set --s3 https://s3.example.org
    """
    config, p = state.config, state.profile
    if s3 is None:
        raise click.UsageError("nothing to set (try --s3 URL)")
    p.s3 = normalize_url(s3, "the S3 endpoint")
    if p.api is None:
        p.api = state.api_url
    config.put(p)
    config.save()
    click.echo(f"Profile '{p.name}': S3 endpoint {p.s3}.")


@profile.command("rm")
@click.argument("name")
@pass_state
def profile_rm(state: CliState, name: str):
    """Forget profile NAME and its login."""
    config = state.config
    config.remove(name)
    config.save()
    click.echo(f"Removed profile '{name}'.")


@click.command(cls=WioCommand)
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
@click.pass_context
def completion(ctx: click.Context, shell: str):
    """Print the shell completion script for SHELL.

    \b
    Examples:
      eval "$(wio completion bash)"     # in ~/.bashrc
      eval "$(wio completion zsh)"      # in ~/.zshrc
      wio completion fish > ~/.config/fish/completions/wio.fish
    """
    from click.shell_completion import get_completion_class
    root = ctx.find_root()
    complete = get_completion_class(shell)(root.command, {}, "wio", "_WIO_COMPLETE")
    click.echo(complete.source())


def register_commands(cli: click.Group) -> None:
    for command in (login, register, logout, whoami, profile, completion):
        cli.add_command(command)
