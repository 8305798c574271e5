"""Rewriting S3 XML between the physical layout and the workspace view.

Backends answer with physical buckets and keys (``bucket``, ``{prefix}{key}``); clients must see
only their workspace and workspace-relative keys. Listings are also filtered to what the caller's
grants cover. Bodies here are small control-plane XML (listings are at most 1000 entries a page).
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from urllib.parse import quote, unquote_plus as unquote

from policy.decide import ListingFilter
from proxy.errors import S3Error
from wio.safexml import XMLRefused, parse_untrusted_xml

__all__ = ["S3_NS", "rewrite_result", "parse_xml"]

S3_NS = "http://s3.amazonaws.com/doc/2006-03-01/"
_NS = "{" + S3_NS + "}"
ET.register_namespace("", S3_NS)

_KEY_TAGS = {"Key", "Prefix", "KeyMarker", "NextKeyMarker", "StartAfter", "Marker", "NextMarker"}
_ENTRY_TAGS = {"Contents", "Version", "DeleteMarker", "Upload"}
MAX_XML_BYTES = 32 << 20


def parse_xml(body: bytes, what: str = "request body") -> ET.Element:
    try:
        return parse_untrusted_xml(body)
    except XMLRefused:
        raise S3Error("MalformedXML", f"The {what} is not well-formed XML without a DTD") from None


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def rewrite_result(body: bytes, *, workspace: str, physical_prefix: str, url_encoded: bool = False,
                   listing: ListingFilter | None = None, tokens: dict[str, str] | None = None) -> bytes:
    """Map Bucket -> workspace, strip the physical prefix from every key-like element, filter entries.

    ``tokens`` maps element names (NextContinuationToken, ContinuationToken) to replacement values.
    """
    root = parse_xml(body, "backend response")

    def strip(text: str | None) -> str | None:
        if text is None:
            return None
        raw = unquote(text) if url_encoded else text
        if raw.startswith(physical_prefix):
            raw = raw[len(physical_prefix):]
        elif raw + "/" == physical_prefix or raw == "":
            raw = ""
        else:  # a key outside the workspace must never be shown
            raise S3Error("InternalError", "The storage node returned a key outside the workspace")
        return quote(raw, safe="/~") if url_encoded else raw

    removed = 0
    for parent in root.iter():
        for child in list(parent):
            tag = _local(child.tag)
            if tag in _ENTRY_TAGS:
                key = strip(child.findtext(f"{_NS}Key"))
                # An entry without a key is malformed: never pass it on.
                if key is None or (listing is not None and
                                   not listing.shows_key(unquote(key) if url_encoded else key)):
                    parent.remove(child)
                    removed += 1
                    continue
            elif tag == "CommonPrefixes":
                prefix = strip(child.findtext(f"{_NS}Prefix"))
                if prefix is None or (listing is not None and
                                      not listing.shows_common_prefix(unquote(prefix) if url_encoded else prefix)):
                    parent.remove(child)
                    removed += 1
                    continue
    for elem in root.iter():
        tag = _local(elem.tag)
        if tag in ("Bucket", "Name"):
            elem.text = workspace
        elif tag in _KEY_TAGS:
            elem.text = strip(elem.text)
        elif tag == "Location":
            elem.text = None
        elif tokens and tag in tokens:
            elem.text = tokens[tag]
        elif tag == "KeyCount" and removed and elem.text and elem.text.isdigit():
            elem.text = str(max(0, int(elem.text) - removed))
    for elem in list(root):
        if _local(elem.tag) == "Location":
            root.remove(elem)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)
