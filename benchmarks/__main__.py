"""``python -m benchmarks run [--quick] [--out DIR]`` and ``python -m benchmarks profile``."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from benchmarks.stack import NodeCredentials

SECTIONS = ("decision", "large", "small", "list", "revocation", "quota", "rss")


def _stack_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--proxy-workers", type=int, default=2, help="proxy processes (and nginx workers)")
    group = parser.add_argument_group("attach to a running stack (wio dev) instead of starting one")
    group.add_argument("--api", help="admin API base URL, e.g. http://127.0.0.1:8080")
    group.add_argument("--s3", help="the proxy's S3 URL, e.g. http://127.0.0.1:9000")
    group.add_argument("--admin-password")
    group.add_argument("--node-endpoint", help="the node's S3 endpoint (direct and nginx runs go there)")
    group.add_argument("--node-access-key")
    group.add_argument("--node-secret-key")
    group.add_argument("--node-region", default="us-east-1")


def _node(args) -> NodeCredentials | None:
    if not args.node_endpoint:
        return None
    return NodeCredentials(args.node_endpoint.rstrip("/"), args.node_access_key or "", args.node_secret_key or "",
                           args.node_region)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="measure direct / nginx / wio and write results.json, charts and a table")
    run.add_argument("--quick", action="store_true", help="smaller sizes and durations (under 5 minutes)")
    run.add_argument("--out", type=Path, default=None,
                     help="output directory (default benchmarks/results/quick or benchmarks/results/full)")
    run.add_argument("--reference-hops", action="store_true",
                     help="also measure two no-auth Python hops (aiohttp, os.splice) on large and small objects")
    run.add_argument("--ab", metavar="REF", default=None,
                     help="A/B: also run a proxy from git REF (path 'wio-base') beside the working tree's, "
                          "alternating with the other paths in every round")
    run.add_argument("--keep", action="store_true", help="keep the temporary directory (data, logs)")
    run.add_argument("--only", default=None, help=f"comma-separated sections of {','.join(SECTIONS)}")
    _stack_options(run)
    prof = sub.add_parser("profile", help="py-spy profiles of the proxy under large-GET and small-GET load")
    prof.add_argument("--out", type=Path, default=Path("benchmarks/results/profile"))
    prof.add_argument("--seconds", type=float, default=12.0)
    prof.add_argument("--loads", default="large-get,small-get",
                      help="comma-separated of large-get, large-put, small-get, small-put")
    prof.add_argument("--native", action="store_true",
                      help="C frames too (py-spy pauses the workers at each sample: slower, perturbs the load)")
    prof.add_argument("--cpu-clock", action="store_true",
                      help="also run one extra proxy worker under yappi's CPU clock (pip install yappi; own stack only)")
    _stack_options(prof)
    args = parser.parse_args(argv)
    if args.command == "run":
        from benchmarks.run import run_benchmarks
        only = set(args.only.split(",")) if args.only else None
        if only and not only <= set(SECTIONS):
            parser.error(f"--only takes {', '.join(SECTIONS)}")
        out = args.out or Path("benchmarks/results") / ("quick" if args.quick else "full")
        run_benchmarks(quick=args.quick, out_dir=out, proxy_workers=args.proxy_workers, api_url=args.api,
                       s3_url=args.s3, admin_password=args.admin_password, node=_node(args), only=only,
                       keep=args.keep, reference_hops=args.reference_hops, ab_ref=args.ab)
        return 0
    from benchmarks.profile import profile_proxy
    profile_proxy(out_dir=args.out, seconds=args.seconds, loads=args.loads.split(","),
                  proxy_workers=args.proxy_workers, native=args.native,
                  cpu_clock=args.cpu_clock, api_url=args.api, s3_url=args.s3,
                  admin_password=args.admin_password, node=_node(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
