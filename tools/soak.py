"""Soak test: N concurrent clients doing mixed S3 operations through the proxy while shares are
granted and revoked, then a full read-back. Bounded in time.

    python -m tools.soak --minutes 10 --clients 64            # long form (own stack, 64 MiB max objects)
    python -m tools.soak --quick                              # <= 60 s, small objects
    python -m tools.soak --api-url URL --s3-url URL --proxy-pid PID ...   # against a running stack

Asserts (exit status 1 otherwise): zero 5xx and zero connection failures (no fault is injected), every
object read back matches its SHA-256 (during the run and in the final pass: objects lost = 0), no
request started after a revocation was answered and before the next grant was sent is allowed
(unauthorized bytes = 0), proxy RSS growth after warm-up <= --rss-limit-mib. Prints the figures.

Object bodies are generated from a seed (``PatternBody``), never held whole in memory, so 64 clients
with 64 MiB objects stay within a few MiB per client.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import random
import secrets
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from wio.client import ApiClient

__all__ = ["SoakConfig", "SoakReport", "run_soak", "main", "PatternBody"]

KiB, MiB = 1 << 10, 1 << 20
_BLOCK = 64 * KiB


class PatternBody(io.RawIOBase):
    """A seekable, deterministic body of ``size`` bytes derived from ``seed`` (no whole-object buffer)."""

    def __init__(self, seed: int, size: int):
        self.seed, self.size, self.pos = seed, size, 0
        rnd = random.Random(seed)
        self._block = rnd.randbytes(_BLOCK)

    def _piece(self, offset: int, n: int) -> bytes:
        out = bytearray()
        while n > 0:
            index, within = divmod(offset, _BLOCK)
            take = min(n, _BLOCK - within)
            # every 64 KiB block differs: its index is stamped over its first 8 bytes
            block = index.to_bytes(8, "big") + self._block[8:]
            out += block[within:within + take]
            offset += take
            n -= take
        return bytes(out)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            n = self.size - self.pos
        n = max(0, min(n, self.size - self.pos, 8 * MiB))
        data = self._piece(self.pos, n)
        self.pos += n
        return data

    def readinto(self, buf) -> int:
        data = self.read(len(buf))
        buf[:len(data)] = data
        return len(data)

    def seek(self, offset: int, whence: int = 0) -> int:
        self.pos = {0: offset, 1: self.pos + offset, 2: self.size + offset}[whence]
        return self.pos

    def tell(self) -> int:
        return self.pos

    def __len__(self) -> int:
        return self.size

    def sha256(self, start: int = 0, end: int | None = None) -> str:
        end = self.size if end is None else end
        h = hashlib.sha256()
        for off in range(start, end, MiB):
            h.update(self._piece(off, min(MiB, end - off)))
        return h.hexdigest()


@dataclass
class SoakConfig:
    api_url: str
    s3_url: str
    seconds: float = 60
    clients: int = 8
    max_size: int = 4 * MiB
    readers: int = 2
    proxy_pids: list[int] = field(default_factory=list)
    rss_limit_mib: float = 64
    seed: int = 0


@dataclass
class SoakReport:
    requests: int = 0
    bytes_up: int = 0
    bytes_down: int = 0
    errors_5xx: int = 0
    connection_failures: int = 0
    unexpected_4xx: int = 0
    checksum_mismatches: int = 0
    objects_written: int = 0
    objects_verified: int = 0
    objects_final_pass: int = 0
    objects_lost: int = 0
    revocations: int = 0
    reader_requests: int = 0
    reader_requests_after_revocation: int = 0
    allowed_after_revocation: int = 0
    unauthorized_bytes: int = 0
    rss_start_mib: float = 0.0
    rss_end_mib: float = 0.0
    rss_max_mib: float = 0.0
    seconds: float = 0.0
    failures: list[str] = field(default_factory=list)

    @property
    def rss_growth_mib(self) -> float:
        return self.rss_end_mib - self.rss_start_mib

    def ok(self, rss_limit_mib: float) -> bool:
        return not (self.errors_5xx or self.connection_failures or self.unexpected_4xx or self.checksum_mismatches
                    or self.objects_lost or self.allowed_after_revocation or self.unauthorized_bytes
                    or self.rss_growth_mib > rss_limit_mib)

    def summary(self) -> str:
        d = {k: v for k, v in self.__dict__.items() if k != "failures"}
        d["rss_growth_mib"] = round(self.rss_growth_mib, 1)
        d["failures"] = self.failures[:20]
        return json.dumps(d, indent=2)


def _rss_mib(pids: list[int]) -> float:
    """RSS of the given processes and all their descendants (the proxy's workers)."""
    seen, todo, total = set(), list(pids), 0
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
            for tid in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{tid}/children") as f:
                    todo += [int(c) for c in f.read().split()]
        except OSError:
            continue
    return total / 1024


def _client(s3_url: str, key: dict, pool: int = 4):
    cfg = Config(s3={"addressing_style": "path"}, signature_version="s3v4", retries={"max_attempts": 1},
                 connect_timeout=30, read_timeout=300, max_pool_connections=pool)
    return boto3.session.Session().client(
        "s3", endpoint_url=s3_url, aws_access_key_id=key["access_key_id"],
        aws_secret_access_key=key["secret_access_key"], region_name="us-east-1", config=cfg)


def _person(api_url: str, prefix: str) -> tuple[str, ApiClient, dict]:
    name, password = f"{prefix}{secrets.token_hex(4)}", secrets.token_urlsafe(16)
    api = ApiClient(api_url)
    api.call("POST", "/auth/register", {"username": name, "password": password})
    api.login(name, password)
    return name, api, api.call("POST", "/keys", {"name": "soak"})


def _size(rnd: random.Random, max_size: int) -> int:
    roll = rnd.random()
    if roll < 0.05:
        return 0
    if roll < 0.45:
        return rnd.randint(1, 4 * KiB)
    if roll < 0.75:
        return rnd.randint(4 * KiB, min(MiB, max_size))
    if roll < 0.93:
        return rnd.randint(min(MiB, max_size), min(8 * MiB, max_size))
    return rnd.randint(min(8 * MiB, max_size), max_size)


class _Soak:
    def __init__(self, cfg: SoakConfig):
        self.cfg, self.report, self.lock = cfg, SoakReport(), threading.Lock()
        self.deadline = 0.0
        self.objects: dict[tuple[str, str], tuple[int, int]] = {}   # (ws, key) -> (seed, size)
        self.denied_windows: list[tuple[float, float]] = []          # [revoke answered, next grant sent)
        self.reader_log: list[tuple[float, float, int, int]] = []    # (started, finished, status, bytes)

    def count(self, **kw) -> None:
        with self.lock:
            for k, v in kw.items():
                setattr(self.report, k, getattr(self.report, k) + v)

    def fail(self, what: str) -> None:
        with self.lock:
            self.report.failures.append(what)

    def call(self, fn, *, expect_4xx: tuple[int, ...] = ()):
        """Run one S3 call; classify failures. Returns the result or None."""
        self.count(requests=1)
        try:
            return fn()
        except ClientError as exc:
            status = exc.response["ResponseMetadata"]["HTTPStatusCode"]
            if status >= 500:
                self.count(errors_5xx=1)
                self.fail(f"{status} {exc.response['Error'].get('Code')}: {exc}")
            elif status not in expect_4xx:
                self.count(unexpected_4xx=1)
                self.fail(f"{status} {exc.response['Error'].get('Code')}: {exc}")
            return None
        except (BotoCoreError, OSError) as exc:
            self.count(connection_failures=1)
            self.fail(f"connection: {exc!r}")
            return None

    def verify_get(self, s3, ws: str, key: str, seed: int, size: int, ranged: bool, rnd: random.Random) -> None:
        body = PatternBody(seed, size)
        kwargs = {"Bucket": ws, "Key": key}
        start, end = 0, size
        if ranged and size > 1:
            start = rnd.randrange(size)
            end = rnd.randint(start + 1, size)
            kwargs["Range"] = f"bytes={start}-{end - 1}"

        def get():
            resp = s3.get_object(**kwargs)
            h, n = hashlib.sha256(), 0
            for piece in resp["Body"].iter_chunks(MiB):
                h.update(piece)
                n += len(piece)
            return h.hexdigest(), n
        got = self.call(get)
        if got is None:
            return
        digest, n = got
        self.count(bytes_down=n, objects_verified=1)
        if n != end - start or digest != body.sha256(start, end):
            self.count(checksum_mismatches=1)
            self.fail(f"checksum mismatch {ws}/{key} range {start}-{end} got {n} bytes")

    def writer(self, index: int, key: dict, workspaces: list[str]) -> None:
        rnd = random.Random(self.cfg.seed * 1000 + index)
        s3 = _client(self.cfg.s3_url, key)
        mine: dict[tuple[str, str], tuple[int, int]] = {}
        serial = 0
        while time.monotonic() < self.deadline:
            roll = rnd.random()
            if roll < 0.35 or not mine:
                ws = rnd.choice(workspaces)
                serial += 1
                name = f"c{index}/{serial % 40}/{'dir/' if rnd.random() < 0.3 else ''}obj{serial}"
                size, seed = _size(rnd, self.cfg.max_size), rnd.getrandbits(48)
                if size >= 10 * MiB and rnd.random() < 0.5:
                    ok = self._multipart(s3, ws, name, seed, size)
                else:
                    ok = self.call(lambda: s3.put_object(Bucket=ws, Key=name, Body=PatternBody(seed, size))) is not None
                if ok:
                    mine[(ws, name)] = (seed, size)
                    with self.lock:
                        self.objects[(ws, name)] = (seed, size)
                    self.count(bytes_up=size, objects_written=1)
            elif roll < 0.65:
                (ws, name), (seed, size) = rnd.choice(list(mine.items()))
                self.verify_get(s3, ws, name, seed, size, rnd.random() < 0.3, rnd)
            elif roll < 0.75:
                (ws, name), (seed, size) = rnd.choice(list(mine.items()))
                head = self.call(lambda: s3.head_object(Bucket=ws, Key=name))
                if head is not None and head["ContentLength"] != size:
                    self.count(checksum_mismatches=1)
                    self.fail(f"HEAD size {head['ContentLength']} != {size} for {ws}/{name}")
            elif roll < 0.85:
                ws = rnd.choice(workspaces)
                self.call(lambda: s3.list_objects_v2(Bucket=ws, Prefix=f"c{index}/", MaxKeys=100))
            elif roll < 0.95 and len(mine) > 5:
                (ws, name), _ = rnd.choice(list(mine.items()))
                if self.call(lambda: s3.delete_object(Bucket=ws, Key=name)) is not None:
                    del mine[(ws, name)]
                    with self.lock:
                        self.objects.pop((ws, name), None)
            else:
                (ws, name), (seed, size) = rnd.choice(list(mine.items()))
                dst = name + ".copy"
                if size <= 64 * MiB and self.call(lambda: s3.copy_object(
                        Bucket=ws, Key=dst, CopySource={"Bucket": ws, "Key": name})) is not None:
                    mine[(ws, dst)] = (seed, size)
                    with self.lock:
                        self.objects[(ws, dst)] = (seed, size)

    def _multipart(self, s3, ws: str, name: str, seed: int, size: int) -> bool:
        up = self.call(lambda: s3.create_multipart_upload(Bucket=ws, Key=name))
        if up is None:
            return False
        part_size, parts, body = max(5 * MiB, -(-size // 3)), [], PatternBody(seed, size)
        for number, start in enumerate(range(0, size, part_size), 1):
            body.seek(start)
            want, chunk = min(part_size, size - start), b""
            while len(chunk) < want:  # read() returns at most 8 MiB at a time
                chunk += body.read(want - len(chunk))
            resp = self.call(lambda: s3.upload_part(Bucket=ws, Key=name, UploadId=up["UploadId"], PartNumber=number,
                                                    Body=chunk))
            if resp is None:
                self.call(lambda: s3.abort_multipart_upload(Bucket=ws, Key=name, UploadId=up["UploadId"]))
                return False
            parts.append({"PartNumber": number, "ETag": resp["ETag"]})
        return self.call(lambda: s3.complete_multipart_upload(
            Bucket=ws, Key=name, UploadId=up["UploadId"], MultipartUpload={"Parts": parts})) is not None

    def revoker(self, owner_api: ApiClient, ws: str, reader: str) -> None:
        rnd = random.Random(self.cfg.seed + 7)
        while time.monotonic() < self.deadline:
            share = owner_api.call("POST", f"/workspaces/{ws}/shares", {"user": reader, "permission": "read"})
            time.sleep(rnd.uniform(0.05, 0.5))
            owner_api.call("DELETE", f"/workspaces/{ws}/shares/{share['id']}")
            revoked = time.monotonic()
            self.count(revocations=1)
            time.sleep(rnd.uniform(0.05, 0.5))
            with self.lock:
                self.denied_windows.append((revoked, time.monotonic()))  # closed before the next grant is sent

    def reader(self, key: dict, ws: str, keys: list[str]) -> None:
        s3 = _client(self.cfg.s3_url, key, pool=2)
        rnd = random.Random(self.cfg.seed + 11)
        while time.monotonic() < self.deadline:
            name = rnd.choice(keys)
            started = time.monotonic()
            status, n = 0, 0
            try:
                n = len(s3.get_object(Bucket=ws, Key=name)["Body"].read())
                status = 200
            except ClientError as exc:
                status = exc.response["ResponseMetadata"]["HTTPStatusCode"]
            except (BotoCoreError, OSError) as exc:
                status = -1
                self.fail(f"reader connection: {exc!r}")
            self.count(requests=1, reader_requests=1)
            if status >= 500 or status == -1:
                self.count(**({"errors_5xx": 1} if status >= 500 else {"connection_failures": 1}))
            elif status not in (200, 403):
                self.count(unexpected_4xx=1)
                self.fail(f"reader got {status}")
            with self.lock:
                self.reader_log.append((started, time.monotonic(), status, n))

    def run(self) -> SoakReport:
        cfg, report = self.cfg, self.report
        owner, owner_api, owner_key = _person(cfg.api_url, "soakowner")
        reader_name, _, reader_key = _person(cfg.api_url, "soakreader")
        workspaces = []
        for i in range(4):
            ws = f"soak-{secrets.token_hex(4)}-{i}"
            owner_api.call("POST", "/workspaces", {"name": ws})
            workspaces.append(ws)
        shared = workspaces[0]
        seed_s3 = _client(cfg.s3_url, owner_key)
        shared_keys = [f"shared/doc{i}" for i in range(8)]
        for i, name in enumerate(shared_keys):
            seed_s3.put_object(Bucket=shared, Key=name, Body=PatternBody(10_000 + i, 1000 + i))
            self.objects[(shared, name)] = (10_000 + i, 1000 + i)
        started = time.monotonic()
        self.deadline = started + cfg.seconds
        threads = [threading.Thread(target=self.writer, args=(i, owner_key, workspaces), daemon=True)
                   for i in range(cfg.clients)]
        threads.append(threading.Thread(target=self.revoker, args=(owner_api, shared, reader_name), daemon=True))
        threads += [threading.Thread(target=self.reader, args=(reader_key, shared, shared_keys), daemon=True)
                    for _ in range(cfg.readers)]
        for t in threads:
            t.start()
        samples: list[tuple[float, float]] = []
        while any(t.is_alive() for t in threads):
            if cfg.proxy_pids:
                samples.append((time.monotonic() - started, _rss_mib(cfg.proxy_pids)))
            time.sleep(1)
        for t in threads:
            t.join()
        # The verdict on revocations: a read that started after a revocation was answered and was answered
        # itself before the next grant was sent was decided inside the window: it must have been denied.
        # (Under load a read started in the window may be decided after the next grant: not judged.)
        windows = sorted(self.denied_windows)
        for began, finished, status, n in self.reader_log:
            inside = any(a <= began and finished <= b for a, b in windows)
            if inside:
                report.reader_requests_after_revocation += 1
                if status == 200:
                    report.allowed_after_revocation += 1
                    report.unauthorized_bytes += n
        # Final pass: every object that should exist is read back whole and matches.
        s3 = _client(cfg.s3_url, owner_key, pool=8)
        rnd = random.Random(1)
        before = report.objects_verified
        for (ws, name), (seed, size) in sorted(self.objects.items()):
            mismatches = report.checksum_mismatches
            errors = report.errors_5xx + report.connection_failures + report.unexpected_4xx
            self.verify_get(s3, ws, name, seed, size, False, rnd)
            if (report.checksum_mismatches > mismatches
                    or report.errors_5xx + report.connection_failures + report.unexpected_4xx > errors):
                report.objects_lost += 1
        final_verified = report.objects_verified - before
        if cfg.proxy_pids and samples:
            warm = [rss for t, rss in samples if t >= cfg.seconds * 0.2] or [samples[-1][1]]
            report.rss_start_mib = round(warm[0], 1)
            report.rss_end_mib = round(_rss_mib(cfg.proxy_pids), 1)
            report.rss_max_mib = round(max(rss for _, rss in samples), 1)
        report.seconds = round(time.monotonic() - started, 1)
        report.objects_final_pass = final_verified
        return report


def run_soak(cfg: SoakConfig) -> SoakReport:
    return _Soak(cfg).run()


def _own_stack(workers: int):
    from wio.dev.stack import start_dev_stack
    from wio.dev.process import free_port
    state = Path(tempfile.mkdtemp(prefix="wio-soak-"))
    stack = start_dev_stack(state, api_port=free_port(), s3_port=free_port(), proxy_workers=workers,
                            log=lambda *a: print(*a, file=sys.stderr))
    return stack


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.soak", description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=10)
    p.add_argument("--clients", type=int, default=64)
    p.add_argument("--max-size-mib", type=float, default=64)
    p.add_argument("--readers", type=int, default=4)
    p.add_argument("--proxy-workers", type=int, default=2, help="for the stack this tool starts")
    p.add_argument("--quick", action="store_true", help="45 s, 8 clients, objects up to 4 MiB")
    p.add_argument("--api-url")
    p.add_argument("--s3-url")
    p.add_argument("--proxy-pid", type=int, action="append", default=[])
    p.add_argument("--rss-limit-mib", type=float, default=64)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if args.quick:
        args.minutes, args.clients, args.max_size_mib, args.readers = 0.75, 8, 4, 2
    stack = None
    if not (args.api_url and args.s3_url):
        stack = _own_stack(args.proxy_workers)
        args.api_url, args.s3_url = stack.api_url, stack.s3_url
        args.proxy_pid = [stack.processes[1].pid]
    try:
        cfg = SoakConfig(api_url=args.api_url, s3_url=args.s3_url, seconds=args.minutes * 60, clients=args.clients,
                         max_size=int(args.max_size_mib * MiB), readers=args.readers, proxy_pids=args.proxy_pid,
                         rss_limit_mib=args.rss_limit_mib, seed=args.seed)
        report = run_soak(cfg)
    finally:
        if stack is not None:
            stack.stop()
    print(report.summary())
    ok = report.ok(cfg.rss_limit_mib)
    print(f"soak {'PASSED' if ok else 'FAILED'}: {report.requests} requests, {report.bytes_up / MiB:.1f} MiB up, "
          f"{report.bytes_down / MiB:.1f} MiB down, {report.errors_5xx} 5xx, {report.objects_lost} objects lost, "
          f"{report.revocations} revocations, {report.allowed_after_revocation} allowed after revocation, "
          f"{report.unauthorized_bytes} unauthorized bytes, RSS {report.rss_start_mib}->{report.rss_end_mib} MiB")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
