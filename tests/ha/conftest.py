"""A private wio stack on Valkey with Sentinel: a primary, one replica, three Sentinels, its own
PostgreSQL (a projection is only meaningful against the database it was built from), the shared
SeaweedFS node, the admin API and three separate proxy processes (``wio serve proxy``) on their own
ports, as they would run on three hosts behind a load balancer.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import pytest
from redis import Redis
from redis.exceptions import RedisError

from tests.conftest import wio_settings
from wio.dev.stack import DevStack, launch_components, wait_http
from wio.dev.postgres import start_postgres
from wio.dev.process import ManagedService, free_port
from wio.dev.valkey import start_valkey, start_valkey_ha

SERVICE = "wio"
# How long the Sentinels wait before they call a silent primary down: short for a quick test, long
# enough that a loaded CI machine does not fail over a primary that is merely slow.
DOWN_AFTER_MS = 1000


@dataclass
class HaStack:
    root: Path
    dev: DevStack
    pg: ManagedService
    valkeys: dict[int, ManagedService]          # port -> the Valkey server on it (primary or replica)
    sentinels: list[ManagedService]
    proxies: list[str] = field(default_factory=list)   # S3 endpoints of the three proxy instances

    def sentinel_client(self) -> Redis:
        return Redis(host="127.0.0.1", port=self.sentinels[0].port, decode_responses=True, socket_timeout=2)

    def primary_port(self) -> int:
        host, port = self.sentinel_client().sentinel_get_master_addr_by_name(SERVICE)
        return int(port)

    def kill_primary(self) -> int:
        """SIGKILL the current primary (a crash: no shutdown, no final sync). Returns its port."""
        port = self.primary_port()
        server = self.valkeys[port]
        os.kill(server.pid, signal.SIGKILL)
        server.stop(timeout=5)  # reap it
        return port

    def wait_for_new_primary(self, old_port: int, timeout: float = 30) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                port = self.primary_port()
                if port != old_port and Redis(host="127.0.0.1", port=port, socket_timeout=1).role()[0] == b"master":
                    return port
            except (OSError, ValueError, TypeError, RedisError):
                pass
            time.sleep(0.1)
        raise AssertionError(f"no new primary within {timeout}s")

    def restart_as_replica(self, port: int, primary: int) -> None:
        """Bring a killed server back as a replica of the current primary (as an operator would)."""
        self.valkeys[port] = start_valkey(self.valkeys[port].data_dir, port, persist=False, replica_of=primary)


@pytest.fixture(scope="module")
def ha(tmp_path_factory, s3_node):
    root = tmp_path_factory.mktemp("ha")
    pg = start_postgres(root / "postgres", durable=False)
    started, url = start_valkey_ha(root / "valkey", persist=False, service=SERVICE, down_after_ms=DOWN_AFTER_MS)
    valkeys = {s.port: s for s in started[:2]}
    dev = DevStack(settings=wio_settings(pg, SimpleNamespace(url=url), s3_node))
    stack = HaStack(root, dev, pg, valkeys, started[2:])
    extra: list[subprocess.Popen] = []
    try:
        launch_components(dev, dev.settings)
        stack.proxies.append(dev.s3_url)
        for _ in range(2):  # two more proxy instances: separate processes, separate ports
            port = free_port()
            env = {k: v for k, v in {**os.environ, **dev.settings.with_(proxy_port=port).to_env()}.items()
                   if k != "WIO_JWT_SECRET"}  # as launch_components runs a proxy: without the signing key
            proc = subprocess.Popen([sys.executable, "-m", "wio", "serve", "proxy"], env=env, start_new_session=True)
            extra.append(proc)
            dev.processes.append(proc)
            wait_http(f"http://127.0.0.1:{port}/_wio/health", 60, proc)
            stack.proxies.append(f"http://127.0.0.1:{port}")
        yield stack
    finally:
        dev.stop()
        for service in [*stack.sentinels, *stack.valkeys.values(), pg]:
            try:
                service.stop()
            except Exception:  # noqa: BLE001 - best effort at teardown
                pass
