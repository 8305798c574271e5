"""policy.scripts.lua: the Lua scripts as Redis runs them, shared openings put in place of their include line."""
from __future__ import annotations

from pathlib import Path

import pytest

import policy
from policy import scripts
from policy.scripts import lua

HERE = Path(policy.__file__).parent


@pytest.mark.parametrize("name", ["authorize.lua", "list_buckets.lua"])
def test_the_authorization_scripts_open_with_the_caller_lookup(name):
    raw = (HERE / name).read_text()
    prelude = (HERE / "caller_lookup.lua").read_text()
    source = lua(name)
    head, include, tail = raw.partition("--@include caller_lookup.lua\n")
    assert include, f"{name} no longer includes caller_lookup.lua"
    assert source == head + prelude + tail
    # Redis reads the flags from the first line only: the shebang must stay there
    lines = source.splitlines()
    assert lines[0] == "#!lua" and not any(line.startswith("#!") for line in lines[1:])
    assert not any(line.startswith("--@include") for line in lines)


@pytest.mark.parametrize("name", sorted(p.name for p in HERE.glob("*.lua")))
def test_every_script_loads_complete(name):
    assert not any(line.startswith("--@include") for line in lua(name).splitlines())


def test_includes_nest_and_keep_lines_apart(tmp_path, monkeypatch):
    monkeypatch.setattr(scripts, "_HERE", tmp_path)
    (tmp_path / "main.lua").write_text("#!lua\n--@include a.lua\nreturn x\n")
    (tmp_path / "a.lua").write_text("local x = 1\n--@include b.lua\n")
    (tmp_path / "b.lua").write_text("x = x + 1")  # no final newline: the next line must not join it
    assert lua("main.lua") == "#!lua\nlocal x = 1\nx = x + 1\nreturn x\n"


def test_a_missing_include_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setattr(scripts, "_HERE", tmp_path)
    (tmp_path / "main.lua").write_text("--@include gone.lua\n")
    with pytest.raises(FileNotFoundError):
        lua("main.lua")
