"""The search backend contract, on real engines: PostgreSQL always, Elasticsearch when a server is given."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from indexer.documents import Bucket, Fingerprint, ObjectDoc, Readable, Removal, SearchFilters
from tests.conftest import unique
from tests.indexer.conftest import settle

T0 = 1_700_000_000.0


def doc(ws: str, key: str, size: int = 1, content_type: str = "application/octet-stream", *, version: float = T0,
        modified: float = T0, etag: str = "e") -> ObjectDoc:
    return ObjectDoc(ws, key, size, etag, content_type, modified, version)


def everything(*workspaces: str) -> Readable:
    return Readable({ws: ("",) for ws in workspaces})


async def keys(backend, readable: Readable, **filters) -> list[tuple[str, str]]:
    result = await backend.search(SearchFilters(**filters), readable, 100, 0)
    return [(h.workspace, h.key) for h in result.hits]


async def test_words_filters_order_and_pages(backend):
    ws = unique("ws")
    await backend.upsert_many([
        doc(ws, "runs/Run-01.CSV", 100, "text/csv", modified=T0),
        doc(ws, "runs/run-02.csv", 200, "text/csv", modified=T0 + 100),
        doc(ws, "notes/readme.md", 5, "text/markdown"),
        doc(ws, "images/Plot_final.png", 5000, "image/png", modified=T0 + 200),
        doc(ws, "Zeta.bin", 7),
        doc(ws, "données/été.txt", 3, "text/plain"),
    ])
    await settle(backend)
    r = everything(ws)
    assert await keys(backend, r, text="run csv") == [(ws, "runs/Run-01.CSV"), (ws, "runs/run-02.csv")]
    assert await keys(backend, r, text="RU 02") == [(ws, "runs/run-02.csv")]          # words are prefixes
    assert await keys(backend, r, text="plot final") == [(ws, "images/Plot_final.png")]
    assert await keys(backend, r, text="markdown") == [(ws, "notes/readme.md")]       # content type words
    assert await keys(backend, r, text="été") == [(ws, "données/été.txt")]
    assert await keys(backend, r, text="nothing-like-this") == []
    assert await keys(backend, r, content_type="text/csv") == [(ws, "runs/Run-01.CSV"), (ws, "runs/run-02.csv")]
    assert len(await keys(backend, r, content_type="text/*")) == 4
    assert await keys(backend, r, min_size=200, max_size=5000) == [(ws, "images/Plot_final.png"),
                                                                  (ws, "runs/run-02.csv")]
    after = datetime.fromtimestamp(T0 + 50, timezone.utc)
    assert await keys(backend, r, modified_after=after) == [(ws, "images/Plot_final.png"), (ws, "runs/run-02.csv")]
    assert await keys(backend, r, prefix="runs/") == [(ws, "runs/Run-01.CSV"), (ws, "runs/run-02.csv")]
    # S3's order: UTF-8 bytes, so "Zeta" < "données" < "images" ... and "é" sorts after ASCII.
    assert [k for _, k in await keys(backend, r)] == ["Zeta.bin", "données/été.txt", "images/Plot_final.png",
                                                      "notes/readme.md", "runs/Run-01.CSV", "runs/run-02.csv"]
    page = await backend.search(SearchFilters(), r, 2, 2)
    assert page.total == 6 and [h.key for h in page.hits] == ["images/Plot_final.png", "notes/readme.md"]
    last = await backend.search(SearchFilters(), r, 4, 4)
    assert last.total == 6 and len(last.hits) == 2
    beyond = await backend.search(SearchFilters(), r, 4, 40)
    assert beyond.total == 6 and beyond.hits == []
    hit = (await backend.search(SearchFilters(text="plot"), r, 1, 0)).hits[0]
    assert (hit.size, hit.content_type, hit.last_modified) == (5000, "image/png",
                                                               datetime.fromtimestamp(T0 + 200, timezone.utc))


async def test_results_are_limited_to_readable_prefixes(backend):
    mine, theirs, lookalike = unique("ws"), unique("ws"), unique("ws")
    await backend.upsert_many([
        doc(mine, "a.txt"), doc(theirs, "shared/x.txt"), doc(theirs, "shared2/y.txt"), doc(theirs, "private/z.txt"),
        doc(theirs, "odd_%/w.txt"), doc(theirs, "oddX%/v.txt"), doc(lookalike, "shared/x.txt"),
    ])
    await settle(backend)
    r = Readable({mine: ("",), theirs: ("shared/", "odd_%/")})
    assert await keys(backend, r) == [(mine, "a.txt"), (theirs, "odd_%/w.txt"), (theirs, "shared/x.txt")]
    assert await keys(backend, r, text="txt", workspace=theirs) == [(theirs, "odd_%/w.txt"),
                                                                    (theirs, "shared/x.txt")]
    assert await keys(backend, r, workspace=lookalike) == []
    assert await keys(backend, Readable()) == []
    assert await backend.aggregate("workspace", SearchFilters(), Readable()) == []


async def test_older_writes_never_win(backend):
    ws = unique("ws")
    r = everything(ws)
    await backend.upsert_many([doc(ws, "k", 2, version=T0 + 2)])
    await backend.upsert_many([doc(ws, "k", 1, version=T0 + 1)])          # an older event, redelivered
    await backend.delete_many([Removal(ws, "k", T0 + 1.5)])                # an older delete
    await settle(backend)
    assert [h.size for h in (await backend.search(SearchFilters(), r, 10, 0)).hits] == [2]
    await backend.delete_many([Removal(ws, "k", T0 + 3)])
    await backend.upsert_many([doc(ws, "k", 9, version=T0 + 2.5)])        # older than the delete
    await settle(backend)
    assert await keys(backend, r) == []
    await backend.upsert_many([doc(ws, "k", 4, version=T0 + 4), doc(ws, "k", 3, version=T0 + 3.5)])
    await settle(backend)
    assert [h.size for h in (await backend.search(SearchFilters(), r, 10, 0)).hits] == [4]


async def test_aggregations_are_exact(backend):
    ws1, ws2 = unique("ws"), unique("ws")
    big = 5 * 2 ** 40  # sums beyond 32 bits stay exact
    await backend.upsert_many([
        doc(ws1, "a.csv", big, "text/csv"), doc(ws1, "b.CSV", 3, "text/csv"),
        doc(ws1, "c.json", 10, "application/json"),
        doc(ws1, "Makefile", 7, ""), doc(ws2, "d.csv", 11, "text/csv"), doc(ws2, "hidden/e.csv", 1000, "text/csv"),
    ])
    await settle(backend)
    r = Readable({ws1: ("",), ws2: ("d",)})
    by_ext = {b.key: b for b in await backend.aggregate("extension", SearchFilters(), r)}
    assert by_ext == {"csv": Bucket("csv", 3, big + 14), "json": Bucket("json", 1, 10), "": Bucket("", 1, 7)}
    by_ws = {b.key: b for b in await backend.aggregate("workspace", SearchFilters(), r)}
    assert by_ws == {ws1: Bucket(ws1, 4, big + 20), ws2: Bucket(ws2, 1, 11)}
    by_type = {b.key: b for b in await backend.aggregate("content_type", SearchFilters(text="csv"), r)}
    assert by_type == {"text/csv": Bucket("text/csv", 3, big + 14)}


async def test_crawl_reconcile_primitives(backend):
    ws = unique("ws")
    await backend.upsert_many([doc(ws, k, version=T0, etag=f"etag-{k}") for k in ("a", "b", "c", "d")]
                              + [doc(ws, "bb", version=T0 + 10)])
    await settle(backend)
    assert await backend.fingerprints(ws, ["a", "c", "zz"]) == {"a": Fingerprint(1, "etag-a"),
                                                                "c": Fingerprint(1, "etag-c")}
    # A page listed at T0+5 covering keys (a, c] returned only "b": "c" is gone; "bb" was written later.
    assert await backend.remove_unlisted(ws, "a", "c", ["b"], T0 + 5) == 1
    await settle(backend)
    assert [k for _, k in await keys(backend, everything(ws))] == ["a", "b", "bb", "d"]
    # The last page (no upper bound) listed nothing after "b".
    assert await backend.remove_unlisted(ws, "b", None, [], T0 + 20) == 2
    await settle(backend)
    assert [k for _, k in await keys(backend, everything(ws))] == ["a", "b"]
    await backend.upsert_many([doc(ws, "d", version=T0 + 15)])  # older than the crawl's removal: stays removed
    await settle(backend)
    assert [k for _, k in await keys(backend, everything(ws))] == ["a", "b"]


async def test_forgetting_deleted_workspaces(backend):
    keep, gone = unique("ws"), unique("ws")
    await backend.upsert_many([doc(keep, "x"), doc(gone, "y"), doc(gone, "z")])
    await settle(backend)
    assert {keep, gone} <= set(await backend.indexed_workspaces())
    assert await backend.drop_workspaces([gone, unique("never-indexed")]) == 2
    await settle(backend)
    assert await keys(backend, everything(keep, gone)) == [(keep, "x")]
    assert gone not in await backend.indexed_workspaces()


async def test_tombstones_expire(backend):
    if backend.name != "postgresql":
        pytest.skip("Elasticsearch expires its own delete tombstones (index.gc_deletes)")
    ws = unique("ws")
    await backend.delete_many([Removal(ws, "k", T0 + 10)])
    await backend.upsert_many([doc(ws, "k", version=T0 + 5)])
    assert await keys(backend, everything(ws)) == []
    assert await backend.purge_tombstones(T0 + 11) >= 1
    await backend.upsert_many([doc(ws, "k", version=T0 + 5)])
    assert await keys(backend, everything(ws)) == [(ws, "k")]


async def test_both_ways_of_paging_text_matches_agree(backend, monkeypatch):
    if backend.name != "postgresql":
        pytest.skip("a PostgreSQL plan choice")
    import indexer.pg
    ws, other = unique("ws"), unique("ws")
    await backend.upsert_many([doc(ws, f"d{i % 3}/f{i:02d}.csv") for i in range(30)]
                              + [doc(other, f"x/f{i}.csv") for i in range(5)] + [doc(ws, "d0/skip.txt")])
    readable = Readable({ws: ("d0/", "d2/"), other: ("",)})
    pages = []
    for sort_up_to in (10_000, 1):  # sort the matches / walk the grants' key ranges in order
        monkeypatch.setattr(indexer.pg, "SORT_MATCHES_UP_TO", sort_up_to)
        results = [await backend.search(SearchFilters(text="csv"), readable, 7, offset) for offset in (0, 7, 14, 21)]
        assert {r.total for r in results} == {25}
        pages.append([(h.workspace, h.key) for r in results for h in r.hits])
    expected = sorted([(ws, f"d{i % 3}/f{i:02d}.csv") for i in range(30) if i % 3 != 1]
                      + [(other, f"x/f{i}.csv") for i in range(5)])
    assert pages[0] == pages[1] == expected
