"""Credentials for users' tools: wio env, wio mc alias, wio aws-profile, wio rclone-remote — each used for real."""
from __future__ import annotations

import os
import secrets
import shlex
import stat
import subprocess
import sys
from pathlib import Path


from tests.conftest import s3_client, tool, unique


def parse_exports(text: str) -> dict[str, str | None]:
    """``export K=V`` / ``unset K`` lines -> {K: V or None}."""
    out: dict[str, str | None] = {}
    for line in text.splitlines():
        words = shlex.split(line)
        if words[0] == "export":
            name, _, value = words[1].partition("=")
            out[name] = value
        elif words[0] == "unset":
            out[words[1]] = None
    return out


def creds_from(variables: dict) -> dict:
    return {"access_key_id": variables["AWS_ACCESS_KEY_ID"], "secret_access_key": variables["AWS_SECRET_ACCESS_KEY"],
            "session_token": variables.get("AWS_SESSION_TOKEN")}


def test_env_for_eval(wio, user, ws, stack):
    result = wio("env", "--api", stack.api_url)
    variables = parse_exports(result.stdout)
    assert variables["AWS_SESSION_TOKEN"]  # temporary by default
    assert variables["AWS_DEFAULT_REGION"] == variables["AWS_REGION"] == "us-east-1"
    assert variables["AWS_ENDPOINT_URL"] == wio.json("whoami")["s3"]
    assert "created key" in result.stderr and "temporary" in result.stderr  # told on stderr, not eval'ed
    s3 = s3_client(stack.s3_url, creds_from(variables))
    s3.put_object(Bucket=ws, Key="env.txt", Body=b"env")

    long_lived = parse_exports(wio("env", "--expires", "never", "--scope", f"{ws}:read").stdout)
    assert long_lived["AWS_SESSION_TOKEN"] is None  # `unset`, so an earlier token can't spoil the signature
    assert s3_client(stack.s3_url, creds_from(long_lived)).get_object(Bucket=ws, Key="env.txt")["Body"].read() == b"env"

    fish = wio("env", "--shell", "fish").stdout
    assert fish.startswith("set -gx AWS_ACCESS_KEY_ID ")
    as_json = wio.json("env", "--access-key-id", "AKGIVEN", "--secret-access-key", "s3cr3t")
    assert as_json["AWS_ACCESS_KEY_ID"] == "AKGIVEN" and "AWS_SESSION_TOKEN" not in as_json
    assert "go together" in wio.fail("env", "--access-key-id", "AKGIVEN", code=2)


def test_env_uses_the_profiles_s3_endpoint(wio, user):
    wio("profile", "set", "--s3", "https://s3.lab.example.org")
    assert parse_exports(wio("env").stdout)["AWS_ENDPOINT_URL"] == "https://s3.lab.example.org"


def test_mc_alias(wio, user, ws, stack, tmp_path):
    line = wio("mc", "alias", "lab").stdout.strip()
    words = shlex.split(line)
    assert words[:5] == ["mc", "alias", "set", "lab", wio.json("whoami")["s3"]]
    assert words[7:] == ["--api", "S3v4", "--path", "on"]
    s3_client(stack.s3_url, {"access_key_id": words[5], "secret_access_key": words[6]}).list_objects_v2(Bucket=ws)

    temporary = wio("mc", "alias", "tmp", "--expires", "1h").stdout.strip()
    assert temporary.startswith("export MC_HOST_tmp=")

    empty = tmp_path / "empty-bin"
    empty.mkdir()
    assert "mc is not installed" in wio.fail("mc", "alias", "lab", "--run", env={"PATH": str(empty)})

    # --run hands the same arguments to the real `mc` when there is one; a stand-in records them here
    fake = tmp_path / "bin" / "mc"
    fake.parent.mkdir()
    record = tmp_path / "mc-args"
    fake.write_text(f"#!/bin/sh\nprintf '%s\\n' \"$@\" > {record}\n")
    fake.chmod(0o755)
    out = wio("mc", "alias", "lab", "--run", env={"PATH": f"{fake.parent}:{os.environ['PATH']}"}).stdout
    assert "mc alias lab ->" in out
    args = record.read_text().splitlines()
    assert args[:4] == ["alias", "set", "lab", wio.json("whoami")["s3"]] and args[6:] == ["--api", "S3v4",
                                                                                           "--path", "on"]


def aws(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "awscli", *args], env=env, capture_output=True, text=True,
                          timeout=120)


def test_aws_profile(wio, user, ws, tmp_path):
    config, credentials = tmp_path / "aws" / "config", tmp_path / "aws" / "credentials"
    config.parent.mkdir()
    config.write_text("# mine\n[profile other]\nregion = eu-west-1\n")
    files = {"AWS_CONFIG_FILE": str(config), "AWS_SHARED_CREDENTIALS_FILE": str(credentials)}
    out = wio("aws-profile", "wio-test", env=files).stdout
    assert "Wrote aws profile wio-test" in out
    assert config.read_text().startswith("# mine\n[profile other]\nregion = eu-west-1\n\n[profile wio-test]\n")
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o600

    src = tmp_path / "up.txt"
    src.write_bytes(os.urandom(2048))
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("AWS_")}, **files}
    done = aws("--profile", "wio-test", "s3", "cp", str(src), f"s3://{ws}/up.txt", env=env)
    assert done.returncode == 0, done.stderr

    assert "--force" in wio.fail("aws-profile", "wio-test", env=files)
    wio("aws-profile", "wio-test", "--force", "--expires", "1h", env=files)
    assert "aws_session_token" in credentials.read_text()
    assert credentials.read_text().count("[wio-test]") == 1 and "[profile other]" in config.read_text()
    listing = aws("--profile", "wio-test", "s3", "ls", f"s3://{ws}/", env=env)  # now with a temporary key
    assert "up.txt" in listing.stdout, listing.stderr


def test_rclone_remote(wio, user, ws, tmp_path):
    conf = tmp_path / "rclone.conf"
    out = wio("rclone-remote", "wiotest", env={"RCLONE_CONFIG": str(conf)}).stdout
    assert f"Wrote rclone remote wiotest to {conf}" in out
    text = conf.read_text()
    assert "type = s3" in text and "provider = Other" in text and stat.S_IMODE(conf.stat().st_mode) == 0o600

    src = tmp_path / "data.bin"
    src.write_bytes(os.urandom(100_000))
    env = {**os.environ, "RCLONE_CONFIG": str(conf)}
    run = lambda *a: subprocess.run([tool("rclone"), *a], env=env, capture_output=True, timeout=120)  # noqa: E731
    done = run("copyto", str(src), f"wiotest:{ws}/dir/data.bin")
    assert done.returncode == 0, done.stderr.decode()
    assert run("lsf", f"wiotest:{ws}/dir").stdout.decode().split() == ["data.bin"]
    assert run("cat", f"wiotest:{ws}/dir/data.bin").stdout == src.read_bytes()

    # `rclone config file` decides where the file is when RCLONE_CONFIG isn't set ($XDG_CONFIG_HOME here)
    out = wio("rclone-remote", "second", env={"RCLONE_CONFIG": None}).stdout
    default_conf = Path(wio.env["XDG_CONFIG_HOME"]) / "rclone" / "rclone.conf"
    assert str(default_conf) in out and "[second]" in default_conf.read_text()
    assert "--force" in wio.fail("rclone-remote", "wiotest", env={"RCLONE_CONFIG": str(conf)})


def test_login_learns_the_endpoint_and_its_ca_from_the_server(wio, tls_stack, tmp_path):
    """`wio dev --tls` serves a self-signed certificate: login reads the S3 endpoint and the CA from
    GET /api/v1/info, and `wio env` hands both to the aws CLI, which then verifies the certificate."""
    name, password = unique("tlscli"), secrets.token_urlsafe(12)
    env = {"WIO_API": tls_stack.api_url}
    wio("register", name, "--password", password, env=env)
    variables = wio.json("env", env=env)
    assert variables["AWS_ENDPOINT_URL"] == tls_stack.s3_url.rstrip("/")
    assert Path(variables["AWS_CA_BUNDLE"]).read_text() == Path(tls_stack.cert).read_text()
    bucket = unique("tlsws")
    wio("workspace", "create", bucket, env=env)
    src = tmp_path / "t.txt"
    src.write_bytes(os.urandom(1000))
    aws_env = {**{k: v for k, v in os.environ.items() if not k.startswith("AWS_")}, **variables,
               "HOME": str(wio.home)}
    done = aws("s3", "cp", str(src), f"s3://{bucket}/t.txt", env=aws_env)
    assert done.returncode == 0, done.stderr
    without_ca = {k: v for k, v in aws_env.items() if k != "AWS_CA_BUNDLE"}
    refused = aws("s3", "ls", f"s3://{bucket}/", env=without_ca)
    assert refused.returncode != 0 and "certificate" in refused.stderr.lower()
