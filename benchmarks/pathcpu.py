"""``python -m benchmarks.pathcpu``: CPU of single steps of the request path, in process, A/B alternating.

- listing: one 1000-entry ListObjectsV2 page in SeaweedFS's shape, rewritten by the tree path
  (defusedxml, ElementTree, before issue 21) and by the text path, raw and with ``encoding-type=url``;
- accounting: ``proxy.accounting.account`` for one GetObject (metrics, access log to /dev/null through
  the buffered handler, the audit entry to a sink that drops it).

CPU is this process's ``time.process_time()``, so another job on the machine slows it less than it
slows wall-clock figures (it still shares caches and cores: the minimum over blocks is reported).
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable

PREFIX = "bench-root/ws-1a2b3c/"


def seaweedfs_page(n: int = 1000) -> bytes:
    entries = "".join(
        f"<Contents><Key>{PREFIX}list/k-{i:06d}</Key><LastModified>2026-12-06T06:{i % 60:02d}:00Z</LastModified>"
        f"<ETag>&#34;{i:032x}&#34;</ETag><Size>16</Size><Owner><ID>0</ID><DisplayName>admin</DisplayName></Owner>"
        f"<StorageClass>STANDARD</StorageClass></Contents>" for i in range(n))
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
            f"<Name>bench-bucket</Name><Prefix>{PREFIX}list/</Prefix><ContinuationToken></ContinuationToken>"
            f"<NextContinuationToken>{PREFIX}list/k-{n - 1:06d}</NextContinuationToken><KeyCount>{n}</KeyCount>"
            f"<MaxKeys>1000</MaxKeys><IsTruncated>true</IsTruncated>{entries}</ListBucketResult>").encode()


def _best(steps: dict[str, Callable[[], Any]], repeat: int, blocks: int = 7) -> dict[str, float]:
    """Microseconds of CPU per call of each step: the minimum over ``blocks`` blocks, steps alternating."""
    best = {name: float("inf") for name in steps}
    for step in steps.values():
        step()
    for _ in range(blocks):
        for name, step in steps.items():
            t0 = time.process_time()
            for _ in range(repeat):
                step()
            best[name] = min(best[name], (time.process_time() - t0) / repeat * 1e6)
    return {name: round(value, 1) for name, value in best.items()}


def listing() -> dict[str, float]:
    from foundation.secrets import SecretBox
    from policy.decide import ListingFilter
    from proxy.listing import ListingView, _stream_listing, _tree_listing
    body = seaweedfs_page()

    def view(url: bool) -> ListingView:
        return ListingView(operation="ListObjectsV2", workspace="ws", physical_prefix=PREFIX, owner="alice",
                           box=SecretBox(b"\x01" * 32), echo={"prefix": "list/"}, listing=ListingFilter(),
                           url_encoded=url)
    raw, url = view(False), view(True)
    assert _stream_listing(body, raw, False) is not None
    return _best({"tree_us": lambda: _tree_listing(body, raw, False),
                  "text_us": lambda: _stream_listing(body, raw, False),
                  "tree_url_us": lambda: _tree_listing(body, url, False),
                  "text_url_us": lambda: _stream_listing(body, url, False)}, repeat=5)


def accounting() -> dict[str, float]:
    os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", "")
    from aiohttp.test_utils import make_mocked_request
    from foundation.logs import configure_logging
    from proxy import accounting as acc
    configure_logging(False)
    for handler in logging.getLogger("wio.access").handlers:
        handler.stream = open(os.devnull, "w")   # type: ignore[attr-defined]

    class Sink:
        def emit(self, stream: str, fields: dict) -> None:
            pass

    class Caller:
        user, access_key_id = "alice", "WIOKEY"

    class Op:
        name = "GetObject"

    class Call:
        caller, op, bucket, key, decided_by, target = Caller(), Op(), "ws", "small/obj-1", "owner", None
        extra = {"bytes_out": 4096}

    request = make_mocked_request("GET", "/ws/small/obj-1", headers={"User-Agent": "bench"},
                                  match_info={"tail": "small/obj-1"})   # routed as an S3 request
    request["call"], request["request_id"] = Call(), "r1"
    sink = Sink()
    return _best({"account_us": lambda: acc.account(request, sink, 200, None, time.monotonic())},  # type: ignore[arg-type]
                 repeat=2000)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.pathcpu", description=__doc__)
    parser.add_argument("--out", type=Path, default=None, help="write the figures to this JSON file")
    args = parser.parse_args(argv)
    figures = {"listing_1000_entries": listing(), "accounting_per_request": accounting(),
               "load_average": os.getloadavg(), "cpus": os.cpu_count()}
    text = json.dumps(figures, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
