"""Two proxy workers: one scrape of either answers for both, dead workers are handled, access logs are JSON.

A second proxy (and admin API) is launched next to the session stack, on the same PostgreSQL and
Redis with the same master key, as a scaled-out deployment would be.
"""
from __future__ import annotations

import json
import os
import signal
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import make_person, unique, wio_settings
from tests.observability.helpers import scrape
from wio.dev.stack import DevStack, launch_components


def _pids(directory: Path, prefix: str) -> set[int]:
    return {int(p.stem.rsplit("_", 1)[1]) for p in directory.glob(f"{prefix}_*.db")}


def _scrape_retrying(url: str):
    for _ in range(20):
        try:
            return scrape(url)
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.1)  # a connection the killed worker had accepted
    return scrape(url)


@pytest.fixture(scope="module")
def two_worker_stack(stack, pg_service, redis_service, s3_node, tmp_path_factory):
    settings = wio_settings(pg_service, redis_service, s3_node, master_key=stack.settings.master_key,
                            jwt_secret=stack.settings.jwt_secret, log_json=True)
    second = DevStack(settings=settings)
    tmp = tmp_path_factory.mktemp("two-workers")
    metrics_dir, log_path = tmp / "prometheus", tmp / "stderr.jsonl"
    saved_stderr, saved_env = os.dup(2), os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    try:
        with open(log_path, "wb") as log_file:
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
            os.dup2(log_file.fileno(), 2)  # the children inherit it: their log lines land in the file
            try:
                launch_components(second, settings, proxy_workers=2)
            finally:
                os.dup2(saved_stderr, 2)
                if saved_env is None:
                    os.environ.pop("PROMETHEUS_MULTIPROC_DIR")
                else:
                    os.environ["PROMETHEUS_MULTIPROC_DIR"] = saved_env
        yield second, metrics_dir / "proxy", log_path
    finally:
        os.close(saved_stderr)
        second.stop()


def test_two_workers_aggregate_and_survive_a_dead_worker(two_worker_stack):
    stack, proxy_dir, log_path = two_worker_stack
    person = make_person(stack, "mpw")
    ws = unique("mpws")
    person.api.call("POST", "/workspaces", {"name": ws})
    body = b"w" * 321
    person.s3.put_object(Bucket=ws, Key="obj", Body=body)
    url = person.s3.generate_presigned_url("get_object", Params={"Bucket": ws, "Key": "obj"}, ExpiresIn=300)
    rounds = 24
    for _ in range(rounds):  # a new connection each time: the kernel spreads them over both workers
        with urllib.request.urlopen(url, timeout=10) as resp:
            assert resp.read() == body

    workers = _pids(proxy_dir, "counter")
    assert len(workers) == 2, f"expected both workers to have served requests, saw {workers}"
    for _ in range(6):  # each scrape lands on either worker and must count both
        metrics = scrape(stack.s3_url + "/_wio/metrics")
        assert metrics.value("wio_sent_bytes_total", workspace=ws) == rounds * len(body)
        assert metrics.value("wio_received_bytes_total", workspace=ws) == len(body)
        assert metrics.value("wio_requests_in_flight") >= 1
    api_metrics = scrape(stack.api_url + "/metrics")  # the admin API in multiprocess mode too
    assert api_metrics.value("wio_api_requests_total", method="POST", route="/api/v1/workspaces", status="201") == 1

    # A worker dies: the parent marks it dead (its live gauge goes), its counted traffic stays counted.
    victim = sorted(workers)[0]
    assert victim in _pids(proxy_dir, "gauge_livesum")
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while victim in _pids(proxy_dir, "gauge_livesum"):
        assert time.monotonic() < deadline, "the dead worker was not marked dead"
        time.sleep(0.1)
    metrics = _scrape_retrying(stack.s3_url + "/_wio/metrics")
    assert metrics.value("wio_sent_bytes_total", workspace=ws) == rounds * len(body)
    assert metrics.value("wio_requests_in_flight") == 1  # this scrape, on the surviving worker


def test_access_log_is_json_with_the_request_id_of_the_s3_error(two_worker_stack):
    stack, _, log_path = two_worker_stack
    bucket = unique("nobody")
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(f"{stack.s3_url}/{bucket}/some/key.txt", timeout=10)
    assert exc.value.code == 403
    header_id = exc.value.headers["x-amz-request-id"]
    body = exc.value.read().decode()
    assert f"<RequestId>{header_id}</RequestId>" in body

    deadline = time.monotonic() + 10
    while True:
        lines = [json.loads(line) for line in log_path.read_text().splitlines() if line.startswith("{")]
        access = [e for e in lines if e.get("logger") == "wio.access" and e.get("request_id") == header_id]
        if access or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert len(access) == 1, "one access line per request"
    entry = access[0]
    assert entry["status"] == 403 and entry["decision"] == "deny" and entry["error"] == "AccessDenied"
    assert entry["operation"] == "GetObject" and entry["workspace"] == bucket and entry["key"] == "some/key.txt"
    assert entry["method"] == "GET" and entry["client"] == "127.0.0.1" and entry["duration_ms"] >= 0
    assert entry["level"] == "INFO" and header_id in entry["message"]
