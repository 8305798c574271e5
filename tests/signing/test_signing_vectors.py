"""The official Signature V4 test vectors, one test per case and stage.

Three sets live in ``tests/signing/vectors/`` (see its README for sources and licences): the classic
AWS suite, the CRT suite (header and query forms) and the S3 documentation examples. Each case is
checked at every stage (canonical request, string to sign, signature) from the signed request as a
verifier sees it, then signed again from the unsigned request, then verified end to end through
``parse_request_auth``/``verify_signature`` where S3's rules allow it.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from signing import (
    ChunkSigner,
    HoldBackBody,
    SigningError,
    canonical_headers,
    canonical_query,
    canonical_request,
    canonical_uri,
    collect_headers,
    derive_signing_key,
    make_body_verifier,
    parse_authorization_header,
    parse_request_auth,
    presign_query,
    presign_url,
    sign_request,
    sign_request_with_context,
    signature,
    string_to_sign,
    verify_signature,
)
from signing.keys import chunk_string_to_sign, trailer_string_to_sign

SUITE = Path(__file__).resolve().parent / "vectors"
CLASSIC = SUITE / "aws-sig-v4-test-suite"
CRT = SUITE / "aws-signing-test-suite-v4"
S3_DOCS = SUITE / "s3-docs-examples" / "s3_sigv4_examples.json"

ACCESS_KEY = "AKIDEXAMPLE"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
GENERIC_NOW = datetime(2015, 8, 30, 12, 36, tzinfo=timezone.utc)


# -- reading the files -------------------------------------------------------------------------------


@dataclasses.dataclass
class RawRequest:
    method: str
    path: str
    query: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        return next((v for n, v in self.headers if n.lower() == name), None)


def parse_raw_request(text: str) -> RawRequest:
    """A request as the suites write it: request line, ``Name:value`` headers with continuation
    lines, a blank line, the body. Line endings are LF (the S3 examples use CRLF)."""
    text = text.replace("\r\n", "\n")
    head, _, body = text.partition("\n\n")
    lines = head.split("\n")
    request_line = lines[0]
    method, _, rest = request_line.partition(" ")
    target = rest.rsplit(" ", 1)[0]
    path, _, query = target.partition("?")
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if not line:
            continue
        if line[0] in " \t":  # obs-fold continuation
            name, value = headers[-1]
            headers[-1] = (name, f"{value} {line.strip()}")
            continue
        name, _, value = line.partition(":")
        headers.append((name, value))
    return RawRequest(method, path, query, headers, body.encode("utf-8"))


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def classic_cases() -> list[Path]:
    return sorted(p.parent for p in CLASSIC.rglob("*.req"))


def crt_cases() -> list[Path]:
    return sorted(p.parent for p in CRT.glob("*/context.json"))


def s3_doc_cases() -> list[dict]:
    return json.loads(S3_DOCS.read_text())["cases"]


def _case_id(path: Path) -> str:
    return path.name


def _signed_line(canonical: str) -> str:
    """The SignedHeaders line of an expected canonical request (second to last line)."""
    return canonical.split("\n")[-2]


# -- the classic suite -------------------------------------------------------------------------------


@pytest.mark.parametrize("case", classic_cases(), ids=_case_id)
def test_classic_suite(case: Path) -> None:
    name = case.name
    request = parse_raw_request(_read(case / f"{name}.req"))
    signed = parse_raw_request(_read(case / f"{name}.sreq"))
    expected_creq = _read(case / f"{name}.creq")
    expected_sts = _read(case / f"{name}.sts")
    authz = _read(case / f"{name}.authz").strip()
    _, credential, signed_raw, expected_sig = parse_authorization_header(authz)
    assert credential == f"{ACCESS_KEY}/20150830/us-east-1/service/aws4_request"
    if name == "get-vanilla-with-session-token":
        # the token is only written in the .creq (see the suite's README)
        token = next(line.split(":", 1)[1] for line in expected_creq.split("\n")
                     if line.startswith("x-amz-security-token:"))
        for raw in (request, signed):
            if raw.header("x-amz-security-token") is None:
                raw.headers.append(("X-Amz-Security-Token", token))
    if name == "get-vanilla-with-session-token":
        # and the .sreq's Signature is garbled there; the .authz has the right one
        signed.headers = [(n, v) for n, v in signed.headers if n.lower() != "authorization"]
        signed.headers.append(("Authorization", authz))
    assert signed.header("authorization").strip() == authz
    body_hash = hashlib.sha256(request.body).hexdigest()
    names = signed_raw.split(";")

    # stage by stage, from the request as a verifier receives it
    creq = canonical_request(
        signed.method,
        canonical_uri(signed.path, normalize=True, double_encode=True),
        canonical_query(signed.query),
        canonical_headers(collect_headers(signed.headers), names),
        signed_raw,
        body_hash,
    )
    assert creq == expected_creq
    scope = "20150830/us-east-1/service/aws4_request"
    sts = string_to_sign("20150830T123600Z", scope, creq)
    assert sts == expected_sts
    key = derive_signing_key(SECRET_KEY, "20150830", "us-east-1", "service")
    assert signature(key, sts) == expected_sig

    # signing the unsigned request gives the same Authorization header
    added = sign_request(
        request.method, request.path, request.query,
        [(n, v) for n, v in request.headers if n.lower() in names],
        payload_hash=body_hash, access_key=ACCESS_KEY, secret_key=SECRET_KEY, region="us-east-1",
        now=GENERIC_NOW, service="service", normalize_path=True, double_encode_path=True,
    )
    assert added["Authorization"] == authz

    # end to end: the x-amz-content-sha256 header S3 requires carries the body hash, which is
    # exactly the payload line the generic canonical request uses
    headers = signed.headers + [("x-amz-content-sha256", body_hash)]
    if name == "post-sts-header-after":
        # an unsigned x-amz-security-token: fine for some services, refused by S3's rules
        with pytest.raises(SigningError) as caught:
            parse_request_auth(signed.method, signed.path, signed.query, headers, now=GENERIC_NOW,
                               region="us-east-1", service="service")
        assert caught.value.code == "AccessDenied"
        assert "x-amz-security-token" in caught.value.message
        return
    auth = parse_request_auth(signed.method, signed.path, signed.query, headers, now=GENERIC_NOW,
                              region="us-east-1", service="service")
    assert auth is not None and auth.kind == "header" and auth.access_key_id == ACCESS_KEY
    ctx = verify_signature(auth, SECRET_KEY, signed.method, signed.path, signed.query, headers,
                           normalize_path=True, double_encode_path=True)
    assert ctx.seed_signature == expected_sig
    with pytest.raises(SigningError) as caught:
        verify_signature(auth, SECRET_KEY + "x", signed.method, signed.path, signed.query, headers,
                         normalize_path=True, double_encode_path=True)
    assert caught.value.code == "SignatureDoesNotMatch"


def test_classic_suite_is_complete() -> None:
    assert len(classic_cases()) == 34


# -- the CRT suite ----------------------------------------------------------------------------------


def _crt_context(case: Path) -> dict:
    return json.loads(_read(case / "context.json"))


@pytest.mark.parametrize("case", crt_cases(), ids=_case_id)
def test_crt_suite_header(case: Path) -> None:
    context = _crt_context(case)
    creds = context["credentials"]
    now = datetime.fromisoformat(context["timestamp"].replace("Z", "+00:00"))
    normalize = context["normalize"]
    request = parse_raw_request(_read(case / "request.txt"))
    signed = parse_raw_request(_read(case / "header-signed-request.txt"))
    expected_creq = _read(case / "header-canonical-request.txt")
    expected_sts = _read(case / "header-string-to-sign.txt")
    expected_sig = _read(case / "header-signature.txt").strip()
    body_hash = hashlib.sha256(request.body).hexdigest()
    token = creds.get("token")
    omit_token = context.get("omit_session_token", False)

    _, credential, signed_raw, sig = parse_authorization_header(signed.header("authorization"))
    assert sig == expected_sig
    creq = canonical_request(
        signed.method,
        canonical_uri(signed.path, normalize=normalize, double_encode=True),
        canonical_query(signed.query),
        canonical_headers(collect_headers(signed.headers), signed_raw.split(";")),
        signed_raw,
        body_hash,
    )
    assert creq == expected_creq
    scope = credential.split("/", 1)[1]
    sts = string_to_sign(signed.header("x-amz-date"), scope, creq)
    assert sts == expected_sts
    key = derive_signing_key(creds["secret_access_key"], scope[:8], context["region"], context["service"])
    assert signature(key, sts) == expected_sig

    added = sign_request(
        request.method, request.path, request.query, request.headers,
        payload_hash=body_hash, access_key=creds["access_key_id"], secret_key=creds["secret_access_key"],
        region=context["region"], now=now, service=context["service"],
        session_token=None if omit_token else token, add_content_sha256=context["sign_body"],
        normalize_path=normalize, double_encode_path=True,
    )
    assert added["Authorization"] == signed.header("authorization")

    headers = list(signed.headers)
    if not context["sign_body"]:
        headers.append(("x-amz-content-sha256", body_hash))
    kwargs = dict(now=now, region=context["region"], service=context["service"])
    if omit_token:
        with pytest.raises(SigningError) as caught:
            parse_request_auth(signed.method, signed.path, signed.query, headers, **kwargs)
        assert caught.value.code == "AccessDenied"
        return
    auth = parse_request_auth(signed.method, signed.path, signed.query, headers, **kwargs)
    assert auth.session_token == token
    ctx = verify_signature(auth, creds["secret_access_key"], signed.method, signed.path, signed.query,
                           headers, normalize_path=normalize, double_encode_path=True)
    assert ctx.seed_signature == expected_sig


@pytest.mark.parametrize("case", crt_cases(), ids=_case_id)
def test_crt_suite_query(case: Path) -> None:
    context = _crt_context(case)
    creds = context["credentials"]
    now = datetime.fromisoformat(context["timestamp"].replace("Z", "+00:00"))
    normalize = context["normalize"]
    request = parse_raw_request(_read(case / "request.txt"))
    signed = parse_raw_request(_read(case / "query-signed-request.txt"))
    expected_creq = _read(case / "query-canonical-request.txt")
    expected_sts = _read(case / "query-string-to-sign.txt")
    expected_sig = _read(case / "query-signature.txt").strip()
    body_hash = hashlib.sha256(request.body).hexdigest()
    token = creds.get("token")
    omit_token = context.get("omit_session_token", False)
    signed_raw = _signed_line(expected_creq)

    params = dict(part.split("=", 1) for part in signed.query.split("&"))
    assert params["X-Amz-Signature"] == expected_sig
    assert params["X-Amz-Expires"] == str(context["expiration_in_seconds"])
    # the token appended after signing is not part of what was signed
    exclude_token = "&".join(p for p in signed.query.split("&")
                             if not (omit_token and p.startswith("X-Amz-Security-Token=")))
    creq = canonical_request(
        signed.method,
        canonical_uri(signed.path, normalize=normalize, double_encode=True),
        canonical_query(exclude_token, exclude="X-Amz-Signature"),
        canonical_headers(collect_headers(signed.headers), signed_raw.split(";")),
        signed_raw,
        body_hash,
    )
    assert creq == expected_creq
    scope = f"{params['X-Amz-Date'][:8]}/{context['region']}/{context['service']}/aws4_request"
    sts = string_to_sign(params["X-Amz-Date"], scope, creq)
    assert sts == expected_sts
    key = derive_signing_key(creds["secret_access_key"], scope[:8], context["region"], context["service"])
    assert signature(key, sts) == expected_sig

    query = presign_query(
        request.method, request.path, request.query, request.headers,
        access_key=creds["access_key_id"], secret_key=creds["secret_access_key"], region=context["region"],
        now=now, expires=context["expiration_in_seconds"], service=context["service"],
        session_token=None if omit_token else token, payload_hash=body_hash,
        normalize_path=normalize, double_encode_path=True,
    )
    assert query.rsplit("&X-Amz-Signature=", 1)[1] == expected_sig

    kwargs = dict(now=now, region=context["region"], service=context["service"])
    auth = parse_request_auth(signed.method, signed.path, signed.query, signed.headers, **kwargs)
    assert auth.kind == "presigned" and auth.expires == context["expiration_in_seconds"]
    # a generic service signs the body hash where S3 presigned URLs say UNSIGNED-PAYLOAD
    assert auth.payload_hash == "UNSIGNED-PAYLOAD"
    auth = dataclasses.replace(auth, payload_hash=body_hash)
    verify = lambda: verify_signature(auth, creds["secret_access_key"], signed.method, signed.path,  # noqa: E731
                                      signed.query, signed.headers, normalize_path=normalize,
                                      double_encode_path=True)
    if omit_token:
        # S3 signs X-Amz-Security-Token like any other query parameter
        with pytest.raises(SigningError) as caught:
            verify()
        assert caught.value.code == "SignatureDoesNotMatch"
    else:
        assert verify().seed_signature == expected_sig


def test_crt_suite_is_complete() -> None:
    assert len(crt_cases()) == 38


def test_unnormalized_cases_are_the_s3_rule() -> None:
    """The CRT ``*-unnormalized`` cases are S3's behaviour: our S3 default gives the same URI."""
    for case in crt_cases():
        if _crt_context(case)["normalize"]:
            continue
        request = parse_raw_request(_read(case / "request.txt"))
        expected = _read(case / "header-canonical-request.txt").split("\n")[1]
        assert canonical_uri(request.path) == expected, case.name


# -- the S3 documentation examples ------------------------------------------------------------------

S3_NOW = datetime(2013, 5, 24, tzinfo=timezone.utc)
S3_ACCESS = "AKIAIOSFODNN7EXAMPLE"
S3_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


def _data(spec: str) -> bytes:
    if spec.startswith("a x "):
        return b"a" * int(spec[4:])
    return spec.encode()


def _headers_from_canonical(creq: str) -> list[tuple[str, str]]:
    lines = creq.split("\n")
    block = lines[3:lines.index("", 3)]
    return [tuple(line.split(":", 1)) for line in block]  # type: ignore[misc]


@pytest.mark.parametrize("case", s3_doc_cases(), ids=lambda c: c["name"])
def test_s3_docs_examples(case: dict) -> None:
    creq_expected = case["canonical_request"]
    lines = creq_expected.split("\n")
    method, uri = lines[0], lines[1]
    signed_raw = lines[-2]
    payload_hash = lines[-1]
    scope = "20130524/us-east-1/s3/aws4_request"
    key = derive_signing_key(S3_SECRET, "20130524", "us-east-1", "s3")
    assert string_to_sign("20130524T000000Z", scope, creq_expected) == case["string_to_sign"]
    assert signature(key, case["string_to_sign"]) == case["signature"]

    if "url" in case:  # presigned GET
        url = presign_url(method, "https://examplebucket.s3.amazonaws.com/test.txt", access_key=S3_ACCESS,
                          secret_key=S3_SECRET, region="us-east-1", now=S3_NOW, expires=86400)
        assert url == case["url"]
        path_query = url.split("amazonaws.com", 1)[1]
        path, _, query = path_query.partition("?")
        headers = [("Host", "examplebucket.s3.amazonaws.com")]
        auth = parse_request_auth(method, path, query, headers, now=S3_NOW, region="us-east-1")
        assert auth.kind == "presigned" and auth.payload_hash == "UNSIGNED-PAYLOAD"
        ctx = verify_signature(auth, S3_SECRET, method, path, query, headers)
        assert ctx.seed_signature == case["signature"]
        # the canonical request is the documented one
        from signing.verify import request_canonical_request
        assert request_canonical_request(auth, method, path, query, collect_headers(headers)) == creq_expected
        # a frozen clock matters: a day and a second later the URL has expired
        with pytest.raises(SigningError) as caught:
            parse_request_auth(method, path, query, headers,
                               now=datetime(2013, 5, 25, 0, 0, 1, tzinfo=timezone.utc), region="us-east-1")
        assert caught.value.code == "AccessDenied" and caught.value.message == "Request has expired"
        return

    if "request" in case:
        request = parse_raw_request(case["request"])
        request.headers = [(n, v.strip()) for n, v in request.headers]
        path, query = request.path, request.query
        headers = request.headers
    else:  # streaming examples give only the canonical request
        path, query = uri, lines[2]
        headers = _headers_from_canonical(creq_expected)
    assert canonical_uri(path) == uri
    names = signed_raw.split(";")
    to_sign = [(n, v) for n, v in headers if n.lower() in names]
    added, ctx = sign_request_with_context(
        method, path, query, to_sign, payload_hash=payload_hash, access_key=S3_ACCESS,
        secret_key=S3_SECRET, region="us-east-1", now=S3_NOW,
    )
    assert added["Authorization"].endswith(f"Signature={case['signature']}")
    assert f"SignedHeaders={signed_raw}," in added["Authorization"]

    sent = [(n, v) for n, v in headers if n.lower() not in ("x-amz-date", "x-amz-content-sha256")]
    sent += list(added.items())
    auth = parse_request_auth(method, path, query, sent, now=S3_NOW, region="us-east-1")
    ctx = verify_signature(auth, S3_SECRET, method, path, query, sent)
    assert ctx.seed_signature == case["signature"]

    if "chunks" not in case:
        return
    # the documented chunk chain, from our signer and through our verifier
    previous = case["signature"]
    signer = ChunkSigner(ctx, trailer="x-amz-checksum-crc32c" if "trailer" in case else None)
    body = b""
    for chunk in case["chunks"]:
        data = _data(chunk["data"])
        sts = chunk_string_to_sign("20130524T000000Z", scope, previous, hashlib.sha256(data).hexdigest())
        assert sts == chunk["string_to_sign"]
        assert signature(key, sts) == chunk["signature"]
        previous = chunk["signature"]
        body += signer.chunk(data) if data else b""
    final = signer.final()
    assert final.startswith(f"0;chunk-signature={case['chunks'][-1]['signature']}\r\n".encode())
    body += final
    if "trailer" in case:
        trailer = case["trailer"]
        trailer_hash = hashlib.sha256(trailer["canonical_trailer"].encode()).hexdigest()
        sts = trailer_string_to_sign("20130524T000000Z", scope, previous, trailer_hash)
        assert sts == trailer["string_to_sign"]
        assert signature(key, sts) == trailer["signature"]
        wire = trailer["wire"].encode().decode("unicode_escape").encode()
        assert final.endswith(wire)
    else:
        assert final.endswith(b"\r\n\r\n")
    # the seed example states the encoded length: our framing matches it byte for byte
    content_length = dict(headers).get("content-length")
    if content_length:
        assert len(body) == int(content_length)

    gate = HoldBackBody(make_body_verifier(auth, ctx, sent))
    out = b"".join(gate.feed(body[i:i + 4096]) for i in range(0, len(body), 4096)) + gate.finish()
    assert out == b"a" * 66560
    if "trailer" in case:
        assert gate.checksums == {"x-amz-checksum-crc32c": "sOO8/Q=="}


def test_s3_docs_examples_are_complete() -> None:
    assert len(s3_doc_cases()) == 7
