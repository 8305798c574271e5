"""The ``wio`` command line."""
from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path

import click

from wio.settings import Settings, SettingsError

__all__ = ["main", "cli"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """wio: an S3 permission proxy with instant revocation and hard quotas."""


@cli.command()
@click.option("--state-dir", type=click.Path(path_type=Path), default=Path(".wio"), show_default=True,
              help="Where data and secrets live; data survives restarts.")
@click.option("--api-port", type=int, default=8080, show_default=True)
@click.option("--s3-port", type=int, default=9000, show_default=True)
@click.option("--proxy-workers", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Proxy processes sharing the S3 port.")
@click.option("--tls", is_flag=True, help="Serve the proxy over https with a self-signed certificate.")
def dev(state_dir: Path, api_port: int, s3_port: int, proxy_workers: int, tls: bool) -> None:
    """Run a complete stack on this machine: PostgreSQL, Valkey, SeaweedFS, the admin API and the proxy.

    \b
    Example:
      wio dev --state-dir ./.wio --proxy-workers 2
    """
    from wio.devstack import start_dev_stack
    import os
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        stack = start_dev_stack(state_dir.resolve(), api_port=api_port, s3_port=s3_port, proxy_workers=proxy_workers,
                                tls=tls, admin_password=os.environ.get("WIO_ADMIN_PASSWORD"),
                                log=lambda m: click.echo(m, err=True))
    except Exception as exc:  # noqa: BLE001 - one readable line, not a traceback
        raise click.ClickException(f"could not start the stack: {exc}") from None
    click.echo(f"wio is up.\n  admin API  {stack.api_url}/api/v1\n  S3 proxy   {stack.s3_url}\n"
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
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None
    if component == "indexer":
        raise click.ClickException("the indexer is not available in this version")
    from wio.serve import serve as run
    run(component, settings, workers=workers, cert=tls_cert, key=tls_key)


def main() -> None:
    cli(prog_name="wio")


if __name__ == "__main__":
    main()
