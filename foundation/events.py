"""Redis Streams between the proxy (producer) and the indexer / audit store (consumers).

``wio:events`` — one entry per successful write, delete, copy or multipart completion (for the index):
    type          "put" | "delete"
    workspace     workspace (bucket) name
    key           object key, relative to the workspace
    size          bytes, "" when the proxy does not know it (copies, multipart completion: HEAD it)
    etag          as the node returned it, "" when unknown
    content_type  "" when unknown
    time          epoch seconds (float) when the proxy saw the write succeed
    user          who wrote it

``wio:audit`` — one entry per authorization decision:
    time, request_id, user, access_key, workspace, operation, key, decision ("allow" | "deny"),
    reason (the grant label that allowed, or why it was denied), status (HTTP status sent),
    bytes_in, bytes_out, client (address), duration_ms

On the wire each entry is ONE field, ``e``, holding the fields above as a JSON object: one
pre-serialised field costs a fraction of packing thirty. ``entry_fields``
turns a stream entry back into the field dict (and accepts the older one-field-per-name form).

Both streams are capped (approximate MAXLEN) so Redis memory stays bounded if a consumer is down.
Producers never wait on consumers: entries are queued in-process and written in pipelined batches.
"""
from __future__ import annotations

import asyncio
import collections
import json
import logging
from typing import Any

from foundation.metrics import STREAM_DROPPED
from foundation.resp import RespClient, RespError, pack_command

__all__ = ["EVENTS_STREAM", "AUDIT_STREAM", "AUDIT_DEAD_LETTER", "STREAM_MAXLEN", "EventSink", "entry_fields"]

EVENTS_STREAM = "wio:events"
AUDIT_STREAM = "wio:audit"
# audit entries the store refused (the consumer moves them here and goes on): kept for inspection
AUDIT_DEAD_LETTER = "wio:audit:dead-letter"
STREAM_MAXLEN = 1_000_000

log = logging.getLogger("foundation.events")
_XADD_PREFIX: dict[str, bytes] = {}   # stream -> the XADD command up to its last argument, RESP-encoded
_encode = json.JSONEncoder(default=str).encode   # what json.dumps(fields, default=str) builds on every call


def entry_fields(fields: dict) -> dict[str, str]:
    """A stream entry's fields as a str -> str dict, whichever form the producer wrote."""
    packed = fields.get("e", fields.get(b"e"))
    if packed is None:
        return {(k.decode("utf-8", "replace") if isinstance(k, bytes) else k):
                (v.decode("utf-8", "replace") if isinstance(v, bytes) else v) for k, v in fields.items()}
    try:
        data = json.loads(packed)
    except ValueError:
        return {}
    return {str(k): "" if v is None else str(v) for k, v in data.items()} if isinstance(data, dict) else {}


class EventSink:
    """Batches stream entries off the request path; drops (and counts) entries when the queue is full.

    ``emit`` packs the XADD command at once (JSON, RESP) and queues the bytes; a writer task sends up
    to ``batch`` of them in one write on the pipelined client (``foundation.resp``) every ``interval``.
    """

    def __init__(self, client: RespClient, *, max_queue: int = 100_000, batch: int = 512, interval: float = 0.02,
                 timeout: float = 5.0):
        self.client, self.max_queue, self.batch, self.interval, self.timeout = client, max_queue, batch, interval, timeout
        self.queue: collections.deque[bytes] = collections.deque()
        self.dropped = 0
        self._task: asyncio.Task | None = None
        self._wake = asyncio.Event()
        self._closing = False

    def _drop(self, count: int, reason: str) -> None:
        self.dropped += count
        STREAM_DROPPED.labels(reason).inc(count)

    def emit(self, stream: str, fields: dict[str, Any]) -> None:
        if len(self.queue) >= self.max_queue:
            self._drop(1, "queue_full")
            return
        prefix = _XADD_PREFIX.get(stream)
        if prefix is None:
            empty_last = pack_command("XADD", stream, "MAXLEN", "~", STREAM_MAXLEN, "*", "e", "")
            prefix = _XADD_PREFIX[stream] = empty_last[:-len(b"$0\r\n\r\n")]
        data = _encode(fields).encode()
        self.queue.append(b"%b$%d\r\n%b\r\n" % (prefix, len(data), data))
        if not self._wake.is_set():
            self._wake.set()

    def start(self) -> None:
        self._closing = False
        self._task = asyncio.create_task(self._run())

    async def stop(self, timeout: float = 5.0) -> None:
        """Let the writer finish its batch and exit, then write what is left."""
        task, self._task = self._task, None
        if task is not None:
            self._closing = True
            self._wake.set()
            done, _ = await asyncio.wait([task], timeout=timeout)
            if not done:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        while self.queue:
            if not await self.flush():
                self._drop(len(self.queue), "redis")
                self.queue.clear()

    async def flush(self) -> bool:
        """Write one batch; False when Redis could not take it (the batch is counted as dropped)."""
        queue = self.queue
        items = [queue.popleft() for _ in range(min(len(queue), self.batch))]
        if not items:
            return True
        try:
            async with asyncio.timeout(self.timeout):
                replies = await self.client.pipeline(items)
        except (RespError, OSError, TimeoutError) as exc:
            self._drop(len(items), "redis")
            log.warning("could not write %d stream entries: %s", len(items), exc)
            return False
        failed = [r for r in replies if isinstance(r, Exception)]
        if failed:
            self._drop(len(failed), "redis")
            log.warning("Redis refused %d of %d stream entries: %s", len(failed), len(items), failed[0])
        return True

    async def _run(self) -> None:
        """At most one write every ``interval`` seconds: entries wait there to form a batch."""
        while not self._closing:
            if not self.queue:
                self._wake.clear()
                await self._wake.wait()
                continue
            await asyncio.sleep(self.interval)
            while self.queue and await self.flush():
                pass
