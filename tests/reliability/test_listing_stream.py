"""The streamed listing rewrite against the tree rewrite (issue 21).

``proxy.listing.rewrite_listing`` rewrites a node's page as text when it has the plain shape nodes
send, and through a parsed tree otherwise. The two must give the same answer wherever the text path
answers: same elements, same texts (sealed markers compared by what they open to), same order. The
text path must answer for the pages nodes really send (else it is dead code and the speed is not
there), and must hand everything unusual (DTDs, entities, comments, CDATA, attributes, prefixes,
other encodings, nested or doubled names) to the tree path, which refuses what is not plain XML.
"""
from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from xml.sax.saxutils import escape

import pytest
from hypothesis import HealthCheck, example, given, settings, strategies as st

from foundation.secrets import SecretBox
from policy.decide import ListingFilter
from proxy.errors import S3Error
from proxy.listing import MAX_XML_BYTES, ListingView, _stream_listing, _tree_listing, open_marker, rewrite_listing

FUZZ = settings(max_examples=int(os.environ.get("WIO_FUZZ_EXAMPLES", "300")), deadline=None,
                suppress_health_check=[HealthCheck.too_slow])
NS = "http://s3.amazonaws.com/doc/2006-03-01/"
PREFIX = "root/alice/ws1/"
BOX = SecretBox(b"\x05" * 32)
_PARAMS = {"NextMarker": "marker", "NextKeyMarker": "key-marker", "NextContinuationToken": "continuation-token",
           "NextVersionIdMarker": "version-id-marker", "NextUploadIdMarker": "upload-id-marker"}

names = st.lists(st.sampled_from(list("ab/._-é&<>'\" \t\n+%~") + ["%2F", "\U0001f600", "z"]), max_size=6).map("".join)


def view(operation: str = "ListObjectsV2", listing: ListingFilter | None = None, url: bool = False,
         echo: dict[str, str] | None = None) -> ListingView:
    return ListingView(operation=operation, workspace="ws1", physical_prefix=PREFIX, owner="alice&co", box=BOX,
                       echo=echo if echo is not None else {"prefix": ""}, listing=listing or ListingFilter(),
                       url_encoded=url)


def meaning(body: bytes) -> list[tuple[int, str, str]]:
    """Every element as (depth, tag, text): whitespace between elements ignored, sealed markers opened."""
    out: list[tuple[int, str, str]] = []

    def walk(elem: ET.Element, depth: int) -> None:
        tag = elem.tag.replace("{" + NS + "}", "")
        text = elem.text or ""
        if len(elem) and not text.strip(" \t\n"):
            text = ""
        if text.startswith("wio1.") and tag in _PARAMS:
            text = "sealed:" + str(open_marker(BOX, "ws1", _PARAMS[tag], text))
        out.append((depth, tag, text))
        for child in elem:
            walk(child, depth + 1)
    walk(ET.fromstring(body), 0)
    return out


def same_answer(body: bytes, v: ListingView, matches_nothing: bool = False) -> bool:
    """The text path's answer means the tree path's; False when the text path declined."""
    fast = _stream_listing(body, v, matches_nothing)
    try:
        slow = _tree_listing(body, v, matches_nothing)
    except S3Error:
        assert fast is None, "the text path answered for a page the tree path refuses"
        return False
    if fast is None:
        return False
    assert meaning(fast) == meaning(slow)
    return True


def entry(tag: str, name: str | None, extra: str = "", owner: bool = True) -> str:
    name_tag = "Prefix" if tag == "CommonPrefixes" else "Key"
    named = "" if name is None else f"<{name_tag}>{escape(name)}</{name_tag}>"
    owned = "<Owner><ID>node-id</ID><DisplayName>root</DisplayName></Owner>" if owner and tag != "CommonPrefixes" else ""
    return f"<{tag}>{named}<LastModified>2026-12-06T00:00:00Z</LastModified><ETag>&#34;e&#34;</ETag>{owned}{extra}</{tag}>"


def page(root: str, children: str, decl: str = '<?xml version="1.0" encoding="UTF-8"?>\n') -> bytes:
    return f'{decl}<{root} xmlns="{NS}">{children}</{root}>'.encode()


def node_page(keys: list[str], prefixes: list[str], head: str = "", root: str = "ListBucketResult",
              entry_tag: str = "Contents") -> bytes:
    body = "".join(entry(entry_tag, k) for k in keys) + "".join(entry("CommonPrefixes", p) for p in prefixes)
    return page(root, f"<Name>phys</Name><Prefix>{escape(PREFIX)}</Prefix><KeyCount>{len(keys)}</KeyCount>"
                      f"<MaxKeys>1000</MaxKeys>{head}<IsTruncated>false</IsTruncated>{body}")


HEADS = ["", "<NextContinuationToken>tok&amp;1</NextContinuationToken><ContinuationToken>x</ContinuationToken>",
         f"<NextMarker>{PREFIX}a</NextMarker>", f"<NextMarker>{PREFIX}hidden</NextMarker><Marker/>",
         "<NextMarker>root/alice/ws2/x</NextMarker>", "<NextMarker></NextMarker>",
         f"<NextKeyMarker>{PREFIX}b</NextKeyMarker><NextVersionIdMarker>v1</NextVersionIdMarker>",
         "<EncodingType>url</EncodingType><Delimiter>/</Delimiter><StartAfter>q</StartAfter>",
         "<Bucket>phys</Bucket><KeyMarker/><VersionIdMarker></VersionIdMarker>", "<Unknown>&lt;kept&gt;</Unknown>",
         "<Contents><Size>1</Size></Contents><CommonPrefixes></CommonPrefixes><Contents/><Upload/>",
         "<Version>x</Version><CommonPrefixes> </CommonPrefixes><Upload>y</Upload>",
         "<Contents><Key/><Owner/></Contents><CommonPrefixes><Prefix/></CommonPrefixes>"]
FILTERS = [None, ListingFilter(("",)), ListingFilter(("a",)), ListingFilter(("b/", "é")), ListingFilter(())]


@FUZZ
@given(st.lists(names, max_size=6), st.lists(names, max_size=3), st.sampled_from(HEADS), st.sampled_from(FILTERS),
       st.booleans(), st.sampled_from(["", "a", "b/", "/"]), st.sampled_from(["ListObjects", "ListObjectsV2"]),
       st.booleans(), st.booleans())
def test_text_path_answers_plain_pages_as_the_tree_path(keys, prefixes, head, listing, url, prefix, operation,
                                                        outside, matches_nothing):
    phys = [(k if outside and i == 0 else PREFIX + k) for i, k in enumerate(keys)]
    echo = {"prefix": prefix, "continuation-token": "given"} if "Continuation" in head else {"prefix": prefix}
    body = node_page(phys, [PREFIX + p for p in prefixes], head)
    assert same_answer(body, view(operation, listing, url, echo), matches_nothing)


@FUZZ
@given(st.lists(st.tuples(names, st.sampled_from(["Version", "DeleteMarker"])), max_size=6), st.sampled_from(HEADS),
       st.sampled_from(FILTERS), st.booleans())
def test_text_path_answers_version_pages_as_the_tree_path(entries, head, listing, url):
    body = "".join(entry(tag, PREFIX + k, "<VersionId>v</VersionId><IsLatest>true</IsLatest>") for k, tag in entries)
    doc = page("ListVersionsResult", f"<Name>phys</Name><Prefix>{PREFIX}</Prefix>{head}{body}")
    assert same_answer(doc, view("ListObjectVersions", listing, url))


# Shapes the text path must decline (the tree path then answers, or refuses the page).
UNUSUAL = [
    page("ListBucketResult", entry("Contents", PREFIX + "a")).replace(b"<Contents>", b"<!-- c --><Contents>"),
    page("ListBucketResult", "<Contents><Key><![CDATA[root/alice/ws1/a]]></Key></Contents>"),
    b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "root/alice/ws1/a">]>'
    b'<ListBucketResult xmlns="' + NS.encode() + b'"><Contents><Key>&a;</Key></Contents></ListBucketResult>',
    page("ListBucketResult", f"<Contents><Key>{PREFIX}a</Key><Key>root/bob/secret</Key></Contents>"),
    page("ListBucketResult", f"<Contents><Size>1</Size><Key>{PREFIX}a</Key></Contents>"),
    page("ListBucketResult", f"<Contents><Owner><Key>{PREFIX}a</Key></Owner></Contents>"),
    page("ListBucketResult", f"<Contents><Key>{PREFIX}a</Key><Contents><Key>x</Key></Contents></Contents>"),
    page("ListBucketResult", f'<Contents><Key a="1">{PREFIX}a</Key></Contents>'),
    page("ListBucketResult", f"<s3:Contents xmlns:s3='{NS}'><s3:Key>{PREFIX}a</s3:Key></s3:Contents>"),
    page("ListBucketResult", f"<Contents><Key>{PREFIX}a&#0;</Key></Contents>"),
    page("ListBucketResult", f"<Contents><Key>{PREFIX}a&#xD800;</Key></Contents>"),
    page("ListBucketResult", f"<Contents><Key>{PREFIX}a&nbsp;</Key></Contents>"),
    page("ListBucketResult", f"<Contents><Key>{PREFIX}a]]></Key></Contents>"),
    page("ListBucketResult", f"<Contents><Key>{PREFIX}a\x01</Key></Contents>"),
    page("ListBucketResult", f"<Contents><Key>{PREFIX}a\r\nb</Key></Contents>"),
    page("ListBucketResult", f"<Contents><Key>{PREFIX}a</Key></Contents>x"),
    page("ListBucketResult", f"<Contents><Key>{PREFIX}a</Key></Contents><Other><A>1</A></Other>"),
    page("ListBucketResult", f"<Contents><Key>{PREFIX}a</Key></Contents>").replace(b"</ListBucketResult>", b""),
    page("ListBucketResult", f"<Contents><Key>{PREFIX}a</Key></Contents>") + b"<x/>",
    page("ListBucketResult", f"<Contents><Key>{PREFIX}a</Key></Contents>", decl="<?xml version='1.0' encoding='latin-1'?>"),
    page("ListBucketResult", f"<Contents><Key>{PREFIX}a</Key></Contents>", decl="\ufeff"),
    page("ListBucketResult", f"<Contents><Key>{PREFIX}a\u2028b</Key></Contents>", decl="<?xml version='1.1'?>"),
    page("ListBucketResult", f"<Contents><Key>{PREFIX}a</Key></Contents>").decode().encode("utf-16"),
    page("ListBucketResult", f"<Contents><Key>{PREFIX}a</Key></Contents>").replace(NS.encode(), b"urn:other"),
    page("ListMultipartUploadsResult", f"<Upload><Key>{PREFIX}a</Key><UploadId>u</UploadId></Upload>"),
    page("ListBucketResult", f"<Upload><Key>{PREFIX}a</Key></Upload>"),
    page("ListBucketResult", f"<Contents><Key>{PREFIX}a</Key><?pi x?></Contents>"),
    page("ListBucketResult", f"<Contents><Key>{PREFIX}a</Key></Contents>") + b"\xff",
]


@pytest.mark.parametrize("body", UNUSUAL, ids=range(len(UNUSUAL)))
def test_text_path_declines_unusual_pages(body):
    assert _stream_listing(body, view(), False) is None
    try:
        out = rewrite_listing(body, view())
    except S3Error as exc:
        assert exc.code == "MalformedXML"
        return
    assert b"root/" not in out and b"bob" not in out.replace(b"sealed", b"")


@FUZZ
@given(st.binary(max_size=400), st.integers(0, 400))
@example(b"", 0)
def test_text_path_on_mutated_pages(noise, at):
    """Bytes spliced into a real page: the text path either declines or agrees with the tree path."""
    base = node_page([PREFIX + "a", PREFIX + "b&c"], [PREFIX + "d/"], HEADS[6])
    at = min(at, len(base))
    same_answer(base[:at] + noise + base[at:], view(listing=ListingFilter(("a", "d"))))


@FUZZ
@given(st.text(st.sampled_from(list("<>/&;#x!?[]CDATAKeyOwner=\"' \t\n\r1ab")), max_size=120), st.integers(0, 200))
def test_text_path_on_markup_noise(noise, at):
    base = node_page([PREFIX + "a"], [PREFIX + "d/"], HEADS[1])
    at = min(at, len(base))
    same_answer(base[:at] + noise.encode() + base[at:], view(listing=ListingFilter(("a",))))


def test_text_path_answers_a_real_page_and_keeps_its_guarantees():
    """A 1000-key page as SeaweedFS sends it, listed by a reader of 'list/k-000' only, url-encoded."""
    keys = [f"{PREFIX}list/k-{i:04d}" for i in range(1000)] + ["root/alice/ws2/stray"]
    body = node_page(keys, [], f"<NextContinuationToken>{PREFIX}list/k-0999</NextContinuationToken>")
    v = view(listing=ListingFilter(("list/k-000",)), url=True, echo={"prefix": "list/"})
    assert same_answer(body, v)
    assert same_answer(body, view(url=True, echo={"prefix": "list/"}))
    out = rewrite_listing(body, v)
    assert out.count(b"<Key>") == 10 and b"root/" not in out and b"ws2" not in out
    assert b"<Owner><ID>alice&amp;co</ID><DisplayName>alice&amp;co</DisplayName></Owner>" in out
    assert b"<EncodingType>url</EncodingType>" in out and b"<KeyCount>10</KeyCount>" in out


def test_names_are_sorted_in_utf8_byte_order():
    """SeaweedFS lists 'foo/' before 'foo+1/'; S3 (and paginating clients) need byte order."""
    body = node_page([PREFIX + "foo/x", PREFIX + "foo+1", PREFIX + "\U0001f600", PREFIX + "\uffee"], [])
    assert same_answer(body, view())
    keys = [e.text for e in ET.fromstring(rewrite_listing(body, view())).iter("{" + NS + "}Key")]
    assert keys == ["foo+1", "foo/x", "\uffee", "\U0001f600"]


def test_an_oversized_page_is_refused_before_parsing():
    body = node_page([PREFIX + "a"], []) + b" " * (MAX_XML_BYTES + 1 - len(node_page([PREFIX + "a"], [])) + 1)
    with pytest.raises(S3Error) as err:
        rewrite_listing(body, view())
    assert err.value.code == "InternalError"


@FUZZ
@given(st.lists(names, max_size=8, unique=True), st.lists(names, max_size=3, unique=True), st.sampled_from(HEADS),
       st.booleans(), st.sampled_from(["Contents", "Version"]))
def test_text_path_on_sorted_visible_pages(keys, prefixes, head, url, entry_tag):
    """The common page (sorted, all visible): the text path answers, as the tree path."""
    root = "ListBucketResult" if entry_tag == "Contents" else "ListVersionsResult"
    body = node_page([PREFIX + k for k in sorted(keys)], [PREFIX + p for p in sorted(prefixes)], head, root, entry_tag)
    echo = {"prefix": "", "continuation-token": "given"} if "Continuation" in head else {"prefix": ""}
    assert same_answer(body, view("ListObjectsV2", None, url, echo))
