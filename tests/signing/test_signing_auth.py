"""S3's rules when parsing credentials, canonicalisation details, signing helpers, POST policies."""
from __future__ import annotations

import base64
import json
import re
from datetime import datetime, timedelta, timezone
from urllib.parse import quote, quote_from_bytes, quote_plus, unquote_to_bytes

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from signing import (
    EMPTY_SHA256,
    STATUS,
    SigningError,
    canonical_headers,
    canonical_query,
    canonical_query_from_pairs,
    canonical_request,
    collect_headers,
    canonical_uri,
    parse_post_policy,
    parse_request_auth,
    presign_query,
    presign_url,
    sign_request,
    verify_post_policy,
    verify_signature,
)
from signing.canonical import parse_query
from signing.keys import derive_signing_key, signature, string_to_sign

NOW = datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
REGION = "us-east-1"
ACCESS = "AKIDAUTH"
SECRET = "auth-secret"


def signed_get(path: str = "/ws/key", query: str = "", extra: list[tuple[str, str]] | None = None, *,
               now: datetime = NOW, region: str = REGION, service: str = "s3", token: str | None = None):
    headers = [("Host", "proxy.example")] + (extra or [])
    added = sign_request("GET", path, query, headers, payload_hash=EMPTY_SHA256, access_key=ACCESS,
                         secret_key=SECRET, region=region, now=now, service=service, session_token=token)
    return headers + list(added.items())


def parse(headers, path="/ws/key", query="", *, now=NOW, **kwargs):
    return parse_request_auth("GET", path, query, headers, now=now, region=REGION, **kwargs)


def error_of(call) -> SigningError:
    with pytest.raises(SigningError) as caught:
        call()
    return caught.value


def replace_header(headers, name, value):
    return [(n, value if n.lower() == name else v) for n, v in headers]


# -- header auth ------------------------------------------------------------------------------------


def test_anonymous_requests_parse_to_none() -> None:
    assert parse([("Host", "h")]) is None
    assert parse([("Host", "h")], query="prefix=a&list-type=2") is None


def test_valid_header_auth_and_naive_now() -> None:
    headers = signed_get(extra=[("X-Amz-Meta-A", "1")], token="tok")
    auth = parse(headers, now=NOW.replace(tzinfo=None))
    assert (auth.kind, auth.access_key_id, auth.session_token, auth.region, auth.service) == (
        "header", ACCESS, "tok", REGION, "s3")
    assert auth.scope == f"20240102/{REGION}/s3/aws4_request"
    assert auth.signed_headers == ("host", "x-amz-content-sha256", "x-amz-date", "x-amz-meta-a",
                                   "x-amz-security-token")
    verify_signature(auth, SECRET, "GET", "/ws/key", "", headers)


def _with_authorization(headers, transform):
    return [(n, transform(v) if n == "Authorization" else v) for n, v in headers]


@pytest.mark.parametrize("transform, code, fragment", [
    (lambda v: v.replace("AWS4-HMAC-SHA256", "AWS4-ECDSA-P256-SHA256"), "InvalidRequest", "not supported"),
    (lambda v: "AWS AKID:c2lnbmF0dXJl", "InvalidRequest", "not supported"),
    (lambda v: v.split(", Signature")[0], "AuthorizationHeaderMalformed", "Signature"),
    (lambda v: v + ", Extra=1", "AuthorizationHeaderMalformed", "unexpected"),
    (lambda v: v.replace("/20240102/", "/20240101/"), "AuthorizationHeaderMalformed", "date"),
    (lambda v: v.replace(f"/{REGION}/", "/eu-west-1/"), "AuthorizationHeaderMalformed", "eu-west-1"),
    (lambda v: v.replace("/s3/", "/iam/"), "AuthorizationHeaderMalformed", "service"),
    (lambda v: v.replace("aws4_request", "aws5_request"), "AuthorizationHeaderMalformed", "terminal"),
    (lambda v: v.replace("Credential=AKIDAUTH/", "Credential="), "AuthorizationHeaderMalformed", "Credential"),
    (lambda v: v[:-1] + "G", "AuthorizationHeaderMalformed", "hexadecimal"),
    (lambda v: v.replace("SignedHeaders=host;", "SignedHeaders=host;;"), "AuthorizationHeaderMalformed", "SignedHeaders"),
])
def test_malformed_authorization_header(transform, code, fragment) -> None:
    error = error_of(lambda: parse(_with_authorization(signed_get(), transform)))
    assert error.code == code
    assert fragment in error.message
    assert error.status == STATUS[code] == 400


def test_components_may_come_in_any_order_without_spaces() -> None:
    headers = signed_get()
    value = dict(headers)["Authorization"]
    algorithm, rest = value.split(" ", 1)
    parts = [p.strip() for p in rest.split(",")]
    reordered = _with_authorization(headers, lambda v: f"{algorithm} {','.join(reversed(parts))}")
    auth = parse(reordered)
    verify_signature(auth, SECRET, "GET", "/ws/key", "", reordered)


def test_clock_skew_and_dates() -> None:
    headers = signed_get()
    parse(headers, now=NOW + timedelta(minutes=15))
    for delta in (timedelta(minutes=15, seconds=1), -timedelta(minutes=15, seconds=1)):
        error = error_of(lambda: parse(headers, now=NOW + delta))
        assert error.code == "RequestTimeTooSkewed" and error.status == 403
    assert parse(headers, now=NOW, max_skew_seconds=5).amz_date == "20240102T030405Z"
    for bad in ("20240102T030405", "2024-01-02T03:04:05Z", "20241302T030405Z", "２0240102T030405Z"):
        error = error_of(lambda: parse(replace_header(headers, "x-amz-date", bad)))
        assert error.code == "AccessDenied" and "x-amz-date" in error.message


def test_date_header_instead_of_x_amz_date() -> None:
    """A client may date its request with Date alone; the string to sign has it in ISO form."""
    headers = [("Host", "proxy.example"), ("Date", "Tue, 02 Jan 2024 03:04:05 GMT"),
               ("x-amz-content-sha256", EMPTY_SHA256)]
    names = ["date", "host", "x-amz-content-sha256"]
    creq = canonical_request("GET", "/ws/key", "", canonical_headers(collect_headers(headers), names),
                             ";".join(names), EMPTY_SHA256)
    scope = f"20240102/{REGION}/s3/aws4_request"
    sig = signature(derive_signing_key(SECRET, "20240102", REGION, "s3"),
                    string_to_sign("20240102T030405Z", scope, creq))
    headers.append(("Authorization", f"AWS4-HMAC-SHA256 Credential={ACCESS}/{scope}, "
                                     f"SignedHeaders={';'.join(names)}, Signature={sig}"))
    auth = parse(headers)
    assert auth.amz_date == "20240102T030405Z"
    verify_signature(auth, SECRET, "GET", "/ws/key", "", headers)
    error = error_of(lambda: parse(replace_header(headers, "date", "yesterday")))
    assert error.code == "AccessDenied"


def test_content_sha256_is_required_and_checked() -> None:
    headers = [(n, v) for n, v in signed_get() if n != "X-Amz-Content-SHA256"]
    error = error_of(lambda: parse(headers))
    assert error.code == "InvalidRequest" and "x-amz-content-sha256" in error.message
    for bad in ("E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855", "abc", "STREAMING-FOO"):
        error = error_of(lambda: parse(replace_header(signed_get(), "x-amz-content-sha256", bad)))
        assert error.code == "InvalidArgument"


def test_host_and_every_amz_header_must_be_signed() -> None:
    headers = signed_get()
    unsigned_host = _with_authorization(headers, lambda v: v.replace("SignedHeaders=host;", "SignedHeaders="))
    error = error_of(lambda: parse(unsigned_host))
    assert error.code == "AccessDenied" and "host" in error.message
    for extra in ("x-amz-acl", "X-Amz-Meta-Evil", "x-amz-security-token", "x-amz-copy-source"):
        error = error_of(lambda: parse(headers + [(extra, "v")]))
        assert error.code == "AccessDenied" and extra.lower() in error.message
    # non-amz headers may ride along unsigned, x-amz-content-sha256 too (the payload line covers it)
    auth = parse(headers + [("User-Agent", "x"), ("X-Forwarded-For", "1.2.3.4")])
    verify_signature(auth, SECRET, "GET", "/ws/key", "", headers + [("User-Agent", "x")])


def test_signed_header_missing_from_the_request() -> None:
    headers = signed_get(extra=[("Range", "bytes=0-1")])
    error = error_of(lambda: parse([(n, v) for n, v in headers if n != "Range"]))
    assert error.code == "AccessDenied" and "range" in error.message


def test_expect_may_be_dropped_by_the_http_stack() -> None:
    headers = signed_get(extra=[("Expect", "100-continue")])
    assert "expect" not in dict(headers)["Authorization"]  # our signer leaves it out, like botocore
    headers = [("Host", "proxy.example"), ("Expect", "100-continue")]
    added = sign_request("GET", "/ws/key", "", headers, payload_hash=EMPTY_SHA256, access_key=ACCESS,
                         secret_key=SECRET, region=REGION, now=NOW, headers_to_sign=["expect"])
    assert "SignedHeaders=expect;host;" in added["Authorization"]
    received = [("Host", "proxy.example")] + list(added.items())
    verify_signature(parse(received), SECRET, "GET", "/ws/key", "", received)


def test_duplicate_headers_are_joined_in_order() -> None:
    headers = [("Host", "proxy.example"), ("X-Amz-Meta-Tag", "a"), ("x-amz-meta-tag", " b   c ")]
    added = sign_request("GET", "/ws/key", "", headers, payload_hash=EMPTY_SHA256, access_key=ACCESS,
                         secret_key=SECRET, region=REGION, now=NOW)
    received = headers + list(added.items())
    verify_signature(parse(received), SECRET, "GET", "/ws/key", "", received)
    swapped = [headers[0], headers[2], headers[1]] + list(added.items())
    error = error_of(lambda: verify_signature(parse(swapped), SECRET, "GET", "/ws/key", "", swapped))
    assert error.code == "SignatureDoesNotMatch" and "CanonicalRequest" in error.details


def test_two_mechanisms_are_refused() -> None:
    headers = signed_get()
    query = presign_query("GET", "/ws/key", "", [("Host", "proxy.example")], access_key=ACCESS,
                          secret_key=SECRET, region=REGION, now=NOW)
    error = error_of(lambda: parse(headers, query=query))
    assert error.code == "InvalidRequest"
    error = error_of(lambda: parse(headers + [("Authorization", dict(headers)["Authorization"])]))
    assert error.code == "InvalidRequest"


# -- presigned URLs ---------------------------------------------------------------------------------


def presigned(expires: int = 600, query: str = "", token: str | None = None, now: datetime = NOW) -> str:
    return presign_query("GET", "/ws/key", query, [("Host", "proxy.example")], access_key=ACCESS,
                         secret_key=SECRET, region=REGION, now=now, expires=expires, session_token=token)


def test_presigned_round_trip_with_token_and_extra_query() -> None:
    query = presigned(query="response-content-type=text%2Fplain&versionId=3", token="t+k/n=")
    headers = [("Host", "proxy.example")]
    auth = parse(headers, query=query, now=NOW + timedelta(seconds=600))
    assert (auth.kind, auth.expires, auth.session_token, auth.payload_hash) == ("presigned", 600, "t+k/n=",
                                                                               "UNSIGNED-PAYLOAD")
    assert auth.expires_at == int(NOW.timestamp()) + 600
    verify_signature(auth, SECRET, "GET", "/ws/key", query, headers)
    # an extra parameter is not covered by the signature
    error = error_of(lambda: verify_signature(auth, SECRET, "GET", "/ws/key", query + "&acl", headers))
    assert error.code == "SignatureDoesNotMatch"


def test_presigned_expiry_rules() -> None:
    headers = [("Host", "proxy.example")]
    error = error_of(lambda: parse(headers, query=presigned(600), now=NOW + timedelta(seconds=601)))
    assert (error.code, error.message) == ("AccessDenied", "Request has expired")
    error = error_of(lambda: parse(headers, query=presigned(600), now=NOW - timedelta(hours=1)))
    assert error.code == "AccessDenied" and "not valid yet" in error.message
    zero = presigned(600).replace("X-Amz-Expires=600", "X-Amz-Expires=0")   # valid for no time: expired on arrival
    error = error_of(lambda: parse(headers, query=zero))
    assert (error.code, error.message) == ("AccessDenied", "Request has expired")
    for expires in ("604801", "-5", "ten", ""):
        query = presigned(600).replace("X-Amz-Expires=600", f"X-Amz-Expires={expires}")
        error = error_of(lambda: parse(headers, query=query))
        assert error.code == "AuthorizationQueryParametersError", expires
    parse(headers, query=presigned(604800), now=NOW + timedelta(days=6))


@pytest.mark.parametrize("old, new, code", [
    ("X-Amz-Algorithm=AWS4-HMAC-SHA256", "X-Amz-Algorithm=AWS4-HMAC-SHA1", "AuthorizationQueryParametersError"),
    ("&X-Amz-SignedHeaders=host", "", "AuthorizationQueryParametersError"),
    ("X-Amz-Date=20240102T030405Z", "X-Amz-Date=2024-01-02", "AuthorizationQueryParametersError"),
    ("%2Fus-east-1%2F", "%2Feu-west-1%2F", "AuthorizationQueryParametersError"),
    ("X-Amz-Credential=AKIDAUTH%2F20240102", "X-Amz-Credential=AKIDAUTH%2F20240103", "AuthorizationQueryParametersError"),
    ("X-Amz-SignedHeaders=host", "X-Amz-SignedHeaders=range", "AccessDenied"),
])
def test_presigned_malformed(old, new, code) -> None:
    query = presigned()
    assert old in query
    error = error_of(lambda: parse([("Host", "proxy.example"), ("Range", "bytes=1-2")], query=query.replace(old, new)))
    assert error.code == code


def test_presigned_only_signature_or_credential_counts_as_an_attempt() -> None:
    error = error_of(lambda: parse([("Host", "h")], query="X-Amz-Credential=a%2Fb"))
    assert error.code == "AuthorizationQueryParametersError"


def test_presign_url_helper() -> None:
    url = presign_url("PUT", "http://proxy.example:80/ws/a%20b?uploads", access_key=ACCESS, secret_key=SECRET,
                      region=REGION, now=NOW, expires=60, headers={"Content-Type": "text/plain"})
    assert url.startswith("http://proxy.example:80/ws/a%20b?uploads&X-Amz-Algorithm=")
    query = url.split("?", 1)[1]
    headers = [("Host", "proxy.example"), ("Content-Type", "text/plain")]
    auth = parse_request_auth("PUT", "/ws/a%20b", query, headers, now=NOW, region=REGION)
    assert auth.signed_headers == ("content-type", "host")
    verify_signature(auth, SECRET, "PUT", "/ws/a%20b", query, headers)


# -- canonicalisation details ----------------------------------------------------------------------


@pytest.mark.parametrize("raw, expected", [
    ("", "/"),
    ("/", "/"),
    ("//a/./b/../c//", "//a/./b/../c//"),  # S3: never normalised
    ("/ws/%2e%2e/x", "/ws/../x"),  # decoded then re-encoded: '.' is unreserved
    ("/ws/a%2fb", "/ws/a%2Fb"),  # an encoded slash stays encoded, hex uppercased
    ("/ws/a b+c$d", "/ws/a%20b%2Bc%24d"),
    ("/ws/%7Etilde~", "/ws/~tilde~"),
    ("/ws/ü", "/ws/%C3%BC"),
    ("/ws/%c3%bc", "/ws/%C3%BC"),
    ("/ws/100%", "/ws/100%25"),
    ("/ws/%zz", "/ws/%25zz"),
    ("/ws/\\back", "/ws/%5Cback"),
])
def test_canonical_uri_for_s3(raw, expected) -> None:
    assert canonical_uri(raw) == expected
    assert canonical_uri(expected) == expected  # idempotent: re-signing a canonical path keeps it


def test_canonical_uri_generic_services() -> None:
    assert canonical_uri("/a b/%20", double_encode=True) == "/a%20b/%2520"
    assert canonical_uri("//a/./b/../c//", normalize=True, double_encode=True) == "/a/c/"


def test_canonical_uri_bytes_that_are_not_utf8() -> None:
    raw = "/ws/" + b"\xff".decode("utf-8", "surrogateescape")
    assert canonical_uri(raw) == "/ws/%FF"


@pytest.mark.parametrize("raw, expected", [
    ("", ""),
    ("b=2&a=1&a=0", "a=0&a=1&b=2"),
    ("acl", "acl="),
    ("a=&b", "a=&b="),
    ("&&x=1&", "x=1"),
    ("prefix=a+b", "prefix=a%20b"),  # '+' is a space, as Go's and Java's form encoders send it
    ("prefix=a%2Bb", "prefix=a%2Bb"),
    ("k=%7e%2f/", "k=~%2F%2F"),
    ("%E1%88%B4=v", "%E1%88%B4=v"),
    ("x=a=b", "x=a%3Db"),
])
def test_canonical_query(raw, expected) -> None:
    assert canonical_query(raw) == expected


def test_signing_key_cache_and_signature() -> None:
    derive_signing_key.cache_clear()
    key = derive_signing_key(SECRET, "20240102", REGION, "s3")
    assert derive_signing_key(SECRET, "20240102", REGION, "s3") is key
    assert derive_signing_key.cache_info().hits == 1
    assert len(signature(key, "x")) == 64


def test_sign_request_skips_hop_by_hop_headers_and_needs_host() -> None:
    headers = [("Host", "n"), ("User-Agent", "ua"), ("Connection", "keep-alive"), ("Content-Type", "a/b")]
    added = sign_request("PUT", "/b/k", [("partNumber", "1"), ("uploadId", "a b")], headers,
                         payload_hash="UNSIGNED-PAYLOAD", access_key=ACCESS, secret_key=SECRET, region=REGION,
                         now=NOW, session_token="tok")
    assert "SignedHeaders=content-type;host;x-amz-content-sha256;x-amz-date;x-amz-security-token," in added["Authorization"]
    assert added["X-Amz-Security-Token"] == "tok"
    received = headers + list(added.items())
    auth = parse_request_auth("PUT", "/b/k", "uploadId=a%20b&partNumber=1", received, now=NOW, region=REGION)
    verify_signature(auth, SECRET, "PUT", "/b/k", "uploadId=a%20b&partNumber=1", received)
    with pytest.raises(ValueError):
        sign_request("GET", "/", "", {}, payload_hash=EMPTY_SHA256, access_key=ACCESS, secret_key=SECRET,
                     region=REGION, now=NOW)


# -- POST policy ------------------------------------------------------------------------------------


def post_form(conditions, *, expiration="2024-01-02T04:00:00.000Z", fields=None, secret=SECRET):
    date = "20240102T030405Z"
    credential = f"{ACCESS}/20240102/{REGION}/s3/aws4_request"
    document = {"expiration": expiration, "conditions": [
        {"x-amz-algorithm": "AWS4-HMAC-SHA256"}, {"x-amz-credential": credential}, {"x-amz-date": date},
    ] + conditions}
    policy = base64.b64encode(json.dumps(document).encode()).decode()
    key = derive_signing_key(secret, "20240102", REGION, "s3")
    form = {"key": "a/b.txt", "X-Amz-Algorithm": "AWS4-HMAC-SHA256", "X-Amz-Credential": credential,
            "X-Amz-Date": date, "Policy": policy, "X-Amz-Signature": signature(key, policy)}
    form.update(fields or {})
    return form


def check_post(form, bucket="ws"):
    return verify_post_policy(parse_post_policy(form, now=NOW, region=REGION), SECRET, bucket=bucket)


def test_post_policy_conditions() -> None:
    conditions = [{"bucket": "ws"}, ["starts-with", "$key", "a/"], ["eq", "$acl", "private"],
                  ["starts-with", "$Content-Type", "image/"], ["content-length-range", "0", "100"],
                  ["starts-with", "$x-amz-meta-tag", ""], ["starts-with", "$success_action_status", "20"]]
    fields = {"acl": "private", "Content-Type": "image/png, image/jpeg", "x-amz-meta-tag": "anything",
              "success_action_status": "201"}
    result = check_post(post_form(conditions, fields=fields))
    assert result.content_length_range == (0, 100) and result.key == "a/b.txt"
    result.check_size(100, final=True)
    assert error_of(lambda: result.check_size(101, final=False)).code == "EntityTooLarge"
    ranged = check_post(post_form([{"bucket": "ws"}, ["starts-with", "$key", ""],
                                   ["content-length-range", 10, 20]]))
    ranged.check_size(5, final=False)
    assert error_of(lambda: ranged.check_size(5, final=True)).code == "EntityTooSmall"
    for name, value in (("acl", "Private"), ("Content-Type", "image/png, text/html"), ("key", "b/a.txt"),
                        ("success_action_status", "301")):
        error = error_of(lambda: check_post(post_form(conditions, fields={**fields, name: value})))
        assert error.code == "AccessDenied" and "Condition failed" in error.message, name
    error = error_of(lambda: check_post(post_form(conditions, fields=fields), bucket="other"))
    assert error.code == "AccessDenied"
    error = error_of(lambda: check_post(post_form(conditions, fields={**fields, "bucket": "other"})))
    assert error.code == "AccessDenied"
    error = error_of(lambda: check_post(post_form(conditions[1:], fields={**fields, "bucket": "ws"})))
    assert error.code == "AccessDenied" and "bucket" in error.message


@pytest.mark.parametrize("mutate, code", [
    (lambda f: f.update(Policy="@@@"), "InvalidPolicyDocument"),
    (lambda f: f.update(Policy=base64.b64encode(b'{"conditions": []}').decode()), "InvalidPolicyDocument"),
    (lambda f: f.pop("X-Amz-Signature"), "InvalidArgument"),
    (lambda f: f.update({"X-Amz-Algorithm": "AWS4-HMAC-SHA1"}), "InvalidRequest"),
    (lambda f: f.update(AWSAccessKeyId="x", Signature="y"), "InvalidRequest"),
    (lambda f: f.update({"X-Amz-Date": "20240103T000000Z"}), "InvalidArgument"),
    (lambda f: f.update({"X-Amz-Credential": f["X-Amz-Credential"].replace(REGION, "eu-west-1")}), "InvalidArgument"),
])
def test_post_policy_malformed(mutate, code) -> None:
    form = post_form([{"bucket": "ws"}, ["starts-with", "$key", ""]])
    mutate(form)
    error = error_of(lambda: check_post(form))
    assert error.code == code


@pytest.mark.parametrize("condition", [
    ["matches", "$key", "x"], ["eq", "key", "x"], ["eq", "$key"], {"a": "1", "b": "2"},
    ["content-length-range", 10, 1], ["content-length-range", "x", 1], "string", {"key": 5},
])
def test_post_policy_bad_conditions(condition) -> None:
    error = error_of(lambda: check_post(post_form([condition])))
    assert error.code == "InvalidPolicyDocument"


@pytest.mark.parametrize("expiration", [
    "2024-01-02 04:00:00+00:00",      # str(datetime): not the ISO 8601 UTC form S3 requires
    "2024-01-02T04:00:00+00:00", "2024-01-02T04:00:00", "2024-01-02", "2024-13-02T04:00:00Z", 1704168000, None,
])
def test_post_policy_expiration_format(expiration) -> None:
    error = error_of(lambda: check_post(post_form([{"bucket": "ws"}, ["starts-with", "$key", ""]],
                                                  expiration=expiration)))
    assert error.code == "InvalidPolicyDocument"


def test_post_policy_expired() -> None:
    error = error_of(lambda: check_post(post_form([], expiration="2024-01-02T03:00:00Z")))
    assert error.code == "AccessDenied" and "expired" in error.message


_COMPONENT = st.text(st.characters(blacklist_categories=("Cs",)) | st.sampled_from(list("+%/~ =&-._")), max_size=12)


def _sloppy_encode(text: str, how: int) -> str:
    """Encode a query component the ways different clients do."""
    encoded = quote(text, safe="-_.~" if how != 2 else "-_.~/!$'()*,;:@")
    if how == 1:  # lowercase hex
        encoded = re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), encoded)
    if how == 3:  # form encoding: space as '+'
        encoded = quote_plus(text, safe="-_.~")
    if how == 4:  # escape unreserved characters too
        encoded = "".join(f"%{ord(c):02X}" if c in "-_.~a" else c for c in encoded)
    return encoded


@settings(database=None, max_examples=80, deadline=None)
@given(pairs=st.lists(st.tuples(_COMPONENT, _COMPONENT), max_size=4), how=st.integers(0, 4))
def test_canonical_query_fast_path_equals_decoding(pairs, how) -> None:
    raw = "&".join(f"{_sloppy_encode(n, how)}={_sloppy_encode(v, how)}" for n, v in pairs)
    expected = canonical_query_from_pairs(parse_query(raw))
    assert canonical_query(raw) == expected
    strict = "&".join(f"{quote(n, safe='-_.~')}={quote(v, safe='-_.~')}" for n, v in pairs if n or v)
    assert canonical_query(strict) == canonical_query_from_pairs([(n, v) for n, v in pairs if n or v])


@settings(database=None, max_examples=80, deadline=None)
@given(segments=st.lists(_COMPONENT, min_size=1, max_size=4), how=st.integers(0, 4))
def test_canonical_uri_fast_path_equals_segment_decoding(segments, how) -> None:
    raw = "/" + "/".join(_sloppy_encode(s, how).replace("+", "%2B" if how == 3 else "+") for s in segments)
    slow = "/".join(quote_from_bytes(unquote_to_bytes(seg), safe="") for seg in raw.split("/"))
    assert canonical_uri(raw) == slow
    assert canonical_uri(slow) == slow


def test_parsed_auth_and_context_are_ordinary_frozen_dataclasses() -> None:
    import dataclasses

    headers = signed_get()
    auth = parse(headers)
    rebuilt = type(auth)(**{f.name: getattr(auth, f.name) for f in dataclasses.fields(auth)})
    assert rebuilt == auth and repr(rebuilt) == repr(auth)
    with pytest.raises(dataclasses.FrozenInstanceError):
        auth.signature = "0" * 64  # type: ignore[misc]
    ctx = verify_signature(auth, SECRET, "GET", "/ws/key", "", headers)
    with pytest.raises(dataclasses.FrozenInstanceError):
        ctx.seed_signature = "x"  # type: ignore[misc]
    assert "signing_key" not in repr(ctx)
    assert dataclasses.replace(ctx, scope="s").scope == "s"


@settings(database=None, max_examples=50, deadline=None)
@given(key=st.binary(max_size=130), message=st.binary(max_size=300))
def test_precomputed_pad_hmac_is_hmac(key: bytes, message: bytes) -> None:
    import hmac

    from signing.keys import hmac_sha256_hex

    assert hmac_sha256_hex(key, message) == hmac.digest(key, message, "sha256").hex()
