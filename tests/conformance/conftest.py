"""The conformance sweep (issue 4): the SAME S3 cases against (a) the wio proxy and (b) the backend node.

Every test takes the ``target`` fixture, parametrized ``direct`` (boto3 straight at the SeaweedFS node
with the node's own credentials, on a bucket created for the test) and ``proxy`` (boto3 at wio with a
user's key, on a fresh workspace). Tests assert what AWS S3 does. A side that deviates is marked with
``@differs(direct=..., proxy=...)``, which becomes ``xfail(strict=True)`` with that reason on that side
only, so a fix turns the run red until the marker is removed.

Each test records what it saw with ``observe("...")``. With ``WIO_CONFORMANCE_REPORT=path.json`` the
run writes {case: {target: {outcome, observed, reason}}}; ``python -m tests.conformance.report`` turns
that into the table in docs/conformance.md.
"""
from __future__ import annotations

import json
import os
import secrets
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.conftest import make_person, unique

TARGETS = ("direct", "proxy")


def _config(**extra) -> Config:
    return Config(s3={"addressing_style": "path"}, signature_version=extra.pop("signature_version", "s3v4"),
                  retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=5, read_timeout=30, **extra)


@dataclass
class Target:
    kind: str                      # direct | proxy
    endpoint: str
    access_key: str
    secret_key: str
    s3: object                     # boto3 client
    _make_bucket: object = field(repr=False)
    _physical: object = field(repr=False, default=None)   # bucket -> (node client, node bucket, key prefix)

    def bucket(self) -> str:
        return self._make_bucket()

    def seed(self, bucket: str, keys, body: bytes = b"") -> None:
        """Create many objects fast, straight on the node (under the workspace's physical prefix for the proxy).
        Only for cases that test reading (listing pagination), not writing."""
        node, node_bucket, prefix = self._physical(bucket)
        with ThreadPoolExecutor(32) as pool:
            list(pool.map(lambda k: node.put_object(Bucket=node_bucket, Key=prefix + k, Body=body), keys))

    def client(self, **config):
        """Another boto3 client on the same endpoint and credentials (other signing settings)."""
        return boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id=self.access_key,
                            aws_secret_access_key=self.secret_key, region_name="us-east-1", config=_config(**config))


def _direct_target(s3_node) -> Target:
    s3 = _node_client(s3_node)

    def make() -> str:
        name = f"conf-{secrets.token_hex(6)}"
        s3.create_bucket(Bucket=name)
        return name
    return Target("direct", s3_node.endpoint, s3_node.access_key, s3_node.secret_key, s3, make,
                  lambda bucket: (s3, bucket, ""))


def _node_client(s3_node):
    return boto3.client("s3", endpoint_url=s3_node.endpoint, aws_access_key_id=s3_node.access_key,
                        aws_secret_access_key=s3_node.secret_key, region_name=s3_node.region or "us-east-1",
                        config=_config(max_pool_connections=32))


def _proxy_target(stack, s3_node, admin_api) -> Target:
    person = make_person(stack, "conf")
    node = _node_client(s3_node)

    def make() -> str:
        name = unique("conf-ws")
        person.api.call("POST", "/workspaces", {"name": name})
        return name

    def physical(bucket: str):
        # docs/design.md layout of a managed root: {root prefix}/{owner}/{workspace}/ in the root's bucket.
        ws = person.api.call("GET", f"/workspaces/{bucket}")
        roots = admin_api.call("GET", "/roots")
        roots = roots.get("roots", roots) if isinstance(roots, dict) else roots
        root = next(r for r in roots if r["name"] == ws["root"])
        base = (root.get("prefix") or "").strip("/")
        return node, root["bucket"], f"{base + '/' if base else ''}{person.name}/{bucket}/"
    return Target("proxy", stack.s3_url, person.key["access_key_id"], person.key["secret_access_key"],
                  person.s3, make, physical)


@pytest.fixture(scope="session")
def _targets(request):
    return {}


@pytest.fixture(params=TARGETS)
def target(request, _targets) -> Target:
    kind = request.param
    if kind not in _targets:
        if kind == "direct":
            _targets[kind] = _direct_target(request.getfixturevalue("s3_node"))
        else:
            _targets[kind] = _proxy_target(request.getfixturevalue("stack"), request.getfixturevalue("s3_node"),
                                           request.getfixturevalue("admin_api"))
    return _targets[kind]


@pytest.fixture
def bucket(target) -> str:
    return target.bucket()


@pytest.fixture
def observe(request):
    """Record what this case saw (a short string), for the direct-vs-proxy table."""
    def record(value) -> None:
        request.node.user_properties.append(("observed", str(value)))
    return record


def outcome(fn, *args, **kwargs) -> str:
    """Call a boto3 operation; '200' style success or '<status> <Code>' for an S3 error."""
    try:
        resp = fn(*args, **kwargs)
    except ClientError as exc:
        err = exc.response.get("Error", {})
        return f"{exc.response['ResponseMetadata'].get('HTTPStatusCode')} {err.get('Code', '?')}".strip()
    body = resp.get("Body")
    if body is not None:
        body.read()
    return str(resp["ResponseMetadata"]["HTTPStatusCode"])


def pytest_configure(config):
    config.addinivalue_line("markers", "differs(direct=None, proxy=None): expected deviation from AWS S3 on "
                                       "one side; becomes xfail(strict=True) with the reason on that side")


def pytest_collection_modifyitems(config, items):
    for item in items:
        marker = item.get_closest_marker("differs")
        callspec = getattr(item, "callspec", None)
        if marker is None or callspec is None or "target" not in callspec.params:
            continue
        kind = callspec.params["target"]
        reason = marker.kwargs.get(kind)
        if reason:
            item.add_marker(pytest.mark.xfail(strict=True, reason=f"{kind}: {reason}"))


_RESULTS: dict[str, dict[str, dict]] = {}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome_ = yield
    rep = outcome_.get_result()
    callspec = getattr(item, "callspec", None)
    if callspec is None or "target" not in callspec.params or "conformance" not in str(item.fspath):
        return
    if rep.when == "call" or (rep.when == "setup" and not rep.passed):
        kind = callspec.params["target"]
        rest = [part for part in callspec.id.split("-") if part != kind]
        case = item.originalname + (f"[{'-'.join(rest)}]" if rest else "")
        status = "xfail" if hasattr(rep, "wasxfail") and rep.skipped else rep.outcome
        if hasattr(rep, "wasxfail") and rep.passed:
            status = "XPASS"
        marker = item.get_closest_marker("differs")
        _RESULTS.setdefault(case, {})[kind] = {
            "outcome": status,
            "observed": "; ".join(v for k, v in item.user_properties if k == "observed"),
            "reason": marker.kwargs.get(kind) if marker else None,
            "doc": (item.function.__doc__ or "").strip().splitlines()[0] if item.function.__doc__ else "",
        }


def pytest_sessionfinish(session, exitstatus):
    path = os.environ.get("WIO_CONFORMANCE_REPORT")
    if path and _RESULTS:
        with open(path, "w") as fh:
            json.dump(_RESULTS, fh, indent=1, sort_keys=True, ensure_ascii=False)
