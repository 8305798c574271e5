"""A lean HTTP/1.1 client for the storage nodes, and the zero-copy path for response bodies.

The proxy talks to a handful of S3 endpoints with simple request shapes, on every request. aiohttp's
ClientSession cost ~40 % of the proxy's CPU on 4 KiB GETs (benchmarks/results/profile): timers per
read, auto headers, cookie jars, tracing hooks, a StreamReader per response. Here:

- keep-alive connections per endpoint (LIFO, idle ones dropped after ``IDLE_SECONDS``), one
  ``transport.write`` per request head (with the body when it is small);
- response heads parsed in one pass; bodies read as the transport hands them over, with flow
  control both ways (``pause_reading`` above ``HIGH_WATER`` buffered, ``pause_writing`` for uploads);
- a read deadline without a timer per read: a watchdog aborts connections that waited for the node
  longer than ``read_timeout`` since they last received anything;
- ``splice_body``: a Content-Length body moved from the node's socket to the client's with
  ``os.splice`` through a pipe, never copied into Python (plain TCP on both sides only).

Requests whose connection turns out to be stale (closed by the node while idle, before any byte of
the response arrived) are retried once on a new connection when they are idempotent and their body
can be sent again. Node answers are untrusted (any user may register a node): heads are parsed by
llhttp (httptools), chunk sizes strictly, and a node that stops reading an upload hits a write deadline.
"""
from __future__ import annotations

import asyncio
import collections
import contextlib
import fcntl
import os
import re
import socket
import ssl as ssl_module
import struct
from typing import AsyncIterable, AsyncIterator, TypeGuard, cast

import httptools
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from nodeclient.client import NodeError as AddressRefused
from nodeclient.client import resolve_checked

__all__ = ["NodeError", "NodeUnreachable", "NodeTimeout", "NodeDisconnected", "NodeResponse", "NodePool",
           "splice_body", "can_splice"]

# chunk-size = 1*HEXDIG, then optional extensions (RFC 9112 7.1); no sign, prefix, underscore or space
_CHUNK_SIZE = re.compile(rb"([0-9A-Fa-f]{1,16})(?:[ \t]*;.*)?")
IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})   # RFC 9110 9.2.2: safe to send twice
HIGH_WATER = 4 << 20          # buffered response bytes before the node's socket is paused
MAX_HEAD = 64 << 10           # a response head larger than this is an error
IDLE_SECONDS = 15.0           # idle keep-alive connections older than this are closed, not reused
MAX_IDLE = 64                 # idle connections kept per endpoint
PIPE_SIZE = 1 << 20
_F_SETPIPE_SZ = 1031
_SPLICE_FLAGS = getattr(os, "SPLICE_F_MOVE", 1) | getattr(os, "SPLICE_F_NONBLOCK", 2)


class NodeError(Exception):
    """The node could not be talked to; the message says how."""


class NodeUnreachable(NodeError):
    pass


class NodeTimeout(NodeError):
    pass


class NodeDisconnected(NodeError):
    """The connection ended before the response (or its body) was complete."""


def _resolve(waiter: asyncio.Future[None] | None) -> None:
    """Wake whoever waits on ``waiter`` (if anyone still does)."""
    if waiter is not None and not waiter.done():
        waiter.set_result(None)


class _Connection(asyncio.Protocol):
    __slots__ = ("transport", "chunks", "size", "eof", "exc", "reading_paused", "writing_paused", "waiter",
                 "drain_waiter", "last_activity", "idle_since", "reused", "timed_out", "tls", "loop", "head_deadline")

    def __init__(self, loop: asyncio.AbstractEventLoop, tls: bool):
        self.loop, self.tls = loop, tls
        self.transport: asyncio.Transport | None = None
        self.chunks: collections.deque[bytes] = collections.deque()
        self.size = 0
        self.eof = False
        self.exc: BaseException | None = None
        self.reading_paused = self.writing_paused = False
        self.waiter: asyncio.Future[None] | None = None
        self.drain_waiter: asyncio.Future[None] | None = None
        self.last_activity = self.idle_since = loop.time()
        self.reused = self.timed_out = False
        self.head_deadline: float | None = None   # while waiting for a response head: when to give up

    # ---- protocol callbacks
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)   # a stream protocol's transport (typeshed: the base)

    def data_received(self, data: bytes) -> None:
        self.chunks.append(data)
        self.size += len(data)
        self.last_activity = self.loop.time()
        if self.size > HIGH_WATER and not self.reading_paused:
            self.reading_paused = True
            self.open_transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool:
        self.eof = True
        self._wake()
        return False

    def connection_lost(self, exc: BaseException | None) -> None:
        self.eof = True
        self.exc = exc
        self._wake()
        self._wake_drain()

    def pause_writing(self) -> None:
        self.writing_paused = True

    def resume_writing(self) -> None:
        self.writing_paused = False
        self._wake_drain()

    # ---- helpers
    def _wake(self) -> None:
        _resolve(self.waiter)
        self.waiter = None

    def _wake_drain(self) -> None:
        _resolve(self.drain_waiter)
        self.drain_waiter = None

    @property
    def open_transport(self) -> asyncio.Transport:
        """The transport, which connection_made sets before the connection is handed out."""
        if self.transport is None:
            raise NodeDisconnected("the connection to the node was never made")
        return self.transport

    @property
    def closed(self) -> bool:
        return self.eof or self.transport is None or self.transport.is_closing()

    def lost(self, what: str) -> NodeError:
        if self.timed_out:
            return NodeTimeout("the node did not answer in time")
        return NodeDisconnected(f"the node closed the connection {what}")

    async def wait_data(self) -> None:
        """Until more bytes arrive or the connection ends."""
        if self.reading_paused and self.size < HIGH_WATER // 2:
            self.reading_paused = False
            self.open_transport.resume_reading()
        self.last_activity = self.loop.time()
        waiter = self.waiter = self.loop.create_future()
        await waiter

    async def drain(self, deadline: float) -> None:
        """Until the node reads again; a node that stops reading for ``deadline`` seconds is given up on."""
        try:
            async with asyncio.timeout(deadline):
                while self.writing_paused and not self.eof:
                    waiter = self.drain_waiter = self.loop.create_future()
                    await waiter
        except TimeoutError:
            raise NodeTimeout(f"the node stopped reading the request body for {deadline:g}s") from None

    def take(self, limit: int) -> bytes:
        """Up to ``limit`` buffered bytes (the oldest first); the buffer must not be empty."""
        first = self.chunks[0]
        if len(first) <= limit:
            self.chunks.popleft()
        else:
            self.chunks[0] = first[limit:]
            first = first[:limit]
        self.size -= len(first)
        return first

    def head_bytes(self) -> bytes | None:
        """The response head, if complete in the buffer (removed from it), else None."""
        if len(self.chunks) > 1:
            self.chunks = collections.deque([b"".join(self.chunks)])
        if not self.chunks:
            return None
        data = self.chunks[0]
        end = data.find(b"\r\n\r\n")
        if end < 0:
            if len(data) > MAX_HEAD:
                raise NodeError("the node sent an oversized response head")
            return None
        rest = data[end + 4:]
        self.chunks.clear()
        if rest:
            self.chunks.append(rest)
        self.size = len(rest)
        return data[:end]

    def ready_for_reuse(self) -> None:
        if self.reading_paused:
            self.reading_paused = False
            self.open_transport.resume_reading()
        self.idle_since = self.loop.time()
        self.reused = True


class _Head:
    """httptools (llhttp, aiohttp's parser) callbacks: the head's headers, in order, and whether the
    connection may be kept alive, read when the head is complete: once a message without a body
    (Content-Length: 0, 204 …) is complete, llhttp has reset what should_keep_alive() reads and says
    no, and every PUT's connection to the node was closed after one request."""
    __slots__ = ("headers", "parser", "keep_alive")

    def __init__(self) -> None:
        self.headers: CIMultiDict[str] = CIMultiDict()
        self.parser: httptools.HttpResponseParser | None = None
        self.keep_alive = False

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.add(name.decode("latin-1"), value.decode("latin-1"))

    def on_headers_complete(self) -> None:
        assert self.parser is not None
        self.keep_alive = self.parser.should_keep_alive()


def _parse_head(head: bytes) -> tuple[int, str, CIMultiDict[str], bool]:
    """Status, reason, headers, and whether the connection may be kept alive.

    A node is user-supplied, so its answers are untrusted input: llhttp parses the head strictly
    (Content-Length digits only and once, never together with Transfer-Encoding, well-formed status
    line and header fields), as aiohttp's own client does."""
    if not head.startswith((b"HTTP/1.1 ", b"HTTP/1.0 ")):     # llhttp also takes RTSP/ and ICE/
        raise NodeError(f"the node sent a malformed response head: {head[:40]!r}")
    parsed = _Head()
    parser = parsed.parser = httptools.HttpResponseParser(parsed)
    try:
        parser.feed_data(head + b"\r\n\r\n")
    except httptools.HttpParserUpgrade:
        pass
    except httptools.HttpParserError as exc:
        raise NodeError(f"the node sent a malformed response head: {exc}") from None
    reason = head.split(b"\r\n", 1)[0].split(b" ", 2)[2:]
    return parser.get_status_code(), reason[0].decode("latin-1") if reason else "", parsed.headers, parsed.keep_alive


def _is_chunked(headers: CIMultiDict[str]) -> bool:
    """Chunked framing as RFC 9112 6.3 (and llhttp) decide it: ``chunked`` is the final coding."""
    codings = ",".join(headers.getall("Transfer-Encoding", ())).split(",")
    return codings[-1].strip().lower() == "chunked"


class NodeResponse:
    """A node's answer: status and headers at once, the body read on demand. Call ``release()``."""

    __slots__ = ("status", "reason", "headers", "method", "_conn", "_pool", "_remaining", "_chunked",
                 "_chunk_left", "_keep_alive", "_done", "_released")

    def __init__(self, conn: _Connection, pool: "_EndpointPool", method: str, status: int, reason: str,
                 headers: CIMultiDict[str], keep_alive: bool):
        self._conn, self._pool, self.method = conn, pool, method
        self.status, self.reason, self.headers = status, reason, CIMultiDictProxy(headers)
        self._keep_alive = keep_alive
        self._chunked = False
        self._chunk_left = 0
        self._released = False
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            self._remaining: int | None = 0
        elif "Transfer-Encoding" in headers:
            if _is_chunked(headers):
                self._chunked, self._remaining = True, None
            else:   # a coding that is not chunked last: the body ends when the connection does
                self._remaining, self._keep_alive = None, False
        elif (length := headers.get("Content-Length")) is not None:
            self._remaining = int(length)      # digits only, once: llhttp checked it
        else:
            self._remaining, self._keep_alive = None, False   # the body ends when the connection does
        self._done = self._remaining == 0
        if self._done:
            self._finish()

    @property
    def content_length(self) -> int | None:
        """Body bytes still to come, when the node declared them (Content-Length framing)."""
        return None if self._chunked else self._remaining

    def _finish(self) -> None:
        self._done = True
        if not self._released:
            self.release()

    async def read_chunk(self, limit: int = 1 << 20) -> bytes:
        """The next piece of the body (at most ``limit`` bytes); ``b""`` once it is complete."""
        if self._done:
            return b""
        if self._chunked:
            return await self._read_chunked(limit)
        conn = self._conn
        while not conn.chunks:
            if conn.eof:
                if self._remaining is None:       # read-until-close framing: this is the end
                    self._done = True
                    self.release()
                    return b""
                raise conn.lost("in the middle of a response body")
            await conn.wait_data()
        if self._remaining is None:
            return conn.take(limit)
        data = conn.take(min(limit, self._remaining))
        self._remaining -= len(data)
        if self._remaining == 0:
            self._finish()
        return data

    async def _line(self) -> bytes:
        conn = self._conn
        while True:
            if conn.chunks:
                if len(conn.chunks) > 1:
                    conn.chunks = collections.deque([b"".join(conn.chunks)])
                data = conn.chunks[0]
                end = data.find(b"\r\n")
                if end >= 0:
                    conn.take(end + 2)
                    return data[:end]
                if len(data) > MAX_HEAD:
                    raise NodeError("the node sent an oversized chunk header")
            if conn.eof:
                raise conn.lost("in the middle of a chunked body")
            await conn.wait_data()

    async def _read_chunked(self, limit: int) -> bytes:
        conn = self._conn
        while self._chunk_left == 0:
            line = await self._line()
            digits = _CHUNK_SIZE.fullmatch(line)
            if digits is None:
                raise NodeError("the node sent an invalid chunk size")
            size = int(digits.group(1), 16)
            if size == 0:
                while await self._line():      # trailers, up to the empty line
                    pass
                self._finish()
                return b""
            self._chunk_left = size
        while not conn.chunks:
            if conn.eof:
                raise conn.lost("in the middle of a chunked body")
            await conn.wait_data()
        data = conn.take(min(limit, self._chunk_left))
        self._chunk_left -= len(data)
        if self._chunk_left == 0:
            if await self._line():
                raise NodeError("the node sent a chunk without its CRLF")
        return data

    async def iter_chunks(self, limit: int = 1 << 20) -> AsyncIterator[bytes]:
        while data := await self.read_chunk(limit):
            yield data

    async def read(self, limit: int | None = None) -> bytes:
        """The whole body (or its first ``limit`` bytes)."""
        parts, size = [], 0
        while limit is None or size < limit:
            data = await self.read_chunk((limit - size) if limit is not None else 1 << 20)
            if not data:
                break
            parts.append(data)
            size += len(data)
        return b"".join(parts)

    def release(self) -> None:
        """Give the connection back (body complete) or close it (body not read to its end)."""
        if self._released:
            return
        self._released = True
        if self._done and self._keep_alive:
            self._pool.put(self._conn)
        else:
            self._pool.discard(self._conn)

    def socket_fd(self) -> int | None:
        """The node connection's file descriptor, when its body may be spliced (plain TCP)."""
        conn = self._conn
        if conn.tls or conn.transport is None or conn.closed:
            return None
        sock = conn.transport.get_extra_info("socket")
        return sock.fileno() if sock is not None else None


class _EndpointPool:
    def __init__(self, owner: "NodePool", url: URL):
        self.owner = owner
        if url.host is None:
            raise NodeUnreachable(f"the node endpoint {url} has no host")
        self.host, self.port = url.host, url.port or (443 if url.scheme == "https" else 80)
        self.tls = url.scheme == "https"
        self.idle: list[_Connection] = []
        self.active: set[_Connection] = set()

    async def connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        ssl_context = self.owner.ssl_context() if self.tls else None
        try:
            async with asyncio.timeout(self.owner.connect_timeout):
                # Resolve and check every time, then connect to the address that was checked: a name
                # that now resolves to a metadata or private address (DNS rebinding) is never reached.
                addresses = await resolve_checked(self.host, self.port, allow_private=self.owner.allow_private)
                error: OSError | None = None
                for family, address in addresses:
                    try:
                        _, conn = await loop.create_connection(
                            lambda: _Connection(loop, self.tls), address, self.port, family=family, ssl=ssl_context,
                            server_hostname=self.host if ssl_context is not None else None)
                        return conn
                    except OSError as exc:
                        error = exc
                if error is None:  # resolve_checked answers at least one address or raises
                    raise NodeUnreachable(f"{self.host} resolves to no address")
                raise error
        except AddressRefused as exc:
            raise NodeUnreachable(str(exc)) from None
        except TimeoutError:
            raise NodeTimeout(f"connecting to {self.host}:{self.port} timed out") from None
        except (OSError, ssl_module.SSLError) as exc:
            raise NodeUnreachable(f"cannot connect to {self.host}:{self.port}: {exc}") from None

    async def acquire(self) -> _Connection:
        now = asyncio.get_running_loop().time()
        while self.idle:
            conn = self.idle.pop()
            if conn.closed or now - conn.idle_since > IDLE_SECONDS or conn.chunks:
                self.discard(conn)
                continue
            self.active.add(conn)
            return conn
        conn = await self.connect()
        self.active.add(conn)
        return conn

    def put(self, conn: _Connection) -> None:
        self.active.discard(conn)
        if conn.closed or conn.chunks or len(self.idle) >= MAX_IDLE:
            self.discard(conn)
            return
        conn.ready_for_reuse()
        self.idle.append(conn)

    def discard(self, conn: _Connection) -> None:
        self.active.discard(conn)
        if conn.transport is not None:
            conn.transport.abort()

    def close(self) -> None:
        for conn in [*self.idle, *self.active]:
            if conn.transport is not None:
                conn.transport.abort()
        self.idle.clear()
        self.active.clear()


def _head(method: str, target: str, headers: dict[str, str]) -> bytes:
    lines = [f"{method} {target} HTTP/1.1"]
    for name, value in headers.items():
        if "\r" in value or "\n" in value or "\r" in name or "\n" in name or ":" in name:
            raise ValueError(f"header {name!r} cannot be sent")
        lines.append(f"{name}: {value}")
    lines.append("\r\n")
    return "\r\n".join(lines).encode("latin-1")


class NodePool:
    """Connections to every node endpoint of this process."""

    def __init__(self, *, connect_timeout: float = 10.0, read_timeout: float = 300.0, write_timeout: float = 60.0,
                 head_timeout: float = 15.0, allow_private: bool = False):
        self.connect_timeout, self.read_timeout, self.write_timeout = connect_timeout, read_timeout, write_timeout
        self.head_timeout = head_timeout   # request sent -> response head: a hung node is a 503 within seconds
        self.allow_private = allow_private   # node endpoints on loopback/private networks (nodeclient/client.py)
        self._pools: dict[str, _EndpointPool] = {}
        self._ssl: ssl_module.SSLContext | None = None
        self._watchdog: asyncio.Task[None] | None = None

    def ssl_context(self) -> ssl_module.SSLContext:
        if self._ssl is None:
            self._ssl = ssl_module.create_default_context()
        return self._ssl

    def _pool(self, url: URL) -> _EndpointPool:
        key = f"{url.scheme}://{url.raw_authority}"
        pool = self._pools.get(key)
        if pool is None:
            pool = self._pools[key] = _EndpointPool(self, url)
        if self._watchdog is None:
            self._watchdog = asyncio.get_running_loop().create_task(self._watch())
        return pool

    async def _watch(self) -> None:
        """Abort connections that have waited for the node longer than ``read_timeout``, or for a
        response head past their ``head_deadline`` (no timer per read or per request)."""
        loop = asyncio.get_running_loop()
        interval = max(0.05, min(5.0, self.read_timeout / 4, self.head_timeout / 4))
        while True:
            await asyncio.sleep(interval)
            now = loop.time()
            for pool in list(self._pools.values()):
                for conn in list(pool.active):
                    if conn.waiter is not None and (now - conn.last_activity > self.read_timeout or (
                            conn.head_deadline is not None and now > conn.head_deadline)):
                        conn.timed_out = True
                        pool.discard(conn)

    async def request(self, method: str, url: URL, headers: dict[str, str],
                      body: bytes | AsyncIterable[bytes] | None = None, *,
                      head_timeout: float | None = None) -> NodeResponse:
        """Send one request (``headers`` complete: Host, Content-Length, signature) and read the head,
        which must begin within ``head_timeout`` (default: the pool's) of the request being sent."""
        pool = self._pool(url)
        target = url.raw_path_qs
        head = _head(method, target, headers)
        # Only an idempotent request is sent again: a POST (CompleteMultipartUpload, DeleteObjects …) may
        # have been acted on by a node that closed the connection without answering.
        replayable = method in IDEMPOTENT and (body is None or isinstance(body, bytes))
        for attempt in (1, 2):
            conn = await pool.acquire()
            try:
                return await self._exchange(pool, conn, method, head, body,
                                            self.head_timeout if head_timeout is None else head_timeout)
            except NodeDisconnected:
                pool.discard(conn)
                if attempt == 1 and conn.reused and replayable and not conn.size and not conn.timed_out:
                    continue    # a keep-alive connection the node had closed: once more on a fresh one
                raise
            except BaseException:
                pool.discard(conn)
                raise
        raise AssertionError("unreachable")

    async def _exchange(self, pool: _EndpointPool, conn: _Connection, method: str, head: bytes,
                        body: bytes | AsyncIterable[bytes] | None, head_timeout: float) -> NodeResponse:
        transport = conn.open_transport
        if body is None or isinstance(body, bytes):
            transport.write(head + body if body else head)
        else:
            try:
                await self._stream_body(conn, head, body)
            except BaseException:
                # A body cut short (its client hung up, a length or signature check failed) must never look
                # complete to the node: SeaweedFS stores an empty object when the connection ends cleanly
                # right after the head. So the head waits for the first byte, and the connection is reset.
                _reset(transport)
                raise
        conn.last_activity = conn.loop.time()
        conn.head_deadline = conn.last_activity + head_timeout
        while True:
            raw = conn.head_bytes()
            if raw is None:
                if conn.eof:
                    raise conn.lost("before answering")
                await conn.wait_data()
                continue
            status, reason, headers, keep_alive = _parse_head(raw)
            if 100 <= status < 200 and status != 101:
                continue        # an interim response (100 Continue): the real one follows
            conn.head_deadline = None
            return NodeResponse(conn, pool, method, status, reason, headers, keep_alive)

    async def _stream_body(self, conn: _Connection, head: bytes, body: AsyncIterable[bytes]) -> None:
        transport = conn.open_transport
        pending: bytes | None = head    # written with the first piece of the body, never before it
        async for data in body:
            if conn.eof:
                break       # the node answered early (an error) or went away: read what it said
            if data:
                transport.write(pending + data if pending is not None else data)
                pending = None
                if conn.writing_paused:
                    await conn.drain(self.write_timeout)
        if pending is not None:
            transport.write(pending)    # an empty body

    def close(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        for pool in self._pools.values():
            pool.close()
        self._pools.clear()


def _reset(transport: asyncio.Transport) -> None:
    """Close with a TCP reset (SO_LINGER 0), so the peer sees an error, not the end of a request."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


# ---------------------------------------------------------------------- zero-copy bodies

_pipes: list[tuple[int, int]] = []


def _pipe() -> tuple[int, int]:
    if _pipes:
        return _pipes.pop()
    r, w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        fcntl.fcntl(w, _F_SETPIPE_SZ, PIPE_SIZE)
    except OSError:
        pass
    return r, w


def can_splice(client_transport: asyncio.Transport | None) -> TypeGuard[asyncio.Transport]:
    """Whether bytes may go straight to this client's socket (plain TCP, nothing waiting to be written)."""
    if not hasattr(os, "splice") or client_transport is None or client_transport.is_closing():
        return False
    if client_transport.get_extra_info("sslcontext") is not None:
        return False
    return client_transport.get_extra_info("socket") is not None and client_transport.get_write_buffer_size() == 0


async def _ready(read_fd: int | None, write_fd: int | None) -> None:
    """Until ``read_fd`` is readable or ``write_fd`` writable (duplicated descriptors: see splice_body)."""
    loop = asyncio.get_running_loop()
    waiter = loop.create_future()

    def wake() -> None:
        if not waiter.done():
            waiter.set_result(None)
    if read_fd is not None:
        loop.add_reader(read_fd, wake)
    if write_fd is not None:
        loop.add_writer(write_fd, wake)
    try:
        await waiter
    finally:
        if read_fd is not None:
            loop.remove_reader(read_fd)
        if write_fd is not None:
            loop.remove_writer(write_fd)


async def splice_body(resp: NodeResponse, client_transport: asyncio.Transport, deadline_seconds: float) -> int:
    """Move the rest of ``resp``'s Content-Length body to the client's socket with ``os.splice``.

    The node connection stops reading (its buffered bytes go first, written normally), then bytes
    move socket -> pipe -> socket in the kernel. Both file descriptors are duplicated, so the event
    loop's own registrations are untouched. A node that stops sending for ``deadline_seconds`` or
    ends early raises NodeTimeout/NodeDisconnected; a client that goes away raises OSError.
    """
    conn = resp._conn
    length = resp._remaining or 0
    conn.open_transport.pause_reading()
    conn.reading_paused = True
    sent = 0
    while conn.chunks and length:
        data = conn.take(length)
        client_transport.write(data)
        length -= len(data)
        sent += len(data)
    resp._remaining = length
    if not length:
        resp._finish()
        return sent
    node_fd = resp.socket_fd()
    if node_fd is None:   # closed since the caller asked can_splice (or TLS): nothing to splice from
        raise conn.lost("before its body could be spliced")
    src = os.dup(node_fd)
    dst = os.dup(client_transport.get_extra_info("socket").fileno())
    r, w = _pipe()
    in_pipe = 0
    try:
        while client_transport.get_write_buffer_size():
            await _ready(None, dst)        # what was written normally leaves first
        to_read = length
        while to_read or in_pipe:
            progressed = False
            if to_read and in_pipe < PIPE_SIZE:
                try:
                    n = os.splice(src, w, min(to_read, PIPE_SIZE - in_pipe), flags=_SPLICE_FLAGS)
                except BlockingIOError:
                    n = -1
                if n == 0:
                    raise NodeDisconnected("the node closed the connection in the middle of a response body")
                if n > 0:
                    to_read -= n
                    in_pipe += n
                    progressed = True
            if in_pipe:
                try:
                    m = os.splice(r, dst, in_pipe, flags=_SPLICE_FLAGS)
                except BlockingIOError:
                    m = 0
                in_pipe -= m
                sent += m
                progressed = progressed or m > 0
            if not progressed:
                try:
                    async with asyncio.timeout(deadline_seconds):
                        await _ready(src if to_read and in_pipe < PIPE_SIZE else None, dst if in_pipe else None)
                except TimeoutError:
                    raise NodeTimeout("the transfer stalled (node or client)") from None
        resp._remaining = 0
        resp._finish()
        return sent
    finally:
        os.close(src)
        os.close(dst)
        if in_pipe == 0:
            _pipes.append((r, w))
        else:
            os.close(r)
            os.close(w)
