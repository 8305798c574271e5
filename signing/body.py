"""Verify a request body while it streams: payload hash, chunk signatures, trailers, checksums.

The payload mode comes from x-amz-content-sha256 (S3 API reference, sig-v4-header-based-auth.html
and sigv4-streaming*.html):

- 64 hex digits: the body's SHA-256 must equal it (``XAmzContentSHA256Mismatch``);
- ``UNSIGNED-PAYLOAD``: no hash;
- ``STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]``: aws-chunked, each chunk signed in a chain from
  the seed signature, the final empty chunk included, then the trailers' signature
  (``SignatureDoesNotMatch``);
- ``STREAMING-UNSIGNED-PAYLOAD-TRAILER``: aws-chunked without signatures, integrity from the trailer.

On top, in every mode: Content-MD5 (``BadDigest``), one x-amz-checksum-* header or the trailer that
x-amz-trailer declares (``BadDigest``, "Checking object integrity" in the S3 user guide), and the
length (``IncompleteBody``): x-amz-decoded-content-length for aws-chunked, else Content-Length.

``BodyVerifier.feed`` returns payload bytes as soon as they arrive, before the checks that need the
whole body can pass, so the caller must hold back the end of the forwarded body until ``finish()``
returns: ``HoldBackBody`` does that bookkeeping. See its docstring for the wiring.
"""
from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from .auth import (
    PAYLOAD_HASH_KEYWORDS,
    STREAMING_PAYLOAD,
    STREAMING_PAYLOAD_TRAILER,
    STREAMING_UNSIGNED_PAYLOAD_TRAILER,
    UNSIGNED_PAYLOAD,
    ParsedAuth,
)
from .auth import _single as _single_value
from .canonical import HeaderMap, collect_headers
from .checksums import CHECKSUM_HEADERS, Checksum, decode_checksum_value
from .chunked import DEFAULT_MAX_CHUNK_SIZE, ChunkedDecoder, ChunkEnd, ChunkHeader, EndOfBody, Trailer
from .errors import SigningError
from .verify import SigningContext

if TYPE_CHECKING:
    from _hashlib import HASH

__all__ = ["BodyVerifier", "make_body_verifier", "HoldBackBody", "strip_aws_chunked"]

_STREAMING = frozenset({STREAMING_PAYLOAD, STREAMING_PAYLOAD_TRAILER, STREAMING_UNSIGNED_PAYLOAD_TRAILER})
_TRAILER_MODES = frozenset({STREAMING_PAYLOAD_TRAILER, STREAMING_UNSIGNED_PAYLOAD_TRAILER})
_SIGNED_STREAMING = frozenset({STREAMING_PAYLOAD, STREAMING_PAYLOAD_TRAILER})
_TRAILER_SIGNATURE = "x-amz-trailer-signature"


def strip_aws_chunked(content_encoding: str | None) -> str | None:
    """Content-Encoding without ``aws-chunked`` (what to forward once the body is decoded)."""
    if not content_encoding:
        return None
    kept = [part.strip() for part in content_encoding.split(",")]
    kept = [part for part in kept if part and part.lower() != "aws-chunked"]
    return ",".join(kept) or None


def _single(header_map: HeaderMap, name: str) -> str | None:
    """A header that may appear once (``InvalidRequest`` otherwise), its value stripped."""
    value = _single_value(header_map, name)
    return value.strip() if value is not None else None


def _length(value: str | None, name: str) -> int | None:
    if value is None:
        return None
    if not (value.isascii() and value.isdigit()):
        raise SigningError("InvalidArgument", f"The {name} header is not a valid length.")
    return int(value)


def _missing_trailer(name: str | None) -> SigningError:
    return SigningError("MalformedTrailerError", f"The declared trailing header {name} is missing.")


class BodyVerifier:
    """Checks one request body as it streams; see the module docstring for what is checked.

    ``feed(data)`` takes raw body bytes as received and returns the payload bytes to forward
    (decoded from aws-chunked if need be; may be ``b""``); it raises ``SigningError`` as soon as a
    check can fail (a bad chunk signature, malformed framing, more bytes than declared).
    ``finish()`` is called once the client's body has ended and raises if any check failed.
    After a failure every later call raises the same error.

    ``decoded_length`` is the payload size that will be forwarded (None when unknown: a plain
    body without Content-Length). ``content_encoding`` is the Content-Encoding to forward.
    ``checksums`` maps checksum header names to verified base64 values (from headers at once,
    from trailers after ``finish()``). ``trailer_names`` lists the checksum trailers declared up
    front, for a caller that re-sends them upstream as trailers.
    """

    def __init__(
        self,
        *,
        mode: str,
        decoded_length: int | None,
        expected_sha256: str | None = None,
        context: SigningContext | None = None,
        content_md5: bytes | None = None,
        header_checksum: tuple[str, bytes] | None = None,
        trailer_name: str | None = None,
        content_encoding: str | None = None,
        max_chunk_size: int = DEFAULT_MAX_CHUNK_SIZE,
    ):
        self.mode = mode
        self.decoded_length = decoded_length
        self.content_encoding = content_encoding
        self.checksums: dict[str, str] = {}
        self.trailer_names: tuple[str, ...] = (trailer_name,) if trailer_name else ()
        self.received = 0  # payload bytes returned so far
        self._error: SigningError | None = None
        self._finished = False
        self._sha256 = hashlib.sha256() if expected_sha256 is not None else None
        self._expected_sha256 = expected_sha256 or ""  # compared only when _sha256 runs
        self._md5 = hashlib.md5() if content_md5 is not None else None
        self._expected_md5 = content_md5
        self._header_checksum = header_checksum
        self._trailer_name = trailer_name
        checksum_header = header_checksum[0] if header_checksum else trailer_name
        self._checksum = Checksum(CHECKSUM_HEADERS[checksum_header]) if checksum_header else None
        self._context = context
        self._decoder: ChunkedDecoder | None = None
        if mode in _STREAMING:
            self._decoder = ChunkedDecoder(
                signed=mode in _SIGNED_STREAMING,
                max_chunk_size=max_chunk_size,
                allow_trailers=mode in _TRAILER_MODES,
            )
        self._previous_signature = context.seed_signature if context is not None else ""
        self._chunk_signature: str | None = None
        self._chunk_hash: HASH | None = None
        self._trailers: list[Trailer] = []

    # -- feeding ---------------------------------------------------------------------------------

    def feed(self, data: bytes | bytearray | memoryview) -> bytes:
        if self._error is not None:
            raise self._error
        if self._finished:
            raise self._fail(SigningError("IncompleteBody", "Body data after the end of the request."))
        if not data:
            return b""
        if not isinstance(data, bytes):
            data = bytes(data)
        try:
            if self._decoder is None:
                self._payload(data)
                return data
            out = []
            for event in self._decoder.feed(data):
                if isinstance(event, bytes):
                    self._payload(event)
                    if self._chunk_hash is not None:
                        self._chunk_hash.update(event)
                    out.append(event)
                elif isinstance(event, ChunkHeader):
                    self._chunk_signature = event.signature
                    if event.signature is not None:
                        self._chunk_hash = hashlib.sha256()
                elif isinstance(event, ChunkEnd):
                    self._end_chunk()
                elif isinstance(event, Trailer):
                    self._trailers.append(event)
                elif isinstance(event, EndOfBody):
                    self._end_body()
            if len(out) == 1:
                return out[0]
            return b"".join(out)
        except SigningError as error:
            raise self._fail(error) from None

    def _fail(self, error: SigningError) -> SigningError:
        self._error = error
        return error

    def _payload(self, data: bytes) -> None:
        self.received += len(data)
        if self.decoded_length is not None and self.received > self.decoded_length:
            what = "x-amz-decoded-content-length" if self._decoder is not None else "Content-Length"
            raise SigningError("IncompleteBody", f"The body is longer than its {what}.")
        if self._sha256 is not None:
            self._sha256.update(data)
        if self._md5 is not None:
            self._md5.update(data)
        if self._checksum is not None:
            self._checksum.update(data)

    def _signing_context(self) -> SigningContext:
        if self._context is None:
            raise SigningError("InvalidRequest", f"{self.mode} requires a signed request.")
        return self._context

    def _end_chunk(self) -> None:
        if self._chunk_signature is None:
            return
        assert self._chunk_hash is not None  # started with the chunk's signature
        expected = self._signing_context().chunk_signature(self._previous_signature, self._chunk_hash.hexdigest())
        if not hmac.compare_digest(expected, self._chunk_signature):
            raise SigningError(
                "SignatureDoesNotMatch",
                "The chunk signature we calculated does not match the one you provided.",
            )
        self._previous_signature = expected
        self._chunk_hash = None

    def _end_body(self) -> None:
        trailers: dict[str, str] = {}
        signature = None
        for trailer in self._trailers:
            if trailer.name == _TRAILER_SIGNATURE and self.mode == STREAMING_PAYLOAD_TRAILER:
                if signature is not None:
                    raise SigningError("MalformedTrailerError", "More than one x-amz-trailer-signature.")
                signature = trailer.value
            elif trailer.name != self._trailer_name or trailer.name in trailers:
                raise SigningError(
                    "MalformedTrailerError",
                    f"The trailing header {trailer.name} was not declared in x-amz-trailer.",
                )
            else:
                trailers[trailer.name] = trailer.value
        if self._trailer_name and self._trailer_name not in trailers:
            raise _missing_trailer(self._trailer_name)
        if self.mode == STREAMING_PAYLOAD_TRAILER:
            if signature is None:
                raise SigningError("MalformedTrailerError", "The x-amz-trailer-signature is missing.")
            canonical = "".join(f"{name}:{value}\n" for name, value in sorted(trailers.items()))
            expected = self._signing_context().trailer_signature(self._previous_signature, canonical.encode("ascii"))
            if not hmac.compare_digest(expected, signature):
                raise SigningError(
                    "SignatureDoesNotMatch",
                    "The trailer signature we calculated does not match the one you provided.",
                )
        if self._trailer_name:
            algorithm = CHECKSUM_HEADERS[self._trailer_name]
            digest = decode_checksum_value(algorithm, trailers[self._trailer_name])
            if digest is None:
                raise SigningError("BadDigest", f"Value for {self._trailer_name} trailing header is invalid.")
            self._header_checksum = (self._trailer_name, digest)

    # -- the verdict ----------------------------------------------------------------------------

    def finish(self) -> None:
        if self._error is not None:
            raise self._error
        if self._finished:
            return
        try:
            self._verdict()
        except SigningError as error:
            raise self._fail(error) from None
        self._finished = True

    def _verdict(self) -> None:
        if self._decoder is not None and not self._decoder.complete:
            raise SigningError("IncompleteBody", "The aws-chunked body ended before its last chunk.")
        if self.decoded_length is not None and self.received != self.decoded_length:
            what = "x-amz-decoded-content-length" if self._decoder is not None else "Content-Length"
            raise SigningError(
                "IncompleteBody",
                f"You did not provide the number of bytes specified by the {what} HTTP header.",
            )
        if self._sha256 is not None and not hmac.compare_digest(self._sha256.hexdigest(), self._expected_sha256):
            raise SigningError(
                "XAmzContentSHA256Mismatch",
                "The provided 'x-amz-content-sha256' header does not match what was computed.",
            )
        if self._md5 is not None and self._md5.digest() != self._expected_md5:
            raise SigningError("BadDigest", "The Content-MD5 you specified did not match what we received.")
        if self._checksum is not None:
            if self._header_checksum is None:  # a trailer declared in a mode that has no trailers
                raise _missing_trailer(self._trailer_name)
            name, expected = self._header_checksum
            if self._checksum.digest() != expected:
                algorithm = CHECKSUM_HEADERS[name].upper()
                raise SigningError(
                    "BadDigest", f"The {algorithm} you specified did not match the calculated checksum."
                )
            self.checksums[name] = self._checksum.b64digest()


def make_body_verifier(
    auth: ParsedAuth | None,
    ctx: SigningContext | None,
    headers: Mapping[str, str] | Iterable[tuple[str, str]] | Any,
    *,
    max_chunk_size: int = DEFAULT_MAX_CHUNK_SIZE,
) -> BodyVerifier:
    """Set up the checks for this request's body from its headers.

    ``auth``/``ctx`` come from ``parse_request_auth``/``verify_signature`` (both None for an
    anonymous or POST-policy request: then only unsigned modes are possible). Raises
    ``SigningError`` for inconsistent headers before any byte is read.
    """
    if auth is not None and headers is auth.headers_source:
        header_map = auth.header_map  # already indexed by parse_request_auth
    else:
        header_map = collect_headers(headers)
    mode = _single(header_map, "x-amz-content-sha256")
    if mode is None:
        mode = auth.payload_hash if auth is not None else UNSIGNED_PAYLOAD
    expected_sha256 = None
    if mode not in PAYLOAD_HASH_KEYWORDS:
        if len(mode) != 64 or any(c not in "0123456789abcdef" for c in mode):
            raise SigningError("InvalidArgument", "x-amz-content-sha256 is not a valid payload hash.")
        expected_sha256 = mode
    if mode in _SIGNED_STREAMING and ctx is None:
        raise SigningError("InvalidRequest", f"{mode} requires a signed request.")

    content_encoding = _single(header_map, "content-encoding")
    chunked_encoding = content_encoding is not None and any(
        part.strip().lower() == "aws-chunked" for part in content_encoding.split(",")
    )
    if chunked_encoding and mode not in _STREAMING:
        raise SigningError(
            "InvalidRequest", "Content-Encoding aws-chunked requires a STREAMING-* x-amz-content-sha256."
        )
    if mode in _STREAMING:
        decoded_length = _length(_single(header_map, "x-amz-decoded-content-length"),
                                 "x-amz-decoded-content-length")
        if decoded_length is None:
            raise SigningError("MissingContentLength",
                               "aws-chunked uploads must send x-amz-decoded-content-length.")
        content_encoding = strip_aws_chunked(content_encoding)
    else:
        decoded_length = _length(_single(header_map, "content-length"), "Content-Length")

    content_md5 = None
    md5_value = _single(header_map, "content-md5")
    if md5_value is not None:
        content_md5 = decode_checksum_value("md5", md5_value)
        if content_md5 is None:
            raise SigningError("InvalidDigest", "The Content-MD5 you specified is not valid.")

    header_checksum = None
    present = [name for name in CHECKSUM_HEADERS if name in header_map]
    if len(present) > 1:
        raise SigningError("InvalidRequest", "Expecting a single x-amz-checksum- header.")
    if present:
        name = present[0]
        value = _single(header_map, name)
        digest = decode_checksum_value(CHECKSUM_HEADERS[name], value) if value is not None else None
        if digest is None:
            # AWS answers InvalidRequest here; RGW, SeaweedFS and ceph/s3-tests (#644) BadDigest: wio
            # follows the latter (docs/conformance.md, issue 18)
            raise SigningError("BadDigest", f"Value for {name} header is invalid.")
        header_checksum = (name, digest)

    trailer_name = _single(header_map, "x-amz-trailer")
    if trailer_name is not None:
        trailer_name = trailer_name.lower()
        if mode not in _TRAILER_MODES:
            raise SigningError("InvalidRequest", "x-amz-trailer requires a STREAMING-*-TRAILER x-amz-content-sha256.")
        if trailer_name not in CHECKSUM_HEADERS:
            raise SigningError("InvalidRequest", "The value specified in the x-amz-trailer header is not supported.")
        if header_checksum is not None:
            raise SigningError("InvalidRequest", "Expecting a single x-amz-checksum- header.")

    verifier = BodyVerifier(
        mode=mode,
        decoded_length=decoded_length,
        expected_sha256=expected_sha256,
        context=ctx,
        content_md5=content_md5,
        header_checksum=header_checksum,
        trailer_name=trailer_name,
        content_encoding=content_encoding,
        max_chunk_size=max_chunk_size,
    )
    return verifier


class HoldBackBody:
    """Forward a verified body without ever letting the upstream see all of it before the verdict.

    ``feed(data)`` returns the bytes that may be forwarded now: everything decoded so far except
    the last ``hold`` bytes. ``finish()`` runs the verifier's final checks and only then returns
    the held tail. If a check fails, the tail is never released, so the upstream, which was told
    the full Content-Length, sees a short body, and the caller aborts the upstream request: an
    object is never created from a bad body.

    Wiring in the proxy::

        gate = HoldBackBody(make_body_verifier(auth, ctx, request.headers))
        async def body():
            async for piece in request.content.iter_any():
                out = gate.feed(piece)          # may raise SigningError: stop, abort upstream
                if out:
                    yield out
            yield gate.finish()                 # raises SigningError: tail withheld
        # upstream Content-Length = gate.decoded_length (required when it is 0, see below)

    A body of length 0 has no tail to hold: with Content-Length 0 the upstream commits as soon as
    it has the headers, so read and ``finish()`` the client body before starting the upstream
    request when ``decoded_length`` is 0 (or small: it costs nothing to buffer a few KiB).
    """

    def __init__(self, verifier: BodyVerifier, hold: int = 1):
        if hold < 1:
            raise ValueError("hold must be at least 1 byte")
        self.verifier = verifier
        self.hold = hold
        self._tail = b""

    @property
    def decoded_length(self) -> int | None:
        return self.verifier.decoded_length

    @property
    def checksums(self) -> dict[str, str]:
        return self.verifier.checksums

    def feed(self, data: bytes) -> bytes:
        out = self.verifier.feed(data)
        if not out:
            return b""
        if self._tail:
            out = self._tail + out
        if len(out) <= self.hold:
            self._tail = out
            return b""
        self._tail = out[-self.hold:]
        return out[:-self.hold]

    def finish(self) -> bytes:
        self.verifier.finish()
        tail, self._tail = self._tail, b""
        return tail
