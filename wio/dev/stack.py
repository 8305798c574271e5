"""``wio dev``: a complete stack on one machine from PyPI alone.

Starts embedded PostgreSQL, Valkey and a SeaweedFS S3 node (wio.dev.postgres, .valkey, .seaweedfs), then the admin API and
the proxy as child processes (``wio serve``), bootstraps the admin user, the node and its roots, and
stops everything it started on Ctrl-C/SIGTERM. State (data, secrets) lives in ``--state-dir``.
"""
from __future__ import annotations

import json
import os
import secrets
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from wio.dev.postgres import start_postgres
from wio.dev.process import free_port
from wio.dev.seaweedfs import start_seaweedfs
from wio.dev.valkey import start_valkey, start_valkey_ha
from foundation.settings import Settings, derive_master_key, normalize_database_url

__all__ = ["DevStack", "start_dev_stack", "launch_components", "load_state_secrets", "wait_http", "make_tls_pair"]


def load_state_secrets(state_dir: Path, admin_password: str | None) -> dict[str, str]:
    """Secrets that must survive restarts of the same state dir (else stored keys become unreadable)."""
    path = state_dir / "secrets.json"
    data = json.loads(path.read_text()) if path.exists() else {}
    data.setdefault("master_key", secrets.token_urlsafe(32))
    data.setdefault("jwt_secret", secrets.token_urlsafe(32))
    data.setdefault("admin_password", admin_password or secrets.token_urlsafe(12))
    if admin_password:
        data["admin_password"] = admin_password
    path.write_text(json.dumps(data, indent=2))
    path.chmod(0o600)
    return data


def wait_http(url: str, timeout: float, proc: subprocess.Popen | None = None, context=None) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{url}: the process exited with code {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2, context=context) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError) as exc:
            last = str(exc)
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not become healthy within {timeout:.0f}s ({last})")


def make_tls_pair(state_dir: Path) -> tuple[str, str]:
    """A self-signed certificate for localhost/127.0.0.1, made once per state dir."""
    cert, key = state_dir / "tls" / "cert.pem", state_dir / "tls" / "key.pem"
    if cert.exists() and key.exists():
        return str(cert), str(key)
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    cert.parent.mkdir(parents=True, exist_ok=True)
    pkey = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "wio dev")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(pkey.public_key())
                   .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
                   .not_valid_after(now + datetime.timedelta(days=825))
                   .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                               x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                                  critical=False)
                   .sign(pkey, hashes.SHA256()))
    key.write_bytes(pkey.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    key.chmod(0o600)
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return str(cert), str(key)


@dataclass
class DevStack:
    settings: Settings
    services: list = field(default_factory=list)
    processes: list[subprocess.Popen] = field(default_factory=list)
    admin_password: str = ""
    s3_url: str = ""
    api_url: str = ""

    def stop(self, timeout: float = 20) -> None:
        for proc in self.processes:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for proc in self.processes:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        for service in reversed(self.services):
            service.stop()


def launch_components(stack: DevStack, settings: Settings, *, proxy_workers: int = 1,
                      tls_pair: tuple[str, str] | None = None, timeout: float = 60, indexer: bool = False) -> None:
    """Start the admin API, the proxy and the indexer as ``wio serve`` child processes (API and proxy healthy)."""
    proxy_cmd = [sys.executable, "-m", "wio", "serve", "proxy", "--workers", str(proxy_workers)]
    context = None
    stack.s3_url = f"http://127.0.0.1:{settings.proxy_port}"
    if tls_pair:
        proxy_cmd += ["--tls-cert", tls_pair[0], "--tls-key", tls_pair[1]]
        context = ssl.create_default_context(cafile=tls_pair[0])
        stack.s3_url = f"https://localhost:{settings.proxy_port}"
        settings = settings.with_(s3_ca_file=settings.s3_ca_file or tls_pair[0])  # served by GET /api/v1/info
    settings = settings.with_(s3_public_url=settings.s3_public_url or stack.s3_url)
    stack.settings = settings
    env = {**os.environ, **settings.to_env()}
    stack.api_url = f"http://127.0.0.1:{settings.api_port}"
    api = subprocess.Popen([sys.executable, "-m", "wio", "serve", "api"], env=env, start_new_session=True)
    stack.processes.append(api)
    wait_http(stack.api_url + "/healthz", timeout, api)
    # The proxy gets no JWT secret: it calls the API with its own credential (foundation/secrets.py).
    proxy_env = {k: v for k, v in env.items() if k != "WIO_JWT_SECRET"}
    proxy = subprocess.Popen(proxy_cmd, env=proxy_env, start_new_session=True)
    stack.processes.append(proxy)
    wait_http(stack.s3_url + "/_wio/health", timeout, proxy, context=context)
    if indexer:
        stack.processes.append(subprocess.Popen([sys.executable, "-m", "wio", "serve", "indexer"], env=proxy_env,
                                                start_new_session=True))


def start_dev_stack(state_dir: Path, *, api_port: int = 8080, s3_port: int = 9000, proxy_workers: int = 1,
                    tls: bool = False, admin_password: str | None = None, redis_url: str | None = None,
                    database_url: str | None = None, ha: bool = False, anonymous_reads: bool = False,
                    log=print) -> DevStack:
    """``redis_url`` / ``database_url``: use these services instead of starting embedded ones;
    ``ha``: start a Valkey primary, a replica and three Sentinels and use them through Sentinel."""
    if ha and redis_url:
        raise ValueError("--ha starts its own Valkey; it cannot be combined with --redis-url")
    state_dir.mkdir(parents=True, exist_ok=True)
    secrets_ = load_state_secrets(state_dir, admin_password)
    ports_file = state_dir / "ports.json"
    ports = json.loads(ports_file.read_text()) if ports_file.exists() else {}
    ports.setdefault("postgres", free_port())
    ports.setdefault("valkey", free_port())
    ports.setdefault("seaweed_s3", free_port())
    ports_file.write_text(json.dumps(ports))
    stack = DevStack(settings=None, admin_password=secrets_["admin_password"])  # type: ignore[arg-type]
    urls: dict[str, str] = {}

    def start(what: str, starter, *args) -> None:
        started = starter(*args)
        if what == "redis" and ha:
            services, urls[what] = started
            stack.services.extend(services)
        else:
            stack.services.append(started)
            urls[what] = started.url

    try:
        jobs = [("node", start_seaweedfs, state_dir / "seaweedfs", ports["seaweed_s3"])]
        if database_url:
            urls["database"] = normalize_database_url(database_url)  # a malformed URL fails before anything starts
        else:
            jobs.append(("database", start_postgres, state_dir / "postgres", ports["postgres"]))
        if redis_url:
            urls["redis"] = redis_url
        elif ha:
            jobs.append(("redis", start_valkey_ha, state_dir / "valkey-ha"))
        else:
            jobs.append(("redis", start_valkey, state_dir / "valkey", ports["valkey"]))
        names = {"node": "SeaweedFS", "database": "PostgreSQL",
                 "redis": "Valkey with a replica and three Sentinels" if ha else "Valkey"}
        log(f"starting {', '.join(names[job[0]] for job in jobs)} …")
        with ThreadPoolExecutor(len(jobs)) as pool:
            futures = [pool.submit(start, *job) for job in jobs]
            errors = []
            for f in futures:
                try:
                    f.result()
                except Exception as exc:  # noqa: BLE001 - reported together below
                    errors.append(exc)
            if errors:
                raise errors[0]
        node = next(s for s in stack.services if s.url == urls["node"])
        settings = Settings(
            database_url=normalize_database_url(urls["database"]), redis_url=urls["redis"],
            master_key=derive_master_key(secrets_["master_key"]),
            jwt_secret=secrets_["jwt_secret"], api_port=api_port, proxy_port=s3_port,
            api_url=f"http://127.0.0.1:{api_port}", allow_private_nodes=True, log_json=False,
            admin_password=secrets_["admin_password"], bootstrap_node_endpoint=node.endpoint,
            bootstrap_node_access_key=node.access_key, bootstrap_node_secret_key=node.secret_key,
            bootstrap_node_region=node.region, anonymous_reads=anonymous_reads)
        launch_components(stack, settings, proxy_workers=proxy_workers,
                          tls_pair=make_tls_pair(state_dir) if tls else None, indexer=True)
        return stack
    except BaseException:
        stack.stop()
        raise
