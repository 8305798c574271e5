"""The CLI's pure parts: parsing what people type, the config file, INI editing (no server needed)."""
from __future__ import annotations

import json
import stat
from datetime import datetime, timezone

import click
import pytest

from wio.commands.core import split_ref
from wio.commands.output import human_bytes, parse_ago, parse_duration, parse_expiry, parse_size
from wio.commands.tools import upsert_ini_section
from wio.config import ConfigError, Profile, UserConfig, default_s3_endpoint, normalize_url

NOW = datetime(2030, 1, 1, 12, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize("text, expected", [
    ("1048576", 1 << 20), ("500M", 500 << 20), ("10G", 10 << 30), ("10GiB", 10 << 30), ("10gib", 10 << 30),
    ("2TB", 2 * 10**12), ("1.5KiB", 1536), ("1 KB", 1000), ("0", 0)])
def test_parse_size(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "ten", "-5", "1.3B", "5X", "G"])
def test_parse_size_rejects(text):
    with pytest.raises(click.BadParameter):
        parse_size(text)


@pytest.mark.parametrize("text, expected", [("3600", 3600), ("90s", 90), ("15m", 900), ("12h", 43200),
                                            ("7d", 604800), ("2w", 1209600), ("1H", 3600)])
def test_parse_duration(text, expected):
    assert parse_duration(text) == expected


def test_parse_expiry_and_ago():
    assert parse_expiry("7d", NOW) == "2030-01-08T12:00:00Z"
    assert parse_expiry("2031-02-03T04:05Z", NOW) == "2031-02-03T04:05:00Z"
    assert parse_expiry("2031-02-03T06:05+02:00", NOW) == "2031-02-03T04:05:00Z"
    assert parse_expiry("2031-02-03", NOW) == "2031-02-03T00:00:00Z"  # naive means UTC
    assert parse_ago("1h", NOW) == "2030-01-01T11:00:00Z"
    with pytest.raises(click.BadParameter):
        parse_expiry("next tuesday", NOW)


def test_human_bytes():
    assert [human_bytes(n) for n in (None, 0, 1023, 1024, 1536, 5 << 30)] == \
        [None, "0 B", "1023 B", "1.0 KiB", "1.5 KiB", "5.0 GiB"]


def test_split_ref():
    assert split_ref("data") == (None, "data")
    assert split_ref("alice/data") == ("alice", "data")
    for bad in ("/data", "alice/", "a/b/c"):
        with pytest.raises(click.BadParameter):
            split_ref(bad)


def test_urls():
    assert normalize_url("127.0.0.1:8080") == "http://127.0.0.1:8080"
    assert normalize_url("https://wio.example.org/") == "https://wio.example.org"
    assert default_s3_endpoint("https://wio.example.org") == "https://wio.example.org:9000"
    assert default_s3_endpoint("http://[::1]:8080") == "http://[::1]:9000"
    for bad in ("ftp://x", "http://", "http://host:port"):
        with pytest.raises(ConfigError):
            normalize_url(bad)


def test_config_file_is_private_and_round_trips(tmp_path):
    config = UserConfig.load(tmp_path / "wio")
    assert config.profiles == {}
    config.put(Profile("lab", api="http://a:1", token="secret-token", token_expires_at=1.0))
    config.current = "lab"
    config.save()
    path = tmp_path / "wio" / "config.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert list(path.parent.iterdir()) == [path]  # no temporary file left behind
    again = UserConfig.load(tmp_path / "wio")
    assert again.current == "lab" and again.profile().token == "secret-token"
    assert again.profile().token_expired() and again.profile().token_for("http://other:1") is None
    assert again.profile("other").token is None
    path.write_text("{not json")
    with pytest.raises(ConfigError, match="cannot read"):
        UserConfig.load(tmp_path / "wio")
    with pytest.raises(ConfigError, match="profile names"):
        again.profile("../etc")


def test_upsert_ini_section_keeps_everything_else(tmp_path):
    path = tmp_path / "config"
    path.write_text("# my settings\n[default]\nregion = eu-west-1\n\n[profile old]\nregion = x\n")
    assert upsert_ini_section(path, "profile wio", ["region = us-east-1", "s3 =", "    addressing_style = path"],
                              force=False) is False
    with pytest.raises(click.ClickException, match="--force"):
        upsert_ini_section(path, "profile wio", ["region = a"], force=False)
    assert upsert_ini_section(path, "default", ["region = us-west-2"], force=True) is True
    text = path.read_text()
    assert text == ("# my settings\n[default]\nregion = us-west-2\n\n[profile old]\nregion = x\n\n"
                    "[profile wio]\nregion = us-east-1\ns3 =\n    addressing_style = path\n")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    json.dumps(text)  # plain text, nothing odd
