"""Hard quotas at the proxy: reserve before any byte reaches the node, settle after it answered.

Every write reserves its size atomically (policy/quota.lua checks the workspace, its owner and its
root before changing anything), then either settles (the reservation becomes committed usage,
adjusted by what the write replaced) or releases (failed, aborted or refused writes). Deletes hold a
reservation of nothing, settled with what they freed: every change of usage is recorded while in
flight, so a rebuild of usage waits for it (and it for the rebuild).

Against a hostile user (invariant 8): a delete, copy or completion holds an exclusive lock on its key
(policy/key_lock.lua) from reading the old object's size to settling, so racing changes of one key are
counted once each, in the order the node applied them. PutObject writes of one key may overlap, as S3
allows (a second PUT may start while the first one's body still arrives): they form a key group. The
first reads the size before the group; every writer reserves its whole size and holds it until the group
is empty; the last one out reads the size the node ended with and settles the group from one to the
other (policy/quota.lua 'leave' and 'close'). A writer that was alone in its group settles with its own
outcome, so the common case costs no extra node request. Multipart uploads
are bound to the workspace and key they were created for (``wio:mpu:{upload_id}``); their parts stay
reserved until the upload is completed or aborted, a re-uploaded part counts once, and an upload id
used anywhere else is ``NoSuchUpload``.
"""
from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import re
import secrets
from dataclasses import dataclass
from typing import Any, AsyncIterator, Awaitable, Callable, Iterable, TypeVar, cast

from policy.decide import WorkspaceView
from policy.scripts import lua
from proxy.authz import REDIS_TIMEOUT
from proxy.errors import S3Error
from foundation.resp import RespClient, RespError, Script

__all__ = ["Quotas", "Reservation", "KeyLock", "KeyWrite", "object_identity", "seen_through"]

MPU_TTL_SECONDS = 14 * 24 * 3600
LOCK_TTL_MS = 30_000          # a lock outlives a dead proxy by at most this long; live holders renew it
LOCK_WAIT = 10.0              # how long a write waits for another write of the same key to finish
RESERVATION_GRACE = 600       # a reservation's deadline: this many seconds, plus its bytes at SLOWEST_WRITE
SLOWEST_WRITE = 256 << 10     # bytes/s; past its deadline, reconciliation gives a reservation back
COMPLETED_KEPT = 86400         # seconds a completed upload is remembered, so that a retried completion succeeds
log = logging.getLogger("wio.proxy")
_SLASHES = re.compile(r"/{2,}")
T = TypeVar("T")


def object_identity(key: str) -> str:
    """The object ``key`` names on a node that normalises paths (SeaweedFS does): runs of '/' collapsed,
    no leading '/'. Locks and freed space go by it, so "d/k", "d//k" and "/d/k" are one object to wio."""
    if "//" not in key and not key.startswith("/"):
        return key
    return _SLASHES.sub("/", key).lstrip("/")


def seen_through(handler: Callable[..., Awaitable[T]]) -> Callable[..., Awaitable[T]]:
    """Run a write handler to its end even when its client hangs up.

    aiohttp cancels the handler of a client that went away. Cancelled after the node had the whole
    body, a write would be stored and never counted (or a reservation taken and never given back).
    So the handler runs as its own task that the cancellation does not reach: a body cut short still
    aborts the upstream write (its stream fails), a complete one is settled as the node answered.
    """
    @functools.wraps(handler)
    async def run(*args: Any) -> T:
        task = asyncio.ensure_future(handler(*args))
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            task.add_done_callback(_outcome_unwanted)
            raise
    return run


def _outcome_unwanted(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()   # retrieved: nobody is left to answer, and that is not an error


@dataclass(slots=True)
class KeyLock:
    """Held key locks (``Quotas.exclusive``); ``released`` once a settlement gave them back."""
    token: str
    names: list[str]
    released: bool = False


@dataclass(slots=True)
class KeyWrite:
    """A PutObject's membership of its key's group (``Quotas.writing``). ``leads``: it formed the group and
    must read the key's old size before it reserves; ``length``: what it reserved (and writes);
    ``stored``: the node stored it."""
    ws: WorkspaceView
    name: str
    token: str
    leads: bool
    length: int = 0
    stored: bool = False


@dataclass(slots=True)
class Reservation:
    ws: WorkspaceView
    bytes: int
    objects: int
    token: str
    done: bool = False


class Quotas:
    def __init__(self, redis: RespClient):
        self.redis = redis
        self._script = redis.register_script(lua("quota.lua"))
        self._lock_script = redis.register_script(lua("key_lock.lua"))

    async def _call(self, script: Script, what: str, args: list[object]) -> Any:
        """One script call with the request path's Redis deadline; an unreachable Redis fails closed."""
        try:
            async with asyncio.timeout(REDIS_TIMEOUT):
                return await script(args=args)
        except (RespError, OSError, TimeoutError) as exc:
            log.warning("quota %s failed: %s", what, exc)
            raise S3Error("ServiceUnavailable", "The quota store is unavailable; please retry") from None

    async def _run(self, action: str, ws: WorkspaceView, *args: object) -> Any:   # the script's reply, by action
        return await self._call(self._script, f"{action} on {ws.name}", [action, ws.name, ws.owner, ws.root, *args])

    async def reserve(self, ws: WorkspaceView, nbytes: int, objects: int) -> Reservation:
        token = secrets.token_hex(12)
        result = await self._run("reserve", ws, nbytes, objects, token, RESERVATION_GRACE + nbytes // SLOWEST_WRITE)
        if int(result[0]) != 1:
            self._refused(result)
        return Reservation(ws, nbytes, objects, token)

    async def reserve_write(self, write: KeyWrite, nbytes: int, old: int | None = None) -> None:
        """Reserve ``nbytes`` for ``write``, held by its key group. The writer that formed the group gives the
        key's ``old`` size (None: no object), reserves the new object it may create, and opens the group."""
        args: list[object] = [nbytes, int(write.leads and old is None), write.token,
                              RESERVATION_GRACE + nbytes // SLOWEST_WRITE, write.name]
        if write.leads:
            args.append("" if old is None else old)
        result = await self._run("reserve", write.ws, *args)
        if int(result[0]) != 1:
            self._refused(result)
        write.length = nbytes

    @staticmethod
    def _refused(result: list[Any]) -> None:
        if result[1] == "unknown":
            raise S3Error("ServiceUnavailable", "This workspace's usage is being rebuilt; please retry later")
        if result[1] == "lost":
            raise S3Error("OperationAborted", "Another write to this key is in progress; please retry")
        raise S3Error("QuotaExceeded", f"This write would exceed the {result[1]} quota on {result[2]}")

    @contextlib.asynccontextmanager
    async def writing(self, ws: WorkspaceView, key: str,
                      final_size: Callable[[], Awaitable[int | None]]) -> AsyncIterator[KeyWrite]:
        """Be one of the PutObject writers of ``key`` (its key group) for the block. On the way out the writer
        leaves; the last one out of a group others joined reads the key's size with ``final_size`` and
        settles the group (shielded: a cancelled writer still leaves)."""
        token = secrets.token_hex(12)
        name = f"wio:lk:{ws.name}/{object_identity(key)}"
        joined = await self._wait_for(lambda: self._lock("join", token, [name]))
        renewal: list[Any] = [None, None]
        self._renew_later(token, [name], renewal)
        write = KeyWrite(ws, name, token, leads=joined == 1)
        try:
            yield write
        finally:
            renewal[0].cancel()
            await asyncio.shield(self._leave(write, final_size))

    async def _leave(self, write: KeyWrite, final_size: Callable[[], Awaitable[int | None]]) -> None:
        with contextlib.suppress(S3Error):   # a group nobody settles expires; its reservations are reclaimed
            reply = await self._run("leave", write.ws, write.name, write.token, int(write.stored), write.length)
            if reply[0] == "close":
                try:
                    size = await final_size()
                    final = "" if size is None else str(size)
                except Exception as exc:  # noqa: BLE001 - whatever failed, the final size is not known
                    log.warning("final size of a shared write unknown, usage of %s to be rebuilt: %s", write.ws.name, exc)
                    final = "?"
                await self._run("close", write.ws, write.name, final)

    async def _wait_for(self, attempt: Callable[[], Awaitable[int]]) -> int:
        """Retry ``attempt`` until it answers non-zero (a lock taken, a group joined), for at most LOCK_WAIT."""
        loop = asyncio.get_running_loop()
        deadline, pause = loop.time() + LOCK_WAIT, 0.005
        while not (reply := await attempt()):
            if loop.time() >= deadline:
                raise S3Error("OperationAborted", "Another write to this key is in progress; please retry")
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.1)
        return reply

    async def settle(self, res: Reservation, delta_bytes: int, delta_objects: int,
                     unlock: KeyLock | None = None) -> None:
        """Turn ``res`` into committed usage changed by the deltas. ``unlock``: the write's key locks,
        released by the same script call after the settlement (the last thing the write does under them)."""
        if not res.done:
            res.done = True
            if unlock is None or unlock.released:
                await self._run("settle", res.ws, res.bytes, res.objects, delta_bytes, delta_objects, res.token)
                return
            await self._run("settle", res.ws, res.bytes, res.objects, delta_bytes, delta_objects, res.token,
                            unlock.token, *unlock.names)
            unlock.released = True   # (a failed call leaves the release to ``exclusive``, as before)

    async def release(self, res: Reservation) -> None:
        if not res.done:
            res.done = True
            await self._run("release", res.ws, res.bytes, res.objects, res.token)

    @contextlib.asynccontextmanager
    async def reserved(self, ws: WorkspaceView, nbytes: int, objects: int) -> AsyncIterator[Reservation]:
        """Reserve for the block (``QuotaExceeded`` before it runs); what the block did not settle or keep
        is given back on the way out, whether it returned, failed or was cancelled (the release is shielded)."""
        res = await self.reserve(ws, nbytes, objects)
        try:
            yield res
        finally:
            if not res.done:
                await asyncio.shield(self.release(res))

    # ---- one writer per key while usage changes

    @contextlib.asynccontextmanager
    async def exclusive(self, ws: WorkspaceView, keys: Iterable[str]) -> AsyncIterator[KeyLock]:
        """Hold the locks of ``keys`` in ``ws`` (all or none, so two holders never wait on each other);
        released on the way out, unless a settlement (``settle(..., unlock=lock)``) released them already."""
        token = secrets.token_hex(12)
        names = list(dict.fromkeys(f"wio:lk:{ws.name}/{object_identity(key)}" for key in keys))
        await self._wait_for(lambda: self._lock("acquire", token, names))
        renewal: list[Any] = [None, None]   # the pending timer, the last renewal task (kept referenced)
        self._renew_later(token, names, renewal)
        lock = KeyLock(token, names)
        try:
            yield lock
        finally:
            renewal[0].cancel()
            if not lock.released:
                lock.released = True
                with contextlib.suppress(S3Error):   # an unreleased lock expires by itself
                    await asyncio.shield(self._lock("release", token, names))

    async def _lock(self, action: str, token: str, names: list[str]) -> int:
        return cast(int, await self._call(self._lock_script, f"lock {action}", [action, token, LOCK_TTL_MS, *names]))

    def _renew_later(self, token: str, names: list[str], renewal: list[Any]) -> None:
        """Renew the locks every third of their TTL while held: a timer, so that short holds start no task."""
        def renew() -> None:
            renewal[1] = asyncio.ensure_future(self._renew(token, names))
            self._renew_later(token, names, renewal)
        renewal[0] = asyncio.get_running_loop().call_later(LOCK_TTL_MS / 3000, renew)

    async def _renew(self, token: str, names: list[str]) -> None:
        with contextlib.suppress(S3Error):   # a renewal that fails is retried by the next one
            await self._lock("renew", token, names)

    # ---- multipart uploads: bound to their workspace and key; parts stay reserved until complete/abort

    async def upload_started(self, ws: WorkspaceView, key: str, upload_id: str) -> None:
        await self._run("start", ws, upload_id, key, MPU_TTL_SECONDS)

    async def check_upload(self, ws: WorkspaceView, key: str, upload_id: str) -> None:
        """``NoSuchUpload`` unless ``upload_id`` was created through wio for this workspace and key."""
        if int(await self._run("owns", ws, upload_id, key)) != 1:
            raise S3Error("NoSuchUpload")

    async def upload_held(self, ws: WorkspaceView, key: str, upload_id: str) -> int:
        """The bytes the upload's parts hold reserved (``NoSuchUpload`` if it is not this workspace's and key's)."""
        held = int(await self._run("held", ws, upload_id, key))
        if held < 0:
            raise S3Error("NoSuchUpload")
        return held

    async def keep_for_part(self, res: Reservation, key: str, upload_id: str, part: int) -> None:
        """Keep a stored part's reservation under its upload (given back at once if the upload is gone)."""
        res.done = True
        await self._run("part", res.ws, res.bytes, upload_id, key, part, MPU_TTL_SECONDS, res.token)

    async def upload_finished(self, ws: WorkspaceView, key: str, upload_id: str, *, completed: bool = False) -> int:
        """Forget an upload and give its parts' reservation back; returns the bytes they held. A completed
        upload is remembered for a day, so that a repeated completion (a retry) is recognised."""
        return int(await self._run("finish", ws, upload_id, key, COMPLETED_KEPT if completed else 0))

    async def was_completed(self, ws: WorkspaceView, key: str, upload_id: str) -> bool:
        """This workspace and key completed ``upload_id`` recently (through wio)."""
        return int(await self._run("completed", ws, upload_id, key)) == 1
