"""A private wio stack for fault injection: its own PostgreSQL, Valkey and SeaweedFS, its own API and proxy.

The shared ``stack`` is never touched by a fault; tests here stop, kill and restart these services.
"""
from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.conftest import wio_settings
from wio.dev.stack import DevStack, launch_components
from wio.dev.postgres import start_postgres
from wio.dev.seaweedfs import start_seaweedfs
from wio.dev.valkey import start_valkey


def _port(url: str) -> int:
    return urlsplit(url).port


@dataclass
class FaultStack:
    """The services behind a private DevStack, with stop/kill/restart on the same ports."""
    root: Path
    dev: DevStack
    pg: object
    valkey: object
    node: object

    @property
    def proxy_pid(self) -> int:
        return self.dev.processes[1].pid

    def stop_valkey(self) -> None:
        self.valkey.stop()

    def start_valkey(self, *, empty: bool = False) -> None:
        port = _port(self.valkey.url)
        where = self.root / ("valkey-empty-%d" % time.monotonic_ns() if empty else "valkey")
        self.valkey = start_valkey(where, port, persist=not empty)

    def stop_pg(self) -> None:
        self.pg.stop()

    def start_pg(self) -> None:
        self.pg = start_postgres(self.root / "postgres", _port(self.pg.url), durable=False)

    def kill_node(self) -> None:
        """SIGKILL every process of the SeaweedFS node (a crash, not a stop)."""
        for pid in self.node.process_ids():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.node.stop(timeout=5)  # reap, remove sockets/pid files

    def start_node(self) -> None:
        self.node = start_seaweedfs(self.root / "seaweedfs", _port(self.node.endpoint))


@pytest.fixture(scope="module")
def faults(tmp_path_factory):
    root = tmp_path_factory.mktemp("faults")
    pg = start_postgres(root / "postgres", durable=False)
    valkey = start_valkey(root / "valkey", persist=True)
    node = start_seaweedfs(root / "seaweedfs")
    dev = DevStack(settings=wio_settings(pg, valkey, node))
    fs = FaultStack(root, dev, pg, valkey, node)
    try:
        launch_components(dev, dev.settings)
        yield fs
    finally:
        dev.stop()
        for service in (fs.node, fs.valkey, fs.pg):
            try:
                service.stop()
            except Exception:  # noqa: BLE001 - best effort at teardown
                pass
