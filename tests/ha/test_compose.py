"""docker-compose.yml cannot run here (no Docker engine), so its wiring is checked statically: the
Sentinel URL names the Sentinel services and the service they monitor, the load balancer and
Prometheus name the proxy services, and every wio service runs a `wio serve` role that exists."""
from __future__ import annotations

import re
from pathlib import Path

import yaml
from click.testing import CliRunner

from wio.cli import cli
from foundation.redisurl import parse_redis_url

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
ENV = COMPOSE["x-wio-env"]


def test_every_component_finds_valkey_through_the_sentinels():
    target = parse_redis_url(ENV["WIO_REDIS_URL"])
    assert target is not None
    hosts = {host for host, _ in target.sentinels}
    assert hosts == {name for name, svc in SERVICES.items() if "--sentinel" in " ".join(svc.get("command", []))}
    monitored = re.findall(r"sentinel monitor (\S+) (\S+) (\d+) (\d+)", " ".join(SERVICES["sentinel1"]["command"]))
    assert monitored == [(target.service, "valkey-primary", "6379", "2")]
    assert "valkey-primary" in SERVICES["valkey-replica"]["command"]
    for name in ("proxy1", "proxy2", "indexer"):  # the same settings, and never the JWT signing secret
        assert SERVICES[name]["environment"] == ENV and "WIO_JWT_SECRET" not in ENV
    assert {k: v for k, v in SERVICES["api"]["environment"].items() if k != "WIO_JWT_SECRET"} == ENV


def test_the_load_balancer_and_prometheus_reach_every_proxy():
    proxies = sorted(name for name, svc in SERVICES.items() if svc.get("command", [None, None])[:2] == ["serve", "proxy"])
    assert proxies == ["proxy1", "proxy2"]
    nginx = (ROOT / "deploy/nginx/s3-load-balancer.conf").read_text()
    assert sorted(re.findall(r"server (\w+):9000;", nginx)) == proxies
    assert "proxy_set_header Host $http_host;" in nginx  # SigV4 signs the Host header
    assert "./deploy/nginx/s3-load-balancer.conf:/etc/nginx/conf.d/default.conf:ro" in SERVICES["s3"]["volumes"]
    prometheus = yaml.safe_load((ROOT / "deploy/prometheus.yml").read_text())
    proxy_job = next(j for j in prometheus["scrape_configs"] if j["job_name"] == "wio-proxy")
    assert sorted(t.split(":")[0] for t in proxy_job["static_configs"][0]["targets"]) == proxies


def test_wio_services_run_roles_that_exist():
    roles = {svc["command"][1] for svc in SERVICES.values() if svc.get("build") and svc["command"][0] == "serve"}
    assert roles == {"api", "proxy", "indexer"}
    for role in roles:
        assert CliRunner().invoke(cli, ["serve", role, "--help"]).exit_code == 0
