"""What every command shares: the invocation state, the common options, errors, workspace references.

* ``CliState`` (``ctx.obj``) knows which profile and server a command talks to and hands out an
  ``ApiClient`` carrying the profile's token.
* ``--api``, ``--profile`` and ``--json`` are accepted both before the command (``wio --json
  workspace ls``) and after it (``wio workspace ls --json``): the root group and every leaf command
  declare them; a leaf's value wins.
* ``WioCommand`` turns every failure into one line on stderr and a non-zero exit code: API errors,
  an unreachable server, a bad config file, file-system errors, and (as a last resort) anything else.
* Workspaces are named ``name`` or ``owner/name``; ``workspace_name`` checks the owner when given.
"""
from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable
from urllib.parse import quote

import click

from wio.client import ApiClient, ApiClientError
from wio.config import (DEFAULT_API, ConfigError, Profile, UserConfig, default_s3_endpoint, normalize_url)

__all__ = ["CliState", "WioCommand", "WioGroup", "common_options", "pass_state", "workspace_name", "split_ref",
           "route_missing", "unsupported", "call_feature", "busy", "q", "complete_workspaces", "echo_err",
           "api_error_line"]


@dataclass
class CliState:
    api_override: str | None = None
    profile_name: str | None = None
    json: bool = False
    config_dir: Path | None = None
    _config: UserConfig | None = field(default=None, repr=False)

    @property
    def config(self) -> UserConfig:
        if self._config is None:
            self._config = UserConfig.load(self.config_dir)
        return self._config

    @property
    def profile(self) -> Profile:
        return self.config.profile(self.profile_name)

    @property
    def api_url(self) -> str:
        return normalize_url(self.api_override or self.profile.api or DEFAULT_API, "the API URL")

    @property
    def s3_url(self) -> str:
        profile = self.profile
        if profile.s3 and (profile.api is None or profile.api == self.api_url):
            return profile.s3
        return default_s3_endpoint(self.api_url)

    @property
    def ca_bundle(self) -> str | None:
        """The CA file to trust for the S3 endpoint, when the server handed one out at login."""
        profile = self.profile
        return profile.ca_bundle if profile.api == self.api_url else None

    def anonymous(self) -> ApiClient:
        return ApiClient(self.api_url)

    def client(self) -> ApiClient:
        """A client logged in to the chosen server, or a clear error saying how to log in."""
        api, profile = self.api_url, self.profile
        token = profile.token_for(api)
        where = f"{api} (profile '{profile.name}')"
        if token is None:
            raise click.ClickException(f"not logged in to {where}: run 'wio login'")
        if profile.token_expired():
            raise click.ClickException(f"your login to {where} has expired: run 'wio login'")
        return ApiClient(api, token)


def _state(ctx: click.Context) -> CliState:
    return ctx.ensure_object(CliState)


pass_state = click.make_pass_decorator(CliState, ensure=True)


def _set_api(ctx: click.Context, _param, value):
    if value:
        _state(ctx).api_override = value
    return value


def _set_profile(ctx: click.Context, _param, value):
    if value:
        _state(ctx).profile_name = value
    return value


def _set_json(ctx: click.Context, _param, value):
    if value:
        _state(ctx).json = True
    return value


def _set_config_dir(ctx: click.Context, _param, value):
    if value:
        _state(ctx).config_dir = Path(value)
    return value


def common_options(f: Callable | None = None, *, root: bool = False) -> Callable:
    """``--api``, ``--profile`` and ``--json``; the root group also reads WIO_API / WIO_PROFILE."""
    if f is None:
        return lambda g: common_options(g, root=root)
    options = [
        click.option("--api", metavar="URL", callback=_set_api, expose_value=False,
                     envvar="WIO_API" if root else None, show_envvar=root,
                     help="The wio admin API to talk to (default: the profile's, else http://127.0.0.1:8080)."),
        click.option("--profile", metavar="NAME", callback=_set_profile, expose_value=False,
                     envvar="WIO_PROFILE" if root else None, show_envvar=root,
                     help="Which saved login to use (see 'wio profile ls')."),
        click.option("--json", "json_output", is_flag=True, callback=_set_json, expose_value=False,
                     help="Print JSON for scripts instead of tables."),
    ]
    if root:
        options.append(click.option("--config-dir", type=click.Path(file_okay=False), callback=_set_config_dir,
                                    expose_value=False, envvar="WIO_CONFIG_DIR", show_envvar=True,
                                    help="Where logins are kept (default: $XDG_CONFIG_HOME/wio)."))
    for option in reversed(options):
        f = option(f)
    return f


def api_error_line(exc: ApiClientError) -> str:
    if exc.status == 0:
        return f"{exc.message} (is the wio API running there? pick another with --api URL or WIO_API)"
    line = f"{exc.message} ({exc.code}, HTTP {exc.status})"
    if exc.status == 401 and exc.code != "InvalidCredentials":
        line += ": run 'wio login'"
    return line


def echo_err(message: str) -> None:
    click.echo(message, err=True)


class WioCommand(click.Command):
    """A command whose failures are one line on stderr and exit code 1, never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.exceptions.ClickException as exc:
            exc.message = " ".join(str(exc.message).splitlines())  # one line, whatever the source
            raise
        except (click.exceptions.Exit, click.exceptions.Abort):
            raise
        except ApiClientError as exc:
            raise click.ClickException(api_error_line(exc)) from None
        except ConfigError as exc:
            raise click.ClickException(str(exc)) from None
        except OSError as exc:
            where = f": {exc.filename}" if getattr(exc, "filename", None) else ""
            raise click.ClickException(f"{exc.strerror or exc}{where}") from None
        except KeyboardInterrupt:
            raise click.Abort() from None
        except Exception as exc:  # noqa: BLE001 - the promise is one line, whatever went wrong
            raise click.ClickException(f"unexpected error ({type(exc).__name__}): {exc}") from None


class WioGroup(click.Group):
    """A group whose commands (and sub-groups) are ``WioCommand``s with the common options."""

    command_class = WioCommand

    def command(self, *args, **kwargs):
        decorator = super().command(*args, **kwargs)

        def make(f):
            command = decorator(common_options(f))
            # the shared options go last in --help, after the ones that say what this command does
            shared = {"api", "profile", "json_output"}
            command.params = [p for p in command.params if p.name not in shared] + \
                [p for p in command.params if p.name in shared]
            return command
        return make


WioGroup.group_class = WioGroup



def q(segment: str) -> str:
    """One URL path segment (names are validated server-side; quote anyway so '/' can't smuggle a path)."""
    return quote(segment, safe="")


def split_ref(ref: str) -> tuple[str | None, str]:
    """``name`` -> (None, name); ``owner/name`` -> (owner, name)."""
    owner, slash, name = ref.rpartition("/")
    if not slash:
        return None, ref
    if not owner or not name or "/" in owner:
        raise click.BadParameter(f"{ref!r}: a workspace is 'name' or 'owner/name'", param_hint="WORKSPACE")
    return owner, name


def workspace_name(api: ApiClient, ref: str) -> str:
    """The workspace's name; with ``owner/name``, first check that ``owner`` owns it."""
    owner, name = split_ref(ref)
    if owner is not None:
        ws = api.call("GET", f"/workspaces/{q(name)}")
        if ws.get("owner") != owner:
            raise click.ClickException(f"workspace '{name}' belongs to '{ws.get('owner')}', not '{owner}'")
    return name


def route_missing(exc: ApiClientError) -> bool:
    """The server has no such route (an older wio), as opposed to 'no such workspace'."""
    return exc.status in (404, 405) and exc.code in ("NotFound", "MethodNotAllowed")


def unsupported(what: str, method: str, path: str) -> click.ClickException:
    return click.ClickException(f"this wio server does not support {what} yet ({method} /api/v1{path} is missing)")


def call_feature(api: ApiClient, what: str, method: str, path: str, body: Any = None,
                 params: dict | None = None) -> Any:
    """``api.call`` for a newer endpoint: an older server's 404 becomes 'does not support WHAT yet'."""
    try:
        return api.call(method, path, body, params)
    except ApiClientError as exc:
        if route_missing(exc):
            raise unsupported(what, method, path) from None
        raise


class busy:
    """A spinner with a status on stderr for operations that take a while (crawls, imports, node checks).

    Only on a terminal: in scripts and pipes it prints nothing. ``with busy("crawling") as show:
    show("3/5 done")`` updates the status shown after the message.
    """

    def __init__(self, message: str):
        self.message, self.detail, self._stop = message, "", threading.Event()
        self._thread: threading.Thread | None = None

    def __call__(self, detail: str) -> None:
        self.detail = detail

    def __enter__(self) -> "busy":
        stream = sys.stderr
        if stream.isatty():
            self._thread = threading.Thread(target=self._spin, args=(stream,), daemon=True)
            self._thread.start()
        return self

    def _spin(self, stream) -> None:
        frames, started = "|/-\\", time.monotonic()
        i = 0
        while not self._stop.wait(0.1):
            detail = f" {self.detail}" if self.detail else ""
            stream.write(f"\r\033[K{frames[i % 4]} {self.message}{detail} ({time.monotonic() - started:.0f}s)")
            stream.flush()
            i += 1

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            stream = sys.stderr
            stream.write("\r\033[K")
            stream.flush()


def complete_workspaces(ctx: click.Context, _param, incomplete: str) -> list:
    """Shell completion: the names of the workspaces the logged-in user can see (best effort)."""
    from click.shell_completion import CompletionItem
    try:
        workspaces = ctx.ensure_object(CliState).client().call("GET", "/workspaces").get("workspaces", [])
    except Exception:  # noqa: BLE001 - completion must never fail loudly
        return []
    out = []
    for ws in workspaces:
        for ref in (ws["name"], f"{ws['owner']}/{ws['name']}"):
            if ref.startswith(incomplete):
                out.append(CompletionItem(ref, help=f"{ws.get('permission') or ''} {ws['owner']}".strip()))
    return out
