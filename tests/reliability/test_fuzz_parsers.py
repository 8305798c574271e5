"""Hypothesis fuzzing of the proxy's pure parsers (issue 11).

Each parser must either return a value or raise its own error type (``S3Error`` / ``SigningError``):
anything else would become a 500 at the proxy. Where a parser guards an invariant (keys never
address outside the workspace, listings never show a key outside the grants) the property is checked
too. Any input that once crashed a parser is pinned below as an explicit regression example.
"""
from __future__ import annotations

import os
import string
from datetime import datetime, timezone

import pytest
from hypothesis import HealthCheck, example, given, settings, strategies as st

from policy.decide import ListingFilter
from proxy.addressing import parse_address, decode_key
from proxy.app import parse_copy_source
from proxy.errors import S3Error
from proxy.listing import ListingView, open_marker, rewrite_listing, rewrite_result
from proxy.operations import BUCKET_VIEWS, classify
from signing import ChunkedDecoder, SigningError, encode_chunk, encode_last_chunk, parse_authorization_header
from signing import parse_request_auth
from signing.chunked import ChunkHeader, EndOfBody, Trailer
from foundation.secrets import SecretBox

FUZZ = settings(max_examples=int(os.environ.get("WIO_FUZZ_EXAMPLES", "150")), deadline=None,
                suppress_health_check=[HealthCheck.too_slow])
NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)

url_chars = st.sampled_from(list(string.ascii_letters + string.digits + "/%.-_~?&=+;:,@!$'()*\\ \x00\x7f"
                                 + "é\u202e\udcff"[:2]))
raw_paths = st.text(url_chars, max_size=80)
hex_pct = st.builds(lambda b: "%" + b.hex().upper(), st.binary(min_size=1, max_size=1))
path_pieces = st.lists(st.one_of(st.sampled_from(["/", "..", ".", "%2e", "%2E%2e", "%2F", "%5C", "\\", "ws", "a"]),
                                 hex_pct, st.text(url_chars, max_size=5)), max_size=12)
methods = st.sampled_from(["GET", "PUT", "POST", "DELETE", "HEAD", "PATCH", "OPTIONS", "get", ""])
subresources = st.sampled_from(["uploads", "uploadId", "partNumber", "tagging", "delete", "list-type", "acl",
                                "policy", "versions", "location", "attributes", "select", "restore", "x", ""])
queries = st.dictionaries(subresources, st.text(max_size=4), max_size=4)
header_maps = st.dictionaries(st.sampled_from(["content-type", "x-amz-copy-source", "x-other"]),
                              st.text(max_size=20), max_size=3)


@FUZZ
@given(methods, st.one_of(st.none(), st.text(max_size=10)), st.one_of(st.none(), st.text(max_size=10)),
       queries, header_maps)
@example("GET", "", None, {"uploads": "", "acl": ""}, {})   # found by a CI run: GetBucketAcl was missing from the views
def test_classify_returns_an_operation_or_an_s3_error(method, bucket, key, query, headers):
    try:
        op = classify(method, bucket, key, query, headers)
    except S3Error as exc:
        assert 400 <= exc.status < 600
        return
    assert op.name and op.name[0].isupper()
    # Bucket configuration is wio's business: at most one of wio's own read-only views
    # (proxy/views.py) or a canned bucket ACL wio applies itself (proxy/buckets.py), never an
    # operation that would reach a backend.
    if key is None and bucket is not None and {"policy", "acl", "tagging"} & set(query):
        if method == "PUT":
            assert "acl" in query and op.name == "PutBucketAcl"
        else:
            assert method == "GET" and op.name in {view.name for view in BUCKET_VIEWS}


def _no_escape(key: str) -> None:
    for segment in key.replace("\\", "/").split("/"):
        assert segment not in (".", "..")
    assert not any(ord(c) < 0x20 or ord(c) == 0x7F for c in key)


@FUZZ
@given(path_pieces.map("".join), st.one_of(st.none(), st.sampled_from(["s3.example.com", "b.s3.example.com",
                                                                          "B.S3.EXAMPLE.COM:9000", "[::1]:9000",
                                                                          "x", ".s3.example.com"])),
       st.sampled_from([None, "s3.example.com"]))
@example("/ws/%2e%2e/x", None, None)
@example("/ws/a%5C..%5Cb", None, None)
@example("/%2e%2e/", "b.s3.example.com", "s3.example.com")
def test_parse_address_never_yields_an_escaping_key(path, host, domain):
    try:
        address = parse_address("/" + path, host, domain)
    except S3Error as exc:
        assert exc.status == 400
        return
    if address.key is not None:
        _no_escape(address.key)
        assert address.key != ""


@FUZZ
@given(raw_paths)
def test_parse_address_rejects_relative_targets(path):
    if path.startswith("/"):
        return
    with pytest.raises(S3Error):
        parse_address(path, None, None)


@FUZZ
@given(st.binary(max_size=40).map(lambda b: "".join(f"%{x:02X}" for x in b)) | path_pieces.map("".join))
def test_decode_key_is_total(raw):
    try:
        key = decode_key(raw)
    except S3Error:
        return
    _no_escape(key)


@FUZZ
@given(path_pieces.map("".join))
@example("/ws/a?versionId=")
@example("ws/%2e%2e?versionId=1")
@example("ws/a%FF")
@example("?versionId=x")
def test_parse_copy_source_returns_a_triple_or_invalid_argument(value):
    try:
        bucket, key, version = parse_copy_source(value)
    except S3Error as exc:
        assert exc.code in ("InvalidArgument", "KeyTooLongError"), exc.code
        return
    assert bucket and key
    _no_escape(key)


auth_parts = st.sampled_from(["Credential=AKID/20260101/us-east-1/s3/aws4_request", "SignedHeaders=host;x-amz-date",
                              "Signature=" + "a" * 64, "Credential=", "SignedHeaders=", "Signature=", ",", " ",
                              "Credential=a/b", "x=y", "=", "Credential=AKID/20260101/us-east-1/s3/aws4_request/x"])


@FUZZ
@given(st.sampled_from(["AWS4-HMAC-SHA256", "AWS4-HMAC-SHA1", "AWS", "", "aws4-hmac-sha256"]),
       st.lists(auth_parts, max_size=6), st.sampled_from([",", ", ", " ,", ""]))
@example("AWS4-HMAC-SHA256", [], "")
def test_parse_authorization_header_is_total(algorithm, parts, sep):
    value = algorithm + " " + sep.join(parts)
    try:
        result = parse_authorization_header(value)
    except SigningError as exc:
        assert exc.code in ("InvalidRequest", "AuthorizationHeaderMalformed"), exc.code
        return
    assert len(result) == 4 and all(result[1:])


@FUZZ
@given(st.lists(st.tuples(st.sampled_from(["authorization", "x-amz-date", "x-amz-content-sha256", "host",
                                           "x-amz-security-token", "date", "Authorization"]),
                          st.one_of(st.text(max_size=40), auth_parts,
                                    st.just("AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/s3/aws4_request, "
                                            "SignedHeaders=host;x-amz-date, Signature=" + "b" * 64),
                                    st.sampled_from(["20260101T000000Z", "UNSIGNED-PAYLOAD", "0" * 64,
                                                     "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"]))),
                max_size=6),
       st.text(st.sampled_from(list("XAmz-=&%0123456789abcdefSignatureCredentialAlgorithmExpires/")), max_size=80))
def test_parse_request_auth_is_total(headers, raw_query):
    try:
        parse_request_auth("GET", "/ws/k", raw_query, headers, now=NOW, region="us-east-1")
    except SigningError as exc:
        assert 400 <= exc.status < 500 if hasattr(exc, "status") else True


def _collect(decoder: ChunkedDecoder, pieces) -> tuple[bytes, list]:
    data, events = bytearray(), []
    for piece in pieces:
        for event in decoder.feed(piece):
            if isinstance(event, (bytes, bytearray, memoryview)):
                data += event
            else:
                events.append(event)
    return bytes(data), events


@FUZZ
@given(st.binary(max_size=200), st.booleans(), st.integers(1, 17))
@example(b"0\r\n\r\n", False, 1)
@example(b"ffffffffffffffff\r\n", False, 1)
@example(b"1;chunk-signature=" + b"a" * 64 + b"\r\nx\r\n0;chunk-signature=" + b"a" * 64 + b"\r\n\r\n", True, 3)
def test_chunked_decoder_is_total_and_split_independent(body, signed, step):
    def run(pieces):
        try:
            return _collect(ChunkedDecoder(signed=signed), pieces)
        except SigningError as exc:
            return ("error", exc.code)
    whole = run([body])
    split = run([body[i:i + step] for i in range(0, len(body), step)])
    bytewise = run([body[i:i + 1] for i in range(len(body))])
    assert whole == split == bytewise


@FUZZ
@given(st.lists(st.binary(min_size=1, max_size=64), max_size=6),
       st.lists(st.tuples(st.sampled_from(["x-amz-checksum-crc32", "x-amz-checksum-sha256"]),
                          st.text(string.ascii_letters + string.digits + "+/=", min_size=1, max_size=12)), max_size=2),
       st.integers(1, 9))
def test_chunked_round_trip(chunks, trailers, step):
    body = b"".join(encode_chunk(c) for c in chunks) + encode_last_chunk(trailers=trailers)
    decoder = ChunkedDecoder(signed=False)
    data, events = _collect(decoder, [body[i:i + step] for i in range(0, len(body), step)])
    assert data == b"".join(chunks)
    assert decoder.complete and events[-1] == EndOfBody()
    assert [e for e in events if isinstance(e, Trailer)] == [Trailer(n, v) for n, v in trailers]
    assert [e.size for e in events if isinstance(e, ChunkHeader)] == [len(c) for c in chunks] + [0]


PREFIX = "root/alice/ws1/"
xml_keys = st.lists(st.sampled_from(list("ab/._-é&<>'\"") + ["%2F", "%"]), max_size=8).map("".join)


def _listing_xml(keys, prefixes, extra: str) -> bytes:
    from xml.sax.saxutils import escape
    contents = "".join(f"<Contents><Key>{escape(k)}</Key><Size>1</Size></Contents>" for k in keys)
    common = "".join(f"<CommonPrefixes><Prefix>{escape(p)}</Prefix></CommonPrefixes>" for p in prefixes)
    return (f'<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
            f"<Name>phys</Name><Prefix>{PREFIX}</Prefix><KeyCount>{len(keys)}</KeyCount>{extra}{contents}{common}"
            f"</ListBucketResult>").encode()


BOX = SecretBox(b"\x02" * 32)


def _view(listing: ListingFilter | None, url_encoded: bool = False, prefix: str = "") -> ListingView:
    return ListingView(operation="ListObjects", workspace="ws1", physical_prefix=PREFIX, owner="alice", box=BOX,
                       echo={"prefix": prefix}, listing=listing or ListingFilter(), url_encoded=url_encoded)


@FUZZ
@given(st.lists(xml_keys, max_size=5), st.lists(xml_keys, max_size=3),
       st.sampled_from(["", "<Contents><Size>1</Size></Contents>", "<CommonPrefixes></CommonPrefixes>",
                        "<Location>x</Location>", "<Upload><Key>root/alice/ws1/u</Key></Upload>",
                        "<NextMarker>root/alice/ws1/b/hidden</NextMarker>", "<NextMarker>root/alice/ws2/x</NextMarker>",
                        "<NextKeyMarker>root/alice/ws1/a/b</NextKeyMarker>"
                        "<NextVersionIdMarker>v1</NextVersionIdMarker>"]),
       st.sampled_from([None, ListingFilter(("",)), ListingFilter(("a/",)), ListingFilter(())]),
       st.booleans(), st.booleans(), st.sampled_from(["", "a", "b/"]))
def test_rewrite_listing_never_shows_a_name_outside_the_workspace_prefix_or_grants(keys, prefixes, extra, listing,
                                                                                  inside, url_encoded, prefix):
    """Entries outside {physical prefix}{requested prefix} or the grants are dropped; every Next*Marker
    names a shown entry or is sealed (and then opens to the node's value)."""
    import xml.etree.ElementTree as ET
    from urllib.parse import unquote_plus
    phys = [PREFIX + k if inside else k for k in keys]
    body = _listing_xml(phys, [PREFIX + p for p in prefixes], extra)
    try:
        out = rewrite_listing(body, _view(listing, url_encoded, prefix))
    except S3Error as exc:
        assert exc.code == "MalformedXML"
        return
    root = ET.fromstring(out)
    ns = "{http://s3.amazonaws.com/doc/2006-03-01/}"
    assert root.findtext(f"{ns}Name") == "ws1"
    assert b"root/alice" not in out
    decode = unquote_plus if url_encoded else str
    shown = [decode(e.text) for e in root.iter() if e.tag in (f"{ns}Key", f"{ns}Prefix") and e.text and
             e not in (root.find(f"{ns}Prefix"),)]
    for name in shown:
        assert name.startswith(prefix) and (listing is None or listing.shows_key(name) or
                                            listing.shows_common_prefix(name))
    for tag, param in (("NextMarker", "marker"), ("NextKeyMarker", "key-marker"),
                       ("NextVersionIdMarker", "version-id-marker")):
        value = root.findtext(f"{ns}{tag}")
        if value and tag != "NextVersionIdMarker":
            assert decode(value) in shown or open_marker(BOX, "ws1", param, value) is not None
        if value and tag == "NextVersionIdMarker" and decode(root.findtext(f"{ns}NextKeyMarker")) not in shown:
            assert open_marker(BOX, "ws1", param, value) == "v1"


def test_sealed_markers_are_bound_to_workspace_and_parameter():
    token = rewrite_listing(_listing_xml([], [], "<NextMarker>root/alice/ws1/secret</NextMarker>"), _view(None))
    import xml.etree.ElementTree as ET
    sealed = ET.fromstring(token).findtext("{http://s3.amazonaws.com/doc/2006-03-01/}NextMarker")
    assert "secret" not in sealed and open_marker(BOX, "ws1", "marker", sealed) == "root/alice/ws1/secret"
    assert open_marker(BOX, "ws2", "marker", sealed) is None
    assert open_marker(BOX, "ws1", "key-marker", sealed) is None
    assert open_marker(BOX, "ws1", "marker", sealed[:-2]) is None
    assert open_marker(SecretBox(b"\x03" * 32), "ws1", "marker", sealed) is None


def test_entries_outside_the_requested_prefix_are_dropped_and_logged(caplog):
    """What SeaweedFS answers for a physical prefix 'ws//': the workspace's root and a directory above it."""
    body = _listing_xml([PREFIX + "mine.txt", "root/alice/ws2/x"], ["root/bob/"], "")
    with caplog.at_level("WARNING", logger="wio.proxy"):
        out = rewrite_listing(body, _view(None, prefix="/"))
    assert b"<Contents" not in out and b"<CommonPrefixes" not in out and b"<KeyCount>0<" in out
    assert "dropped 3 node entries outside the workspace and prefix" in caplog.text


@FUZZ
@given(st.binary(max_size=300))
@example(b"<!DOCTYPE x [<!ENTITY a 'b'>]><x>&a;</x>")
@example(b"<?xml version='1.0'?><!-- -->")
def test_rewrite_result_on_garbage_answers_an_s3_error(body):
    for rewrite in (lambda: rewrite_listing(body, _view(ListingFilter(("a/",)))),
                    lambda: rewrite_result(body, workspace="ws1", physical_prefix=PREFIX)):
        try:
            rewrite()
        except S3Error:
            pass


# Regression (found by the property above, fixed in e1b76c7): an entry without <Key> (or a
# CommonPrefixes without <Prefix>) in a backend listing crashed the rewriter with AttributeError/
# TypeError -> 500 InternalError with a traceback.
_KEYLESS = [
    ("<Contents><Size>1</Size></Contents>", ListingFilter(("a/",)), False),
    ("<CommonPrefixes></CommonPrefixes>", ListingFilter(("a/",)), False),
    ("<Contents><Size>1</Size></Contents>", ListingFilter(("",)), True),
]


@pytest.mark.parametrize("extra, listing, url_encoded", _KEYLESS)
def test_rewrite_result_entry_without_key(extra, listing, url_encoded):
    out = rewrite_listing(_listing_xml([], [], extra), _view(listing, url_encoded))
    assert b"<Contents" not in out and b"<CommonPrefixes" not in out
