"""aws-chunked bodies, trailers, checksums: the decoder and the body verifier, with properties.

Bodies come from our own signer (``ChunkSigner``), whose chunk and trailer signatures are checked
against the AWS documentation examples in test_signing_vectors.py and whose unsigned framing is
compared byte for byte with botocore's ``AwsChunkedWrapper`` here.
"""
from __future__ import annotations

import base64
import hashlib
import io
import zlib
from datetime import datetime, timezone

import pytest
from botocore import httpchecksum
from hypothesis import given, settings
from hypothesis import strategies as st

from signing import (
    STREAMING_PAYLOAD,
    STREAMING_PAYLOAD_TRAILER,
    STREAMING_UNSIGNED_PAYLOAD_TRAILER,
    UNSIGNED_PAYLOAD,
    BodyVerifier,
    ChunkedDecoder,
    ChunkEnd,
    ChunkHeader,
    ChunkSigner,
    EndOfBody,
    HoldBackBody,
    SigningError,
    Trailer,
    make_body_verifier,
    parse_request_auth,
    sign_request_with_context,
    verify_signature,
)
from signing.checksums import _py_crc32c, _py_crc64nvme, crc32c, crc64nvme, new_checksum

NOW = datetime(2024, 5, 1, 8, 0, tzinfo=timezone.utc)
REGION = "eu-central-1"
ACCESS = "AKIDSTREAM"
SECRET = "stream/secret"
CHECKSUMS = ["x-amz-checksum-crc32", "x-amz-checksum-crc32c", "x-amz-checksum-crc64nvme",
             "x-amz-checksum-sha1", "x-amz-checksum-sha256"]
SIGNED_MODES = [STREAMING_PAYLOAD, STREAMING_PAYLOAD_TRAILER]


def split(payload: bytes, sizes: list[int]) -> list[bytes]:
    """Cut ``payload`` into chunks of the given sizes (cycled), none empty."""
    pieces, pos, i = [], 0, 0
    while pos < len(payload):
        size = max(1, sizes[i % len(sizes)]) if sizes else len(payload)
        pieces.append(payload[pos:pos + size])
        pos += size
        i += 1
    return pieces


def streaming_request(payload: bytes, mode: str, *, trailer: str | None = None, sizes: list[int] | None = None,
                      secret: str = SECRET, extra_headers: list[tuple[str, str]] | None = None):
    """Headers and aws-chunked body of a PUT, signed as a client would."""
    headers = [("Host", "proxy.example"), ("Content-Encoding", "aws-chunked"),
               ("X-Amz-Decoded-Content-Length", str(len(payload)))] + (extra_headers or [])
    if trailer:
        headers.append(("X-Amz-Trailer", trailer))
    added, ctx = sign_request_with_context(
        "PUT", "/ws/obj", "", headers, payload_hash=mode, access_key=ACCESS, secret_key=secret,
        region=REGION, now=NOW,
    )
    signer = ChunkSigner(ctx if mode in SIGNED_MODES else None, trailer)
    body = b"".join(signer.chunk(piece) for piece in split(payload, sizes or [8192])) + signer.final()
    return headers + list(added.items()), body


def run_verifier(headers, body: bytes, pieces: list[int] | None = None, secret: str = SECRET):
    """The proxy's sequence: returns (decoded payload, checksums); raises SigningError."""
    auth = parse_request_auth("PUT", "/ws/obj", "", headers, now=NOW, region=REGION)
    ctx = verify_signature(auth, secret, "PUT", "/ws/obj", "", headers)
    gate = HoldBackBody(make_body_verifier(auth, ctx, headers))
    out = []
    pos = 0
    for size in split(body, pieces or [len(body) or 1]):
        out.append(gate.feed(size))
        pos += len(size)
    out.append(gate.finish())
    return b"".join(out), dict(gate.checksums)


def expected_checksum(name: str, payload: bytes) -> str:
    checksum = new_checksum(name.rsplit("-", 1)[1])
    checksum.update(payload)
    return checksum.b64digest()


# -- the decoder -----------------------------------------------------------------------------------


def decode_all(decoder: ChunkedDecoder, pieces: list[bytes]) -> tuple[bytes, list]:
    data, others = [], []
    for piece in pieces:
        for event in decoder.feed(piece):
            (data if isinstance(event, bytes) else others).append(event)
    return b"".join(data), others


@settings(database=None, max_examples=60, deadline=None)
@given(payload=st.binary(max_size=3000), sizes=st.lists(st.integers(1, 700), min_size=1, max_size=5),
       mode=st.sampled_from([STREAMING_PAYLOAD, STREAMING_PAYLOAD_TRAILER, STREAMING_UNSIGNED_PAYLOAD_TRAILER]),
       cuts=st.lists(st.integers(1, 97), min_size=1, max_size=6))
def test_decoder_gives_the_same_result_whole_or_byte_by_byte(payload, sizes, mode, cuts) -> None:
    trailer = "x-amz-checksum-crc32c" if mode != STREAMING_PAYLOAD else None
    _, body = streaming_request(payload, mode, trailer=trailer, sizes=sizes)
    signed = mode in SIGNED_MODES
    results = [
        decode_all(ChunkedDecoder(signed=signed, allow_trailers=trailer is not None), pieces)
        for pieces in ([body], [bytes([b]) for b in body], split(body, cuts))
    ]
    assert results[0] == results[1] == results[2]
    data, events = results[0]
    assert data == payload
    headers = [e for e in events if isinstance(e, ChunkHeader)]
    assert [h.size for h in headers] == [len(p) for p in split(payload, sizes)] + [0]
    assert all((h.signature is not None) == signed for h in headers)
    assert events.count(ChunkEnd()) == len(headers)
    assert events[-1] == EndOfBody()
    assert [e.name for e in events if isinstance(e, Trailer)] == (
        ["x-amz-checksum-crc32c"] + (["x-amz-trailer-signature"] if signed else []) if trailer else [])


@pytest.mark.parametrize("body, message", [
    (b"zz\r\n", "invalid chunk size"),
    (b"0x10\r\n", "invalid chunk size"),
    (b" 10\r\n", "invalid chunk size"),
    (b"1_0\r\n", "invalid chunk size"),
    (b"3\nabc", "CRLF"),
    (b"3\r\nabcX", "CRLF"),
    (b"3;ext=1\r\nabc\r\n", "extension"),
    (b"1000001\r\n", "exceeds"),
    (b"1" * 2000, "too long"),
    (b"0\r\n\r\nX", "after the end"),
])
def test_decoder_rejects_malformed_framing(body: bytes, message: str) -> None:
    decoder = ChunkedDecoder(signed=False, max_chunk_size=1 << 24)
    with pytest.raises(SigningError) as caught:
        for byte in body:
            decoder.feed(bytes([byte]))
    assert caught.value.code == "InvalidRequest"
    assert message in caught.value.message


def test_decoder_signed_mode_needs_a_well_formed_signature() -> None:
    for line in (b"3\r\n", b"3;chunk-signature=abc\r\n", b"3;chunk-signature=" + b"A" * 64 + b"\r\n",
                 b"3;other=" + b"a" * 64 + b"\r\n"):
        with pytest.raises(SigningError):
            ChunkedDecoder(signed=True).feed(line)
    events = ChunkedDecoder(signed=True).feed(b"3;chunk-signature=" + b"a" * 64 + b"\r\n")
    assert events == [ChunkHeader(3, "a" * 64)]


def test_decoder_trailers_only_where_declared() -> None:
    with pytest.raises(SigningError) as caught:
        ChunkedDecoder(signed=False, allow_trailers=False).feed(b"0\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n")
    assert caught.value.code == "MalformedTrailerError"
    with pytest.raises(SigningError) as caught:
        ChunkedDecoder(signed=False).feed(b"0\r\nno colon here\r\n\r\n")
    assert caught.value.code == "MalformedTrailerError"


# -- our framing is botocore's framing --------------------------------------------------------------


@pytest.mark.parametrize("name, cls", [
    ("x-amz-checksum-crc32", httpchecksum.Crc32Checksum),
    ("x-amz-checksum-sha1", httpchecksum.Sha1Checksum),
    ("x-amz-checksum-sha256", httpchecksum.Sha256Checksum),
] + ([("x-amz-checksum-crc32c", httpchecksum.CrtCrc32cChecksum),
      ("x-amz-checksum-crc64nvme", httpchecksum.CrtCrc64NvmeChecksum)] if httpchecksum.HAS_CRT else []))
@pytest.mark.parametrize("size", [0, 1, 100, 1024, 4097])
def test_unsigned_trailer_framing_matches_botocore(name, cls, size) -> None:
    payload = bytes((i * 7) % 251 for i in range(size))
    theirs = httpchecksum.AwsChunkedWrapper(io.BytesIO(payload), checksum_cls=cls, checksum_name=name,
                                            chunk_size=1024).read()
    headers, ours = streaming_request(payload, STREAMING_UNSIGNED_PAYLOAD_TRAILER, trailer=name, sizes=[1024])
    assert ours == theirs
    out, checksums = run_verifier(headers, theirs, pieces=[5])
    assert out == payload
    assert checksums == {name: expected_checksum(name, payload)}


# -- the verifier: round trips ---------------------------------------------------------------------

MODES_AND_TRAILERS = (
    [(STREAMING_PAYLOAD, None)]
    + [(STREAMING_PAYLOAD_TRAILER, name) for name in CHECKSUMS]
    + [(STREAMING_UNSIGNED_PAYLOAD_TRAILER, name) for name in CHECKSUMS]
)


@settings(database=None, max_examples=60, deadline=None)
@given(payload=st.binary(max_size=5000), sizes=st.lists(st.integers(1, 2000), min_size=1, max_size=4),
       pieces=st.lists(st.integers(1, 3000), min_size=1, max_size=5),
       mode_trailer=st.sampled_from(MODES_AND_TRAILERS),
       secret=st.text(min_size=1, max_size=30))
def test_streaming_round_trip(payload, sizes, pieces, mode_trailer, secret) -> None:
    mode, trailer = mode_trailer
    headers, body = streaming_request(payload, mode, trailer=trailer, sizes=sizes, secret=secret)
    out, checksums = run_verifier(headers, body, pieces, secret=secret)
    assert out == payload
    assert checksums == ({trailer: expected_checksum(trailer, payload)} if trailer else {})


def test_large_body_in_big_chunks() -> None:
    payload = hashlib.sha256(b"seed").digest() * (3 * 1024 * 1024 // 32 + 5)
    headers, body = streaming_request(payload, STREAMING_PAYLOAD_TRAILER, trailer="x-amz-checksum-crc64nvme",
                                      sizes=[1 << 20])
    out, checksums = run_verifier(headers, body, pieces=[65536])
    assert out == payload
    assert "x-amz-checksum-crc64nvme" in checksums


# -- the verifier: tampering -----------------------------------------------------------------------


def _accepts(headers, body) -> tuple[bytes, dict] | None:
    try:
        return run_verifier(headers, body, pieces=[13])
    except SigningError:
        return None


@settings(database=None, max_examples=25, deadline=None)
@given(payload=st.binary(min_size=1, max_size=300), sizes=st.lists(st.integers(1, 120), min_size=1, max_size=3),
       mode_trailer=st.sampled_from(MODES_AND_TRAILERS), flip=st.integers(1, 255))
def test_any_single_byte_change_is_detected(payload, sizes, mode_trailer, flip) -> None:
    """Change each byte of the body in turn: the verifier refuses it, or the change was
    meaningless (hex digit or header name case) and the output is exactly the original."""
    mode, trailer = mode_trailer
    headers, body = streaming_request(payload, mode, trailer=trailer, sizes=sizes)
    original_checksums = {trailer: expected_checksum(trailer, payload)} if trailer else {}
    for index in range(len(body)):
        tampered = bytearray(body)
        tampered[index] ^= flip
        tampered = bytes(tampered)
        result = _accepts(headers, tampered)
        if result is None:
            continue
        out, checksums = result
        assert out == payload, index
        assert checksums == original_checksums, index
        if mode in SIGNED_MODES:
            assert tampered.lower() == body.lower(), (index, tampered[index - 5:index + 5])


@pytest.mark.parametrize("mode, trailer", [(STREAMING_PAYLOAD, None),
                                           (STREAMING_PAYLOAD_TRAILER, "x-amz-checksum-sha256")])
def test_signed_request_headers_are_bound_to_the_chunks(mode, trailer) -> None:
    headers, body = streaming_request(b"x" * 100, mode, trailer=trailer, sizes=[40])
    # the same body under another signed request (another seed) fails at the first chunk
    other_headers, _ = streaming_request(b"y" * 100, mode, trailer=trailer, sizes=[40],
                                         extra_headers=[("x-amz-meta-other", "1")])
    with pytest.raises(SigningError) as caught:
        run_verifier(other_headers, body)
    assert caught.value.code == "SignatureDoesNotMatch"
    # changing a signed header breaks the seed signature
    changed = [(n, "99" if n == "X-Amz-Decoded-Content-Length" else v) for n, v in headers]
    with pytest.raises(SigningError) as caught:
        run_verifier(changed, body)
    assert caught.value.code == "SignatureDoesNotMatch"


def test_chunks_cannot_be_reordered_dropped_or_truncated() -> None:
    payload = bytes(range(200))
    headers, body = streaming_request(payload, STREAMING_PAYLOAD, sizes=[50])
    chunks = body.split(b"\r\n")
    # each chunk is "<line>\r\n<data>\r\n"; rebuild with the 2nd and 3rd chunks swapped
    framed = [b"\r\n".join(chunks[i:i + 2]) + b"\r\n" for i in range(0, 8, 2)]
    swapped = framed[0] + framed[2] + framed[1] + framed[3] + body[sum(map(len, framed)):]
    assert len(swapped) == len(body) and swapped != body
    with pytest.raises(SigningError) as caught:
        run_verifier(headers, swapped)
    assert caught.value.code == "SignatureDoesNotMatch"
    for cut in range(len(body)):
        with pytest.raises(SigningError) as caught:
            run_verifier(headers, body[:cut])
        assert caught.value.code in ("IncompleteBody", "SignatureDoesNotMatch", "InvalidRequest"), cut
    with pytest.raises(SigningError):
        run_verifier(headers, body + b"0\r\n\r\n")


def test_decoded_length_must_match() -> None:
    payload = b"z" * 64
    for declared in ("63", "65"):
        headers = [("Host", "proxy.example"), ("Content-Encoding", "aws-chunked"),
                   ("X-Amz-Decoded-Content-Length", declared)]
        added, ctx = sign_request_with_context("PUT", "/ws/obj", "", headers, payload_hash=STREAMING_PAYLOAD,
                                               access_key=ACCESS, secret_key=SECRET, region=REGION, now=NOW)
        signer = ChunkSigner(ctx)
        body = signer.chunk(payload) + signer.final()
        with pytest.raises(SigningError) as caught:
            run_verifier(headers + list(added.items()), body)
        assert caught.value.code == "IncompleteBody"


def test_trailer_problems() -> None:
    payload = b"abc"
    name = "x-amz-checksum-crc32"
    headers, body = streaming_request(payload, STREAMING_UNSIGNED_PAYLOAD_TRAILER, trailer=name)
    good = expected_checksum(name, payload)
    cases = {
        "missing": body.replace(f"{name}:{good}\r\n".encode(), b""),
        "undeclared": body.replace(name.encode(), b"x-amz-checksum-sha1"),
        "wrong": body.replace(good.encode(), expected_checksum(name, b"abd").encode()),
        "invalid": body.replace(good.encode(), b"!!!!!!!!"),
        "twice": body.replace(b"\r\n\r\n", f"\r\n{name}:{good}\r\n\r\n".encode()),
    }
    codes = {}
    for label, tampered in cases.items():
        with pytest.raises(SigningError) as caught:
            run_verifier(headers, tampered)
        codes[label] = caught.value.code
    assert codes == {"missing": "MalformedTrailerError", "undeclared": "MalformedTrailerError",
                     "wrong": "BadDigest", "invalid": "BadDigest", "twice": "MalformedTrailerError"}

    signed_headers, signed_body = streaming_request(payload, STREAMING_PAYLOAD_TRAILER, trailer=name)
    without_signature = signed_body[:signed_body.index(b"x-amz-trailer-signature")] + b"\r\n"
    with pytest.raises(SigningError) as caught:
        run_verifier(signed_headers, without_signature)
    assert caught.value.code == "MalformedTrailerError"


# -- non-chunked bodies -----------------------------------------------------------------------------


def plain_request(body: bytes, payload_hash: str, extra: list[tuple[str, str]] | None = None):
    headers = [("Host", "proxy.example"), ("Content-Length", str(len(body)))] + (extra or [])
    added, _ = sign_request_with_context("PUT", "/ws/obj", "", headers, payload_hash=payload_hash,
                                         access_key=ACCESS, secret_key=SECRET, region=REGION, now=NOW)
    return headers + list(added.items())


def test_signed_payload_hash() -> None:
    body = b"payload bytes"
    headers = plain_request(body, hashlib.sha256(body).hexdigest())
    assert run_verifier(headers, body, pieces=[1])[0] == body
    with pytest.raises(SigningError) as caught:
        run_verifier(headers, b"payload bytez")
    assert caught.value.code == "XAmzContentSHA256Mismatch"
    with pytest.raises(SigningError) as caught:
        run_verifier(headers, body[:-1])
    assert caught.value.code == "IncompleteBody"


@pytest.mark.parametrize("name", CHECKSUMS)
def test_checksum_header_and_content_md5(name) -> None:
    body = b"some object body"
    md5 = base64.b64encode(hashlib.md5(body).digest()).decode()
    headers = plain_request(body, UNSIGNED_PAYLOAD, [(name, expected_checksum(name, body)), ("Content-MD5", md5)])
    out, checksums = run_verifier(headers, body)
    assert out == body and checksums == {name: expected_checksum(name, body)}
    with pytest.raises(SigningError) as caught:
        run_verifier(headers, b"some object bodY")
    assert caught.value.code == "BadDigest"
    wrong_md5 = plain_request(body, UNSIGNED_PAYLOAD, [("Content-MD5", base64.b64encode(b"x" * 16).decode())])
    with pytest.raises(SigningError) as caught:
        run_verifier(wrong_md5, body)
    assert caught.value.code == "BadDigest"


@pytest.mark.parametrize("extra, code", [
    ([("Content-MD5", "not base64")], "InvalidDigest"),
    ([("x-amz-checksum-crc32", "AAAA")], "BadDigest"),   # not 4 bytes: malformed (AWS: InvalidRequest)
    ([("x-amz-checksum-sha256", "bad")], "BadDigest"),
    ([("x-amz-checksum-crc32", "AAAAAA=="), ("x-amz-checksum-sha1", "AAAAAAAAAAAAAAAAAAAAAAAAAAA=")], "InvalidRequest"),
    ([("x-amz-trailer", "x-amz-checksum-crc32")], "InvalidRequest"),
    ([("Content-Encoding", "aws-chunked")], "InvalidRequest"),
])
def test_inconsistent_body_headers_are_refused_before_reading(extra, code) -> None:
    headers = plain_request(b"abc", UNSIGNED_PAYLOAD, extra)
    auth = parse_request_auth("PUT", "/ws/obj", "", headers, now=NOW, region=REGION)
    ctx = verify_signature(auth, SECRET, "PUT", "/ws/obj", "", headers)
    with pytest.raises(SigningError) as caught:
        make_body_verifier(auth, ctx, headers)
    assert caught.value.code == code


def test_streaming_needs_the_decoded_length() -> None:
    headers = [("Host", "proxy.example"), ("Content-Encoding", "aws-chunked")]
    added, ctx = sign_request_with_context("PUT", "/ws/obj", "", headers, payload_hash=STREAMING_PAYLOAD,
                                           access_key=ACCESS, secret_key=SECRET, region=REGION, now=NOW)
    headers += list(added.items())
    auth = parse_request_auth("PUT", "/ws/obj", "", headers, now=NOW, region=REGION)
    with pytest.raises(SigningError) as caught:
        make_body_verifier(auth, verify_signature(auth, SECRET, "PUT", "/ws/obj", "", headers), headers)
    assert caught.value.code == "MissingContentLength"


def test_verifier_built_directly_fails_with_an_s3_error() -> None:
    """BodyVerifier is public: built without make_body_verifier's checks, a signed body without a
    signing context or a trailer declared in a mode without trailers is refused, not a crash."""
    _, body = streaming_request(b"abc", STREAMING_PAYLOAD)
    verifier = BodyVerifier(mode=STREAMING_PAYLOAD, decoded_length=3, context=None)
    with pytest.raises(SigningError) as caught:
        verifier.feed(body)
    assert caught.value.code == "InvalidRequest"

    verifier = BodyVerifier(mode=UNSIGNED_PAYLOAD, decoded_length=3, trailer_name="x-amz-checksum-crc32")
    assert verifier.feed(b"abc") == b"abc"
    with pytest.raises(SigningError) as caught:
        verifier.finish()
    assert caught.value.code == "MalformedTrailerError"


def test_forwarded_content_encoding_drops_aws_chunked() -> None:
    headers, body = streaming_request(b"gz", STREAMING_PAYLOAD, extra_headers=[])
    headers = [(n, "gzip,aws-chunked" if n == "Content-Encoding" else v) for n, v in headers]
    auth = parse_request_auth("PUT", "/ws/obj", "", headers, now=NOW, region=REGION)
    with pytest.raises(SigningError):  # Content-Encoding is signed: the change is caught
        verify_signature(auth, SECRET, "PUT", "/ws/obj", "", headers)
    headers, body = streaming_request(b"gz", STREAMING_PAYLOAD, extra_headers=[])
    verifier = make_body_verifier(None, None, [("Content-Encoding", "aws-chunked, gzip"),
                                               ("x-amz-content-sha256", STREAMING_UNSIGNED_PAYLOAD_TRAILER),
                                               ("x-amz-decoded-content-length", "0")])
    assert verifier.content_encoding == "gzip"
    assert verifier.feed(b"0\r\n\r\n") == b""
    verifier.finish()


# -- holding back the tail --------------------------------------------------------------------------


@settings(database=None, max_examples=40, deadline=None)
@given(payload=st.binary(min_size=1, max_size=2000), pieces=st.lists(st.integers(1, 500), min_size=1, max_size=5),
       hold=st.integers(1, 64), tamper=st.booleans())
def test_hold_back_never_releases_the_whole_body_before_the_verdict(payload, pieces, hold, tamper) -> None:
    headers, body = streaming_request(payload, STREAMING_PAYLOAD_TRAILER, trailer="x-amz-checksum-crc32",
                                      sizes=[700])
    if tamper:  # a bad trailer: only detectable at the very end
        body = body.replace(b"x-amz-checksum-crc32:", b"x-amz-checksum-crc32: ")
        body = body[:body.index(b"x-amz-trailer-signature:") + 24] + b"0" * 64 + b"\r\n\r\n"
    auth = parse_request_auth("PUT", "/ws/obj", "", headers, now=NOW, region=REGION)
    gate = HoldBackBody(make_body_verifier(auth, verify_signature(auth, SECRET, "PUT", "/ws/obj", "", headers),
                                           headers), hold=hold)
    released = b""
    try:
        for piece in split(body, pieces):
            released += gate.feed(piece)
            assert len(released) <= len(payload) - min(hold, len(payload))
        released += gate.finish()
    except SigningError:
        assert tamper
        assert len(released) < len(payload)
    else:
        assert not tamper
        assert released == payload


def test_errors_are_sticky() -> None:
    headers, body = streaming_request(b"q" * 10, STREAMING_PAYLOAD, sizes=[5])
    auth = parse_request_auth("PUT", "/ws/obj", "", headers, now=NOW, region=REGION)
    verifier = make_body_verifier(auth, verify_signature(auth, SECRET, "PUT", "/ws/obj", "", headers), headers)
    bad = body.replace(b"qqqqq", b"qqqqQ", 1)
    with pytest.raises(SigningError):
        verifier.feed(bad)
    for call in (lambda: verifier.feed(b"more"), verifier.finish):
        with pytest.raises(SigningError) as caught:
            call()
        assert caught.value.code == "SignatureDoesNotMatch"


# -- checksum implementations ------------------------------------------------------------------------


def test_checksum_check_values() -> None:
    data = b"123456789"
    assert zlib.crc32(data) == 0xCBF43926
    assert crc32c(data) == _py_crc32c(data) == 0xE3069283
    assert crc64nvme(data) == _py_crc64nvme(data) == 0xAE8B14860A799888


@settings(database=None, max_examples=30, deadline=None)
@given(parts=st.lists(st.binary(max_size=300), max_size=4))
def test_streaming_checksums_match_fallbacks(parts) -> None:
    crc_c = crc_64 = py_c = py_64 = 0
    for part in parts:
        crc_c, crc_64 = crc32c(part, crc_c), crc64nvme(part, crc_64)
        py_c, py_64 = _py_crc32c(part, py_c), _py_crc64nvme(part, py_64)
    assert (crc_c, crc_64) == (py_c, py_64)
