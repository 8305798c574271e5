"""register / login / whoami / logout, profiles, the config file, errors, --help and completion."""
from __future__ import annotations

import json
import secrets
import socket
import stat

import click

from tests.cli.conftest import Account
from tests.conftest import unique
from wio.cli import cli


def test_register_whoami_logout_login(wio):
    name, password = unique("cli"), secrets.token_urlsafe(12)
    # register asks for the password twice when it isn't given
    out = wio("register", name, "--email", f"{name}@lab.example.org", input=f"{password}\n{password}\n").stdout
    assert f"Registered {name} and logged in" in out

    config = json.loads(wio.config_file.read_text())
    assert stat.S_IMODE(wio.config_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(wio.config_file.parent.stat().st_mode) == 0o700
    assert config["current"] == "default" and config["profiles"]["default"]["token"]

    me = wio.json("whoami")
    assert me["username"] == name and me["email"] == f"{name}@lab.example.org" and me["is_admin"] is False
    assert me["api"] == wio.env["WIO_API"] and me["s3"] == wio.s3_url  # as GET /api/v1/info advertises it
    assert name in wio("whoami").stdout

    assert "Logged out" in wio("logout").stdout
    assert "token" not in json.loads(wio.config_file.read_text())["profiles"]["default"]
    assert "not logged in" in wio.fail("whoami")
    assert "Not logged in" in wio("logout").stdout

    assert "wrong username or password" in wio.fail("login", name, "--password", "not-the-password")
    wio("login", name, "--password-stdin", input=f"{password}\n")
    assert wio.json("whoami")["username"] == name
    wio("logout")
    wio("login", input=f"{name}\n{password}\n")  # prompts for both
    assert wio.json("whoami")["username"] == name


def test_register_errors_are_one_line(wio, user):
    assert "is taken" in wio.fail("register", user.name, "--password", "long-enough-password")
    assert "passwords must be" in wio.fail("register", unique("cli"), "--password", "short")
    assert "usernames are" in wio.fail("register", "Not Valid", "--password", "long-enough-password")
    assert "not both" in wio.fail("login", user.name, "--password", "x", "--password-stdin", input="y\n", code=2)


def test_profiles_keep_separate_logins(wio, stack, user):
    other = Account(unique("cli"), secrets.token_urlsafe(12))
    wio("register", other.name, "--password", other.password, "--profile", "second", "--s3", "https://s3.example.org")
    assert wio.json("whoami")["username"] == user.name  # the default profile is unchanged
    second = wio.json("whoami", "--profile", "second")
    assert second["username"] == other.name and second["s3"] == "https://s3.example.org"
    assert wio.json("--profile", "second", "whoami")["username"] == other.name  # before the command too
    assert wio.json("whoami", env={"WIO_PROFILE": "second"})["username"] == other.name

    profiles = wio.json("profile", "ls")
    assert profiles["current"] == "default"
    assert {p["name"]: p["username"] for p in profiles["profiles"]} == {"default": user.name, "second": other.name}
    wio("profile", "use", "second")
    assert wio.json("whoami")["username"] == other.name
    assert "*" in wio("profile", "ls").stdout
    wio("profile", "set", "--s3", "http://127.0.0.1:9999", "--profile", "second")
    assert wio.json("whoami")["s3"] == "http://127.0.0.1:9999"
    wio("profile", "rm", "second")
    assert wio.json("whoami")["username"] == user.name  # back to the default profile
    assert "no profile named" in wio.fail("profile", "use", "second")

    # a token is only ever sent to the server that issued it
    assert "not logged in to http://127.0.0.1:1" in wio.fail("whoami", "--api", "http://127.0.0.1:1")


def test_expired_login_says_so(wio, user):
    config = json.loads(wio.config_file.read_text())
    config["profiles"]["default"]["token_expires_at"] = 1
    wio.config_file.write_text(json.dumps(config))
    assert "login to" in wio.fail("workspace", "ls") and "expired" in wio.fail("workspace", "ls")


def test_connection_and_config_errors_are_one_line(wio):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert "cannot reach" in wio.fail("login", "x", "--password", "y", "--api", f"http://127.0.0.1:{port}")
    assert "must look like" in wio.fail("login", "x", "--password", "y", "--api", "ftp://nowhere")
    wio.config_file.parent.mkdir(parents=True)
    wio.config_file.write_text("{broken")
    assert "cannot read" in wio.fail("whoami")


def test_usage_errors_are_one_line(wio):
    assert "Missing argument" in wio.fail("share", "add", code=2)
    assert "No such command" in wio.fail("frobnicate", code=2)
    assert "--help" in wio.fail("key", "create", "--expires", "soon", code=2)


def _all_commands(group: click.Group, path=()):
    for name, command in group.commands.items():
        yield (*path, name), command
        if isinstance(command, click.Group):
            yield from _all_commands(command, (*path, name))


def test_help_everywhere_with_examples(wio):
    for path, _command in _all_commands(cli):
        result = wio(*path, "--help")
        assert "Usage: wio " + " ".join(path) in result.stdout
        if len(path) == 1 and path[0] not in ("serve",):  # every top-level command shows examples
            assert "Example" in result.stdout, path
    assert "Getting started" in wio("--help").stdout


def test_shell_completion(wio, ws, user):
    for shell, marker in (("bash", "complete -o"), ("zsh", "compdef"), ("fish", "complete --no-files")):
        script = wio("completion", shell).stdout
        assert "_WIO_COMPLETE" in script and marker in script
    words = wio.run(env={"_WIO_COMPLETE": "bash_complete", "COMP_WORDS": "wio work", "COMP_CWORD": "1"})
    assert "workspace" in words.stdout
    # workspace names complete from the server, as name and owner/name
    names = wio.run(env={"_WIO_COMPLETE": "bash_complete", "COMP_WORDS": f"wio workspace info {ws[:6]}",
                         "COMP_CWORD": "3"}).stdout
    assert ws in names and f"{user.name}/{ws}" not in names  # owner/name only completes from the owner's prefix
    names = wio.run(env={"_WIO_COMPLETE": "bash_complete", "COMP_WORDS": f"wio share ls {user.name}/",
                         "COMP_CWORD": "3"}).stdout
    assert f"{user.name}/{ws}" in names
