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

__all__ = ["S3_NS", "MAX_XML_BYTES", "ListingView", "rewrite_result", "rewrite_listing", "parse_xml", "seal_marker",
           "open_marker", "prefix_matches_nothing"]

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
    except (XMLRefused, LookupError, ValueError):   # expat: an unknown or multi-byte encoding declared
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

    Pages in the plain shape nodes send (see ``_stream_listing``) are rewritten as text, entry by
    entry; anything else goes through the parsed tree (``_tree_listing``), which gives the same
    answer (tests/reliability/test_listing_stream.py checks both against each other).
    """
    if len(body) > MAX_XML_BYTES:
        raise S3Error("InternalError", "The storage node's listing is too large")
    out = _stream_listing(body, view, matches_nothing)
    return out if out is not None else _tree_listing(body, view, matches_nothing)


def _tree_listing(body: bytes, view: ListingView, matches_nothing: bool) -> bytes:
    root = parse_xml(body, "backend response")
    shown: set[str] = set()
    upload_keys: dict[str | None, str | None] = {}
    strays: list[str] = []
    for child in list(root):
        tag = _local(child.tag)
        common = tag == "CommonPrefixes"
        if not common and tag not in _ENTRY_TAGS:
            continue
        named = child.findall(_NS + ("Prefix" if common else "Key"))
        name_elem = named[0] if named else None
        physical = None if name_elem is None else name_elem.text or ""
        if tag == "Upload":
            upload_keys[child.findtext(_NS + "UploadId")] = physical
        if name_elem is None or physical is None or matches_nothing:
            root.remove(child)
            continue
        keep = view.contains(physical) and len(named) == 1   # two names: which one would it be?
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


# --- the streamed rewrite -------------------------------------------------------------------------
# A node's listing page is thousands of small elements; building a tree of them, walking it and
# serialising it again cost ~30 µs an entry (defusedxml parses with Python callbacks). Pages in the
# shape nodes actually send are rewritten as text instead, one regular-expression match per entry.
# The text path accepts only documents that are well-formed XML by construction of the grammar
# below, and returns None (the tree path then decides, and refuses what is not XML) for anything else:
#   * UTF-8, an optional <?xml version="1.0" encoding="UTF-8"?> declaration, no other <? and no <!
#     anywhere (so no DTD, no entity declarations, no comments, no CDATA), no CR (expat would
#     normalise it), no "]]>", only characters XML allows;
#   * the root <ListBucketResult|ListVersionsResult xmlns="S3_NS"> with no other attribute, every
#     other tag a bare name without attributes or prefixes;
#   * its children: leaves <T>text</T> or <T/>, or entries (Contents, Version, DeleteMarker,
#     CommonPrefixes) made of leaves and Owner/Initiator elements made of leaves, each closed by its
#     own name (back-references); an entry's name (Key, Prefix) is its first child and is there once;
#   * text: no '<', '&' only in the five predefined references or numeric references to XML characters.
# Upload listings (ListMultipartUploads) always take the tree path: they are short and rare.
_WS = "[ \t\n]*"
_NAME = "[A-Za-z][A-Za-z0-9]{0,63}"
_LEAF = f"<(?P<GROUP>{_NAME})>[^<]*</(?P=GROUP)>|<{_NAME}/>"
_OWNER = f"<(?P<o>Owner|Initiator)>(?:{_WS}(?:{_LEAF}))*{_WS}</(?P=o)>"


def _entry_body(n: int) -> str:   # (group names must differ in each use)
    owner = _OWNER.replace("(?P<o>", f"(?P<o{n}>").replace("(?P=o)", f"(?P=o{n})").replace("GROUP", f"ol{n}")
    return f"(?:{_WS}(?:{_LEAF.replace('GROUP', f'el{n}')}|{owner}))*{_WS}"


_CHILD = re.compile(
    f"{_WS}(?:<(?P<tag>{_NAME})>(?P<text>[^<]*)</(?P=tag)>|<(?P<empty>{_NAME})/>"
    # an entry whose first child is its name (what nodes send) ...
    f"|<(?P<entry>Contents|Version|DeleteMarker)>{_WS}(?:<Key>(?P<key>[^<]*)</Key>|<Key/>)"
    f"(?P<rest>{_entry_body(1)})</(?P=entry)>"
    f"|<(?P<common>CommonPrefixes)>{_WS}(?:<Prefix>(?P<prefix>[^<]*)</Prefix>|<Prefix/>)"
    f"(?P<crest>{_entry_body(2)})</CommonPrefixes>"
    # ... or any other entry (without a name: dropped; with its name elsewhere: the tree path decides)
    f"|<(?P<other>Contents|Version|DeleteMarker|CommonPrefixes)>(?P<inner>{_entry_body(3)})</(?P=other)>)")
_XML_DECL = re.compile(rb"<\?xml[ \t\n]+version[ \t\n]*=[ \t\n]*([\"'])1\.0\1"   # (1.1 normalises more line ends)
                       rb"(?:[ \t\n]+encoding[ \t\n]*=[ \t\n]*([\"'])(?i:utf-8)\2)?"
                       rb"(?:[ \t\n]+standalone[ \t\n]*=[ \t\n]*([\"'])(?:yes|no)\3)?[ \t\n]*\?>")
_ROOT = re.compile(f'{_WS}<(ListBucketResult|ListVersionsResult) xmlns="{re.escape(S3_NS)}">')
_BAD_BYTES = bytes([*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20)])   # control characters XML forbids
_BAD_AMP = re.compile("&(?!(?:lt|gt|amp|quot|apos|#[0-9]{1,7}|#x[0-9a-fA-F]{1,6});)")
_NUM_REF = re.compile("&#(x?)([0-9a-fA-F]+);")
_OTHER_NUM_REF = re.compile("&#(?!34;)")
_REF = re.compile("&(?:(lt)|(gt)|(amp)|(quot)|(apos)|#(x?)([0-9a-fA-F]+));")
_OWNER_LEAF = re.compile(f"<(?P<tag>{_NAME})>[^<]*</(?P=tag)>|<(?P<empty>{_NAME})/>")
_OWNER_BLOCK = re.compile(_OWNER.replace("GROUP", "ol"))
_NAME_TAGS = {"CommonPrefixes": "Prefix"}
_GROUP = {"DeleteMarker": "Version"}


def _xml_char(code: int) -> bool:
    return (code in (0x9, 0xA, 0xD) or 0x20 <= code <= 0xD7FF or 0xE000 <= code <= 0xFFFD
            or 0x10000 <= code <= 0x10FFFF)


def _ref(m: re.Match[str]) -> str:
    if m.group(7) is not None:
        return chr(int(m.group(7), 16 if m.group(6) else 10))
    return "<>&\"'"[m.lastindex - 1 if m.lastindex is not None else 0]


def _unescape(raw: str) -> str:
    return _REF.sub(_ref, raw) if "&" in raw else raw


def _escape(value: str) -> str:
    if "&" in value or "<" in value or ">" in value or "\r" in value:
        value = value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#13;")
    return value


def _well_formed_text(body: bytes) -> tuple[str, int, str] | None:
    """The document as text, where its root's children start, and the root's name; None if the text
    path must not take it (see above)."""
    if b"<!" in body or b"\r" in body or b"]]>" in body:
        return None
    start = 0
    if body.startswith(b"<?"):
        decl = _XML_DECL.match(body)
        if decl is None:
            return None
        start = decl.end()
    if body.find(b"<?", start) >= 0:
        return None
    try:
        text = body.decode("utf-8")   # (the declaration is ASCII: its end is the same offset in the text)
    except UnicodeDecodeError:
        return None
    root = _ROOT.match(text, start)
    # (tags need no check of their own: the walk in _stream_listing accepts only bare names)
    if root is None or len(body.translate(None, _BAD_BYTES)) != len(body) or _BAD_AMP.search(text):
        return None
    if b"\xef\xbf\xbe" in body or b"\xef\xbf\xbf" in body:   # U+FFFE, U+FFFF
        return None
    if _OTHER_NUM_REF.search(text):   # (the quotes around ETags, &#34;, are valid, and many)
        for hexa, digits in set(_NUM_REF.findall(text)):
            try:
                if not _xml_char(int(digits, 16 if hexa else 10)):
                    return None
            except ValueError:   # hexadecimal digits in a decimal reference
                return None
    return text, root.end(), root.group(1)


def _stream_listing(body: bytes, view: ListingView, matches_nothing: bool) -> bytes | None:
    """The rewrite of ``_tree_listing`` on the text of a plain page, or None (see above)."""
    found = _well_formed_text(body)
    if found is None:
        return None
    text, pos, root_tag = found
    # children: [tag, value, entry rest]: a leaf's value is its raw (escaped) text, or None once it is
    # rewritten (then in "rest", as the escaped output text) or removed (tag None); an entry's value is
    # its workspace-relative name and "rest" the raw text of its other children.
    children: list[list[str | None]] = []
    closing = f"</{root_tag}>"
    match = _CHILD.match
    owners: dict[str, str] = {}
    owner_text = _escape(view.owner)
    physical_prefix, strays = view.physical_prefix, []
    cut, wanted = len(physical_prefix), physical_prefix + view.prefix   # ListingView.contains
    listing = view.listing
    everything = listing.everything
    shown: set[str] = set()
    while True:
        m = match(text, pos)
        if m is None:
            break
        pos = m.end()
        entry = m.group("entry")
        if entry is not None:
            raw, rest, name_tag = m.group("key"), m.group("rest"), "<Key"
        else:
            entry = m.group("common")
            if entry is not None:
                raw, rest, name_tag = m.group("prefix"), m.group("crest"), "<Prefix"
            else:
                other = m.group("other")
                if other is None:
                    tag = m.group("tag")
                    leaf = [tag, m.group("text"), None] if tag is not None else [m.group("empty"), "", None]
                    if leaf[0] not in _ENTRY_TAGS and leaf[0] != "CommonPrefixes":   # no children, no name: dropped
                        children.append(leaf)
                    continue
                inner, name_tag = m.group("inner"), "<Prefix" if other == "CommonPrefixes" else "<Key"
                if f"{name_tag}>" in inner or f"{name_tag}/>" in inner:
                    return None   # its name is not its first child
                continue          # an entry without a name is dropped
        if f"{name_tag}>" in rest or f"{name_tag}/>" in rest:
            return None           # two names
        if matches_nothing:
            continue
        physical = "" if raw is None else _unescape(raw) if "&" in raw else raw
        if not physical.startswith(wanted):
            strays.append(physical)
            continue
        name = physical[cut:]
        if not everything and not (listing.shows_common_prefix(name) if entry == "CommonPrefixes"
                                   else listing.shows_key(name)):
            continue
        shown.add(name)
        cut_at = rest.find("<Owner")
        initiator = rest.find("<Initiator")
        if initiator >= 0 and (cut_at < 0 or initiator < cut_at):
            cut_at = initiator
        if cut_at >= 0:
            # From the first Owner/Initiator child on, entries mostly end alike (Owner, StorageClass)
            tail = rest[cut_at:]
            replaced = owners.get(tail)
            if replaced is None:
                replaced = owners[tail] = _owners_replaced(tail, owner_text)
            rest = rest[:cut_at] + replaced
        children.append([entry, name, rest])
    if not text.startswith(closing, pos) or text[pos + len(closing):].strip(" \t\n"):
        return None
    if strays:  # the node answered for something else than it was asked (a filer normalising paths)
        log.warning("listing of %s: dropped %d node entries outside the workspace and prefix, first %r",
                    view.workspace, len(strays), strays[0])
    # Next key markers (in document order, as the tree path: the last one decides for the id markers)
    marker_in_clear = False
    groups: dict[str, list[int]] = {}
    for i, child in enumerate(children):
        tag = child[0]
        assert tag is not None
        if child[2] is not None and tag in _ENTRY_TAGS_ALL:
            groups.setdefault(_GROUP.get(tag, tag), []).append(i)
        elif tag in _NEXT_KEY_MARKERS and child[1]:
            physical = _unescape(child[1])
            name = physical[cut:]
            marker_in_clear = physical.startswith(physical_prefix) and name in shown
            child[1], child[2] = None, _escape(
                view.encode(tag, name) if marker_in_clear else
                seal_marker(view.box, view.workspace, _NEXT_KEY_MARKERS[tag], physical))
    for slots in groups.values():   # S3's order: UTF-8 byte order of the names, stable
        names = [(children[i][1] or "").encode() for i in slots]
        if any(a > b for a, b in zip(names, names[1:], strict=False)):
            order = sorted(range(len(slots)), key=names.__getitem__)
            entries = [children[slots[j]] for j in order]
            for i, moved in zip(slots, entries, strict=True):
                children[i] = moved
    key_count = sum(len(slots) for slots in groups.values())
    echoed = set()
    for child in children:
        tag = child[0]
        if child[2] is not None and tag in _ENTRY_TAGS_ALL:
            continue
        value = child[1]
        if tag in ("Name", "Bucket"):
            child[1], child[2] = None, _escape(view.workspace)
        elif tag in _ECHOES:
            child[1], child[2] = None, _escape(view.encode(tag, view.echo.get(_ECHOES[tag], "")))
            echoed.add(tag)
        elif tag in _NEXT_ID_MARKERS and value and not marker_in_clear:
            child[1], child[2] = None, _escape(seal_marker(view.box, view.workspace, _NEXT_ID_MARKERS[tag],
                                                           _unescape(value)))
        elif tag == "NextContinuationToken" and value:
            child[1], child[2] = None, _escape(seal_marker(view.box, view.workspace, "continuation-token",
                                                           _unescape(value)))
        elif tag == "KeyCount":
            child[1], child[2] = None, str(key_count)
        elif tag == "IsTruncated" and matches_nothing:
            child[1], child[2] = None, "false"
        elif tag == "EncodingType":
            child[0] = None
        if matches_nothing and (tag in _NEXT_KEY_MARKERS or tag in _NEXT_ID_MARKERS or
                                tag == "NextContinuationToken"):
            child[0] = None
    if "continuation-token" in view.echo and "ContinuationToken" not in echoed:  # given empty, so not forwarded
        children.append(["ContinuationToken", None, _escape(view.echo["continuation-token"])])
    if view.url_encoded:
        children.append(["EncodingType", None, "url"])
    out = [f"<?xml version='1.0' encoding='utf-8'?>\n<{root_tag} xmlns=\"{S3_NS}\">"]
    add = out.append
    encode = view.encode
    for tag, value, rest in children:
        if tag is None:
            continue
        if rest is not None and tag in _ENTRY_TAGS_ALL:
            name_tag = _NAME_TAGS.get(tag, "Key")
            add(f"<{tag}><{name_tag}>{_escape(encode('Key', value or ''))}</{name_tag}>{rest}</{tag}>")
        elif rest is not None:
            add(f"<{tag}>{rest}</{tag}>" if rest else f"<{tag} />")
        else:
            add(f"<{tag}>{value}</{tag}>" if value else f"<{tag} />")
    add(closing)
    return "".join(out).encode()


_ENTRY_TAGS_ALL = frozenset({"Contents", "Version", "DeleteMarker", "CommonPrefixes"})


def _owners_replaced(rest: str, owner_text: str) -> str:
    """``rest`` (an entry's children) with each Owner/Initiator child's children showing the owner."""
    return _OWNER_BLOCK.sub(lambda block: _owned(block, owner_text), rest)


def _owned(block: re.Match[str], owner_text: str) -> str:
    """An Owner/Initiator element with every child's text replaced by the workspace's owner."""
    tag = block.group("o")
    inner = block.group(0)[len(tag) + 2:-(len(tag) + 3)]
    parts = [f"<{m.group('tag') or m.group('empty')}>{owner_text}</{m.group('tag') or m.group('empty')}>"
             for m in _OWNER_LEAF.finditer(inner)]
    return f"<{tag}>{''.join(parts)}</{tag}>" if parts else block.group(0)

