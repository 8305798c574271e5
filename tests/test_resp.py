"""foundation.resp, the lean RESP2 client of the request path, against a real Valkey (its own, so it can be killed)."""
from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from urllib.parse import urlsplit

import pytest
import uvloop

from policy.decide import WorkspaceView
from policy.scripts import lua
from proxy.authz import Authorizer
from proxy.errors import S3Error
from proxy.quota import Quotas, Reservation
from foundation.resp import ConnectionFailed, RespClient, RespError, ResponseError
from foundation.secrets import SecretBox
from wio.dev.valkey import start_valkey


@pytest.fixture(scope="module")
def valkey(tmp_path_factory):
    root = tmp_path_factory.mktemp("resp")
    holder = {"service": start_valkey(root / "valkey", persist=False), "root": root}
    try:
        yield holder
    finally:
        holder["service"].stop()


@pytest.fixture
async def client(valkey):
    c = RespClient(valkey["service"].url)
    yield c
    await c.close()


async def test_conversions(client):
    assert await client.ping() == "PONG"
    assert await client.execute("SET", "resp:s", "héllo") == "OK"
    assert await client.execute("GET", "resp:s") == "héllo"
    assert await client.execute("GET", "resp:missing") is None
    assert await client.execute("DEL", "resp:h") in (0, 1)
    assert await client.execute("HSET", "resp:h", "a", 1, "b", "x") == 2
    assert await client.execute("HMGET", "resp:h", "a", "nope", "b") == ["1", None, "x"]
    script = client.register_script(
        "return {1, 'two', false, {ARGV[1], {}}, tonumber(ARGV[2]) + 1, redis.status_reply('FINE')}")
    assert await script(args=["arg", 41]) == [1, "two", None, ["arg", []], 42, "FINE"]
    assert await client.register_script("return nil")() is None
    assert await client.register_script("return 7")() == 7


async def test_same_replies_as_redis_py(client, valkey):
    """authorize.lua / list_buckets.lua / quota.lua answer exactly what redis-py (decode_responses) answers."""
    from redis.asyncio import Redis
    rp = Redis.from_url(valkey["service"].url, decode_responses=True)
    try:
        run_id = (await rp.info("server"))["run_id"]
        await rp.hset("wio:meta", mapping={"verified": run_id})
        await rp.hset("wio:k:AK1", mapping={"user": "u1", "secret": "s", "expires": "0", "token": "", "scope": ""})
        await rp.hset("wio:u:u1", mapping={"disabled": "0", "admin": "0", "groups": "g1,g2"})
        await rp.hset("wio:w:ws1", mapping={"node": "n1", "bucket": "b", "prefix": "p/", "owner": "u1",
                                            "public": "0", "root": "r"})
        await rp.hset("wio:n:n1", mapping={"endpoint": "http://x", "region": "us", "access": "a", "secret": "s"})
        await rp.hset("wio:s:ws1", mapping={"g:g1": '[["read", "", 0, 1]]'})
        await rp.hset("wio:use:w:ws1", "known", "1")
        for name, args in (("authorize.lua", [run_id, "AK1", "ws1", "nope"]), ("authorize.lua", [run_id, "nobody"]),
                           ("authorize.lua", ["another-server", "AK1", "ws1"]),
                           ("list_buckets.lua", [run_id, "AK1"]),
                           ("quota.lua", ["reserve", "ws1", "u1", "r", 10, 1, "t1", 60]),
                           ("quota.lua", ["release", "ws1", "u1", "r", 10, 1, "t1", 60])):
            source = lua(name)
            expected = await rp.register_script(source)(args=args)
            if name == "quota.lua":  # not idempotent: run the same again with ours
                await rp.register_script(source)(args=[{"reserve": "release", "release": "reserve"}[args[0]],
                                                       *args[1:]])
            assert await client.register_script(source)(args=args) == expected, name
    finally:
        await rp.aclose()


async def test_pipelined_concurrent_calls_get_their_own_replies(client):
    echo = client.register_script("return {ARGV[1], tonumber(ARGV[1]) * 2}")
    results = await asyncio.gather(*(echo(args=[str(i)]) for i in range(2000)))
    assert results == [[str(i), i * 2] for i in range(2000)]
    # and they really shared one connection
    assert await client.execute("CLIENT", "ID") == await client.execute("CLIENT", "ID")


async def test_cancelled_call_keeps_order(client):
    slow = client.register_script("redis.call('INCR', KEYS[1] or 'resp:n'); return ARGV[1]")
    await slow(args=["warm"])
    # a call blocked server-side, then cancelled while its reply is still pending
    blocker = asyncio.ensure_future(client.execute("BLPOP", "resp:never", "0.3"))
    followers = [asyncio.ensure_future(slow(args=[f"f{i}"])) for i in range(5)]
    await asyncio.sleep(0.05)
    blocker.cancel()
    with pytest.raises(asyncio.CancelledError):
        await blocker
    assert await asyncio.gather(*followers) == [f"f{i}" for i in range(5)]
    # cancelled by a caller's deadline, mid-flight, many at once; the survivors still line up
    tasks = []
    for i in range(200):
        tasks.append(asyncio.ensure_future(slow(args=[str(i)])))
        if i % 3 == 0:
            tasks[-1].cancel()
    done = await asyncio.gather(*tasks, return_exceptions=True)
    for i, value in enumerate(done):
        assert isinstance(value, asyncio.CancelledError) if i % 3 == 0 else value == str(i)

    async def with_deadline():
        async with asyncio.timeout(0.05):
            return await client.execute("BLPOP", "resp:never", "0.3")
    with pytest.raises(TimeoutError):
        await with_deadline()
    assert await client.execute("ECHO", "after") == "after"


async def test_noscript_recovery_after_script_flush(client):
    script = client.register_script("return 'v1:' .. ARGV[1]")
    assert await script(args=["a"]) == "v1:a"
    assert await client.execute("SCRIPT", "FLUSH") == "OK"
    assert await client.execute("SCRIPT", "EXISTS", script.sha) == [0]
    results = await asyncio.gather(*(script(args=[str(i)]) for i in range(20)))
    assert results == [f"v1:{i}" for i in range(20)]
    assert await client.execute("SCRIPT", "EXISTS", script.sha) == [1]


async def test_error_replies_raise(client):
    with pytest.raises(ResponseError, match="unknown command"):
        await client.execute("NOSUCHCOMMAND")
    await client.execute("SET", "resp:str", "x")
    with pytest.raises(ResponseError, match="WRONGTYPE"):
        await client.execute("HGET", "resp:str", "f")
    with pytest.raises(ResponseError, match="boom"):
        await client.register_script("return redis.error_reply('boom')")()
    with pytest.raises(ResponseError):
        await client.register_script("this is not lua")()
    with pytest.raises(ResponseError, match="WRONGTYPE"):
        await client.transaction(("HSET", "resp:str", "f", "v"))
    assert await client.transaction(("SET", "resp:t", "1"), ("GET", "resp:t"), ("DEL", "resp:t")) == ["OK", "1", 1]
    await client.execute("SET", "resp:bin", b"\xff\xfe")
    with pytest.raises(RespError, match="UTF-8"):
        await client.execute("GET", "resp:bin")
    assert await client.ping() == "PONG"  # the connection is still in step


async def test_server_killed_calls_fail_fast_then_recover(valkey):
    service = valkey["service"]
    port = urlsplit(service.url).port
    c = RespClient(service.url)
    try:
        script = c.register_script("return ARGV[1]")
        assert await script(args=["up"]) == "up"
        blocked = asyncio.ensure_future(c.execute("BLPOP", "resp:never", "10"))
        await asyncio.sleep(0.05)
        service.stop()
        t0 = time.monotonic()
        with pytest.raises(ConnectionFailed):
            await blocked
        for _ in range(3):  # refused, not hanging
            with pytest.raises(ConnectionFailed):
                await script(args=["down"])
        assert time.monotonic() - t0 < 2
        assert isinstance(ConnectionFailed("x"), OSError)
        valkey["service"] = start_valkey(valkey["root"] / "valkey-again", port, persist=False)
        # restarted empty: the script cache is gone too (NOSCRIPT -> load -> retry)
        assert await script(args=["back"]) == "back"
        assert await asyncio.gather(*(script(args=[str(i)]) for i in range(50))) == [str(i) for i in range(50)]
    finally:
        await c.close()
    with pytest.raises(ConnectionFailed):
        await c.ping()


async def test_hung_server_connection_dropped_after_deadline(valkey):
    """Redis stops answering without closing (SIGSTOP): calls time out at their callers' deadline,
    the silent connection is dropped, and calls succeed again on a new one once Redis answers."""
    service = valkey["service"]
    c = RespClient(service.url)
    try:
        first = await c.execute("CLIENT", "ID")
        os.kill(service.pid, signal.SIGSTOP)
        try:
            async def call():
                async with asyncio.timeout(1.2):
                    return await c.ping()
            results = await asyncio.gather(*(call() for _ in range(5)), return_exceptions=True)
            assert all(isinstance(r, TimeoutError) for r in results), results
            assert c._proto.closed  # dropped, not kept queueing behind replies that may never come
        finally:
            os.kill(service.pid, signal.SIGCONT)
        assert await c.execute("CLIENT", "ID") != first
        assert await c.ping() == "PONG"
    finally:
        await c.close()


async def test_authorizer_and_quotas_fail_closed_on_refused_connection(valkey):
    c = RespClient("redis://127.0.0.1:1/0")
    try:
        authz = Authorizer(c, SecretBox(b"\x01" * 32))
        with pytest.raises(S3Error) as err:
            await authz.load("AK", None, ["ws"])
        assert err.value.code == "ServiceUnavailable"
        quotas = Quotas(c)
        ws = WorkspaceView("ws", "n", "b", "p/", "o", False, "r")
        with pytest.raises(S3Error) as err:
            await quotas.reserve(ws, 1, 1)
        assert err.value.code == "ServiceUnavailable"
        with pytest.raises(S3Error) as err:
            await quotas.keep_for_part(Reservation(ws, 10, 0, "token"), "key", "upload", 1)
        assert err.value.code == "ServiceUnavailable"
    finally:
        await c.close()


async def test_quota_multipart_bookkeeping(client):
    quotas = Quotas(client)
    ws = WorkspaceView("resp-ws", "n", "b", "p/", "resp-owner", False, "resp-root")
    await client.execute("DEL", "wio:mpu:up1", "wio:use:w:resp-ws")
    await client.execute("HSET", "wio:use:w:resp-ws", "known", "1")
    await quotas.upload_started(ws, "k", "up1")
    await quotas.check_upload(ws, "k", "up1")
    renamed = WorkspaceView("resp-ws2", "n", "b", "q/", "resp-owner", False, "resp-root")
    recreated = WorkspaceView("resp-ws", "n", "b", "p2/", "someone-else", False, "resp-root")  # same name, new owner
    for other_ws, key, upload in ((ws, "other-key", "up1"), (ws, "k", "up2"), (renamed, "k", "up1"),
                                  (recreated, "k", "up1")):
        with pytest.raises(S3Error) as err:
            await quotas.check_upload(other_ws, key, upload)
        assert err.value.code == "NoSuchUpload"
        assert await quotas.upload_finished(other_ws, key, upload) == 0   # someone else's upload: nothing given back
    for part, size in ((1, 100), (2, 50), (1, 70)):   # part 1 re-uploaded: counted once
        await quotas.keep_for_part(await quotas.reserve(ws, size, 0), "k", "up1", part)
    assert await client.execute("HGET", "wio:use:w:resp-ws", "pbytes") == "120"
    assert 0 < await client.execute("TTL", "wio:mpu:up1") <= 14 * 24 * 3600
    assert await quotas.upload_finished(ws, "k", "up1") == 120
    assert await client.execute("EXISTS", "wio:mpu:up1") == 0
    assert await client.execute("HGET", "wio:use:w:resp-ws", "pbytes") == "0"
    # a part landing after its upload finished keeps nothing reserved
    await quotas.keep_for_part(await quotas.reserve(ws, 30, 0), "k", "up1", 3)
    assert await client.execute("HGET", "wio:use:w:resp-ws", "pbytes") == "0"
    assert await client.execute("EXISTS", "wio:mpu:up1", "wio:rsv:resp-ws", "wio:mpus:resp-ws") == 0


async def test_key_locks_are_exclusive_all_or_none_and_released(client, monkeypatch):
    import proxy.quota
    monkeypatch.setattr(proxy.quota, "LOCK_WAIT", 0.2)
    quotas = Quotas(client)
    ws = WorkspaceView("lock-ws", "n", "b", "p/", "o", False, "r")
    async with quotas.exclusive(ws, ["a", "b"]):
        for keys in (["a"], ["c", "b"]):
            with pytest.raises(S3Error) as err:
                async with quotas.exclusive(ws, keys):
                    pass
            assert err.value.code == "OperationAborted"
        assert await client.execute("EXISTS", "wio:lk:lock-ws/c") == 0   # all or none: "c" was not taken
        assert 0 < await client.execute("PTTL", "wio:lk:lock-ws/a") <= proxy.quota.LOCK_TTL_MS
    async with quotas.exclusive(ws, ["c", "b"]):   # released: free again
        pass
    assert await client.execute("EXISTS", "wio:lk:lock-ws/a", "wio:lk:lock-ws/b", "wio:lk:lock-ws/c") == 0


async def test_a_held_key_lock_is_renewed_and_an_abandoned_one_expires(client, monkeypatch):
    import proxy.quota
    monkeypatch.setattr(proxy.quota, "LOCK_TTL_MS", 300)
    quotas = Quotas(client)
    ws = WorkspaceView("renew-ws", "n", "b", "p/", "o", False, "r")
    async with quotas.exclusive(ws, ["slow"]):
        await asyncio.sleep(1.0)   # three TTLs: still held only because it was renewed
        assert 0 < await client.execute("PTTL", "wio:lk:renew-ws/slow") <= 300
    assert await client.execute("EXISTS", "wio:lk:renew-ws/slow") == 0
    await client.execute("SET", "wio:lk:renew-ws/gone", "a-crashed-holder", "PX", 300)
    async with quotas.exclusive(ws, ["gone"]):   # waits out the dead holder's TTL, then takes it
        assert await client.execute("GET", "wio:lk:renew-ws/gone") != "a-crashed-holder"


async def _usage(client, ws: str) -> dict[str, str]:
    flat = await client.execute("HGETALL", f"wio:use:w:{ws}")
    return {"pbytes": "0", "pobjects": "0", **dict(zip(flat[::2], flat[1::2], strict=True))}


async def _known_workspace(client, monkeypatch, name: str) -> tuple[Quotas, WorkspaceView]:
    """Quotas over ``client``, a workspace whose usage is known, and a short wait for busy keys."""
    import proxy.quota
    monkeypatch.setattr(proxy.quota, "LOCK_WAIT", 0.2)
    await client.execute("HSET", f"wio:use:w:{name}", "known", "1")
    return Quotas(client), WorkspaceView(name, "n", "b", "p/", "o", False, "r")


async def test_key_groups_let_puts_overlap_and_settle_from_the_first_size_to_the_last(client, monkeypatch):
    quotas, ws = await _known_workspace(client, monkeypatch, "group-ws")
    await client.execute("HSET", "wio:use:w:group-ws", "bytes", "40", "objects", "1")
    asked: list[str] = []

    async def final_size() -> int:   # what the node holds once every writer left
        asked.append("k")
        return 70

    async with quotas.writing(ws, "k", final_size) as a:
        assert a.leads
        with pytest.raises(S3Error) as err:   # forming: nobody joins before the old size is read
            async with quotas.writing(ws, "k", final_size):
                pass
        assert err.value.code == "OperationAborted"
        await quotas.reserve_write(a, 100, old=40)
        async with quotas.writing(ws, "k", final_size) as b:
            assert not b.leads
            await quotas.reserve_write(b, 70)
            b.stored = True
        use = await _usage(client, "group-ws")
        assert (use["bytes"], use["pbytes"]) == ("40", "170")   # b's bytes stay held while a is in the group
        a.stored = True
    use = await _usage(client, "group-ws")
    assert asked == ["k"]   # the last one out asked the node, once
    assert (use["bytes"], use["objects"], use["pbytes"], use["pobjects"]) == ("70", "1", "0", "0")
    assert await client.execute("EXISTS", "wio:lk:group-ws/k", "wio:rsv:group-ws") == 0
    async with quotas.writing(ws, "k", final_size) as c:   # alone: settled with its own outcome
        await quotas.reserve_write(c, 5, old=70)
        c.stored = True
    async with quotas.writing(ws, "new", final_size) as d:   # alone, a new object, and its write failed
        await quotas.reserve_write(d, 9, old=None)
    use = await _usage(client, "group-ws")
    assert asked == ["k"]
    assert (use["bytes"], use["objects"], use["pbytes"], use["pobjects"]) == ("5", "1", "0", "0")


async def test_a_waiting_exclusive_locker_closes_the_group_to_new_writers(client, monkeypatch):
    quotas, ws = await _known_workspace(client, monkeypatch, "wanted-ws")

    async def none() -> None:
        return None

    async with quotas.writing(ws, "x", none) as a:
        await quotas.reserve_write(a, 1, old=None)
        async with quotas.writing(ws, "x", none) as b:   # open: joins
            assert not b.leads
        for attempt in (lambda: quotas.exclusive(ws, ["x"]), lambda: quotas.writing(ws, "x", none)):
            with pytest.raises(S3Error) as err:   # the delete waits; after it asked, writers wait too
                async with attempt():
                    pass
            assert err.value.code == "OperationAborted"
    async with quotas.exclusive(ws, ["x"]):   # the group emptied: the lock is free
        pass


async def test_a_key_group_takes_at_most_sixteen_writers_then_drains(client, monkeypatch):
    """One key rewritten by many clients in a loop: the group must end, or its held reservations pile up."""
    quotas, ws = await _known_workspace(client, monkeypatch, "busy-ws")

    async def size() -> int:
        return 1

    async with contextlib.AsyncExitStack() as stack:
        first = await stack.enter_async_context(quotas.writing(ws, "k", size))
        await quotas.reserve_write(first, 1, old=None)
        for _ in range(15):
            joined = await stack.enter_async_context(quotas.writing(ws, "k", size))
            assert not joined.leads
        with pytest.raises(S3Error) as err:
            async with quotas.writing(ws, "k", size):
                pass
        assert err.value.code == "OperationAborted"
    async with quotas.writing(ws, "k", size) as again:   # drained and settled: a new group forms
        assert again.leads


async def test_a_writer_whose_group_expired_leaves_without_touching_the_next_group(client, monkeypatch):
    """Renewals failed for 30 s: the group expired and another writer formed a new one under the same name.
    The stale writer gives its reservation back and makes usage unknown; the new group is not corrupted."""
    quotas, ws = await _known_workspace(client, monkeypatch, "stale-ws")

    async def none() -> None:
        return None

    async with quotas.writing(ws, "s", none) as a:
        await quotas.reserve_write(a, 10, old=None)
        await client.execute("DEL", "wio:lk:stale-ws/s")   # expired
        async with quotas.writing(ws, "s", none) as b:
            assert b.leads
            await quotas.reserve_write(b, 5, old=None)
            with pytest.raises(S3Error) as err:   # the stale writer cannot reserve into the new group
                await quotas.reserve_write(a, 1)
            assert err.value.code == "OperationAborted"
            a.stored = True
            b.stored = True
            await quotas._leave(a, none)   # a leaves first (what its context would do on the way out) ...
            assert await client.execute("HGET", "wio:lk:stale-ws/s", "live") == "1"   # ... b's group intact
            a.stored = False
    use = await _usage(client, "stale-ws")
    assert (use["known"], use["bytes"], use["objects"], use["pbytes"], use["pobjects"]) == ("0", "5", "1", "0", "0")
    assert await client.execute("EXISTS", "wio:lk:stale-ws/s", "wio:rsv:stale-ws") == 0


async def test_a_shared_group_whose_final_size_cannot_be_read_makes_usage_unknown(client, monkeypatch):
    quotas, ws = await _known_workspace(client, monkeypatch, "lost-ws")

    async def unreadable() -> int:
        raise S3Error("ServiceUnavailable")

    async with quotas.writing(ws, "k", unreadable) as a:
        await quotas.reserve_write(a, 10, old=None)
        async with quotas.writing(ws, "k", unreadable) as b:
            await quotas.reserve_write(b, 20)
            b.stored = True
        a.stored = True
    use = await _usage(client, "lost-ws")
    assert (use["known"], use["pbytes"]) == ("0", "0")   # rebuilt from the node before the next write
    assert await client.execute("EXISTS", "wio:lk:lost-ws/k", "wio:rsv:lost-ws") == 0


def test_under_uvloop(valkey):
    async def go():
        c = RespClient(valkey["service"].url)
        try:
            script = c.register_script("return {ARGV[1], tonumber(ARGV[1])}")
            tasks = [asyncio.ensure_future(script(args=[str(i)])) for i in range(500)]
            for t in tasks[::7]:
                t.cancel()
            done = await asyncio.gather(*tasks, return_exceptions=True)
            for i, value in enumerate(done):
                assert isinstance(value, asyncio.CancelledError) if i % 7 == 0 else value == [str(i), i]
            await c.execute("SCRIPT", "FLUSH")
            assert await script(args=["5"]) == ["5", 5]
        finally:
            await c.close()
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(go())


def test_url_parsing():
    c = RespClient("redis://us%40er:p%3Ass@example.com:6380/3")
    assert (c.username, c.password, c.host, c.port, c.db, c.ssl) == ("us@er", "p:ss", "example.com", 6380, 3, None)
    c = RespClient("redis://:secret@localhost")
    assert (c.username, c.password, c.port, c.db) == (None, "secret", 6379, 0)
    c = RespClient("rediss://h:1/0?ssl_cert_reqs=none")
    assert c.ssl is not None and not c.ssl.check_hostname
    assert RespClient("rediss://h:1").ssl.check_hostname
    assert RespClient("redis://h/?db=5").db == 5
    with pytest.raises(ValueError):
        RespClient("http://h")


async def test_auth_and_select(tmp_path):
    service = start_valkey(tmp_path / "auth", persist=False)
    try:
        port = urlsplit(service.url).port
        admin = RespClient(service.url)
        await admin.execute("ACL", "SETUSER", "app", "on", ">pw", "~*", "+@all")
        await admin.execute("CONFIG", "SET", "requirepass", "root")
        await admin.close()
        c = RespClient(f"redis://app:pw@127.0.0.1:{port}/2")
        assert await c.execute("SET", "k", "in-db-2") == "OK"
        assert await c.execute("CLIENT", "INFO") and await c.execute("ACL", "WHOAMI") == "app"
        await c.close()
        d = RespClient(f"redis://:root@127.0.0.1:{port}/2")
        assert await d.execute("GET", "k") == "in-db-2"
        await d.close()
        bad = RespClient(f"redis://app:wrong@127.0.0.1:{port}/0")
        with pytest.raises(ResponseError):
            await bad.ping()
        await bad.close()
    finally:
        service.stop()


async def test_pipeline_returns_every_reply_in_order_with_errors_as_values(client):
    from foundation.resp import pack_command
    key = f"pipe-{os.getpid()}-{time.time_ns()}"
    replies = await client.pipeline([pack_command("SET", key, "1"), pack_command("INCR", key),
                                     pack_command("HGET", key, "x"), pack_command("GET", key)])
    assert replies[:2] == ["OK", 2]
    assert isinstance(replies[2], ResponseError) and "WRONGTYPE" in str(replies[2])
    assert replies[3] == "2"
    assert await client.execute("GET", key) == "2"  # the connection is still in step


async def test_event_sink_writes_batches_and_counts_what_redis_refuses(client):
    from foundation.events import EventSink, entry_fields
    stream = f"sink-{os.getpid()}-{time.time_ns()}"
    sink = EventSink(client, batch=7, interval=0.001)
    sink.start()
    for i in range(50):
        sink.emit(stream, {"i": i})
    await sink.stop()
    assert sink.dropped == 0
    entries = await client.execute("XRANGE", stream, "-", "+")
    assert [entry_fields(dict(zip(e[1][::2], e[1][1::2], strict=True)))["i"] for e in entries] == [str(i) for i in range(50)]
    await client.execute("SET", stream + "-str", "x")   # XADD to a string key: refused, counted, not raised
    sink = EventSink(client)
    sink.emit(stream + "-str", {"i": 0})
    sink.emit(stream, {"i": 50})
    await sink.stop()
    assert sink.dropped == 1
    assert len(await client.execute("XRANGE", stream, "-", "+")) == 51


async def test_event_sink_counts_what_it_drops_when_its_queue_is_full(client):
    """Issue 17: the sink's drops when its queue was full were silent; they are a metric now."""
    from foundation.events import EventSink
    from foundation.metrics import STREAM_DROPPED
    before = STREAM_DROPPED.labels("queue_full")._value.get()
    stream = f"sink-full-{os.getpid()}-{time.time_ns()}"
    sink = EventSink(client, max_queue=3)       # not started: nothing drains the queue meanwhile
    for i in range(10):
        sink.emit(stream, {"i": i})
    assert sink.dropped == 7
    assert STREAM_DROPPED.labels("queue_full")._value.get() - before == 7
    await sink.stop()
    assert len(await client.execute("XRANGE", stream, "-", "+")) == 3
