"""CLI fixtures: ``wio`` run through click's CliRunner against the real stack, with its own config dir.

Every test gets a fresh ``XDG_CONFIG_HOME`` and ``HOME`` under tmp_path, so logins, aws and rclone
files never touch the developer's own, and ``WIO_API`` points at the session's admin API.
"""
from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from tests.conftest import s3_client, unique
from wio.cli import cli

# Variables from the developer's shell that would change what the CLI or the tools do.
_SCRUBBED = ("WIO_PROFILE", "WIO_CONFIG_DIR", "WIO_S3", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_PROFILE",
             "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL",
             "AWS_DEFAULT_REGION", "AWS_REGION", "RCLONE_CONFIG")


@dataclass
class Wio:
    """``wio(...)`` runs a command that must succeed; ``.fail(...)`` one that must fail with one line."""
    env: dict[str, str | None]
    home: Path
    s3_url: str  # the session's proxy (its port is not wio dev's 9000: logins learn it from /api/v1/info)
    runner: CliRunner = field(default_factory=CliRunner)

    def run(self, *args: str, input: str | None = None, env: dict | None = None) -> Result:
        result = self.runner.invoke(cli, list(args), input=input, env={**self.env, **(env or {})}, prog_name="wio")
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception  # a traceback escaped the CLI: that is a bug in itself
        return result

    def __call__(self, *args: str, input: str | None = None, env: dict | None = None) -> Result:
        result = self.run(*args, input=input, env=env)
        assert result.exit_code == 0, f"wio {' '.join(args)} -> {result.exit_code}\n{result.output}"
        return result

    def json(self, *args: str, **kwargs) -> Any:
        return json.loads(self(*args, "--json", **kwargs).stdout)

    def aborted(self, *args: str) -> None:
        """A confirmation prompt answered by end of input: nothing done, exit 1, no traceback."""
        result = self.run(*args)
        assert result.exit_code == 1 and result.stderr.rstrip().endswith("Aborted!"), result.output
        assert "Traceback" not in result.output

    def fail(self, *args: str, input: str | None = None, env: dict | None = None, code: int = 1) -> str:
        """Run a command that must fail: exit ``code``, exactly one ``Error: …`` line on stderr."""
        result = self.run(*args, input=input, env=env)
        assert result.exit_code == code, f"wio {' '.join(args)} -> {result.exit_code}\n{result.output}"
        lines = result.stderr.strip().splitlines()
        assert "Traceback" not in result.output
        assert len(lines) == 1 and lines[-1].startswith("Error: "), result.stderr
        return lines[0]

    @property
    def config_file(self) -> Path:
        return Path(self.env["XDG_CONFIG_HOME"]) / "wio" / "config.json"


@pytest.fixture
def wio(stack, tmp_path) -> Wio:
    home = tmp_path / "home"
    home.mkdir()
    env = {name: None for name in _SCRUBBED}
    env.update(XDG_CONFIG_HOME=str(tmp_path / "xdg"), HOME=str(home), WIO_API=stack.api_url)
    return Wio(env, home, stack.s3_url)


@dataclass
class Account:
    name: str
    password: str


@pytest.fixture
def user(wio) -> Account:
    """A new user, registered and logged in through the CLI (the default profile of ``wio``)."""
    account = Account(unique("cli"), secrets.token_urlsafe(12))
    wio("register", account.name, "--password", account.password)  # the S3 endpoint comes from /api/v1/info
    return account


@pytest.fixture
def ws(wio, user) -> str:
    name = unique("cliws")
    wio("workspace", "create", name)
    return name


def s3_for(wio: Wio, stack, *extra: str):
    """A boto3 client on the proxy with a fresh key made by ``wio key create``."""
    return s3_client(stack.s3_url, wio.json("key", "create", *extra))

