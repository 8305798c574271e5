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

On the wire each entry is ONE field, ``e``, holding the fields above as a JSON object: redis-py packs
every argument in Python, so one pre-serialised field costs a fraction of thirty. ``entry_fields``
turns a stream entry back into the field dict (and accepts the older one-field-per-name form).

Both streams are capped (approximate MAXLEN) so Redis memory stays bounded if a consumer is down.
Producers never wait on consumers: entries are queued in-process and written in pipelined batches.
"""
from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from redis.asyncio import Redis

__all__ = ["EVENTS_STREAM", "AUDIT_STREAM", "STREAM_MAXLEN", "EventSink", "entry_fields"]

EVENTS_STREAM = "wio:events"
AUDIT_STREAM = "wio:audit"
STREAM_MAXLEN = 1_000_000

log = logging.getLogger("wio.events")


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
    """Batches stream entries off the request path; drops (and counts) entries when the queue is full."""

    def __init__(self, redis: Redis, *, max_queue: int = 100_000, batch: int = 512, interval: float = 0.02):
        self.redis, self.batch, self.interval = redis, batch, interval
        self.queue: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue(max_queue)
        self.dropped = 0
        self._task: asyncio.Task | None = None
        self._wake = asyncio.Event()
        self._closing = False

    def emit(self, stream: str, fields: dict[str, Any]) -> None:
        try:
            self.queue.put_nowait((stream, {"e": json.dumps(fields, default=str)}))
        except asyncio.QueueFull:
            self.dropped += 1
            return
        if not self._wake.is_set():
            self._wake.set()

    def start(self) -> None:
        self._closing = False
        self._task = asyncio.create_task(self._run())

    async def stop(self, timeout: float = 5.0) -> None:
        """Let the writer finish its batch and exit, then write what is left.

        Not a bare ``cancel()``: redis-py may turn a cancellation in the middle of a pipeline into a
        connection error, which ``flush`` (rightly) survives, and the loop would wait forever.
        """
        task, self._task = self._task, None
        if task is not None:
            self._closing = True
            self._wake.set()
            done, _ = await asyncio.wait([task], timeout=timeout)
            if not done:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        await self.flush()

    async def flush(self) -> None:
        items = []
        while not self.queue.empty() and len(items) < self.batch:
            items.append(self.queue.get_nowait())
        if not items:
            return
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for stream, fields in items:
                    pipe.xadd(stream, fields, maxlen=STREAM_MAXLEN, approximate=True)
                await pipe.execute()
        except Exception as exc:  # noqa: BLE001 - the sink must outlive any one bad batch (Redis down, unencodable value)
            self.dropped += len(items)
            log.warning("could not write %d stream entries: %s", len(items), exc)

    async def _run(self) -> None:
        while not self._closing:
            if self.queue.empty():
                self._wake.clear()
                await self._wake.wait()
                continue
            await self.flush()
            if self.queue.empty() and not self._closing:
                await asyncio.sleep(self.interval)
