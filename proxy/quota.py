"""Hard quotas at the proxy: reserve before any byte reaches the node, settle after it answered.

Every write reserves its size atomically (policy/quota.lua checks the workspace, its owner and its
root before changing anything), then either settles (the reservation becomes committed usage,
adjusted by what the write replaced) or releases (failed, aborted or refused writes). Multipart
parts stay reserved until the upload is completed or aborted; their sizes are kept per upload in
``wio:mpu:{upload_id}`` so a re-uploaded part counts only once.
"""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path

import policy
from policy.decide import WorkspaceView
from proxy.authz import REDIS_TIMEOUT
from proxy.errors import S3Error
from wio.resp import RespClient, RespError

__all__ = ["Quotas", "Reservation"]

MPU_TTL_SECONDS = 14 * 24 * 3600
log = logging.getLogger("wio.proxy")


@dataclass(slots=True)
class Reservation:
    ws: WorkspaceView
    bytes: int
    objects: int
    done: bool = False


class Quotas:
    def __init__(self, redis: RespClient):
        self.redis = redis
        self._script = redis.register_script((Path(policy.__file__).parent / "quota.lua").read_text())

    async def _run(self, action: str, ws: WorkspaceView, *numbers: int) -> list:
        try:
            async with asyncio.timeout(REDIS_TIMEOUT):
                return await self._script(args=[action, ws.name, ws.owner, ws.root, *numbers])
        except (RespError, OSError, TimeoutError) as exc:
            log.warning("quota %s failed for %s: %s", action, ws.name, exc)
            raise S3Error("ServiceUnavailable", "The quota store is unavailable; please retry") from None

    async def _transaction(self, action: str, *commands: tuple) -> list:
        """MULTI/EXEC on the same connection, with the same deadline and failure mapping as the scripts."""
        try:
            async with asyncio.timeout(REDIS_TIMEOUT):
                return await self.redis.transaction(*commands)
        except (RespError, OSError, TimeoutError) as exc:
            log.warning("quota %s failed: %s", action, exc)
            raise S3Error("ServiceUnavailable", "The quota store is unavailable; please retry") from None

    async def reserve(self, ws: WorkspaceView, nbytes: int, objects: int) -> Reservation:
        result = await self._run("reserve", ws, nbytes, objects)
        if int(result[0]) != 1:
            scope, kind = result[1], result[2]
            raise S3Error("QuotaExceeded", f"This write would exceed the {scope} quota on {kind}")
        return Reservation(ws, nbytes, objects)

    async def settle(self, res: Reservation, delta_bytes: int, delta_objects: int) -> None:
        if not res.done:
            res.done = True
            await self._run("settle", res.ws, res.bytes, res.objects, delta_bytes, delta_objects)

    async def release(self, res: Reservation) -> None:
        if not res.done:
            res.done = True
            await self._run("release", res.ws, res.bytes, res.objects)

    async def adjust(self, ws: WorkspaceView, delta_bytes: int, delta_objects: int) -> None:
        if delta_bytes or delta_objects:
            await self._run("adjust", ws, delta_bytes, delta_objects)

    # ---- multipart uploads: parts stay reserved (pending) until complete/abort

    async def part_uploaded(self, ws: WorkspaceView, upload_id: str, part: int, size: int) -> None:
        """Record a part; a part uploaded again replaces the old one, whose reservation is given back."""
        key = f"wio:mpu:{upload_id}"
        old, _, _ = await self._transaction("part", ("HGET", key, str(part)), ("HSET", key, str(part), size),
                                            ("EXPIRE", key, MPU_TTL_SECONDS))
        if old is not None:
            await self._run("release", ws, int(old), 0)

    async def upload_finished(self, ws: WorkspaceView, upload_id: str) -> int:
        """Forget an upload's parts and give their reservation back; returns the bytes they held."""
        key = f"wio:mpu:{upload_id}"
        sizes, _ = await self._transaction("finish", ("HVALS", key), ("DEL", key))
        total = sum(int(s) for s in sizes)
        if total:
            await self._run("release", ws, total, 0)
        return total
