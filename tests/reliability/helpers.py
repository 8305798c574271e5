"""Small raw-HTTP helpers for the reliability tests (presigned requests over plain sockets)."""
from __future__ import annotations

import os
import socket
import time
from urllib.parse import urlsplit

__all__ = ["presigned_target", "open_request", "read_head", "read_response", "open_fds", "wait_until", "endpoint"]


def endpoint(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname, parts.port


def presigned_target(s3, method: str, bucket: str, key: str, expires: int = 900) -> str:
    """Path and query of a presigned URL (UNSIGNED-PAYLOAD), ready for a raw request line."""
    op = {"GET": "get_object", "PUT": "put_object", "HEAD": "head_object"}[method]
    url = s3.generate_presigned_url(op, Params={"Bucket": bucket, "Key": key}, ExpiresIn=expires)
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def open_request(url: str, method: str, target: str, headers: dict[str, str] | None = None,
                 timeout: float = 30) -> socket.socket:
    host, port = endpoint(url)
    sock = socket.create_connection((host, port), timeout=timeout)
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}:{port}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    return sock


def read_head(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and whatever body bytes arrived with them."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed before the response head ({buf[:80]!r})")
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(lines[0].split()[1]), headers, rest


def read_response(sock: socket.socket, timeout: float = 30) -> tuple[int, dict[str, str], bytes]:
    sock.settimeout(timeout)
    status, headers, body = read_head(sock)
    length = int(headers.get("content-length", "-1"))
    while length < 0 or len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return status, headers, body


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def wait_until(predicate, timeout: float, interval: float = 0.2, what: str = "condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
            if last:
                return last
        except Exception as exc:  # noqa: BLE001 - keep polling, report the last failure
            last = exc
        time.sleep(interval)
    raise AssertionError(f"{what} not reached within {timeout}s (last: {last!r})")
