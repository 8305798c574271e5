"""The aws-chunked content encoding: a resumable decoder and the matching encoders.

Wire format (S3 API reference, sigv4-streaming.html and sigv4-streaming-trailers.html)::

    chunk      = hex-size [ ";chunk-signature=" 64HEXDIG ] CRLF data CRLF
    last-chunk = "0" [ ";chunk-signature=" 64HEXDIG ] CRLF
    body       = *chunk last-chunk *( trailer-name ":" value CRLF ) CRLF

Signed modes carry ``chunk-signature`` on every chunk line, unsigned ones never do. Trailers
(``x-amz-checksum-*``, and ``x-amz-trailer-signature`` in the signed variant) follow the last chunk.

``ChunkedDecoder`` is a state machine in the manner of h11's ``ChunkedReader``: ``feed(bytes)``
consumes whatever arrived and returns events, keeping partial lines between calls, so the events
(data events aside, which may be split differently) are the same whether the body arrives whole
or one byte at a time. It never buffers chunk data: payload bytes are returned as they arrive and
only framing lines (bounded by ``max_line``) are held. It checks framing only; signatures and
checksums are the body verifier's job.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import SigningError

__all__ = [
    "ChunkedDecoder",
    "ChunkHeader",
    "ChunkEnd",
    "Trailer",
    "EndOfBody",
    "DEFAULT_MAX_CHUNK_SIZE",
    "encode_chunk",
    "encode_last_chunk",
]

DEFAULT_MAX_CHUNK_SIZE = 16 * 1024 * 1024
_MAX_LINE = 1024  # a chunk line is ~90 bytes, a checksum trailer ~70
_MAX_TRAILER_BYTES = 16 * 1024
_SIZE = re.compile(rb"[0-9a-fA-F]{1,16}")
_SIGNATURE = re.compile(rb"[0-9a-f]{64}")
_SIG_PREFIX = b"chunk-signature="


@dataclass(frozen=True, slots=True)
class ChunkHeader:
    """A chunk line: its data size and, in signed modes, its signature (lowercase hex)."""

    size: int
    signature: str | None


@dataclass(frozen=True, slots=True)
class ChunkEnd:
    """The chunk's data is complete (for the last, empty chunk: right after its line)."""


@dataclass(frozen=True, slots=True)
class Trailer:
    """One trailing header; ``name`` lowercased, ``value`` stripped."""

    name: str
    value: str


@dataclass(frozen=True, slots=True)
class EndOfBody:
    """The empty line after the last chunk and its trailers: the body is complete."""


_Event = bytes | ChunkHeader | ChunkEnd | Trailer | EndOfBody
_CHUNK_END = ChunkEnd()
_END = EndOfBody()

# states
_LINE, _DATA, _DATA_CRLF, _TRAILERS, _DONE = range(5)


def _framing_error(message: str) -> SigningError:
    return SigningError("InvalidRequest", f"Malformed aws-chunked body: {message}")


class ChunkedDecoder:
    """Decode an aws-chunked body fed in arbitrary pieces.

    ``feed(data)`` returns a list of events: ``bytes`` (payload data, in order), ``ChunkHeader``,
    ``ChunkEnd``, ``Trailer`` and finally ``EndOfBody``. Malformed framing raises ``SigningError``
    (``InvalidRequest``, or ``MalformedTrailerError`` for trailers); bytes after the end too.
    ``complete`` tells whether ``EndOfBody`` was reached.
    """

    def __init__(self, *, signed: bool, max_chunk_size: int = DEFAULT_MAX_CHUNK_SIZE,
                 max_line: int = _MAX_LINE, allow_trailers: bool = True):
        self.signed = signed
        self.max_chunk_size = max_chunk_size
        self.max_line = max_line
        self.allow_trailers = allow_trailers
        self._state = _LINE
        self._line = bytearray()
        self._remaining = 0
        self._crlf_seen = 0
        self._trailer_bytes = 0
        self._last = False

    @property
    def complete(self) -> bool:
        return self._state == _DONE

    def feed(self, data: bytes) -> list[_Event]:
        events: list[_Event] = []
        pos = 0
        end = len(data)
        while pos < end:
            state = self._state
            if state == _DATA:
                take = min(self._remaining, end - pos)
                events.append(data if take == end and pos == 0 else data[pos:pos + take])
                pos += take
                self._remaining -= take
                if not self._remaining:
                    self._state = _DATA_CRLF
            elif state == _LINE or state == _TRAILERS:
                newline = data.find(b"\n", pos)
                stop = end if newline < 0 else newline + 1
                if len(self._line) + (stop - pos) > self.max_line:
                    if state == _TRAILERS:
                        raise SigningError("MalformedTrailerError", "A trailing header line is too long.")
                    raise _framing_error("chunk line too long")
                self._line += data[pos:stop]
                pos = stop
                if newline < 0:
                    break
                line = bytes(self._line)
                self._line.clear()
                if not line.endswith(b"\r\n"):
                    raise _framing_error("line not terminated by CRLF")
                line = line[:-2]
                if state == _LINE:
                    self._chunk_line(line, events)
                else:
                    self._trailer_line(line, events)
            elif state == _DATA_CRLF:
                byte = data[pos]
                if byte != b"\r\n"[self._crlf_seen]:
                    raise _framing_error("chunk data not followed by CRLF (chunk size wrong?)")
                pos += 1
                self._crlf_seen += 1
                if self._crlf_seen == 2:
                    self._crlf_seen = 0
                    self._state = _LINE
                    events.append(_CHUNK_END)
            else:
                raise _framing_error("data after the end of the body")
        return events

    def _chunk_line(self, line: bytes, events: list[_Event]) -> None:
        size_text, semicolon, extension = line.partition(b";")
        if _SIZE.fullmatch(size_text) is None:
            raise _framing_error("invalid chunk size")
        size = int(size_text, 16)
        if size > self.max_chunk_size:
            raise _framing_error(f"chunk of {size} bytes exceeds the limit of {self.max_chunk_size}")
        signature = None
        if self.signed:
            if not (semicolon and extension.startswith(_SIG_PREFIX)
                    and _SIGNATURE.fullmatch(extension, len(_SIG_PREFIX)) is not None):
                raise _framing_error("missing or malformed chunk-signature")
            signature = extension[len(_SIG_PREFIX):].decode("ascii")
        elif semicolon:
            raise _framing_error("unexpected chunk extension in an unsigned body")
        events.append(ChunkHeader(size, signature))
        if size:
            self._remaining = size
            self._state = _DATA
        else:
            events.append(_CHUNK_END)
            self._state = _TRAILERS

    def _trailer_line(self, line: bytes, events: list[_Event]) -> None:
        if not line:
            self._state = _DONE
            events.append(_END)
            return
        self._trailer_bytes += len(line) + 2
        if not self.allow_trailers:
            raise SigningError("MalformedTrailerError", "This body declares no trailing headers but sends some.")
        if self._trailer_bytes > _MAX_TRAILER_BYTES:
            raise SigningError("MalformedTrailerError", "The trailing headers are too large.")
        name, colon, value = line.partition(b":")
        name = name.strip()
        if not colon or not name or not name.isascii():
            raise SigningError("MalformedTrailerError", "A trailing header is not of the form name:value.")
        try:
            text = value.strip().decode("ascii")
        except UnicodeDecodeError:
            raise SigningError("MalformedTrailerError", "A trailing header value is not ASCII.") from None
        events.append(Trailer(name.decode("ascii").lower(), text))


def encode_chunk(data: bytes, signature: str | None = None) -> bytes:
    """Frame one chunk (``signature`` in signed modes). Empty ``data`` is the last chunk's line."""
    extension = f";chunk-signature={signature}" if signature else ""
    head = f"{len(data):x}{extension}\r\n".encode("ascii")
    if not data:
        return head
    return b"".join((head, data, b"\r\n"))


def encode_last_chunk(signature: str | None = None, trailers: list[tuple[str, str]] | None = None,
                      trailer_signature: str | None = None) -> bytes:
    """The last (empty) chunk, its trailers, the trailer signature if any, and the closing CRLF."""
    parts = [encode_chunk(b"", signature)]
    for name, value in trailers or ():
        parts.append(f"{name}:{value}\r\n".encode("ascii"))
    if trailer_signature:
        parts.append(f"x-amz-trailer-signature:{trailer_signature}\r\n".encode("ascii"))
    parts.append(b"\r\n")
    return b"".join(parts)
