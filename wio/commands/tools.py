"""Credentials for the tools people already use: environment variables, mc, the aws CLI, rclone.

Each command creates a key on the fly (or takes one given with --access-key-id/--secret-access-key)
and hands it over with the profile's S3 endpoint. Files are edited section by section (the rest
of the file, comments included, is left as it was), replaced atomically and kept 0600.
"""
from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path
from urllib.parse import quote, urlsplit

import click

from wio.commands.access import create_key, key_options
from wio.commands.core import CliState, WioCommand, WioGroup, common_options, echo_err, pass_state
from wio.commands.output import emit, print_json
from wio.config import write_private_file
from wio.dev.executables import find_executable

__all__ = ["register_commands", "upsert_ini_section"]

DEFAULT_REGION = "us-east-1"
_SECTION_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")


def credential_options(*, default_expires: str | None):
    def decorate(f):
        f = click.option("--session-token", default=None, help="With --access-key-id: its session token.")(f)
        f = click.option("--secret-access-key", default=None, help="With --access-key-id: its secret.")(f)
        f = click.option("--access-key-id", default=None,
                         help="Use this existing key instead of creating one.")(f)
        f = key_options(default_expires=default_expires)(f)
        f = click.option("--region", default=DEFAULT_REGION, show_default=True, help="The region tools sign for.")(f)
        return f
    return decorate


def obtain_credentials(state: CliState, *, access_key_id: str | None, secret_access_key: str | None,
                       session_token: str | None, key_name: str | None, expires_in: int | None,
                       scopes: tuple) -> dict:
    if access_key_id or secret_access_key or session_token:
        if not (access_key_id and secret_access_key):
            raise click.UsageError("--access-key-id and --secret-access-key go together")
        return {"access_key_id": access_key_id, "secret_access_key": secret_access_key,
                "session_token": session_token}
    created = create_key(state.client(), name=key_name, expires_in=expires_in, scopes=scopes)
    lifetime = f"temporary, until {created['expires_at']}" if created.get("expires_at") else "long-lived"
    echo_err(f"wio: created key {created['access_key_id']} ({lifetime}); revoke it with "
             f"'wio key rm {created['access_key_id']}'")
    return created


def _check_section_name(name: str, what: str) -> None:
    if not _SECTION_NAME_RE.fullmatch(name):
        raise click.BadParameter(f"{name!r}: {what} names are letters, digits, '.', '_' and '-'")


# --- wio env ------------------------------------------------------------------------------------

@click.command("env", cls=WioCommand)
@credential_options(default_expires="12h")
@click.option("--shell", type=click.Choice(["sh", "fish"]), default="sh", show_default=True,
              help="sh covers bash and zsh.")
@common_options
@pass_state
def env(state: CliState, region: str, key_name: str | None, expires_in: int | None, scopes: tuple,
        access_key_id: str | None, secret_access_key: str | None, session_token: str | None, shell: str):
    """Print AWS_* variables for aws, boto3, s3cmd and the SDKs. Run it through eval.

    By default a temporary key valid for 12 hours is created each time; --expires never makes a
    long-lived one.

    \b
    Examples:
      eval "$(wio env)"
      aws s3 cp results.csv s3://climate-runs/results.csv
      eval "$(wio env --scope climate-runs:read --expires 1h)"
      wio env --shell fish | source
    """
    creds = obtain_credentials(state, access_key_id=access_key_id, secret_access_key=secret_access_key,
                               session_token=session_token, key_name=key_name or "wio env", expires_in=expires_in,
                               scopes=scopes)
    variables = {"AWS_ACCESS_KEY_ID": creds["access_key_id"], "AWS_SECRET_ACCESS_KEY": creds["secret_access_key"],
                 # unset a session token left over from an earlier eval: it would spoil the signature
                 "AWS_SESSION_TOKEN": creds.get("session_token"),
                 "AWS_ENDPOINT_URL": state.s3_url, "AWS_DEFAULT_REGION": region, "AWS_REGION": region}
    if state.ca_bundle:  # the server's own CA (wio dev --tls), as its /api/v1/info handed it out
        variables["AWS_CA_BUNDLE"] = state.ca_bundle
    if state.json:
        print_json({k: v for k, v in variables.items() if v is not None})
        return
    for name, value in variables.items():
        if shell == "fish":
            click.echo(f"set -gx {name} {shlex.quote(value)};" if value is not None else f"set -e {name};")
        else:
            click.echo(f"export {name}={shlex.quote(value)}" if value is not None else f"unset {name}")


# --- wio mc alias -------------------------------------------------------------------------------

@click.group(cls=WioGroup)
def mc():
    """Set up the MinIO client (mc).

    \b
    Examples:
      wio mc alias wio --run
      mc cp results.csv wio/climate-runs/
    """


@mc.command("alias")
@click.argument("name")
@credential_options(default_expires=None)
@click.option("--run", is_flag=True, help="Run 'mc alias set' now instead of printing it.")
@pass_state
def mc_alias(state: CliState, name: str, region: str, key_name: str | None, expires_in: int | None,
             scopes: tuple, access_key_id: str | None, secret_access_key: str | None,
             session_token: str | None, run: bool):
    """Print (or --run) 'mc alias set NAME …' for the wio S3 endpoint, with a new key.

    A temporary key (--expires) can't be stored by 'mc alias set'; then an MC_HOST_NAME variable
    is printed instead, for eval.

    \b
    Examples:
      wio mc alias wio --run
      mc ls wio/climate-runs
      eval "$(wio mc alias tmp --expires 1h --scope climate-runs:read)"
    """
    _check_section_name(name, "alias")
    mc_path = find_executable("mc", "mcli")
    if run and mc_path is None:
        raise click.ClickException("mc is not installed (not on PATH); run without --run and paste the command")
    creds = obtain_credentials(state, access_key_id=access_key_id, secret_access_key=secret_access_key,
                               session_token=session_token, key_name=key_name or f"mc {name}",
                               expires_in=expires_in, scopes=scopes)
    endpoint = state.s3_url
    if creds.get("session_token"):
        if run:
            raise click.ClickException("mc alias set can't keep a session token; eval the printed MC_HOST line")
        if not re.fullmatch(r"[A-Za-z0-9_]+", name):
            raise click.BadParameter(f"{name!r}: a temporary alias becomes MC_HOST_{name}, so use letters, digits, _")
        parts = urlsplit(endpoint)
        userinfo = ":".join(quote(v, safe="") for v in (creds["access_key_id"], creds["secret_access_key"],
                                                         creds["session_token"]))
        click.echo(f"export MC_HOST_{name}={shlex.quote(f'{parts.scheme}://{userinfo}@{parts.netloc}')}")
        return
    argv = ["alias", "set", name, endpoint, creds["access_key_id"], creds["secret_access_key"],
            "--api", "S3v4", "--path", "on"]
    if not run:
        click.echo(shlex.join(["mc", *argv]))
        return
    done = subprocess.run([mc_path, *argv], capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        last = (done.stderr or done.stdout).strip().splitlines()[-1:] or [f"exit code {done.returncode}"]
        raise click.ClickException(f"mc alias set failed: {last[0]}")
    emit(state, {"alias": name, "endpoint": endpoint, "access_key_id": creds["access_key_id"]},
         lambda d: click.echo(f"mc alias {name} -> {endpoint}. Try: mc ls {name}"))


# --- wio aws-profile ----------------------------------------------------------------------------

def upsert_ini_section(path: Path, section: str, entries: list[str], *, force: bool) -> bool:
    """Put ``[section]`` with ``entries`` into an INI file, leaving every other line alone.

    Returns whether a section was replaced; refuses to replace one unless ``force``.
    """
    lines = path.read_text().splitlines() if path.exists() else []
    header = f"[{section}]"
    block = [header, *entries]
    start = next((i for i, line in enumerate(lines) if line.strip() == header), None)
    if start is not None:
        if not force:
            raise click.ClickException(f"{path} already has a section {header}: add --force to replace it")
        end = next((j for j in range(start + 1, len(lines)) if lines[j].lstrip().startswith("[")), len(lines))
        if end < len(lines):
            block.append("")
        lines[start:end] = block
    else:
        if lines and lines[-1].strip():
            lines.append("")
        lines += block
    write_private_file(path, "\n".join(lines) + "\n")
    return start is not None


@click.command("aws-profile", cls=WioCommand)
@click.argument("name")
@credential_options(default_expires=None)
@click.option("--config-file", type=click.Path(dir_okay=False, path_type=Path), envvar="AWS_CONFIG_FILE",
              default=Path("~/.aws/config"), show_default=True, show_envvar=True)
@click.option("--credentials-file", type=click.Path(dir_okay=False, path_type=Path),
              envvar="AWS_SHARED_CREDENTIALS_FILE", default=Path("~/.aws/credentials"), show_default=True,
              show_envvar=True)
@click.option("--force", is_flag=True, help="Replace a profile of the same name.")
@common_options
@pass_state
def aws_profile(state: CliState, name: str, region: str, key_name: str | None, expires_in: int | None,
                scopes: tuple, access_key_id: str | None, secret_access_key: str | None,
                session_token: str | None, config_file: Path, credentials_file: Path, force: bool):
    """Write an aws CLI / boto3 profile NAME pointing at wio, with a new key.

    \b
    Examples:
      wio aws-profile wio
      aws --profile wio s3 ls s3://climate-runs/
      AWS_PROFILE=wio python my_boto3_script.py
    """
    _check_section_name(name, "profile")
    config_file, credentials_file = config_file.expanduser(), credentials_file.expanduser()
    config_section = "default" if name == "default" else f"profile {name}"
    for path, section in ((config_file, config_section), (credentials_file, name)):
        if not force and path.exists() and f"[{section}]" in (line.strip() for line in path.read_text().splitlines()):
            raise click.ClickException(f"{path} already has a section [{section}]: add --force to replace it")
    creds = obtain_credentials(state, access_key_id=access_key_id, secret_access_key=secret_access_key,
                               session_token=session_token, key_name=key_name or f"aws {name}",
                               expires_in=expires_in, scopes=scopes)
    settings = [f"region = {region}", f"endpoint_url = {state.s3_url}"]
    if state.ca_bundle:
        settings.append(f"ca_bundle = {state.ca_bundle}")
    upsert_ini_section(config_file, config_section, [*settings, "s3 =", "    addressing_style = path"], force=True)
    secrets = [f"aws_access_key_id = {creds['access_key_id']}", f"aws_secret_access_key = {creds['secret_access_key']}"]
    if creds.get("session_token"):
        secrets.append(f"aws_session_token = {creds['session_token']}")
    upsert_ini_section(credentials_file, name, secrets, force=True)
    emit(state, {"profile": name, "config_file": str(config_file), "credentials_file": str(credentials_file),
                 "endpoint": state.s3_url, "access_key_id": creds["access_key_id"]},
         lambda d: click.echo(f"Wrote aws profile {name} ({config_file}, {credentials_file}). "
                              f"Try: aws --profile {name} s3 ls"))


# --- wio rclone-remote --------------------------------------------------------------------------

def rclone_config_path(explicit: Path | None) -> Path:
    """RCLONE_CONFIG / --config, else what `rclone config file` says, else rclone's default place."""
    if explicit is not None:
        return explicit.expanduser()
    rclone = find_executable("rclone")
    if rclone:
        try:
            out = subprocess.run([rclone, "config", "file"], capture_output=True, text=True, timeout=30).stdout
            lines = [line.strip() for line in out.splitlines() if line.strip()]
            if lines and lines[-1].startswith("/"):
                return Path(lines[-1])
        except (OSError, subprocess.SubprocessError):
            pass
    return Path("~/.config/rclone/rclone.conf").expanduser()


@click.command("rclone-remote", cls=WioCommand)
@click.argument("name")
@credential_options(default_expires=None)
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path), envvar="RCLONE_CONFIG",
              default=None, show_envvar=True, help="rclone's config file (default: `rclone config file`).")
@click.option("--force", is_flag=True, help="Replace a remote of the same name.")
@common_options
@pass_state
def rclone_remote(state: CliState, name: str, region: str, key_name: str | None, expires_in: int | None,
                  scopes: tuple, access_key_id: str | None, secret_access_key: str | None,
                  session_token: str | None, config_path: Path | None, force: bool):
    """Write an rclone remote NAME (type s3, provider Other) pointing at wio, with a new key.

    \b
    Examples:
      wio rclone-remote wio
      rclone copy ./results wio:climate-runs/results
      rclone lsf wio:climate-runs
    """
    _check_section_name(name, "remote")
    path = rclone_config_path(config_path)
    if not force and path.exists() and f"[{name}]" in (line.strip() for line in path.read_text().splitlines()):
        raise click.ClickException(f"{path} already has a remote [{name}]: add --force to replace it")
    creds = obtain_credentials(state, access_key_id=access_key_id, secret_access_key=secret_access_key,
                               session_token=session_token, key_name=key_name or f"rclone {name}",
                               expires_in=expires_in, scopes=scopes)
    entries = ["type = s3", "provider = Other", f"access_key_id = {creds['access_key_id']}",
               f"secret_access_key = {creds['secret_access_key']}"]
    if creds.get("session_token"):
        entries.append(f"session_token = {creds['session_token']}")
    entries += [f"endpoint = {state.s3_url}", f"region = {region}", "force_path_style = true"]
    upsert_ini_section(path, name, entries, force=True)
    emit(state, {"remote": name, "config_file": str(path), "endpoint": state.s3_url,
                 "access_key_id": creds["access_key_id"]},
         lambda d: click.echo(f"Wrote rclone remote {name} to {path}. Try: rclone lsf {name}:"))


def register_commands(cli: click.Group) -> None:
    for command in (env, mc, aws_profile, rclone_remote):
        cli.add_command(command)
