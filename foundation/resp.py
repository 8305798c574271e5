"""A lean asyncio RESP2 client for the request path: Lua scripts (EVALSHA) on one pipelined connection.

redis-py's general machinery (retry wrapper, connection pool, command packing, response callbacks)
cost 10-26 % of the proxy's CPU on small GETs; the request path only ever runs a few Lua scripts, so
this client does only that:

* one TCP (or TLS / unix) connection per process, opened on first use (AUTH and SELECT on connect);
* every call is one ``transport.write`` of a mostly pre-encoded command, and a FIFO of futures
  receives the replies in order (``hiredis.Reader`` parses them in ``data_received``), so any number
  of concurrent calls share the connection without waiting for each other;
* no timers: callers put their own deadline around a call (``asyncio.timeout``). A cancelled call
  keeps its FIFO slot; its reply is read and dropped, so later calls still get their own replies.
  A call cancelled after ``STALLED`` seconds during which the connection received nothing at all
  drops the connection (a hung Redis or a silent network failure), so the next call reconnects;
* EVALSHA, and on ``NOSCRIPT`` (Redis restarted empty) SCRIPT LOAD and one retry;
* connection lost or refused: every pending call fails with :class:`ConnectionFailed` (an
  ``OSError``), and the next call reconnects;
* Sentinel (``redis+sentinel://``, see ``foundation.redisurl``): each connection asks the Sentinels for the
  current primary and checks with ``ROLE`` that the server it reached is the primary; a ``READONLY``
  reply, or a ``ROLE`` check (every ``ROLE_CHECK`` seconds) finding a replica, means the primary was
  demoted under us: the connection is dropped. While no primary is known, calls fail with
  :class:`ConnectionFailed`, which the proxy answers with 503;
* :attr:`RespClient.server_id` is the ``run_id`` of the server the connection reached: it changes
  on a failover or a restart, which is how the proxy refuses a projection nobody has verified against
  PostgreSQL since (see ``policy/projection.py``).
* an error reply raises :class:`ResponseError` (never returned as a value). Replies convert like
  redis-py with ``decode_responses=True``: nil -> ``None``, integers -> ``int``, bulk and status
  strings -> ``str`` (UTF-8), arrays -> ``list``.
"""
from __future__ import annotations

import asyncio
import hashlib
import ssl
from collections import deque
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

import hiredis

from foundation.redisurl import SentinelTarget, parse_redis_url

__all__ = ["RespClient", "Script", "RespError", "ResponseError", "ConnectionFailed"]

CONNECT_TIMEOUT = 2.0
# A call cancelled after this long with no reply at all on its connection meanwhile drops the connection.
STALLED = 1.0
# With Sentinel: how often the connected server is asked whether it is still the primary. A primary
# that a failover demoted while it was alive (slow, or cut off from the Sentinels) keeps answering
# read-only scripts from its old data; this bounds how long a client can go on reading it.
ROLE_CHECK = 0.5


class RespError(Exception):
    """Base of this client's errors."""


class ResponseError(RespError):
    """Redis answered with an error reply (``-ERR ...``, ``-NOSCRIPT ...``, a Lua error...)."""


class ConnectionFailed(RespError, ConnectionError):
    """Redis could not be reached, or the connection was lost with this call pending."""


def _encode(arg) -> bytes:
    if isinstance(arg, str):
        return arg.encode()
    if isinstance(arg, bytes):
        return arg
    if isinstance(arg, bool):  # as redis-py: a bool is almost always a mistake
        raise TypeError("booleans are not valid Redis arguments; pass 0/1 or a string")
    if isinstance(arg, int):
        return b"%d" % arg
    if isinstance(arg, float):
        return repr(arg).encode()
    raise TypeError(f"invalid Redis argument of type {type(arg).__name__}")


def pack_command(*args) -> bytes:
    """One RESP command (an array of bulk strings)."""
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = _encode(arg)
        parts.append(b"$%d\r\n%b\r\n" % (len(data), data))
    return b"".join(parts)


class _Protocol(asyncio.Protocol):
    """One connection: writes commands, hands replies to the FIFO of waiting futures in order.

    A slot is a future (its reply is the call's result) or ``None`` (a reply to drop, e.g. the
    ``+QUEUED`` answers inside MULTI/EXEC). A done slot (a cancelled call) drops its reply too.
    """

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.pending: deque[asyncio.Future | None] = deque()
        self.server_id: str | None = None
        self.replies = 0  # replies read so far (to tell a stalled server from a busy one)
        self._reader = hiredis.Reader(encoding="utf-8", replyError=ResponseError)
        self._loop = self.loop = asyncio.get_running_loop()
        self.loop_time = self._loop.time

    def connection_made(self, transport) -> None:
        self.transport = transport

    def usable(self) -> bool:
        return not self.closed and not self.transport.is_closing()

    def request(self, command: bytes) -> asyncio.Future:
        fut = self._loop.create_future()
        self.pending.append(fut)
        self.transport.write(command)
        return fut

    def data_received(self, data: bytes) -> None:
        reader, pending = self._reader, self.pending
        reader.feed(data)
        while True:
            try:
                reply = reader.gets()
            except UnicodeDecodeError as exc:  # the reply was consumed; fail its call, not the stream
                reply = RespError(f"Redis reply is not UTF-8: {exc}")
            except hiredis.ProtocolError as exc:
                self._fail(f"Redis protocol error: {exc}")
                self.transport.abort()
                return
            if reply is False:  # incomplete; RESP2 has no boolean replies
                return
            if not pending:  # a reply nobody asked for: the stream can't be trusted
                self._fail("Redis sent an unexpected reply")
                self.transport.abort()
                return
            self.replies += 1
            fut = pending.popleft()
            if fut is None or fut.done():
                continue
            if type(reply) is ResponseError or type(reply) is RespError:
                fut.set_exception(reply)
                if str(reply).startswith("READONLY"):  # a demoted primary: find the new one
                    self._fail("Redis is no longer the primary")
                    self.transport.abort()
                    return
            else:
                fut.set_result(reply)

    def check_stalled(self, replies_before: int, sent: float) -> None:
        """A call was cancelled (its caller's deadline): if Redis sent nothing at all in the STALLED
        seconds since the call was written, the connection is dead or Redis hangs; drop it so that the
        next call reconnects instead of queueing behind replies that may never come."""
        if (not self.closed and self.replies == replies_before and self.pending
                and self._loop.time() - sent >= STALLED):
            self._fail("Redis stopped answering")
            self.transport.abort()

    def eof_received(self) -> None:
        return None  # close the transport; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(f"Connection to Redis lost: {exc}" if exc else "Connection to Redis closed")

    def _fail(self, message: str) -> None:
        self.closed = True
        pending, self.pending = self.pending, deque()
        for fut in pending:
            if fut is not None and not fut.done():
                fut.set_exception(ConnectionFailed(message))  # one each: a raised exception collects a traceback


class Script:
    """A Lua script run by EVALSHA on a :class:`RespClient` (no KEYS; everything goes in ARGV)."""

    __slots__ = ("client", "source", "sha", "_head", "_load")

    def __init__(self, client: RespClient, source: str):
        self.client, self.source = client, source
        self.sha = hashlib.sha1(source.encode()).hexdigest()
        # "EVALSHA <sha> 0", the part of every call that doesn't change
        self._head = b"$7\r\nEVALSHA\r\n$40\r\n" + self.sha.encode() + b"\r\n$1\r\n0\r\n"
        self._load = pack_command("SCRIPT", "LOAD", source)

    def _command(self, args) -> bytes:
        parts = [b"*%d\r\n" % (3 + len(args)), self._head]
        append = parts.append
        for arg in args:
            data = arg.encode() if type(arg) is str else _encode(arg)
            append(b"$%d\r\n%b\r\n" % (len(data), data))
        return b"".join(parts)

    async def __call__(self, args=()):
        command = self._command(args)
        client = self.client
        try:
            return await client.execute_packed(command)
        except ResponseError as exc:
            if not str(exc).startswith("NOSCRIPT"):
                raise
        await client.execute_packed(self._load)
        return await client.execute_packed(command)


class RespClient:
    """See the module docstring. ``url``: ``redis://[[user]:password@]host[:port][/db]``, ``rediss://``
    (TLS; ``ssl_cert_reqs``, ``ssl_ca_certs``, ``ssl_certfile``, ``ssl_keyfile``, ``ssl_check_hostname``
    query options as in redis-py), ``unix:///path?db=N`` or ``redis+sentinel://`` (``foundation.redisurl``)."""

    def __init__(self, url: str, *, connect_timeout: float = CONNECT_TIMEOUT):
        self.connect_timeout = connect_timeout
        self._proto: _Protocol | None = None
        self._connecting: asyncio.Future | None = None
        self._closed = False
        self._watcher: asyncio.Task | None = None
        self.path: str | None = None
        self.ssl: ssl.SSLContext | None = None
        self.sentinel: SentinelTarget | None = parse_redis_url(url)
        if self.sentinel is not None:
            target = self.sentinel
            self.username, self.password, self.db = target.username, target.password, target.db
            self.sentinels = list(target.sentinels)  # the one that answered moves to the front
            if target.tls:
                self.ssl = self._ssl_context(target.ssl_options)
            return
        parsed = urlparse(url)
        query = {k: v[0] for k, v in parse_qs(parsed.query).items() if v}
        self.username = unquote(parsed.username) if parsed.username else None
        self.password = unquote(parsed.password) if parsed.password else None
        db = query.get("db")
        if db is None and parsed.scheme != "unix" and parsed.path.strip("/"):
            db = unquote(parsed.path).strip("/")
        self.db = int(db) if db else 0
        if parsed.scheme == "unix":
            self.path = unquote(parsed.path)
        elif parsed.scheme in ("redis", "rediss"):
            self.host = unquote(parsed.hostname) if parsed.hostname else "localhost"
            self.port = parsed.port or 6379
            if parsed.scheme == "rediss":
                self.ssl = self._ssl_context(query)
        else:
            raise ValueError("Redis URL must start with redis://, rediss://, unix:// or redis+sentinel://")

    @staticmethod
    def _ssl_context(query: dict[str, str]) -> ssl.SSLContext:
        context = ssl.create_default_context()
        reqs = query.get("ssl_cert_reqs", "required").lower()
        modes = {"none": ssl.CERT_NONE, "optional": ssl.CERT_OPTIONAL, "required": ssl.CERT_REQUIRED}
        if reqs not in modes:
            raise ValueError(f"invalid ssl_cert_reqs {reqs!r}")
        context.check_hostname = (query.get("ssl_check_hostname", "true").lower() in ("1", "true", "yes")
                                  and modes[reqs] != ssl.CERT_NONE)
        context.verify_mode = modes[reqs]
        if query.get("ssl_certfile"):
            context.load_cert_chain(query["ssl_certfile"], query.get("ssl_keyfile"))
        if query.get("ssl_ca_certs"):
            context.load_verify_locations(cafile=query["ssl_ca_certs"])
        return context

    @property
    def server_id(self) -> str | None:
        """The run_id of the server the current connection reached (None before the first one)."""
        proto = self._proto
        return proto.server_id if proto is not None and proto.usable() else None

    async def connect(self) -> None:
        """Open the connection now if there is none (the first call would)."""
        if self._proto is None or not self._proto.usable():
            await self._connection()

    def register_script(self, source: str) -> Script:
        return Script(self, source)

    # ---- calls

    async def _round_trip(self, payload: bytes, wanted: int, dropped: int = 0) -> list[asyncio.Future]:
        """Write ``payload`` in one go and wait for its replies: the first ``dropped`` are discarded
        (MULTI's +OK/+QUEUED), the next ``wanted`` come back as done futures, in order."""
        proto = self._proto
        if proto is None or not proto.usable():
            proto = await self._connection()
        futures = [proto.loop.create_future() for _ in range(wanted)]
        proto.pending.extend([None] * dropped)
        proto.pending.extend(futures)
        count, sent = proto.replies, proto.loop_time()
        proto.transport.write(payload)
        try:
            await futures[-1]      # replies come in order: the last one done means all are
        except RespError:
            pass
        except asyncio.CancelledError:
            proto.check_stalled(count, sent)
            raise
        return futures

    async def execute_packed(self, command: bytes):
        """Send one pre-encoded command and return its reply (an error reply raises)."""
        (reply,) = await self._round_trip(command, 1)
        return reply.result()

    async def execute(self, *args: object) -> Any:
        return await self.execute_packed(pack_command(*args))

    async def pipeline(self, commands: list[bytes]) -> list:
        """Several pre-encoded commands in one write; their replies in order, an error reply as a
        ``ResponseError`` value (not raised), so one bad command does not hide the others' results."""
        return [f.exception() or f.result() for f in await self._round_trip(b"".join(commands), len(commands))]

    async def ping(self) -> str:
        return await self.execute_packed(b"*1\r\n$4\r\nPING\r\n")

    async def transaction(self, *commands: tuple) -> list:
        """MULTI, the commands, EXEC in one write; returns EXEC's list of replies (an error reply to
        any of the commands raises)."""
        packed = [b"*1\r\n$5\r\nMULTI\r\n", *(pack_command(*c) for c in commands), b"*1\r\n$4\r\nEXEC\r\n"]
        (exec_reply,) = await self._round_trip(b"".join(packed), 1, dropped=len(commands) + 1)
        replies = exec_reply.result()
        for reply in replies:
            if type(reply) is ResponseError:
                raise reply
        return replies

    # ---- connection

    async def _connection(self) -> _Protocol:
        if self._closed:
            raise ConnectionFailed("The Redis client is closed")
        if self._connecting is None:
            self._connecting = asyncio.ensure_future(self._connect())
            self._connecting.add_done_callback(self._connected)
        # shielded: a caller giving up doesn't abort a connection the others are waiting for
        return await asyncio.shield(self._connecting)

    def _connected(self, task: asyncio.Future) -> None:
        self._connecting = None
        if not task.cancelled() and task.exception() is None:
            self._proto = task.result()
            if self.sentinel is not None and self._watcher is None and not self._closed:
                self._watcher = asyncio.ensure_future(self._watch_role())

    async def _watch_role(self) -> None:
        """Sentinel only: drop the connection as soon as its server is no longer the primary."""
        while not self._closed:
            await asyncio.sleep(ROLE_CHECK)
            proto = self._proto
            if proto is None or not proto.usable():
                continue
            try:
                async with asyncio.timeout(ROLE_CHECK * 2):
                    role = await proto.request(pack_command("ROLE"))
            except (RespError, TimeoutError):
                continue  # a lost connection reconnects on the next call; a slow one is the STALLED rule's
            if role[0] != "master" and not proto.closed:
                proto._fail("Redis is no longer the primary")
                proto.transport.abort()

    async def _open(self, host: str, port: int, username: str | None, password: str | None,
                    db: int = 0) -> tuple[asyncio.Transport, _Protocol]:
        """A connection to one server (TCP/TLS, or the unix socket when ``host`` is None), authenticated."""
        loop = asyncio.get_running_loop()
        if self.path is not None and host is None:
            transport, proto = await loop.create_unix_connection(_Protocol, self.path)
        else:
            transport, proto = await loop.create_connection(_Protocol, host, port, ssl=self.ssl,
                                                            server_hostname=host if self.ssl else None)
        try:
            setup = []
            if password is not None:
                auth = ("AUTH", username, password) if username else ("AUTH", password)
                setup.append(proto.request(pack_command(*auth)))
            if db:
                setup.append(proto.request(pack_command("SELECT", db)))
            for fut in setup:
                await fut
        except BaseException:
            transport.abort()
            raise
        return transport, proto

    async def _primary_address(self) -> tuple[str, int]:
        """Ask the Sentinels, in order, which server is the primary now (the Sentinel client protocol)."""
        target = self.sentinel
        assert target is not None
        failures = []
        for i, (host, port) in enumerate(self.sentinels):
            transport = None
            try:
                transport, proto = await self._open(host, port, target.sentinel_username, target.sentinel_password)
                reply = await proto.request(pack_command("SENTINEL", "get-master-addr-by-name", target.service))
            except (OSError, ssl.SSLError, RespError) as exc:
                failures.append(f"{host}:{port}: {exc or type(exc).__name__}")
                continue
            finally:
                if transport is not None:
                    transport.abort()
            if not reply:
                failures.append(f"{host}:{port}: no primary known for {target.service!r}")
                continue
            self.sentinels.insert(0, self.sentinels.pop(i))
            return reply[0], int(reply[1])
        raise ConnectionFailed(f"No Sentinel names a primary for {target.service!r}: {'; '.join(failures)}")

    async def _connect(self) -> _Protocol:
        transport = None
        try:
            async with asyncio.timeout(self.connect_timeout):
                if self.sentinel is not None:
                    host, port = await self._primary_address()
                else:
                    host, port = (None, 0) if self.path is not None else (self.host, self.port)
                transport, proto = await self._open(host, port, self.username, self.password, self.db)
                info = proto.request(pack_command("INFO", "server"))
                role = proto.request(pack_command("ROLE")) if self.sentinel is not None else None
                proto.server_id = _run_id(await info)
                if role is not None and (await role)[0] != "master":
                    raise ConnectionFailed(f"Redis at {host}:{port} is not the primary (yet)")
        except ResponseError:
            if transport is not None:
                transport.abort()
            raise
        except (OSError, TimeoutError, ssl.SSLError) as exc:
            if transport is not None:
                transport.abort()
            if isinstance(exc, ConnectionFailed):
                raise
            raise ConnectionFailed(f"Cannot connect to Redis: {exc or type(exc).__name__}") from exc
        except BaseException:
            if transport is not None:
                transport.abort()
            raise
        if self._closed:  # close() ran while we were connecting
            transport.abort()
            raise ConnectionFailed("The Redis client is closed")
        return proto

    async def close(self) -> None:
        """Close the connection; pending and later calls fail with ConnectionFailed."""
        self._closed = True
        if self._connecting is not None:
            self._connecting.cancel()
        if self._watcher is not None:
            self._watcher.cancel()
        proto, self._proto = self._proto, None
        if proto is not None and proto.transport is not None:
            proto._fail("The Redis client is closed")
            proto.transport.close()


def _run_id(info: str) -> str:
    for line in info.splitlines():
        if line.startswith("run_id:"):
            return line[7:].strip()
    raise ConnectionFailed("Redis did not say its run_id (INFO server)")
