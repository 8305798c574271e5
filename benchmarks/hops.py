"""Reference hops written in Python, no auth: what the data path alone costs, for comparison with wio.

``python -m benchmarks.hops aiohttp|splice --port P --upstream HOST:PORT [--workers N]``

- ``aiohttp``: the thinnest aiohttp pass-through (uvloop, one ClientSession with keep-alive, 1 MiB
  ``iter_chunked`` to ``StreamResponse.write``, the request's StreamReader as the upstream body).
  docs/design.md's calibration calls this "~0.53 x direct" on large GETs.
- ``splice``: blocking sockets, one thread per client connection, one upstream connection per client
  connection, heads parsed in Python and bodies moved with ``os.splice`` through a pipe (socket ->
  pipe -> socket, no copy into user space). Content-Length bodies only: enough for S3 GET/PUT.

Both forward the request head as received (Host included, so the client signs for the node) and
run N processes on one port (SO_REUSEPORT), like ``wio serve proxy --workers N`` and nginx.
"""
from __future__ import annotations

import argparse
import os
import socket
import sys
import threading

__all__ = ["serve_splice", "serve_aiohttp"]

PIPE_SIZE = 1 << 20
_HOP_BY_HOP = (b"connection:", b"keep-alive:", b"transfer-encoding:")


# ---------------------------------------------------------------------- splice hop

def _read_head(sock: socket.socket, buf: bytearray) -> bytes | None:
    while True:
        end = buf.find(b"\r\n\r\n")
        if end >= 0:
            head = bytes(buf[:end + 4])
            del buf[:end + 4]
            return head
        data = sock.recv(65536)
        if not data:
            return None
        buf += data


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n")[1:]:
        if line[:15].lower() == b"content-length:":
            return int(line[15:].strip())
    return 0


def _move(src: socket.socket, dst: socket.socket, leftover: bytearray, length: int, pipe: tuple[int, int]) -> None:
    """Send ``length`` body bytes from ``src`` to ``dst``: what is already buffered, then by splice."""
    if leftover:
        first = bytes(leftover[:length])
        del leftover[:len(first)]
        dst.sendall(first)
        length -= len(first)
    r, w = pipe
    src_fd, dst_fd = src.fileno(), dst.fileno()
    while length:
        n = os.splice(src_fd, w, min(length, PIPE_SIZE), flags=os.SPLICE_F_MOVE)
        if n == 0:
            raise ConnectionError("peer closed in the middle of a body")
        length -= n
        while n:
            n -= os.splice(r, dst_fd, n, flags=os.SPLICE_F_MOVE)


def _splice_connection(client: socket.socket, upstream_addr: tuple[str, int]) -> None:
    upstream = socket.create_connection(upstream_addr)
    for s in (client, upstream):
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    pipe = os.pipe()
    try:
        import fcntl
        fcntl.fcntl(pipe[1], 1031, PIPE_SIZE)  # F_SETPIPE_SZ
    except OSError:
        pass
    cbuf, ubuf = bytearray(), bytearray()
    try:
        while True:
            head = _read_head(client, cbuf)
            if head is None:
                return
            method = head.split(b" ", 1)[0]
            upstream.sendall(head)
            _move(client, upstream, cbuf, _content_length(head), pipe)
            rhead = _read_head(upstream, ubuf)
            if rhead is None:
                return
            client.sendall(rhead)
            status = int(rhead.split(b" ", 2)[1])
            if method != b"HEAD" and status not in (204, 304):
                _move(upstream, client, ubuf, _content_length(rhead), pipe)
    except (ConnectionError, OSError):
        pass
    finally:
        for fd in pipe:
            os.close(fd)
        upstream.close()
        client.close()


def _listener(port: int) -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(1024)
    return sock


def serve_splice(port: int, upstream: tuple[str, int]) -> None:
    listener = _listener(port)
    while True:
        client, _ = listener.accept()
        threading.Thread(target=_splice_connection, args=(client, upstream), daemon=True).start()


# ---------------------------------------------------------------------- aiohttp hop

def serve_aiohttp(port: int, upstream: tuple[str, int]) -> None:
    import asyncio

    import aiohttp
    import uvloop
    from aiohttp import web

    base = f"http://{upstream[0]}:{upstream[1]}"
    skip = {"connection", "keep-alive", "transfer-encoding", "content-length"}

    async def handle(request: web.Request) -> web.StreamResponse:
        session: aiohttp.ClientSession = request.app["session"]
        headers = {k: v for k, v in request.headers.items() if k.lower() not in skip}
        body = request.content if request.content_length else None
        if request.content_length is not None:
            headers["Content-Length"] = str(request.content_length)
        async with session.request(request.method, base + request.raw_path, headers=headers, data=body,
                                   auto_decompress=False, allow_redirects=False) as resp:
            out = web.StreamResponse(status=resp.status)
            for name, value in resp.headers.items():
                if name.lower() not in ("connection", "keep-alive", "transfer-encoding"):
                    out.headers.add(name, value)
            await out.prepare(request)
            if request.method != "HEAD":
                async for chunk in resp.content.iter_chunked(1 << 20):
                    await out.write(chunk)
            await out.write_eof()
            return out

    async def main() -> None:
        app = web.Application(client_max_size=0)
        app["session"] = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=256), auto_decompress=False,
            skip_auto_headers=("User-Agent", "Accept-Encoding", "Content-Type"),
            timeout=aiohttp.ClientTimeout(total=None))
        app.router.add_route("*", "/{tail:.*}", handle)
        runner = web.AppRunner(app, access_log=None, auto_decompress=False)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port, reuse_port=True, backlog=1024).start()
        await asyncio.Event().wait()

    uvloop.install()
    asyncio.run(main())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.hops")
    parser.add_argument("kind", choices=("aiohttp", "splice"))
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True, help="HOST:PORT of the node")
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    host, _, port = args.upstream.rpartition(":")
    serve = serve_splice if args.kind == "splice" else serve_aiohttp
    children = []
    for _ in range(args.workers - 1):
        pid = os.fork()
        if pid == 0:
            serve(args.port, (host, int(port)))
            os._exit(0)
        children.append(pid)
    try:
        serve(args.port, (host, int(port)))
    finally:
        for pid in children:
            try:
                os.kill(pid, 15)
            except OSError:
                pass


if __name__ == "__main__":
    sys.exit(main())
