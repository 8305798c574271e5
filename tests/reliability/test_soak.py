"""The soak in its quick form (tools/soak.py) against the shared stack: ~30 s, 8 clients, objects up to
4 MiB, shares granted and revoked throughout. Long form: ``python -m tools.soak --minutes 10 --clients 64``.
"""
from __future__ import annotations

from tools.soak import MiB, SoakConfig, run_soak


def test_soak_quick(stack):
    cfg = SoakConfig(api_url=stack.api_url, s3_url=stack.s3_url, seconds=30, clients=8, max_size=4 * MiB,
                     readers=2, proxy_pids=[stack.processes[1].pid], rss_limit_mib=64)
    report = run_soak(cfg)
    print(report.summary())
    assert report.requests > 100 and report.revocations > 5 and report.reader_requests_after_revocation > 0
    assert report.errors_5xx == 0 and report.connection_failures == 0 and report.unexpected_4xx == 0, report.failures
    assert report.checksum_mismatches == 0 and report.objects_lost == 0, report.failures
    assert report.allowed_after_revocation == 0 and report.unauthorized_bytes == 0
    assert report.rss_growth_mib <= cfg.rss_limit_mib, report.summary()
    assert report.ok(cfg.rss_limit_mib)
