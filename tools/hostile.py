"""The hostile-input catalogue: malformed HTTP and S3 requests sent over raw sockets to a wio proxy.

Every case must get a clear refusal (a 4xx; an S3 XML error document wherever the proxy itself
answers, i.e. once aiohttp has parsed the request) and must never get a 2xx; the proxy must still
answer ``GET /_wio/health`` after each case. Smuggling cases also check that no second, smuggled
request is ever answered on the same connection.

    python -m tools.hostile --endpoint http://127.0.0.1:9000 \\
        --access-key AKID --secret-key SECRET --bucket my-workspace

A signing key and a workspace the key can write make the authenticated cases (bad XML, huge
DeleteObjects lists, duplicate parameters, Host mismatches) meaningful; without them those cases
are skipped. Exit status 0 when every case held, 1 otherwise. ``run_catalogue`` is what the CI test
(tests/reliability/test_hostile.py) calls.
"""
from __future__ import annotations

import argparse
import hashlib
import socket
import sys
import time
from dataclasses import dataclass
from typing import Callable
from urllib.parse import urlsplit

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

__all__ = ["Target", "Case", "Outcome", "CASES", "run_catalogue", "send_raw", "main"]


@dataclass
class Target:
    host: str
    port: int
    access_key: str | None = None
    secret_key: str | None = None
    bucket: str | None = None
    region: str = "us-east-1"

    @property
    def authority(self) -> str:
        return f"{self.host}:{self.port}"

    def sign(self, method: str, target: str, headers: dict[str, str] | None = None, body: bytes = b"",
             *, host: str | None = None) -> list[tuple[str, str]]:
        """SigV4 headers (botocore's signer) for ``method target`` with ``body``; Host included."""
        req = AWSRequest(method=method, url=f"http://{host or self.authority}{target}", data=body,
                         headers=dict(headers or {}))
        req.headers["x-amz-content-sha256"] = hashlib.sha256(body).hexdigest()
        SigV4Auth(Credentials(self.access_key, self.secret_key), "s3", self.region).add_auth(req)
        return [("Host", host or self.authority)] + list(req.headers.items())

    def presign(self, method: str, target: str, expires: int, *, age: float = 0) -> str:
        """A presigned path+query (wio's signer); ``age`` seconds in the past."""
        from datetime import datetime, timedelta, timezone

        from signing import presign_url
        now = datetime.now(timezone.utc) - timedelta(seconds=age)
        url = presign_url(method, f"http://{self.authority}{target}", access_key=self.access_key,
                          secret_key=self.secret_key, region=self.region, now=now, expires=expires)
        return url[len(f"http://{self.authority}"):]


@dataclass
class Outcome:
    case: str
    ok: bool
    status: int | None
    detail: str
    healthy: bool = True


@dataclass
class Case:
    name: str
    build: Callable[[Target], bytes]
    statuses: tuple[int, ...] = (400,)        # acceptable statuses; None (closed without answer) never ok
    s3_code: str | None = None                # the S3 error code expected, when the proxy answers
    needs_key: bool = False
    smuggle: bool = False                     # read everything; exactly one response allowed
    closed_ok: bool = False                   # the server may just close the connection


def send_raw(target: Target, data: bytes, *, timeout: float = 5.0, read_all: bool = False) -> list[tuple[int, dict, bytes]]:
    """Send bytes, read answer(s); returns [(status, headers, body)]; [] when closed without an answer."""
    with socket.create_connection((target.host, target.port), timeout=timeout) as sock:
        try:
            sock.sendall(data)
        except OSError:
            pass
        buf = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            sock.settimeout(max(0.05, min(1.0 if read_all else timeout, deadline - time.monotonic())))
            try:
                chunk = sock.recv(65536)
            except socket.timeout:
                if read_all:
                    break
                continue
            except OSError:
                break
            if not chunk:
                break
            buf += chunk
            if not read_all and _complete(buf):
                break
    return _parse_responses(buf)


def _complete(buf: bytes) -> bool:
    head, sep, rest = buf.partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(rest) >= int(value.strip() or 0)
    return False


def _parse_responses(buf: bytes) -> list[tuple[int, dict, bytes]]:
    out = []
    while buf.startswith(b"HTTP/"):
        head, sep, rest = buf.partition(b"\r\n\r\n")
        if not sep:
            break
        lines = head.split(b"\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            headers[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")
        length = int(headers.get("content-length", "0") or 0)
        out.append((status, headers, rest[:length]))
        buf = rest[length:]
    return out


def healthy(target: Target, timeout: float = 5.0) -> bool:
    try:
        answers = send_raw(target, f"GET /_wio/health HTTP/1.1\r\nHost: {target.authority}\r\n"
                                   f"Connection: close\r\n\r\n".encode(), timeout=timeout)
    except OSError:
        return False
    return bool(answers) and answers[0][0] == 200


def _raw(lines: list[str], body: bytes = b"") -> bytes:
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def _req(method: str, target: str, headers: list[tuple[str, str]], body: bytes = b"", close: bool = True) -> bytes:
    lines = [f"{method} {target} HTTP/1.1"] + [f"{k}: {v}" for k, v in headers]
    if close:
        lines.append("Connection: close")
    if body and not any(k.lower() in ("content-length", "transfer-encoding") for k, _ in headers):
        lines.append(f"Content-Length: {len(body)}")
    return _raw(lines, body)


def _plain(method: str, path: str, extra: list[tuple[str, str]] | None = None, body: bytes = b""):
    return lambda t: _req(method, path, [("Host", t.authority)] + (extra or []), body)


def _signed(method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None,
            mutate: Callable[[list[tuple[str, str]]], list[tuple[str, str]]] | None = None, host: str | None = None,
            send_path: str | None = None):
    def build(t: Target) -> bytes:
        p = path.replace("{b}", t.bucket or "b")
        hdrs = {k: v.replace("{b}", t.bucket or "b") for k, v in (headers or {}).items()}
        signed = t.sign(method, p, hdrs, body, host=host)
        if mutate:
            signed = mutate(signed)
        return _req(method, (send_path or p).replace("{b}", t.bucket or "b"), signed, body)
    return build


def _delete_xml(n: int) -> bytes:
    keys = "".join(f"<Object><Key>k{i}</Key></Object>" for i in range(n))
    return f"<Delete>{keys}</Delete>".encode()


_FAKE_AUTH = ("AWS4-HMAC-SHA256 Credential=AKIDNOTAKEY000000000/20260101/us-east-1/s3/aws4_request, "
              "SignedHeaders=host;x-amz-date, Signature=" + "0" * 64)
_BILLION = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>'
            b"<Delete><Object><Key>&lol2;</Key></Object></Delete>")


def _with(signed, name, value):
    return signed + [(name, value)]


def _replace(signed, name, value):
    return [(k, value if k.lower() == name.lower() else v) for k, v in signed]


CASES: list[Case] = [
    # --- HTTP framing (aiohttp's parser answers; a plain 400 is the clear refusal) ---
    Case("garbage request line", lambda t: b"GARBAGE\r\n\r\n", closed_ok=True),
    Case("HTTP/2 preface on HTTP/1 port", lambda t: b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", (400, 505), closed_ok=True),
    Case("unknown HTTP version", lambda t: _raw(["GET / HTTP/9.9", f"Host: {t.authority}"]), (400, 505),
         closed_ok=True),
    Case("header line without colon", lambda t: _raw(["GET / HTTP/1.1", f"Host: {t.authority}", "NoColonHere"]),
         closed_ok=True),
    Case("NUL byte in a header value", lambda t: _raw(["GET / HTTP/1.1", f"Host: {t.authority}", "X-A: a\x00b"]),
         closed_ok=True),
    Case("oversized header value (64 KiB)", _plain("GET", "/", [("X-Big", "a" * 65536)]), (400, 431),
         closed_ok=True),
    Case("too many headers (2000)", _plain("GET", "/", [(f"X-H{i}", "v") for i in range(2000)]), (400, 431),
         closed_ok=True),
    Case("oversized request target (64 KiB)", _plain("GET", "/b/" + "k" * 65536), (400, 414), closed_ok=True),
    Case("obs-fold header continuation", lambda t: _raw(["GET / HTTP/1.1", f"Host: {t.authority}",
                                                          "X-Folded: a", " continued", "Connection: close"]),
         closed_ok=True),
    Case("space before colon", lambda t: _raw(["GET / HTTP/1.1", f"Host: {t.authority}", "X-A : b",
                                                "Connection: close"]), closed_ok=True),
    Case("negative Content-Length", _plain("PUT", "/b/k", [("Content-Length", "-1")]), closed_ok=True),
    Case("non-numeric Content-Length", _plain("PUT", "/b/k", [("Content-Length", "12abc")]), closed_ok=True),
    Case("invalid chunk size in a chunked body", lambda t: _req("PUT", "/b/k", [
        ("Host", t.authority), ("Transfer-Encoding", "chunked")], b"zz\r\nhello\r\n0\r\n\r\n"), (400, 403),
        closed_ok=True),
    # --- smuggling: must be refused, and the inner request never answered ---
    Case("CL+TE smuggling", lambda t: _req("POST", "/b", [
        ("Host", t.authority), ("Content-Length", "4"), ("Transfer-Encoding", "chunked")],
        f"0\r\n\r\nGET /_wio/health HTTP/1.1\r\nHost: {t.authority}\r\n\r\n".encode(), close=False),
        smuggle=True, closed_ok=True),
    Case("TE+CL smuggling (TE first)", lambda t: _req("POST", "/b", [
        ("Host", t.authority), ("Transfer-Encoding", "chunked"), ("Content-Length", "60")],
        f"0\r\n\r\nGET /_wio/health HTTP/1.1\r\nHost: {t.authority}\r\n\r\n".encode(), close=False),
        smuggle=True, closed_ok=True),
    Case("double Content-Length, different values", lambda t: _req("PUT", "/b/k", [
        ("Host", t.authority), ("Content-Length", "0"), ("Content-Length", "45")],
        f"GET /_wio/health HTTP/1.1\r\nHost: {t.authority}\r\n\r\n".encode(), close=False),
        smuggle=True, closed_ok=True),
    Case("Transfer-Encoding: chunked, chunked", lambda t: _req("PUT", "/b/k", [
        ("Host", t.authority), ("Transfer-Encoding", "chunked, chunked")], b"0\r\n\r\n", close=False),
        (400, 403, 501), smuggle=True, closed_ok=True),
    Case("obfuscated Transfer-Encoding (xchunked)", lambda t: _req("PUT", "/b/k", [
        ("Host", t.authority), ("Transfer-Encoding", "xchunked"), ("Content-Length", "5")], b"0\r\n\r\n",
        close=False), (400, 403, 501), smuggle=True, closed_ok=True),
    Case("Transfer-Encoding with obs-fold", lambda t: _raw([
        "POST /b HTTP/1.1", f"Host: {t.authority}", "Content-Length: 4", "Transfer-Encoding:", " chunked"],
        f"0\r\n\r\nGET /_wio/health HTTP/1.1\r\nHost: {t.authority}\r\n\r\n".encode()), smuggle=True,
        closed_ok=True),
    # --- targets and Host ---
    Case("absolute-form target to another host", _plain("GET", "http://evil.example/b/k"), (400, 403),
         s3_code=None, closed_ok=True),
    # aiohttp's router answers these two (plain 404): they never reach the S3 handler.
    Case("asterisk-form target", _plain("OPTIONS", "*"), (400, 403, 404, 405), closed_ok=True),
    Case("path traversal %2e%2e", _plain("GET", "/b/%2e%2e/other/k"), (400, 403), s3_code=None),
    Case("backslash traversal", _plain("GET", "/b/a%5C..%5Cb"), (400, 403)),
    Case("TRACE method", _plain("TRACE", "/b/k"), (400, 403, 405)),
    Case("CONNECT method", _plain("CONNECT", "evil.example:443"), (400, 403, 404, 405), closed_ok=True),
    Case("missing Host", lambda t: _raw(["GET /b/k HTTP/1.1", "Connection: close"]), (400, 403)),
    # --- Authorization headers (the proxy answers: S3 XML) ---
    Case("anonymous request", _plain("GET", "/b/k"), (403,), s3_code="AccessDenied"),
    Case("Bearer token", _plain("GET", "/b/k", [("Authorization", "Bearer abc")]), (400,),
         s3_code="InvalidRequest"),
    Case("SigV2 header", _plain("GET", "/b/k", [("Authorization", "AWS AKID:c2lnbmF0dXJl")]), (400,),
         s3_code="InvalidRequest"),
    Case("SigV4 header, garbage components", _plain("GET", "/b/k", [("Authorization", "AWS4-HMAC-SHA256 x=y")]),
         (400,), s3_code="AuthorizationHeaderMalformed"),
    Case("SigV4 header, empty", _plain("GET", "/b/k", [("Authorization", "")]), (400, 403)),
    Case("SigV4 header, unknown key", _plain("GET", "/b/k", [("Authorization", _FAKE_AUTH),
                                                              ("x-amz-date", time.strftime("%Y%m%dT%H%M%SZ",
                                                                                           time.gmtime())),
                                                              ("x-amz-content-sha256", "UNSIGNED-PAYLOAD")]),
         (400, 403)),
    Case("two Authorization headers", _plain("GET", "/b/k", [("Authorization", _FAKE_AUTH),
                                                             ("Authorization", _FAKE_AUTH)]), (400, 403)),
    Case("both header and presigned auth", _plain("GET", "/b/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=a",
                                                  [("Authorization", _FAKE_AUTH)]), (400,), s3_code="InvalidRequest"),
    Case("presigned, garbage parameters", _plain("GET", "/b/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=x"
                                                        "&X-Amz-Date=nope&X-Amz-Expires=-5&X-Amz-SignedHeaders=host"
                                                        "&X-Amz-Signature=zz"), (400, 403)),
    Case("SigV2 presigned URL", _plain("GET", "/b/k?AWSAccessKeyId=AKID&Signature=abc&Expires=1"), (400,),
         s3_code="InvalidRequest"),
    # --- signed with a real key ---
    Case("wrong signature (body swapped after signing)", lambda t: _req(
        "PUT", f"/{t.bucket}/hostile-k", t.sign("PUT", f"/{t.bucket}/hostile-k", body=b"good"), b"evil"),
        (400, 403), needs_key=True),
    Case("signature for another Host", _signed("GET", "/{b}/k", host="evil.example:80",
                                               mutate=lambda s: _replace(s, "Host", "127.0.0.1:1")),
         (403,), s3_code="SignatureDoesNotMatch", needs_key=True),
    Case("Host header changed after signing", _signed("GET", "/{b}/k",
                                                      mutate=lambda s: _replace(s, "Host", "evil.example")),
         (403,), s3_code="SignatureDoesNotMatch", needs_key=True),
    Case("expired presigned URL", lambda t: _req("GET", t.presign("GET", f"/{t.bucket}/k", 60, age=600),
                                                 [("Host", t.authority)]), (403,), s3_code="AccessDenied",
         needs_key=True),
    # Was answered 200 (fixed in e1b76c7): the proxy authorized the first value, the node saw another.
    Case("duplicate query parameter (prefix)", _signed("GET", "/{b}?list-type=2&prefix=a%2F&prefix=b%2F"),
         (400,), s3_code="InvalidArgument", needs_key=True),
    Case("duplicate query parameter (uploadId)", _signed("PUT", "/{b}/k?partNumber=1&uploadId=a&uploadId=b",
                                                         body=b"x"), (400, 404), needs_key=True),
    Case("bucket policy (configuration is wio's)", _signed("PUT", "/{b}?policy", body=b"{}"), (501,),
         s3_code="NotImplemented", needs_key=True),
    Case("DeleteObjects, invalid XML", _signed("POST", "/{b}?delete", body=b"<Delete><Object><Key>"),
         (400,), s3_code="MalformedXML", needs_key=True),
    Case("DeleteObjects, not XML at all", _signed("POST", "/{b}?delete", body=b"\x00\xff" * 64),
         (400,), s3_code="MalformedXML", needs_key=True),
    Case("DeleteObjects, entity expansion", _signed("POST", "/{b}?delete", body=_BILLION), (400,),
         s3_code="MalformedXML", needs_key=True),
    Case("DeleteObjects, 1001 keys", _signed("POST", "/{b}?delete", body=_delete_xml(1001)), (400,),
         s3_code="MalformedXML", needs_key=True),
    Case("DeleteObjects, 100 000 keys (~3.5 MB)", _signed("POST", "/{b}?delete", body=_delete_xml(100_000)),
         (400,), needs_key=True),
    Case("DeleteObjects, traversal key", _signed("POST", "/{b}?delete",
                                                 body=b"<Delete><Object><Key>../../x</Key></Object></Delete>"),
         (200, 400), needs_key=True),  # S3 answers 200 with a per-key <Error>; checked in the CI test
    Case("CompleteMultipartUpload, invalid XML", _signed("POST", "/{b}/k?uploadId=nope", body=b"<Complete"),
         (400, 404), needs_key=True),
    Case("copy source traversal", _signed("PUT", "/{b}/k", headers={"x-amz-copy-source": "/{b}/../../etc/passwd"}),
         (400,), s3_code="InvalidArgument", needs_key=True),
    Case("key with control characters", _signed("PUT", "/{b}/a%01b", body=b"x"), (400,),
         s3_code="InvalidArgument", needs_key=True),
    Case("key longer than 1024 bytes", _signed("PUT", "/{b}/" + "k" * 1100, body=b"x"), (400,),
         s3_code="KeyTooLongError", needs_key=True),
    Case("bucket that does not exist", _signed("GET", "/no-such-bucket-hostile/k"), (403, 404), needs_key=True),
]


def run_case(target: Target, case: Case) -> Outcome:
    if case.needs_key and not (target.access_key and target.bucket):
        return Outcome(case.name, True, None, "skipped (no key)")
    try:
        data = case.build(target)
        answers = send_raw(target, data, read_all=case.smuggle, timeout=3.0 if case.smuggle else 8.0)
    except OSError as exc:
        answers, error = [], str(exc)
    else:
        error = ""
    alive = healthy(target)
    if not answers:
        ok = case.closed_ok and alive
        return Outcome(case.name, ok, None, f"closed without an answer {error}".strip(), alive)
    status, headers, body = answers[0]
    problems = []
    if status not in case.statuses:
        problems.append(f"status {status} not in {case.statuses}")
    if 200 <= status < 300 and not (case.statuses and status in case.statuses):
        problems.append("a 2xx for a hostile request")
    if case.smuggle and len(answers) > 1:
        problems.append(f"{len(answers)} responses on one connection: the smuggled request was answered")
    if case.s3_code is not None:
        if b"<Error>" not in body or f"<Code>{case.s3_code}</Code>".encode() not in body:
            problems.append(f"expected S3 error {case.s3_code}, got {body[:200]!r}")
    if not alive:
        problems.append("the proxy stopped answering its health check")
    code = ""
    if b"<Code>" in body:
        code = body.split(b"<Code>", 1)[1].split(b"</Code>", 1)[0].decode(errors="replace")
    detail = "; ".join(problems) or f"{status} {code}".strip()
    return Outcome(case.name, not problems, status, detail, alive)


def run_catalogue(target: Target, cases: list[Case] | None = None) -> list[Outcome]:
    return [run_case(target, case) for case in (cases or CASES)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.hostile", description=__doc__.split("\n\n")[0])
    parser.add_argument("--endpoint", required=True, help="the proxy, e.g. http://127.0.0.1:9000")
    parser.add_argument("--access-key")
    parser.add_argument("--secret-key")
    parser.add_argument("--bucket", help="a workspace the key can write")
    parser.add_argument("--region", default="us-east-1")
    args = parser.parse_args(argv)
    url = urlsplit(args.endpoint)
    target = Target(url.hostname or "127.0.0.1", url.port or 80, args.access_key, args.secret_key, args.bucket,
                    args.region)
    outcomes = run_catalogue(target)
    width = max(len(o.case) for o in outcomes)
    for o in outcomes:
        print(f"{'ok  ' if o.ok else 'FAIL'} {o.case:<{width}}  {o.detail}")
    failed = [o for o in outcomes if not o.ok]
    print(f"{len(outcomes)} inputs tried, {len(failed)} failed, proxy "
          f"{'up' if healthy(target) else 'DOWN'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
