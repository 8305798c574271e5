"""Task 1 of Signature V4: the canonical request.

Follows "Create a canonical request" in the IAM user guide (create-signed-request.html) and, for
S3's differences, "Signature Calculations for the Authorization Header" in the S3 API reference:

- canonical URI: S3 signs the path as sent, never normalised (no dot-segment removal, no slash
  collapsing) and URI-encoded once. We percent-decode each ``/``-separated segment of the wire
  path to bytes and re-encode every byte outside the unreserved set (``A-Z a-z 0-9 - . _ ~``)
  with uppercase hex, so an already-canonical path is unchanged, a sloppy one (``$``, lowercase
  hex, raw UTF-8) canonicalises the way the client's own signer did, and an encoded slash
  (``%2F``) stays encoded inside its segment. Other services normalise the path and
  encode it a second time; ``normalize`` and ``double_encode`` give that behaviour for the
  generic test vectors.
- canonical query: every parameter decoded (``+`` is a space, as Go's and Java's form encoders
  produce it) and re-encoded with the same strict encoder, sorted by name then value.
- canonical headers: lowercase names, values trimmed with inner runs of white space collapsed,
  repeated headers joined with ``,`` in arrival order, sorted by name.

Header values are ``str``; bytes that are not UTF-8 are expected as surrogate escapes (what
``bytes.decode("utf-8", "surrogateescape")`` gives) and are hashed as the original bytes.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any
from urllib.parse import quote, quote_from_bytes, unquote_to_bytes

__all__ = [
    "EMPTY_SHA256",
    "HeaderMap",
    "collect_headers",
    "uri_encode",
    "canonical_uri",
    "remove_dot_segments",
    "parse_query",
    "canonical_query",
    "canonical_query_from_pairs",
    "canonical_header_value",
    "canonical_headers",
    "canonical_request",
]

EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

# name (lowercase) -> values in arrival order
HeaderMap = dict[str, list[str]]


def collect_headers(headers: Mapping[str, str] | Iterable[tuple[str, str]] | Any) -> HeaderMap:
    """Index request headers by lowercase name, keeping every value of a repeated header.

    Accepts a list of ``(name, value)`` pairs, a plain dict, or a multidict (whose ``items()``
    yields each repeated header).
    """
    if type(headers) is list:  # what the proxy passes
        items = headers
    else:
        items = list(headers.items() if hasattr(headers, "items") else headers)
    # the common case, every name once: one comprehension (a repeated name makes it shorter)
    out: HeaderMap = {name.lower(): [value] for name, value in items}
    if len(out) == len(items):
        return out
    out = {}
    for name, value in items:
        name = name.lower()
        values = out.get(name)
        if values is None:
            out[name] = [value]
        else:
            values.append(value)
    return out


def uri_encode(data: bytes, *, keep_slash: bool) -> str:
    """Percent-encode every byte outside the unreserved set, uppercase hex ("UriEncode" in the docs)."""
    return quote_from_bytes(data, safe="/" if keep_slash else "")


# A path already in canonical form: unreserved characters, "/" and uppercase %XX escapes of bytes
# outside the unreserved set (what botocore and most SDKs send). It is its own canonical URI.
_ESCAPED_RESERVED = r"%(?:[01][0-9A-F]|2[0-9A-CF]|3[A-F]|40|5[B-E]|60|7[B-DF]|[89A-F][0-9A-F])"
# (runs of plain characters between escapes: much faster for the regex engine than one
# alternation per character)
_CANONICAL_PATH = re.compile(rf"[A-Za-z0-9\-._~/]*(?:{_ESCAPED_RESERVED}[A-Za-z0-9\-._~/]*)*")
# the same for one query component, where "/" must be escaped
_COMPONENT = rf"[A-Za-z0-9\-._~]*(?:{_ESCAPED_RESERVED}[A-Za-z0-9\-._~]*)*"
_CANONICAL_COMPONENT = re.compile(_COMPONENT)
# a whole query of canonical components, "=" and "&" (that "=" appears at most once in a
# "name=value" part is checked while splitting): possessive runs, so no backtracking state
_CANONICAL_QUERY = re.compile(rf"(?:[A-Za-z0-9\-._~&=]++|{_ESCAPED_RESERVED})*+")


def _to_bytes(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def canonical_uri(raw_path: str, *, normalize: bool = False, double_encode: bool = False) -> str:
    """The CanonicalURI line for a path exactly as received on the wire.

    The defaults are S3's rule. ``double_encode=True`` is the generic-service rule (encode the
    already-encoded path once more), ``normalize=True`` adds RFC 3986 dot-segment removal and
    collapses repeated slashes before that, as the non-S3 test vectors expect.
    """
    if not raw_path:
        return "/"
    if double_encode:
        path = remove_dot_segments(raw_path) if normalize else raw_path
        return quote(path or "/", safe="/~", errors="surrogateescape")
    if normalize:
        raw_path = remove_dot_segments(raw_path) or "/"
    if _CANONICAL_PATH.fullmatch(raw_path):
        return raw_path
    # segment by segment, so that an encoded slash (%2F) stays inside its segment
    return "/".join(
        quote_from_bytes(unquote_to_bytes(_to_bytes(segment)), safe="") for segment in raw_path.split("/")
    )


def remove_dot_segments(path: str) -> str:
    """RFC 3986 section 5.2.4, plus the collapsing of empty segments that AWS services expect."""
    if not path:
        return ""
    output: list[str] = []
    for segment in path.split("/"):
        if not segment or segment == ".":
            continue
        if segment == "..":
            if output:
                output.pop()
        else:
            output.append(segment)
    first = "/" if path[0] == "/" else ""
    last = "/" if path[-1] == "/" and output else ""
    return first + "/".join(output) + last


def _form_decode_uncached(text: str) -> str:
    if "+" in text:
        text = text.replace("+", " ")
    if "%" not in text:
        return text
    return unquote_to_bytes(_to_bytes(text)).decode("utf-8", "surrogateescape")


# Escaped components repeat from request to request (a presigned URL's X-Amz-Credential and
# X-Amz-SignedHeaders are the same for every request of a key on a day, a listing's prefix ...):
# the decoding is a pure function of the text, so short ones are remembered.
_cached_form_decode = lru_cache(maxsize=4096)(_form_decode_uncached)
_CACHED_DECODE_MAX = 256


def _form_decode(text: str) -> str:
    """Form-decode one query component: ``+`` is a space, %XX escapes are bytes (UTF-8, or
    surrogate escapes for bytes that are not)."""
    if "%" not in text and "+" not in text:
        return text
    if len(text) <= _CACHED_DECODE_MAX:
        return _cached_form_decode(text)
    return _form_decode_uncached(text)


def parse_query(raw_query: str) -> list[tuple[str, str]]:
    """Split a raw query string into decoded ``(name, value)`` pairs in order; ``a`` gives ``("a", "")``."""
    if not raw_query:
        return []
    pairs = []
    for part in raw_query.split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        if "%" in part or "+" in part:
            name = _form_decode(name)
            value = _form_decode(value)
        pairs.append((name, value))
    return pairs


def _encode_component(text: str) -> str:
    return quote(text, safe="", errors="surrogateescape")


def canonical_query_from_pairs(pairs: Iterable[tuple[str, str]], *, exclude: str | None = None) -> str:
    """The CanonicalQueryString line from decoded pairs; ``exclude`` drops one parameter name
    (``X-Amz-Signature`` when verifying a presigned URL)."""
    encoded = sorted(
        (_encode_component(name), _encode_component(value))
        for name, value in pairs
        if name != exclude
    )
    return "&".join(f"{name}={value}" for name, value in encoded)


def _canonical_component(raw: str) -> str:
    if _CANONICAL_COMPONENT.fullmatch(raw):
        return raw
    return _encode_component(_form_decode(raw))


def canonical_query(raw_query: str, *, exclude: str | None = None) -> str:
    """The CanonicalQueryString line for a raw query string as received.

    Same result as decoding with ``parse_query`` and re-encoding with
    ``canonical_query_from_pairs``; components already in canonical form are kept as they are.
    """
    if not raw_query:
        return ""
    if _CANONICAL_QUERY.fullmatch(raw_query):
        # every name and value is already canonical: only drop, sort and complete "name="
        pairs = []
        for part in raw_query.split("&"):
            if part:
                name, _, value = part.partition("=")
                if "=" in value:  # an "=" inside a value is not canonical: the general way below
                    break
                if name != exclude:
                    pairs.append((name, value))
        else:
            pairs.sort()
            return "&".join([f"{name}={value}" for name, value in pairs])
    encoded = []
    for part in raw_query.split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        name = _canonical_component(name)
        if name != exclude:
            encoded.append((name, _canonical_component(value)))
    encoded.sort()
    return "&".join(f"{name}={value}" for name, value in encoded)


def canonical_header_value(values: list[str]) -> str:
    """Trimall each value (strip, collapse inner white space) and join repeats with commas."""
    if len(values) == 1:
        return " ".join(values[0].split())
    return ",".join(" ".join(value.split()) for value in values)


def canonical_headers(header_map: HeaderMap, signed_headers: Iterable[str]) -> str:
    """The CanonicalHeaders block: one ``name:value\\n`` line per signed header, sorted by name.

    A signed header missing from the request contributes an empty value; the caller decides
    whether that is an error before getting here.
    """
    lines = []
    for name in sorted(signed_headers):
        values = header_map.get(name)
        if not values:
            lines.append(f"{name}:\n")
        elif len(values) == 1:  # canonical_header_value, inlined for the common single value
            lines.append(f"{name}:{' '.join(values[0].split())}\n")
        else:
            lines.append(f"{name}:{canonical_header_value(values)}\n")
    return "".join(lines)


def canonical_request(
    method: str,
    canonical_uri: str,
    canonical_query: str,
    canonical_headers: str,
    signed_headers: str,
    payload_hash: str,
) -> str:
    """Join the six parts; ``canonical_headers`` already ends each line with ``\\n``."""
    return "\n".join(
        (method, canonical_uri, canonical_query, canonical_headers, signed_headers, payload_hash)
    )
