"""The CLI's user configuration: named profiles (one per wio server) and their login tokens.

Everything lives in one JSON file, ``$XDG_CONFIG_HOME/wio/config.json`` (``~/.config/wio`` when
unset; the platform's usual place elsewhere, as ``click.get_app_dir`` decides), shaped like::

    {"current": "default",
     "profiles": {"default": {"api": "http://127.0.0.1:8080", "s3": "http://127.0.0.1:9000",
                              "username": "alice", "token": "<jwt>", "token_expires_at": 1767225600}}}

The file holds bearer tokens, so it is created 0600 inside a 0700 directory and replaced
atomically (write a sibling, then ``os.replace``): a crash never leaves half a file, and the
token is never readable by other users, not even for the instant between create and chmod.
"""
from __future__ import annotations

import json
import os
import re
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import click

__all__ = ["Profile", "UserConfig", "ConfigError", "default_config_dir", "DEFAULT_API", "DEFAULT_PROFILE",
           "default_s3_endpoint", "normalize_url", "write_private_file"]

DEFAULT_API = "http://127.0.0.1:8080"  # what `wio dev` serves by default
DEFAULT_PROFILE = "default"
_PROFILE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")


class ConfigError(Exception):
    """The config file or a value for it is unusable; the message says which and why."""


def default_config_dir() -> Path:
    return Path(click.get_app_dir("wio"))


def normalize_url(url: str, what: str = "URL") -> str:
    """``host:port`` or ``http(s)://host[:port][/path]`` -> a URL without a trailing slash."""
    url = url.strip()
    if "://" not in url:
        url = "http://" + url
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{what} must look like http(s)://host[:port], got {url!r}")
    try:
        parts.port  # noqa: B018 - raises ValueError for a malformed port
    except ValueError:
        raise ConfigError(f"{what} has a malformed port: {url!r}") from None
    return urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", ""))


def default_s3_endpoint(api_url: str) -> str:
    """The proxy's usual place: the API's host on port 9000 (``wio dev``'s layout)."""
    parts = urlsplit(api_url)
    host = parts.hostname or "127.0.0.1"
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    return f"{parts.scheme}://{host}:9000"


@dataclass
class Profile:
    name: str
    api: str | None = None
    s3: str | None = None
    username: str | None = None
    token: str | None = None
    token_expires_at: float | None = None  # unix time
    ca_bundle: str | None = None  # the CA certificate the server's /info handed out for its S3 endpoint

    def token_for(self, api: str) -> str | None:
        """The stored token, if it was issued by ``api`` (a token is useless against another server)."""
        if self.token and self.api == api:
            return self.token
        return None

    def token_expired(self, now: float | None = None) -> bool:
        return self.token_expires_at is not None and (now or time.time()) >= self.token_expires_at

    def to_json(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k != "name" and v is not None}


_PROFILE_FIELDS = ("api", "s3", "username", "token", "token_expires_at", "ca_bundle")


@dataclass
class UserConfig:
    path: Path
    current: str = DEFAULT_PROFILE
    profiles: dict[str, Profile] = field(default_factory=dict)

    @classmethod
    def load(cls, config_dir: Path | None = None) -> "UserConfig":
        path = (config_dir or default_config_dir()) / "config.json"
        try:
            raw = json.loads(path.read_text())
        except FileNotFoundError:
            return cls(path)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read {path}: {exc}") from None
        if not isinstance(raw, dict) or not isinstance(raw.get("profiles", {}), dict):
            raise ConfigError(f"{path} is not a wio config file (expected a JSON object with 'profiles')")
        profiles = {}
        for name, data in raw.get("profiles", {}).items():
            if isinstance(data, dict):
                known = {k: data[k] for k in _PROFILE_FIELDS if k in data}
                profiles[name] = Profile(name, **known)
        return cls(path, str(raw.get("current") or DEFAULT_PROFILE), profiles)

    def profile(self, name: str | None = None) -> Profile:
        """The named (or current) profile; a fresh, unsaved one when it doesn't exist yet."""
        name = name or self.current
        check_profile_name(name)
        return self.profiles.get(name) or Profile(name)

    def put(self, profile: Profile) -> None:
        check_profile_name(profile.name)
        self.profiles[profile.name] = profile

    def remove(self, name: str) -> None:
        if name not in self.profiles:
            raise ConfigError(f"no profile named '{name}'")
        del self.profiles[name]
        if self.current == name:
            self.current = DEFAULT_PROFILE

    def save(self) -> None:
        data = {"current": self.current, "profiles": {n: p.to_json() for n, p in sorted(self.profiles.items())}}
        write_private_file(self.path, json.dumps(data, indent=2) + "\n")


def write_private_file(path: Path, text: str) -> None:
    """Replace ``path`` atomically with ``text``, readable by its owner only (0600; new directories 0700)."""
    directory = path.parent
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=directory)  # mkstemp creates it 0600
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def check_profile_name(name: str) -> None:
    if not _PROFILE_RE.fullmatch(name):
        raise ConfigError(f"profile names are letters, digits, '.', '_' and '-' (got {name!r})")
