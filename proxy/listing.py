"""Rewriting S3 XML between the physical layout and the workspace view.

Backends answer with physical buckets and keys (``bucket``, ``{prefix}{key}``); clients must see
only their workspace and workspace-relative keys. Bodies here are small control-plane XML (listings
are at most 1000 entries a page).

Listings (ListObjects V1/V2, ListObjectVersions, ListMultipartUploads) go through one routine,
``rewrite_listing``, which applies the rules of docs/design.md ("Listings"):

* containment: an entry is shown only if its physical name starts with the workspace's physical
  prefix followed by the requested prefix (a node that normalises paths may answer for something
  else); anything else is dropped and logged;
* filtering: an entry is shown only if the caller's grants cover it;
* markers: a ``Next*Marker`` is handed out in clear only when it names an entry shown on the page,
  otherwise it is sealed (AES-GCM, bound to the workspace and the marker's kind); continuation
  tokens are always sealed. ``open_marker`` turns a sealed marker back into the physical value;
* encoding: the node is asked for raw names and the proxy applies ``encoding-type=url`` itself, the
  same way on all four listings (nodes differ in which elements they encode).
"""
from __future__ import annotations

import logging
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from urllib.parse import quote

from policy.decide import ListingFilter
from proxy.errors import S3Error
from foundation.secrets import SecretBox
from foundation.safexml import XMLRefused, parse_untrusted_xml

__all__ = ["S3_NS", "ListingView", "rewrite_result", "rewrite_listing", "parse_xml", "seal_marker", "open_marker",
           "prefix_matches_nothing"]

log = logging.getLogger("wio.proxy")

S3_NS = "http://s3.amazonaws.com/doc/2006-03-01/"
_NS = "{" + S3_NS + "}"
ET.register_namespace("", S3_NS)

_KEY_TAGS = {"Key", "Prefix", "KeyMarker", "NextKeyMarker", "StartAfter", "Marker", "NextMarker"}
_ENTRY_TAGS = {"Contents", "Version", "DeleteMarker", "Upload"}
MAX_XML_BYTES = 32 << 20


def _serialize(root: ET.Element) -> bytes:
    out: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)  # typeshed: Any for a named encoding
    return out


def parse_xml(body: bytes, what: str = "request body") -> ET.Element:
    try:
        return parse_untrusted_xml(body)
    except XMLRefused:
        raise S3Error("MalformedXML", f"The {what} is not well-formed XML without a DTD") from None


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def rewrite_result(body: bytes, *, workspace: str, physical_prefix: str) -> bytes:
    """A non-listing result (multipart, copy, parts): Bucket -> workspace, keys made workspace-relative."""
    root = parse_xml(body, "backend response")
    for elem in list(root.iter()):
        tag = _local(elem.tag)
        if tag in ("Bucket", "Name"):
            elem.text = workspace
        elif tag in _KEY_TAGS and elem.text:
            if elem.text.startswith(physical_prefix):
                elem.text = elem.text[len(physical_prefix):]
            elif elem.text + "/" == physical_prefix:
                elem.text = ""
            else:  # a key outside the workspace must never be shown
                raise S3Error("InternalError", "The storage node returned a key outside the workspace")
    for elem in list(root):
        if _local(elem.tag) == "Location":
            root.remove(elem)
    return _serialize(root)


# --- sealed markers -------------------------------------------------------------------------------
# A sealed marker is "wio1." + URL-safe base64 without padding: unchanged by encoding-type=url and by
# query encoding, so it travels back exactly. It is bound to the workspace and to the parameter it
# is valid for, so it cannot be replayed elsewhere; its content (a physical name or a node's token)
# is never readable by the caller.
_SEALED = "wio1."
_TO_URLSAFE = str.maketrans("+/", "-_")
_FROM_URLSAFE = str.maketrans("-_", "+/")


def seal_marker(box: SecretBox, workspace: str, param: str, value: str) -> str:
    return _SEALED + box.seal(f"{param}\n{workspace}\n{value}").translate(_TO_URLSAFE).rstrip("=")


def open_marker(box: SecretBox, workspace: str, param: str, token: str) -> str | None:
    """The physical value sealed in ``token`` for ``param`` of ``workspace``; None if it is no such token."""
    if not token.startswith(_SEALED):
        return None
    body = token[len(_SEALED):].translate(_FROM_URLSAFE)
    try:
        sealed_param, ws, value = box.open(body + "=" * (-len(body) % 4)).split("\n", 2)
    except Exception:  # noqa: BLE001 - anything we cannot open is not one of our markers
        return None
    return value if (sealed_param, ws) == (param, workspace) else None


# Prefixes no key wio accepts can start with (addressing.check_key): a leading '/', '//', a dot segment,
# a control character. Nodes that normalise paths would list something else for them.
_IMPOSSIBLE_PREFIX = re.compile(r"^/|//|(?:^|[/\\])\.\.?[/\\]|[\x00-\x1f\x7f]")


def prefix_matches_nothing(prefix: str) -> bool:
    return _IMPOSSIBLE_PREFIX.search(prefix) is not None


# --- listings -------------------------------------------------------------------------------------
# Which query parameter each Next* element of a listing feeds on the following request.
_NEXT_KEY_MARKERS = {"NextMarker": "marker", "NextKeyMarker": "key-marker"}
_NEXT_ID_MARKERS = {"NextVersionIdMarker": "version-id-marker", "NextUploadIdMarker": "upload-id-marker"}
# Elements that echo the request, and the parameter they echo.
_ECHOES = {"Prefix": "prefix", "Delimiter": "delimiter", "Marker": "marker", "StartAfter": "start-after",
           "KeyMarker": "key-marker", "VersionIdMarker": "version-id-marker", "UploadIdMarker": "upload-id-marker",
           "ContinuationToken": "continuation-token"}
# What S3 percent-encodes under encoding-type=url: entry names (Key, a CommonPrefix's Prefix), the
# delimiter and key markers, never ids or tokens; the echoed Prefix too, except in ListObjects V1
# (as AWS does, and botocore decodes: its handlers list the elements per operation).
_URL_ENCODED = {"Key", "Prefix", "Delimiter", "Marker", "NextMarker", "StartAfter", "KeyMarker", "NextKeyMarker"}
_NOT_URL_ENCODED = {"ListObjects": {"Prefix"}}


@dataclass(slots=True)
class ListingView:
    """What a caller asked for and may see, for ``rewrite_listing``."""
    operation: str                               # ListObjects, ListObjectsV2, ListObjectVersions, ListMultipartUploads
    workspace: str
    physical_prefix: str
    owner: str                                   # shown as every entry's Owner / Initiator
    box: SecretBox
    echo: dict[str, str] = field(default_factory=dict)   # query parameter -> the client's value
    listing: ListingFilter = field(default_factory=ListingFilter)
    url_encoded: bool = False

    @property
    def prefix(self) -> str:
        return self.echo.get("prefix", "")

    def encode(self, tag: str, value: str) -> str:
        if not self.url_encoded or tag not in _URL_ENCODED or tag in _NOT_URL_ENCODED.get(self.operation, ()):
            return value
        return quote(value, safe="/~")

    def contains(self, physical: str) -> bool:
        return physical.startswith(self.physical_prefix + self.prefix)

    def shows(self, physical: str, common: bool) -> bool:
        name = physical[len(self.physical_prefix):]
        return self.listing.shows_common_prefix(name) if common else self.listing.shows_key(name)


def _sort_entries(root: ET.Element, names: dict[int, bytes]) -> None:
    """Put each kind of entry in S3's order: UTF-8 byte order of the names (stable, so the versions of
    one key keep the node's order). Nodes that walk directories (SeaweedFS) list 'foo/' before 'foo+1/'."""
    groups: dict[str, list[int]] = {}
    for i in names:
        tag = _local(root[i].tag)
        groups.setdefault("Version" if tag == "DeleteMarker" else tag, []).append(i)
    for slots in groups.values():
        entries = [root[i] for i in sorted(slots, key=names.__getitem__)]
        for i, entry in zip(slots, entries, strict=True):
            root[i] = entry


def rewrite_listing(body: bytes, view: ListingView, *, matches_nothing: bool = False) -> bytes:
    """One listing page from the node, in the caller's view (see the module docstring).

    ``matches_nothing``: the requested prefix cannot match any key, whatever the node answered.
    """
    root = parse_xml(body, "backend response")
    shown: set[str] = set()
    upload_keys: dict[str | None, str | None] = {}
    strays: list[str] = []
    for child in list(root):
        tag = _local(child.tag)
        common = tag == "CommonPrefixes"
        if not common and tag not in _ENTRY_TAGS:
            continue
        name_elem = child.find(_NS + ("Prefix" if common else "Key"))
        physical = None if name_elem is None else name_elem.text or ""
        if tag == "Upload":
            upload_keys[child.findtext(_NS + "UploadId")] = physical
        if name_elem is None or physical is None or matches_nothing:
            root.remove(child)
            continue
        keep = view.contains(physical)
        if not keep:
            strays.append(physical)
        if not (keep and view.shows(physical, common)):
            root.remove(child)
            continue
        name_elem.text = physical[len(view.physical_prefix):]
        shown.add(name_elem.text)
        for who in (*child.iter(_NS + "Owner"), *child.iter(_NS + "Initiator")):
            for part in who:
                part.text = view.owner
    if strays:  # the node answered for something else than it was asked (a filer normalising paths)
        log.warning("listing of %s: dropped %d node entries outside the workspace and prefix, first %r",
                    view.workspace, len(strays), strays[0])
    next_upload = root.find(_NS + "NextUploadIdMarker")
    if next_upload is not None and root.find(_NS + "NextKeyMarker") is None and upload_keys.get(next_upload.text):
        # SeaweedFS gives only the upload id; S3 (and clients paginating) need the key it belongs to
        ET.SubElement(root, _NS + "NextKeyMarker").text = upload_keys[next_upload.text]
    names: dict[int, bytes] = {}
    marker_in_clear = False   # an id marker goes in clear only with its key marker
    for i, child in enumerate(root):
        tag = _local(child.tag)
        if tag in _ENTRY_TAGS or tag == "CommonPrefixes":
            name_elem = child.find(_NS + ("Prefix" if tag == "CommonPrefixes" else "Key"))
            assert name_elem is not None and name_elem.text is not None  # the loop above kept only named entries
            names[i] = name_elem.text.encode()
            name_elem.text = view.encode("Key", name_elem.text)
        elif tag in _NEXT_KEY_MARKERS and child.text:
            # In clear only when it names an entry shown on this page; it then starts with the
            # physical prefix. Anything else (a hidden key, a node's stray name) is sealed.
            name = child.text[len(view.physical_prefix):]
            marker_in_clear = child.text.startswith(view.physical_prefix) and name in shown
            child.text = (view.encode(tag, name) if marker_in_clear else
                          seal_marker(view.box, view.workspace, _NEXT_KEY_MARKERS[tag], child.text))
    _sort_entries(root, names)
    key_count = len(names)
    echoed = set()
    for child in list(root):
        tag = _local(child.tag)
        if tag in ("Name", "Bucket"):
            child.text = view.workspace
        elif tag in _ECHOES:
            child.text = view.encode(tag, view.echo.get(_ECHOES[tag], ""))
            echoed.add(tag)
        elif tag in _NEXT_ID_MARKERS and child.text and not marker_in_clear:
            child.text = seal_marker(view.box, view.workspace, _NEXT_ID_MARKERS[tag], child.text)
        elif tag == "NextContinuationToken" and child.text:
            child.text = seal_marker(view.box, view.workspace, "continuation-token", child.text)
        elif tag == "KeyCount":
            child.text = str(key_count)
        elif tag == "IsTruncated" and matches_nothing:
            child.text = "false"
        elif tag == "EncodingType":
            root.remove(child)
        if matches_nothing and (tag in _NEXT_KEY_MARKERS or tag in _NEXT_ID_MARKERS or
                                tag == "NextContinuationToken"):
            root.remove(child)
    if "continuation-token" in view.echo and "ContinuationToken" not in echoed:  # given empty, so not forwarded
        ET.SubElement(root, _NS + "ContinuationToken").text = view.echo["continuation-token"]
    if view.url_encoded:
        ET.SubElement(root, _NS + "EncodingType").text = "url"
    return _serialize(root)
