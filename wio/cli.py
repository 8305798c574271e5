"""The ``wio`` command line.

The root group takes the options every user command shares (``--api``, ``--profile``, ``--json``);
the user and operator commands live in ``wio.commands``; ``dev`` and ``serve`` run the server side.
"""
from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path

import click

from wio.commands import SECTIONS, register_commands
from wio.commands.core import common_options
from foundation.settings import Settings, SettingsError

__all__ = ["main", "cli"]


class SectionedGroup(click.Group):
    """``wio --help`` lists the commands by area; a usage error is one line, like every other error."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        try:
            result = super().main(args, prog_name, complete_var, False, **extra)
        except click.UsageError as exc:
            hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
            click.echo(f"Error: {' '.join(exc.format_message().splitlines())}{hint}", err=True)
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo("Aborted!", err=True)
            sys.exit(1)
        sys.exit(result if isinstance(result, int) else 0)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        listed: set[str] = set()
        for title, names in [*SECTIONS.items(), ("Other", sorted(self.commands))]:
            rows = []
            for name in names:
                command = self.get_command(ctx, name)
                if command is None or command.hidden or name in listed:
                    continue
                listed.add(name)
                rows.append((name, command.get_short_help_str(formatter.width - 6 - 14)))
            if rows:
                with formatter.section(title):
                    formatter.write_dl(rows)


@click.group(cls=SectionedGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@common_options(root=True)
def cli() -> None:
    """wio: an S3 permission proxy with instant revocation and hard quotas.

    \b
    Getting started:
      wio register alice --api http://127.0.0.1:8080
      wio workspace create climate-runs
      eval "$(wio env)"
      aws s3 cp results.csv s3://climate-runs/

    Every command takes --help; --json prints machine-readable output.
    """


def _redacted(url: str) -> str:
    """A service URL without its password, for printing."""
    scheme, sep, rest = url.partition("://")
    userinfo, at, hosts = rest.rpartition("@")
    return f"{scheme}{sep}{userinfo.split(':')[0]}:***@{hosts}" if at and ":" in userinfo else url


@cli.command()
@click.option("--state-dir", type=click.Path(path_type=Path), default=Path(".wio"), show_default=True,
              help="Where data and secrets live; data survives restarts.")
@click.option("--api-port", type=int, default=8080, show_default=True)
@click.option("--s3-port", type=int, default=9000, show_default=True)
@click.option("--proxy-workers", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Proxy processes sharing the S3 port.")
@click.option("--tls", is_flag=True, help="Serve the proxy over https with a self-signed certificate.")
@click.option("--redis-url", metavar="URL", default=None,
              help="Use this Redis instead of starting Valkey (redis://, rediss:// or redis+sentinel://).")
@click.option("--database-url", metavar="URL", default=None,
              help="Use this PostgreSQL instead of starting one (postgresql://user:pass@host/db).")
@click.option("--ha", is_flag=True,
              help="Start a Valkey primary, a replica and three Sentinels, and use them through Sentinel.")
@click.option("--anonymous-reads", is_flag=True, envvar="WIO_ANONYMOUS_READS",
              help="Serve unsigned reads of workspaces marked anonymous_read (S3's public-read); "
                   "off by default (env WIO_ANONYMOUS_READS).")
def dev(state_dir: Path, api_port: int, s3_port: int, proxy_workers: int, tls: bool, redis_url: str | None,
        database_url: str | None, ha: bool, anonymous_reads: bool) -> None:
    """Run a complete stack on this machine: PostgreSQL, Valkey, SeaweedFS, the admin API and the proxy.

    \b
    Examples:
      wio dev --state-dir ./.wio --proxy-workers 2
      wio dev --ha
      wio dev --database-url postgresql://wio@db.example/wio --redis-url redis+sentinel://s1,s2,s3/wio
    """
    from wio.dev.stack import start_dev_stack
    import os
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        stack = start_dev_stack(state_dir.resolve(), api_port=api_port, s3_port=s3_port, proxy_workers=proxy_workers,
                                tls=tls, admin_password=os.environ.get("WIO_ADMIN_PASSWORD"),
                                redis_url=redis_url, database_url=database_url, ha=ha,
                                anonymous_reads=anonymous_reads, log=lambda m: click.echo(m, err=True))
    except Exception as exc:  # noqa: BLE001 - one readable line, not a traceback
        raise click.ClickException(f"could not start the stack: {exc}") from None
    click.echo(f"wio is up.\n  console    {stack.api_url}/\n"
               f"  admin API  {stack.api_url}/api/v1\n  S3 proxy   {stack.s3_url}\n"
               f"  redis      {_redacted(stack.settings.redis_url)}\n"
               f"  admin user admin / {stack.admin_password}\n  state      {state_dir.resolve()}\n"
               "Press Ctrl-C to stop.")
    try:
        while not stop.wait(0.5):
            if any(p.poll() is not None for p in stack.processes):
                click.echo("a wio process exited; stopping", err=True)
                break
    finally:
        click.echo("stopping …", err=True)
        stack.stop()


@cli.command()
@click.argument("component", type=click.Choice(["api", "proxy", "indexer"]))
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True)
@click.option("--tls-cert", type=click.Path(exists=True, dir_okay=False), default=None)
@click.option("--tls-key", type=click.Path(exists=True, dir_okay=False), default=None)
def serve(component: str, workers: int, tls_cert: str | None, tls_key: str | None) -> None:
    """Run one production component, configured by WIO_* environment variables."""
    try:
        settings = Settings.from_env()
        if component == "api":
            settings.require_jwt_secret()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None
    if component == "indexer":
        from indexer.service import serve_indexer
        serve_indexer(settings)
        return
    from wio.serve import serve as run
    run(component, settings, workers=workers, cert=tls_cert, key=tls_key)


register_commands(cli)


def main() -> None:
    cli(prog_name="wio")


if __name__ == "__main__":
    main()
