"""Prometheus metrics move with real traffic through the proxy (boto3) and the admin API."""
from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from tests.conftest import make_person, s3_client, unique
from tests.observability.helpers import scrape


def _code(exc_info) -> str:
    return exc_info.value.response["Error"]["Code"]


def test_proxy_counters_move_with_allowed_and_denied_traffic(stack):
    owner, stranger = make_person(stack, "obsown"), make_person(stack, "obsstr")
    ws = unique("obsws")
    owner.api.call("POST", "/workspaces", {"name": ws})
    node = owner.api.call("GET", f"/workspaces/{ws}")["node"]
    metrics_url = stack.s3_url + "/_wio/metrics"
    before = scrape(metrics_url)

    body = b"m" * 1000
    owner.s3.put_object(Bucket=ws, Key="data/m.bin", Body=body)
    assert owner.s3.get_object(Bucket=ws, Key="data/m.bin")["Body"].read() == body
    with pytest.raises(ClientError) as exc:
        stranger.s3.get_object(Bucket=ws, Key="data/m.bin")
    assert _code(exc) == "AccessDenied"
    with pytest.raises(ClientError) as exc:
        s3_client(stack.s3_url, {**owner.key, "secret_access_key": "x" * 40}).get_object(Bucket=ws, Key="data/m.bin")
    assert _code(exc) == "SignatureDoesNotMatch"
    with pytest.raises(ClientError) as exc:
        s3_client(stack.s3_url, {"access_key_id": "WIONOSUCHKEY00000000", "secret_access_key": "y" * 40}
                  ).get_object(Bucket=ws, Key="data/m.bin")
    assert _code(exc) == "InvalidAccessKeyId"

    after = scrape(metrics_url)

    def delta(name, **labels):
        return after.value(name, **labels) - before.value(name, **labels)

    assert delta("wio_requests_total", operation="PutObject", status="200") >= 1
    assert delta("wio_requests_total", operation="GetObject", status="200") >= 1
    assert delta("wio_requests_total", operation="GetObject", status="403") >= 3
    assert delta("wio_request_duration_seconds_count", operation="GetObject") >= 4
    assert delta("wio_request_duration_seconds_sum", operation="GetObject") > 0
    assert delta("wio_authorization_decisions_total", decision="allow", reason="owner") >= 2
    assert delta("wio_authorization_decisions_total", decision="deny", reason="denied") >= 1
    assert delta("wio_authorization_decisions_total", decision="deny", reason="bad_signature") >= 1
    assert delta("wio_authorization_decisions_total", decision="deny", reason="unknown_key") >= 1
    # The workspace is new, so its byte counters are exactly this test's traffic.
    assert after.value("wio_received_bytes_total", workspace=ws) == len(body)
    assert after.value("wio_sent_bytes_total", workspace=ws) == len(body)
    assert after.value("wio_received_bytes_total", workspace=ws, node=node) == len(body)
    assert delta("wio_backend_request_duration_seconds_count", node=node) >= 2
    assert delta("wio_redis_duration_seconds_count", script="authorize") >= 5
    # The scrape itself is in flight while it is answered.
    assert after.value("wio_requests_in_flight") >= 1
    # Health checks and scrapes are not S3 requests: they are neither counted nor audited.
    assert after.value("wio_requests_total", operation="Unknown", status="200") == 0


def test_list_buckets_is_timed_as_its_own_redis_script(stack, person):
    url = stack.s3_url + "/_wio/metrics"
    before = scrape(url).value("wio_redis_duration_seconds_count", script="list_buckets")
    person.s3.list_buckets()
    assert scrape(url).value("wio_redis_duration_seconds_count", script="list_buckets") == before + 1


def test_admin_api_metrics_count_requests_by_route_template(stack, person):
    url = stack.api_url + "/metrics"
    before = scrape(url)
    ws = unique("obsapi")
    person.api.call("POST", "/workspaces", {"name": ws})
    person.api.call("GET", f"/workspaces/{ws}")
    status, _ = person.api.request("GET", "/workspaces/" + unique("missing"))
    assert status == 404
    after = scrape(url)

    def delta(name, **labels):
        return after.value(name, **labels) - before.value(name, **labels)

    assert delta("wio_api_requests_total", method="POST", route="/api/v1/workspaces", status="201") == 1
    # One series per route template, not per workspace name.
    assert delta("wio_api_requests_total", method="GET", route="/api/v1/workspaces/{name}", status="200") == 1
    assert delta("wio_api_requests_total", method="GET", route="/api/v1/workspaces/{name}", status="404") == 1
    assert delta("wio_api_request_duration_seconds_count", method="GET", route="/api/v1/workspaces/{name}") == 2
    assert not any(ws in line for line in after.text.splitlines())
