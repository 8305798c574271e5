"""The hostile-input catalogue (tools/hostile.py) against the shared stack's proxy.

Every case gets a clear 4xx (S3 XML where the proxy answers), nothing smuggled is ever answered,
and the proxy answers its health check after each case.
"""
from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from tests.conftest import make_person, unique
from tools.hostile import CASES, Target, healthy, run_case, send_raw

KNOWN_BUGS: dict[str, str] = {}  # case name -> exact bug, while one is open (xfail strict)


@pytest.fixture(scope="module")
def target(stack):
    someone = make_person(stack, "hostile")
    bucket = unique("hostile")
    someone.api.call("POST", "/workspaces", {"name": bucket})
    url = urlsplit(stack.s3_url)
    return Target(url.hostname, url.port, someone.key["access_key_id"], someone.key["secret_access_key"], bucket)


@pytest.mark.parametrize("case", [
    pytest.param(c, id=c.name, marks=[pytest.mark.xfail(strict=True, reason=KNOWN_BUGS[c.name])]
                 if c.name in KNOWN_BUGS else []) for c in CASES])
def test_hostile_input_is_refused_and_the_proxy_stays_up(target, case):
    outcome = run_case(target, case)
    assert outcome.healthy, f"{case.name}: the proxy stopped answering"
    assert outcome.ok, f"{case.name}: {outcome.detail}"


def test_delete_objects_traversal_key_is_refused_per_key(target):
    from tools.hostile import _signed
    body = b"<Delete><Object><Key>../../x</Key></Object></Delete>"
    status, _, answer = send_raw(target, _signed("POST", "/{b}?delete", body=body)(target))[0]
    assert status == 200 and b"<Error>" in answer and b"<Deleted>" not in answer


# Regression (fixed in e1b76c7): prefix=a/&prefix= was authorized on "a/" but the node, given the sorted
# values, listed the whole workspace to a reader whose share covered only a/.
@pytest.mark.parametrize("query", [
    "list-type=2&prefix=a%2F&prefix=b%2F",
    "prefix=a%2F&prefix=b%2F",
    "list-type=2&prefix=a%2F&prefix=",
    "prefix=a%2F&prefix=",
    "list-type=2&prefix=a%2F&prefix=%20",
    "list-type=2&prefix=&prefix=a%2F",
])
def test_duplicate_prefix_never_lists_outside_the_grant(stack, query):
    owner = make_person(stack, "dupowner")
    reader = make_person(stack, "dupreader")
    ws = unique("dupws")
    owner.api.call("POST", "/workspaces", {"name": ws})
    owner.s3.put_object(Bucket=ws, Key="a/visible", Body=b"a")
    owner.s3.put_object(Bucket=ws, Key="b/secret", Body=b"b")
    owner.s3.put_object(Bucket=ws, Key=" secret", Body=b"b")
    owner.api.call("POST", f"/workspaces/{ws}/shares", {"user": reader.name, "permission": "read", "prefix": "a/"})
    url = urlsplit(stack.s3_url)
    t = Target(url.hostname, url.port, reader.key["access_key_id"], reader.key["secret_access_key"], ws)
    from tools.hostile import _signed
    answers = send_raw(t, _signed("GET", "/{b}?" + query)(t))
    assert answers and b"secret" not in answers[0][2], answers[0][2][:600]
    assert healthy(t)
