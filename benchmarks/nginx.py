"""The reference hop: Debian's nginx as a plain reverse proxy in front of the node, no auth.

``proxy_pass`` with buffering off both ways and 1 MiB buffers, keep-alive to the node, Host passed
through (the client signs for nginx's address and the node checks that signature), run from a
temporary prefix on a free port with as many workers as the proxy has.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

__all__ = ["find_nginx", "Nginx", "INSTALL_HINT"]

INSTALL_HINT = "nginx not found: install Debian's package (apt-get install -y nginx) to get the nginx column"

_CONF = """\
worker_processes {workers};
daemon off;
master_process on;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 4096; multi_accept on; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    keepalive_requests 1000000;
    keepalive_timeout 120s;
    upstream node {{
        server {upstream};
        keepalive 128;
        keepalive_requests 1000000;
    }}
    server {{
        listen 127.0.0.1:{port} reuseport;
        client_max_body_size 0;
        client_body_buffer_size 1m;
        location / {{
            proxy_pass http://node;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_buffering off;
            proxy_request_buffering off;
            proxy_buffer_size 1m;
            proxy_buffers 8 1m;
            proxy_busy_buffers_size 2m;
            proxy_max_temp_file_size 0;
            proxy_read_timeout 300s;
            proxy_send_timeout 300s;
        }}
    }}
}}
"""


def find_nginx() -> str | None:
    found = shutil.which("nginx")
    if found:
        return found
    for candidate in ("/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/local/nginx/sbin/nginx"):
        if os.access(candidate, os.X_OK):
            return candidate
    return None


class Nginx:
    def __init__(self, binary: str, prefix: Path, port: int, upstream: str, workers: int):
        self.binary, self.prefix, self.port, self.upstream, self.workers = binary, prefix, port, upstream, workers
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 15) -> None:
        self.prefix.mkdir(parents=True, exist_ok=True)
        conf = self.prefix / "nginx.conf"
        conf.write_text(_CONF.format(workers=self.workers, prefix=self.prefix, port=self.port, upstream=self.upstream))
        self.proc = subprocess.Popen([self.binary, "-p", str(self.prefix), "-c", str(conf), "-e",
                                      str(self.prefix / "error.log")],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nginx exited: {self.proc.stderr.read().decode(errors='replace')[-500:]}")
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/", timeout=1).close()
                return
            except urllib.error.HTTPError:
                return   # the node answered (403 for an anonymous request): the hop works
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"nginx did not answer on port {self.port} within {timeout:.0f}s")

    def pids(self) -> list[int]:
        """The master and its workers."""
        import psutil
        if self.proc is None:
            return []
        try:
            master = psutil.Process(self.proc.pid)
            return [master.pid, *(c.pid for c in master.children())]
        except psutil.Error:
            return []

    def version(self) -> str:
        out = subprocess.run([self.binary, "-v"], capture_output=True, text=True)
        return (out.stderr or out.stdout).strip().replace("nginx version: ", "")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
