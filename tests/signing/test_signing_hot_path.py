"""The per-request fast paths and caches of parsing and verifying: same answers as the general way.

Each cache here is keyed by the exact input of a pure function (a credential, a SignedHeaders list,
an escaped query component, a secret with its scope), so a cached answer is the answer for any
request carrying that input.
"""
from __future__ import annotations

import hmac
from datetime import datetime, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from multidict import CIMultiDict

from signing import (
    EMPTY_SHA256,
    SigningError,
    canonical_headers,
    canonical_query,
    canonical_query_from_pairs,
    collect_headers,
    parse_request_auth,
    presign_url,
    sign_request,
    verify_signature,
)
from signing.auth import _credential_parts, _signed_header_names
from signing.canonical import _cached_form_decode, _form_decode, _form_decode_uncached, canonical_header_value, parse_query
from signing.keys import derive_signing_key, hmac_sha256_hex, signing_key_and_pads

NOW = datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
REGION = "us-east-1"
ACCESS = "AKIDHOT"
SECRET = "hot-path-secret"


def signed(extra=None, *, secret=SECRET, query=""):
    headers = [("Host", "proxy.example")] + (extra or [])
    added = sign_request("GET", "/ws/key", query, headers, payload_hash=EMPTY_SHA256, access_key=ACCESS,
                         secret_key=secret, region=REGION, now=NOW)
    return headers + list(added.items())


def parse(headers, query=""):
    return parse_request_auth("GET", "/ws/key", query, headers, now=NOW, region=REGION)


# -- collect_headers --------------------------------------------------------------------------------


def test_collect_headers_keeps_repeated_names_in_arrival_order_whatever_the_input() -> None:
    pairs = [("Host", "h"), ("X-Amz-Meta-A", "1"), ("x-amz-meta-a", "2"), ("Accept", "a"), ("X-AMZ-META-A", "3")]
    expected = {"host": ["h"], "x-amz-meta-a": ["1", "2", "3"], "accept": ["a"]}
    assert collect_headers(pairs) == expected
    assert list(collect_headers(pairs)) == ["host", "x-amz-meta-a", "accept"]
    assert collect_headers(CIMultiDict(pairs)) == expected
    assert collect_headers(iter(pairs)) == expected
    assert collect_headers(tuple(pairs)) == expected
    assert collect_headers({"Host": "h", "X-Y": "z"}) == {"host": ["h"], "x-y": ["z"]}
    single = [("Host", "h"), ("X-A", "1")]
    assert collect_headers(single) == {"host": ["h"], "x-a": ["1"]}
    assert collect_headers([]) == {}


def test_a_repeated_signed_header_is_still_signed_with_all_its_values() -> None:
    headers = signed([("X-Amz-Meta-A", "1"), ("x-amz-meta-a", " 2  b ")])
    auth = parse(headers)
    verify_signature(auth, SECRET, "GET", "/ws/key", "", headers)
    dropped = [h for h in headers if h != ("x-amz-meta-a", " 2  b ")]
    with pytest.raises(SigningError) as caught:
        verify_signature(parse(dropped), SECRET, "GET", "/ws/key", "", dropped)
    assert caught.value.code == "SignatureDoesNotMatch"


@settings(database=None, max_examples=60, deadline=None)
@given(values=st.lists(st.text(st.sampled_from(list("ab \t\x0b\x0c\r\n\x85\xa0\u2003")), max_size=8),
                       min_size=1, max_size=3))
def test_canonical_header_lines_trim_like_canonical_header_value(values) -> None:
    line = canonical_headers({"x-amz-meta-a": values}, ["x-amz-meta-a"])
    assert line == f"x-amz-meta-a:{canonical_header_value(values)}\n"
    assert canonical_headers({}, ["x-amz-meta-a"]) == "x-amz-meta-a:\n"


# -- query decoding ---------------------------------------------------------------------------------


def test_cached_form_decoding_equals_decoding() -> None:
    for text in ("a%2Fb", "a+b", "%E1%88%B4", "%ff%FE", "plain", "", "x" * 300 + "%20", "%2"):
        assert _form_decode(text) == _form_decode_uncached(text)
        assert _form_decode(text) == _form_decode(text)  # a second time, from the cache
    long = "%41" * 200  # longer than the cached size: decoded every time
    _cached_form_decode.cache_clear()
    assert _form_decode(long) == "A" * 200
    assert _cached_form_decode.cache_info().currsize == 0
    assert parse_query("a=%2F&b=c+d&&e") == [("a", "/"), ("b", "c d"), ("e", "")]


@pytest.mark.parametrize("raw", ["x=a=b", "a=1&x=a=b&b=2", "x==", "=a=b", "a%2F=b=c&c=d"])
def test_an_equals_sign_inside_a_value_takes_the_general_way(raw) -> None:
    assert canonical_query(raw) == canonical_query_from_pairs(parse_query(raw))
    assert canonical_query(raw, exclude="a") == canonical_query_from_pairs(parse_query(raw), exclude="a")


@settings(database=None, max_examples=150, deadline=None)
@given(pieces=st.lists(st.sampled_from(list("aZ09-._~%=&+/ 2F3De") + ["%2F", "%3D", "%7E", "%41", "%e1"]),
                       max_size=30))
def test_canonical_query_equals_decoding_for_any_mix(pieces) -> None:
    raw = "".join(pieces)
    assert canonical_query(raw) == canonical_query_from_pairs(parse_query(raw))
    assert canonical_query(raw, exclude="a") == canonical_query_from_pairs(parse_query(raw), exclude="a")


# -- parse caches -----------------------------------------------------------------------------------


def test_credential_and_signed_header_caches_answer_like_splitting() -> None:
    assert _credential_parts("AK/20240102/r/s3/aws4_request") == ("AK", "20240102", "r", "s3", "aws4_request")
    assert _credential_parts("A/K/20240102/r/s3/aws4_request")[0] == "A/K"
    assert _credential_parts("/20240102/r/s3/aws4_request") is None
    assert _credential_parts("AK/20240102/r/s3") is None
    assert _signed_header_names("Host;X-Amz-Date") == (("host", "x-amz-date"), frozenset({"host", "x-amz-date"}))
    assert _signed_header_names("host;;x") is None
    assert _signed_header_names("") is None


def test_malformed_values_fail_every_time_not_only_the_first() -> None:
    headers = signed()
    bad = [(n, v.replace("SignedHeaders=host;", "SignedHeaders=host;;") if n == "Authorization" else v)
           for n, v in headers]
    for _ in range(2):
        with pytest.raises(SigningError) as caught:
            parse(bad)
        assert caught.value.code == "AuthorizationHeaderMalformed"


def test_every_unsigned_x_amz_header_is_refused_and_named() -> None:
    headers = signed() + [("X-Amz-Copy-Source", "/other/key"), ("x-amz-acl", "public-read"),
                          ("x-amz-content-sha256", EMPTY_SHA256)]
    # x-amz-content-sha256 is now repeated: refused on its own; drop the copy to see the coverage rule
    headers = headers[:-1]
    with pytest.raises(SigningError) as caught:
        parse(headers)
    assert caught.value.code == "AccessDenied"
    assert caught.value.details["HeadersNotSigned"] == "x-amz-acl, x-amz-copy-source"


def test_a_missing_signed_header_is_named_in_signed_order() -> None:
    headers = signed([("X-Amz-Meta-B", "2"), ("X-Amz-Meta-A", "1")])
    without = [h for h in headers if h[0] not in ("X-Amz-Meta-A", "X-Amz-Meta-B")]
    with pytest.raises(SigningError) as caught:
        parse(without)
    assert caught.value.code == "AccessDenied" and "'x-amz-meta-a'" in caught.value.message


# -- verify: the cached key and pads ----------------------------------------------------------------


def test_cached_key_pads_give_the_plain_hmac() -> None:
    key, _, _ = signing_key_and_pads(SECRET, "20240102", REGION, "s3")
    assert key == derive_signing_key(SECRET, "20240102", REGION, "s3")
    assert hmac_sha256_hex(key, b"message") == hmac.digest(key, b"message", "sha256").hex()


def test_the_secret_still_decides_with_warm_caches() -> None:
    headers = signed()
    auth = parse(headers)
    for _ in range(3):
        verify_signature(auth, SECRET, "GET", "/ws/key", "", headers)
        with pytest.raises(SigningError) as caught:
            verify_signature(auth, SECRET + "x", "GET", "/ws/key", "", headers)
        assert caught.value.code == "SignatureDoesNotMatch"
    other = signed(secret="another-secret")
    verify_signature(parse(other), "another-secret", "GET", "/ws/key", "", other)
    with pytest.raises(SigningError):
        verify_signature(parse(other), SECRET, "GET", "/ws/key", "", other)


def test_presigned_urls_verify_with_warm_caches_and_fail_when_tampered() -> None:
    url = presign_url("GET", "http://proxy.example/ws/key", access_key=ACCESS, secret_key=SECRET, region=REGION,
                      now=NOW, expires=600)
    query = url.split("?", 1)[1]
    headers = [("Host", "proxy.example")]
    for _ in range(2):
        auth = parse_request_auth("GET", "/ws/key", query, headers, now=NOW, region=REGION)
        assert auth.kind == "presigned" and auth.access_key_id == ACCESS
        verify_signature(auth, SECRET, "GET", "/ws/key", query, headers)
    tampered = query + "&x-id=GetObject"
    auth = parse_request_auth("GET", "/ws/key", tampered, headers, now=NOW, region=REGION)
    with pytest.raises(SigningError) as caught:
        verify_signature(auth, SECRET, "GET", "/ws/key", tampered, headers)
    assert caught.value.code == "SignatureDoesNotMatch"


def test_long_credentials_and_signed_header_lists_are_split_without_the_cache() -> None:
    from signing.auth import _CACHED_TEXT_MAX, _cached_credential_parts, _cached_signed_header_names

    _cached_signed_header_names.cache_clear()
    _cached_credential_parts.cache_clear()
    long_names = ";".join(f"x-amz-meta-{i:04d}" for i in range(60))
    assert len(long_names) > _CACHED_TEXT_MAX
    assert _signed_header_names(long_names)[0][59] == "x-amz-meta-0059"
    long_key = "A" * (_CACHED_TEXT_MAX + 1)
    assert _credential_parts(f"{long_key}/20240102/r/s3/aws4_request")[0] == long_key
    assert _cached_signed_header_names.cache_info().currsize == 0
    assert _cached_credential_parts.cache_info().currsize == 0
    headers = signed([(f"X-Amz-Meta-{i:04d}", str(i)) for i in range(60)])
    verify_signature(parse(headers), SECRET, "GET", "/ws/key", "", headers)


@pytest.mark.parametrize("key, params, extra", [
    ("plain/key.txt", [], {}),
    ("spaces and  unicode/é 漢字+plus%percent~tilde", [("partNumber", "3"), ("uploadId", "a/b+c=d")], {}),
    ("k", [("list-type", "2"), ("prefix", "a b/é"), ("delimiter", "/"), ("max-keys", "1000")],
     {"range": "bytes=0-99", "x-amz-meta-note": "  two   spaces  ", "content-md5": "1B2M2Y8AsgTpgAmY7PhCfg=="}),
    ("", [("delete", "")], {"content-type": "application/xml"}),
    ("k", [("~x", "1"), ("é", "2"), ("a", "~"), ("a", "é")], {}),   # sorted after encoding: %C3%A9 < a < ~x
])
def test_sign_canonical_signs_like_sign_request(key, params, extra):
    """The proxy's node signer (canonical inputs) and the general signer agree, byte for byte."""
    from datetime import datetime, timezone

    from signing import amz_date, s3_request_target, sign_canonical, sign_request
    path, query = s3_request_target("bucket", key or None, params)
    headers = {"host": "node.example:8333", **extra}
    now = datetime(2026, 11, 22, 1, 2, 3, tzinfo=timezone.utc)
    for payload in ("UNSIGNED-PAYLOAD", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"):
        general = sign_request("PUT", path, params, headers, payload_hash=payload, access_key="AK",
                               secret_key="secret/key", region="eu-west-1", now=now)
        lean = sign_canonical("PUT", path, query, headers, payload_hash=payload, access_key="AK",
                              secret_key="secret/key", region="eu-west-1", amz_date=amz_date(now))
        assert lean["authorization"] == general["Authorization"]
        assert lean["x-amz-date"] == general["X-Amz-Date"]
        assert lean["x-amz-content-sha256"] == general["X-Amz-Content-SHA256"] == payload


def test_s3_request_target_sorts_after_encoding():
    """SigV4 sorts the encoded pairs: 'é' (%C3%A9) before '~x', whatever their decoded order."""
    from signing import s3_request_target
    assert s3_request_target("b", "k", [("~x", "1"), ("é", "2")]) == ("/b/k", "%C3%A9=2&~x=1")
    assert s3_request_target("b", None, [("prefix", "a b+c"), ("list-type", "2")]) == \
        ("/b", "list-type=2&prefix=a%20b%2Bc")


@pytest.mark.parametrize("key, params", [
    ("spaces and  unicode/é 漢字+plus%percent~tilde", [("~x", "1"), ("é", "2"), ("uploadId", "a/b+c=d")]),
    (None, [("list-type", "2"), ("prefix", "é/~"), ("encoding-type", "url")]),
])
def test_node_requests_verify_with_the_verifier(key, params):
    """What the one S3 request builder sends (proxy re-signing, node client, crawler) is what the
    verifier accepts: one canonicalisation on both sides."""
    from signing import parse_request_auth, sign_s3_request, verify_signature
    now = datetime(2026, 11, 22, 1, 2, 3, tzinfo=timezone.utc)
    target, headers = sign_s3_request("GET", "node.example:8333", "bucket", key, params, {"range": "bytes=0-1"},
                                      payload_hash=EMPTY_SHA256, access_key="AK", secret_key="secret/key",
                                      region="eu-west-1", now=now)
    raw_path, _, raw_query = target.partition("?")
    auth = parse_request_auth("GET", raw_path, raw_query, list(headers.items()), now=now, region="eu-west-1")
    verify_signature(auth, "secret/key", "GET", raw_path, raw_query, list(headers.items()))


# -- ParsedAuth._build (positional, in the field order, for the per-request path) --------------------


def test_parsed_auth_build_takes_the_fields_in_their_declared_order() -> None:
    import dataclasses
    import inspect

    from signing import ParsedAuth
    names = [f.name for f in dataclasses.fields(ParsedAuth)]
    assert list(inspect.signature(ParsedAuth._build).parameters) == names
    assert list(vars(parse(signed())).keys()) == names


def test_both_kinds_of_parsed_auth_equal_the_dataclass_built_by_keyword() -> None:
    from signing import ParsedAuth
    token = "tok/en+="
    header = parse(signed([("X-Amz-Security-Token", token)]))
    assert header == ParsedAuth(
        access_key_id=ACCESS, kind="header", amz_date="20240102T030405Z", scope_date="20240102", region=REGION,
        service="s3", signed_headers=("host", "x-amz-content-sha256", "x-amz-date", "x-amz-security-token"),
        signature=header.signature, payload_hash=EMPTY_SHA256, session_token=token, expires=None,
        signed_headers_raw="host;x-amz-content-sha256;x-amz-date;x-amz-security-token",
        content_sha256=EMPTY_SHA256, request_time=int(NOW.timestamp()))
    url = presign_url("GET", "http://proxy.example/ws/key", access_key=ACCESS, secret_key=SECRET, region=REGION,
                      now=NOW, expires=600, session_token=token)
    presigned = parse([("Host", "proxy.example")], url.partition("?")[2])
    assert presigned == ParsedAuth(
        access_key_id=ACCESS, kind="presigned", amz_date="20240102T030405Z", scope_date="20240102", region=REGION,
        service="s3", signed_headers=("host",), signature=presigned.signature, payload_hash="UNSIGNED-PAYLOAD",
        session_token=token, expires=600, signed_headers_raw="host", content_sha256="UNSIGNED-PAYLOAD",
        request_time=int(NOW.timestamp()))
