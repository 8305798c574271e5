"""Every name validator accepts exactly its alphabet, whole-string (issue 17: ``re.match`` with ``$`` let
``admin\\n`` through). A property test over all of them, the CLI's profile/section names included."""
from __future__ import annotations

import string

import click
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policy import names
from wio.commands.tools import _check_section_name
from wio.config import ConfigError, check_profile_name


def _cli_check(check, error):
    def validate(name: str) -> str | None:
        try:
            check(name)
        except error as exc:
            return str(exc)
        return None
    return validate


VALIDATORS = {
    **{name: getattr(names, name) for name in names.__all__ if name.endswith("_error")},
    "profile": _cli_check(check_profile_name, ConfigError),
    "section": _cli_check(lambda n: _check_section_name(n, "section"), click.BadParameter),
}
VALIDATORS["infra_name_error"] = lambda n, check=VALIDATORS["infra_name_error"]: check(n, "node")
ALPHABET = frozenset(string.ascii_letters + string.digits + "._-")


@pytest.mark.parametrize("name", sorted(VALIDATORS))
@settings(max_examples=300, deadline=None)
@given(text=st.text(alphabet=st.sampled_from("abc019._-Z\n\r\t \x00/é\u212a"), min_size=0, max_size=70)
       | st.text(max_size=70))
def test_validators_accept_only_their_alphabet_whole_string(name, text):
    validate = VALIDATORS[name]
    if validate(text) is None:
        assert set(text) <= ALPHABET, repr(text)
        assert text[:1].isalnum() and text.isascii()
    for tail in ("\n", "\r\n", " ", "\x00", "/"):
        assert validate(text + tail) is not None, repr(text + tail)


@pytest.mark.parametrize("name", sorted(VALIDATORS))
def test_validators_refuse_a_trailing_newline_on_a_valid_name(name):
    validate = VALIDATORS[name]
    assert validate("admin-ws") is None
    assert validate("admin-ws\n") is not None
