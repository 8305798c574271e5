"""A minimal blocking HTTP/1.1 client over raw sockets: the load generator's wire.

Why not aiohttp or botocore: on a 2-core machine the client shares the CPU with the node and the
proxy, so every cycle it spends is taken from what it measures. This client does the least work a
correct keep-alive client can: one ``sendall`` of a prepared request head, ``os.sendfile`` for large
bodies (no copy through Python), ``recv_into`` a reused buffer for large responses (bytes are
counted, not kept), and a small header parser. Blocking calls release the GIL, so several threads
of one process share it well at these request rates.
"""
from __future__ import annotations

import os
import socket
from dataclasses import dataclass

__all__ = ["Connection", "Response", "HttpError", "BodyFile"]

_RECV = 1 << 20


class HttpError(Exception):
    """The server answered with something this client cannot read, or closed too early."""


@dataclass(slots=True)
class Response:
    status: int
    headers: dict[str, str]     # lower-case names; repeated headers keep the last value
    body: bytes                 # empty when the body was discarded
    body_length: int            # bytes of body received (kept or discarded)


class BodyFile:
    """A file of random bytes sent again and again (``os.sendfile``) to make a body of any size."""

    def __init__(self, path: str):
        self.path = path
        self.size = os.path.getsize(path)
        self.fd = os.open(path, os.O_RDONLY)

    def close(self) -> None:
        os.close(self.fd)


class Connection:
    """One keep-alive connection to ``host:port``; reconnects when the server closed it."""

    def __init__(self, host: str, port: int, *, timeout: float = 300.0):
        self.host, self.port, self.timeout = host, port, timeout
        self.sock: socket.socket | None = None
        self._buf = bytearray()
        self._scratch = bytearray(_RECV)
        self.reconnects = 0

    # ------------------------------------------------------------------ connection
    def _connect(self) -> socket.socket:
        sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = sock
        self._buf.clear()
        return sock

    def close(self) -> None:
        if self.sock is not None:
            try:
                self.sock.close()
            finally:
                self.sock = None
                self._buf.clear()

    # ------------------------------------------------------------------ requests
    def request(self, method: str, target: str, *, host: str, body: bytes | None = None,
                body_file: BodyFile | None = None, body_size: int = 0, keep_body: bool = True,
                extra_headers: str = "") -> Response:
        """Send one request and read its response. ``target`` is the raw path and query.

        A small ``body`` is sent from memory; a large one comes from ``body_file`` (repeated up to
        ``body_size`` bytes). With ``keep_body=False`` the response body is counted and dropped.
        A request on a connection the server had already closed is retried once on a new one.
        """
        length = len(body) if body is not None else body_size if body_file is not None else 0
        head = f"{method} {target} HTTP/1.1\r\nHost: {host}\r\n{extra_headers}"
        if method in ("PUT", "POST") or length:
            head += f"Content-Length: {length}\r\n"
        head_bytes = (head + "\r\n").encode("latin-1")
        fresh = self.sock is None
        for attempt in (0, 1):
            sock = self.sock or self._connect()
            try:
                if body is not None and len(body) <= 65536:
                    sock.sendall(head_bytes + body)
                else:
                    sock.sendall(head_bytes)
                    if body is not None:
                        sock.sendall(body)
                    elif body_file is not None:
                        self._send_file(sock, body_file, body_size)
                return self._read_response(method, keep_body)
            except (ConnectionResetError, BrokenPipeError, HttpError) as exc:
                self.close()
                # Retry only when a reused connection turned out to be closed before any answer.
                if attempt or fresh or (isinstance(exc, HttpError) and "closed before" not in str(exc)):
                    raise
                self.reconnects += 1
        raise AssertionError("unreachable")

    def _send_file(self, sock: socket.socket, body_file: BodyFile, size: int) -> None:
        fd_out, remaining, offset = sock.fileno(), size, 0
        sock.settimeout(None)   # sendfile needs a blocking socket; restored below
        try:
            while remaining:
                count = min(remaining, body_file.size - offset)
                sent = os.sendfile(fd_out, body_file.fd, offset, count)
                if sent == 0:
                    raise BrokenPipeError("sendfile sent nothing")
                remaining -= sent
                offset = (offset + sent) % body_file.size
        finally:
            sock.settimeout(self.timeout)

    # ------------------------------------------------------------------ responses
    def _fill(self) -> int:
        data = self.sock.recv(_RECV)
        if data:
            self._buf += data
        return len(data)

    def _read_response(self, method: str, keep_body: bool) -> Response:
        while True:
            end = self._buf.find(b"\r\n\r\n")
            if end >= 0:
                break
            if not self._fill():
                raise HttpError("connection closed before the response headers")
        head = bytes(self._buf[:end]).decode("latin-1")
        del self._buf[:end + 4]
        lines = head.split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/"):
            raise HttpError(f"bad status line {lines[0]!r}")
        status = int(parts[1])
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if status == 100:
            return self._read_response(method, keep_body)
        if method == "HEAD" or status in (204, 304):
            body, got = b"", 0
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            body, got = self._read_chunked(keep_body)
        elif "content-length" in headers:
            body, got = self._read_length(int(headers["content-length"]), keep_body)
        else:
            body, got = self._read_to_close(keep_body)
        if headers.get("connection", "").lower() == "close" or parts[0] == "HTTP/1.0":
            self.close()
        return Response(status, headers, body, got)

    def _read_length(self, length: int, keep_body: bool) -> tuple[bytes, int]:
        if keep_body:
            while len(self._buf) < length:
                if not self._fill():
                    raise HttpError("connection closed in the middle of a body")
            body = bytes(self._buf[:length])
            del self._buf[:length]
            return body, length
        have = min(len(self._buf), length)
        del self._buf[:have]
        remaining = length - have
        view, recv_into = memoryview(self._scratch), self.sock.recv_into
        while remaining:
            n = recv_into(view, min(remaining, _RECV))
            if not n:
                raise HttpError("connection closed in the middle of a body")
            remaining -= n
        return b"", length

    def _read_line(self) -> bytes:
        while True:
            end = self._buf.find(b"\r\n")
            if end >= 0:
                line = bytes(self._buf[:end])
                del self._buf[:end + 2]
                return line
            if not self._fill():
                raise HttpError("connection closed in the middle of a chunked body")

    def _read_chunked(self, keep_body: bool) -> tuple[bytes, int]:
        parts, total = [], 0
        while True:
            size = int(self._read_line().split(b";", 1)[0], 16)
            if size == 0:
                while self._read_line():   # trailers, then the empty line
                    pass
                return b"".join(parts), total
            data, _ = self._read_length(size, keep_body)
            if keep_body:
                parts.append(data)
            total += size
            self._read_line()

    def _read_to_close(self, keep_body: bool) -> tuple[bytes, int]:
        total = len(self._buf)
        parts = [bytes(self._buf)] if keep_body else []
        self._buf.clear()
        while True:
            data = self.sock.recv(_RECV)
            if not data:
                break
            total += len(data)
            if keep_body:
                parts.append(data)
        self.close()
        return b"".join(parts), total
