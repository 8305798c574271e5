"""What the benchmarks run against, and the accounts they use.

Two ways to get a stack:
- own (default): PostgreSQL, Valkey and a SeaweedFS node from ``wio.dev`` (postgres, valkey, seaweedfs) in a temporary
  directory, then ``wio serve api`` and ``wio serve proxy --workers N`` (``wio.dev.stack``). The
  node is the bootstrap node ``local``; its credentials are known, so "direct" can use them.
- attach: a running stack (``wio dev``) given by ``--api``/``--s3``/``--admin-password``, plus the
  node's endpoint and credentials (``--node-*``). The harness registers that node under its own name
  with its own root, so its workspace sits where it can reach it directly.

Then ``provision`` makes a user, a key and a workspace through the admin API (and a second user for
the revocation trials), and works out the workspace's physical bucket and prefix.
"""
from __future__ import annotations

import os
import secrets
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import psutil

from benchmarks.targets import Target
from wio.client import ApiClient

__all__ = ["NodeCredentials", "Account", "Provisioned", "BenchStack", "listening_pids", "free_port"]


def free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listening_pids(port: int) -> list[int]:
    """Processes listening on a TCP port of this machine (the proxy's workers, the node)."""
    pids = {c.pid for c in psutil.net_connections("tcp")
            if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port and c.pid}
    return sorted(pids)


def _host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or (443 if parts.scheme == "https" else 80)


@dataclass(frozen=True)
class NodeCredentials:
    endpoint: str
    access_key: str
    secret_key: str
    region: str = "us-east-1"


@dataclass
class Account:
    name: str
    password: str
    api: ApiClient
    key: dict


@dataclass
class Provisioned:
    owner: Account
    grantee: Account
    workspace: str
    bucket: str           # the workspace's physical bucket on the node
    prefix: str           # the workspace's physical key prefix
    node: NodeCredentials
    extra_workspaces: list[str] = field(default_factory=list)

    def target(self, name: str, s3_url: str) -> Target:
        host, port = _host_port(s3_url)
        if name == "wio" or name.startswith("wio-"):   # wio-base: the A side of an A/B (run.py --ab)
            return Target(name, host, port, self.workspace, "", self.owner.key["access_key_id"],
                          self.owner.key["secret_access_key"], session_token=self.owner.key.get("session_token"))
        return Target(name, host, port, self.bucket, self.prefix, self.node.access_key, self.node.secret_key,
                      self.node.region)


class BenchStack:
    def __init__(self, workdir: Path, *, proxy_workers: int = 2, api_url: str | None = None,
                 s3_url: str | None = None, admin_password: str | None = None,
                 node: NodeCredentials | None = None, log=print):
        self.workdir, self.proxy_workers, self.log = workdir, proxy_workers, log
        self.api_url, self.s3_url, self.admin_password, self.node = api_url, s3_url, admin_password, node
        self.attached = api_url is not None
        self.settings = None
        self._devstack = None
        self._extra: list[subprocess.Popen] = []
        self.redis_url: str | None = None
        self._node_service = None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        if self.attached:
            if not (self.s3_url and self.admin_password and self.node):
                raise SystemExit("attaching to a running stack needs --s3, --admin-password and the node's "
                                 "--node-endpoint/--node-access-key/--node-secret-key (direct runs use them)")
            return
        from wio.dev.stack import DevStack, launch_components
        from wio.dev.postgres import start_postgres
        from wio.dev.seaweedfs import start_seaweedfs
        from wio.dev.valkey import start_valkey
        from foundation.settings import Settings

        self.log("starting PostgreSQL, Valkey and SeaweedFS in", self.workdir)
        services = []
        with ThreadPoolExecutor(3) as pool:
            futures = [pool.submit(start_postgres, self.workdir / "postgres"),
                       pool.submit(start_valkey, self.workdir / "valkey"),
                       pool.submit(start_seaweedfs, self.workdir / "seaweedfs")]
            errors = []
            for f in futures:
                try:
                    services.append(f.result())
                except Exception as exc:  # noqa: BLE001 - stop what started, then report the first
                    errors.append(exc)
        self._devstack = DevStack(settings=None, services=services)  # type: ignore[arg-type]
        if errors:
            self._devstack.stop()
            raise errors[0]
        pg, valkey, node = services
        self._node_service = node
        self.node = NodeCredentials(node.endpoint, node.access_key, node.secret_key, node.region)
        self.redis_url = valkey.url
        self.admin_password = secrets.token_urlsafe(16)
        api_port = free_port()
        self.settings = Settings(
            database_url=pg.url, redis_url=valkey.url, master_key=os.urandom(32),
            jwt_secret=secrets.token_urlsafe(32), api_port=api_port, proxy_port=free_port(),
            api_url=f"http://127.0.0.1:{api_port}", allow_private_nodes=True, log_json=False,
            admin_password=self.admin_password, bootstrap_node_endpoint=node.endpoint,
            bootstrap_node_access_key=node.access_key, bootstrap_node_secret_key=node.secret_key,
            bootstrap_node_region=node.region)
        self.log(f"starting wio (api, proxy with {self.proxy_workers} workers)")
        launch_components(self._devstack, self.settings, proxy_workers=self.proxy_workers)
        self.api_url, self.s3_url = self._devstack.api_url, self._devstack.s3_url

    def start_extra_proxy(self, workers: int) -> tuple[str, subprocess.Popen]:
        """Another ``wio serve proxy --workers N`` on the same stack (own mode only), e.g. for revocation."""
        from wio.dev.stack import wait_http
        port = free_port()
        env = {**os.environ, **self.settings.with_(proxy_port=port).to_env()}
        with open(self.workdir / "services.log", "ab") as log:
            proc = subprocess.Popen([sys.executable, "-m", "wio", "serve", "proxy", "--workers", str(workers)],
                                    env=env, start_new_session=True, stdout=log, stderr=log)
        self._extra.append(proc)
        url = f"http://127.0.0.1:{port}"
        wait_http(url + "/_wio/health", 60, proc)
        return url, proc

    def stop_process(self, proc: subprocess.Popen) -> None:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def stop(self) -> None:
        for proc in self._extra:
            self.stop_process(proc)
        if self._devstack is not None:
            self._devstack.stop()

    # ------------------------------------------------------------------ processes
    def proxy_pids(self, s3_url: str | None = None) -> list[int]:
        return listening_pids(_host_port(s3_url or self.s3_url)[1])

    def valkey_pids(self) -> list[int]:
        return listening_pids(_host_port(self.redis_url)[1]) if self.redis_url else []

    def node_pids(self) -> list[int]:
        if self._node_service is not None and hasattr(self._node_service, "process_ids"):
            return sorted(self._node_service.process_ids())
        pids = listening_pids(_host_port(self.node.endpoint)[1])
        # SeaweedFS may run its master/volume/filer as separate processes next to the S3 gateway.
        out = set(pids)
        for pid in pids:
            try:
                parent = psutil.Process(pid).parent()
                if parent is not None and "weed" in parent.name():
                    out.add(parent.pid)
                    out.update(c.pid for c in parent.children(recursive=True) if "weed" in c.name())
            except psutil.Error:
                pass
        return sorted(out)

    # ------------------------------------------------------------------ accounts
    def _account(self, prefix: str) -> Account:
        name, password = f"{prefix}{secrets.token_hex(4)}", secrets.token_urlsafe(16)
        api = ApiClient(self.api_url, timeout=60)
        api.call("POST", "/auth/register", {"username": name, "password": password})
        api.login(name, password)
        key = api.call("POST", "/keys", {"name": "benchmarks"})
        return Account(name, password, api, key)

    def admin(self) -> ApiClient:
        api = ApiClient(self.api_url, timeout=60)
        api.login("admin", self.admin_password)
        return api

    def provision(self) -> Provisioned:
        admin = self.admin()
        tag = secrets.token_hex(3)
        root_name = None
        if self.attached:
            node_name, root_name = f"bench-{tag}", f"bench-{tag}"
            admin.call("POST", "/nodes", {"name": node_name, "endpoint": self.node.endpoint, "region": self.node.region,
                                          "access_key": self.node.access_key, "secret_key": self.node.secret_key})
            admin.call("POST", "/roots", {"name": root_name, "node": node_name, "bucket": f"wio-bench-{tag}",
                                          "type": "private"})
        owner = self._account("bench")
        grantee = self._account("grantee")
        workspace = f"bench-{tag}"
        body = {"name": workspace, **({"root": root_name} if root_name else {})}
        ws = owner.api.call("POST", "/workspaces", body)
        roots = admin.call("GET", "/roots")
        roots = roots.get("roots", roots) if isinstance(roots, dict) else roots
        root = next(r for r in roots if r["name"] == ws["root"])
        base = root.get("prefix", "").strip("/")
        prefix = (f"{base}/" if base else "") + f"{owner.name}/{workspace}/"
        return Provisioned(owner, grantee, workspace, root["bucket"], prefix, self.node)

    def create_workspace(self, owner: Account, name: str, root: str | None = None) -> str:
        owner.api.call("POST", "/workspaces", {"name": name, **({"root": root} if root else {})})
        return name

