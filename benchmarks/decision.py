"""The authorization decision alone: parse + SigV4 verify + policy, no I/O, on one core.

It runs the proxy's own functions in the order ``proxy.app.authorize`` calls them, over requests
that botocore signed (the headers boto3 sends, as aiohttp hands them to the proxy):

    parse_address -> parse_query -> classify -> parse_request_auth -> verify_signature
    -> effective_grants (the share lists as Redis returns them) -> decide_object

What is left out is what needs I/O: the Redis round trip and the body. The key's secret is the
plain string the proxy has after its (cached) decryption. One process, one thread: the figure is
decisions per second per core.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import datetime, timezone

from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from multidict import CIMultiDict, CIMultiDictProxy

from policy.decide import Decision, WorkspaceView, decide_object, effective_grants
from proxy.addressing import parse_address
from proxy.operations import classify
from signing import parse_request_auth, verify_signature
from signing.canonical import parse_query

__all__ = ["DecisionCase", "decision_case", "decide_once", "measure_decisions", "measure_stages"]

ACCESS_KEY = "WIOBENCHDECISION0001"
SECRET_KEY = "bench/decision/secret/key/0123456789abcdefgh"
REGION = "us-east-1"
HOST = "127.0.0.1:9000"


@dataclass(frozen=True)
class DecisionCase:
    kind: str
    method: str
    raw_path: str            # with the query, as request.raw_path
    headers: CIMultiDictProxy
    user: str
    groups: list[str]
    ws: WorkspaceView
    share_lists: list        # as authorize.lua returns them: one JSON list (or None) per u:/g: field


def decision_case(kind: str = "header") -> DecisionCase:
    """A GetObject by a user who holds a prefix share directly and a write share through a group.

    ``kind`` is ``header`` (Authorization header, as boto3 sends it) or ``presigned`` (a URL from
    botocore's presigner).
    """
    url = f"http://{HOST}/lab-results/data/2024/run-000123/file-000042.bin"
    creds = Credentials(ACCESS_KEY, SECRET_KEY)
    request = AWSRequest(method="GET", url=url, headers={
        "User-Agent": "Boto3/1.34.0 md/Botocore#1.34.0 ua/2.0 os/linux#6.1.0 md/arch#x86_64 lang/python#3.11.7 "
                      "md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.34.0",
        "amz-sdk-invocation-id": "2b7f2f9e-7a43-4c1e-9a55-2f4d7b1c9e10",
        "amz-sdk-request": "attempt=1",
    })
    if kind == "header":
        S3SigV4Auth(creds, "s3", REGION).add_auth(request)
    elif kind == "presigned":
        S3SigV4QueryAuth(creds, "s3", REGION, expires=3600).add_auth(request)
    else:
        raise ValueError(kind)
    prepared = request.prepare()
    raw = prepared.url.split(HOST, 1)[1]
    headers = CIMultiDict([("Host", HOST), *[(k, v) for k, v in prepared.headers.items()],
                           ("Accept-Encoding", "identity"), ("Connection", "keep-alive")])
    ws = WorkspaceView(name="lab-results", node="local", bucket="wio-private", prefix="carol/lab-results/",
                       owner="carol", public=False, root="private")
    share_lists = [
        json.dumps([["read", "data/", None, 12], ["read", "reports/", 4102444800, 31]]),   # u:alice
        json.dumps([["write", "", None, 14]]),                                            # g:eng
        None,                                                                               # g:lab
    ]
    return DecisionCase(kind, "GET", raw, CIMultiDictProxy(headers), "alice", ["eng", "lab"], ws, share_lists)


def decide_once(case: DecisionCase) -> Decision:
    """One decision, step for step as ``proxy.app.authorize`` takes it (without the Redis call)."""
    raw_path, _, raw_query = case.raw_path.partition("?")
    address = parse_address(case.raw_path, case.headers.get("Host"), None)
    params = parse_query(raw_query)
    query = {k: v for k, v in reversed(params)}
    op = classify(case.method, address.bucket, address.key, query, case.headers)
    headers = list(case.headers.items())
    now = datetime.now(timezone.utc)
    auth = parse_request_auth(case.method, raw_path, raw_query, headers, now=now, region=REGION)
    verify_signature(auth, SECRET_KEY, case.method, raw_path, raw_query, headers)
    grants = effective_grants(user=case.user, groups=case.groups, ws=case.ws, share_lists=case.share_lists,
                              now=now.timestamp(), scope=None)
    return decide_object(grants, op.permission, address.key or "")


def _rate(fn, seconds: float) -> tuple[int, float]:
    """Call ``fn`` in batches until ``seconds`` passed; (calls, elapsed)."""
    clock = time.perf_counter
    count, batch = 0, 64
    started = clock()
    while True:
        for _ in range(batch):
            fn()
        count += batch
        elapsed = clock() - started
        if elapsed >= seconds:
            return count, elapsed


def measure_decisions(seconds: float = 1.0, kind: str = "header") -> dict:
    """Decisions per second on this core for ``kind`` requests; checks each decision allows."""
    case = decision_case(kind)
    first = decide_once(case)
    if not first.allowed:
        raise AssertionError(f"the benchmark request should be allowed: {first.reason}")
    count, elapsed = _rate(lambda: decide_once(case), seconds)
    return {"kind": kind, "decisions": count, "seconds": round(elapsed, 3),
            "decisions_per_second": round(count / elapsed, 1), "us_per_decision": round(elapsed / count * 1e6, 2),
            "allowed_by": first.reason}


def measure_stages(seconds: float = 0.3, kind: str = "header") -> dict[str, float]:
    """Microseconds per call of each step, measured apart (they add up to about the whole)."""
    case = decision_case(kind)
    raw_path, _, raw_query = case.raw_path.partition("?")
    headers = list(case.headers.items())
    now = datetime.now(timezone.utc)
    address = parse_address(case.raw_path, case.headers.get("Host"), None)
    params = parse_query(raw_query)
    query = {k: v for k, v in reversed(params)}
    auth = parse_request_auth(case.method, raw_path, raw_query, headers, now=now, region=REGION)
    grants = effective_grants(user=case.user, groups=case.groups, ws=case.ws, share_lists=case.share_lists,
                              now=now.timestamp(), scope=None)
    stages = {
        "parse_address": lambda: parse_address(case.raw_path, case.headers.get("Host"), None),
        "parse_query": lambda: parse_query(raw_query),
        "classify": lambda: classify(case.method, address.bucket, address.key, query, case.headers),
        "headers_list": lambda: list(case.headers.items()),
        "now": lambda: datetime.now(timezone.utc),
        "parse_request_auth": lambda: parse_request_auth(case.method, raw_path, raw_query, headers, now=now,
                                                         region=REGION),
        "verify_signature": lambda: verify_signature(auth, SECRET_KEY, case.method, raw_path, raw_query, headers),
        "effective_grants": lambda: effective_grants(user=case.user, groups=case.groups, ws=case.ws,
                                                     share_lists=case.share_lists, now=now.timestamp(), scope=None),
        "decide_object": lambda: decide_object(grants, "read", address.key),
    }
    out = {}
    for name, fn in stages.items():
        count, elapsed = _rate(fn, seconds)
        out[name] = round(elapsed / count * 1e6, 2)
    return out


def main(argv: list[str] | None = None) -> None:
    """Timed rates, or with ``--loops N`` just N decisions untimed: run that under
    ``valgrind --tool=callgrind`` at two commits (and N=0 for the start-up) to compare the decision's
    instruction count, which no other load on the machine changes."""
    import argparse
    parser = argparse.ArgumentParser(prog="python -m benchmarks.decision")
    parser.add_argument("--loops", type=int, default=None)
    parser.add_argument("--kind", choices=("header", "presigned"), default="header")
    args = parser.parse_args(argv)
    if args.loops is not None:
        case = decision_case(args.kind)
        for _ in range(args.loops):
            decide_once(case)
        return
    for kind in ("header", "presigned"):
        print(measure_decisions(1.0, kind))
        print(measure_stages(0.2, kind))


if __name__ == "__main__":
    main()
