"""wio on Valkey with Sentinel and several proxies: failover without a restart, revocations that
survive it, and immediate revocation across separate proxy processes."""
from __future__ import annotations

import itertools
import threading
import time

import pytest
from botocore.exceptions import ClientError
from redis import Redis
from redis.exceptions import RedisError, ResponseError

from policy.projection import LAYOUT, verify
from policy.scripts import lua
from tests.conftest import make_person, s3_client, unique
from tests.ha.conftest import HaStack

pytestmark = pytest.mark.timeout(240)


def outcome(call) -> str:
    try:
        call()
        return "200"
    except ClientError as exc:
        return exc.response["Error"]["Code"]


def wait_synced_replica(stack: HaStack, timeout: float = 60) -> None:
    """Until the primary has a replica that acknowledged every write so far (WAIT), so that the next
    kill can fail over and what was written before it is on the replica."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            primary = Redis(host="127.0.0.1", port=stack.primary_port(), socket_timeout=10)
            if primary.execute_command("WAIT", 1, 5000) >= 1:
                return
        except (OSError, ValueError, TypeError, RedisError):
            pass
        time.sleep(0.2)
    raise AssertionError("no replica caught up with the primary")


def fail_over(stack: HaStack) -> None:
    """Kill the primary, wait for the Sentinels to promote the replica, restart the dead one as a replica."""
    old = stack.kill_primary()
    new = stack.wait_for_new_primary(old)
    stack.restart_as_replica(old, new)


def until_decided(call, seconds: float = 30) -> tuple[str, int]:
    """Retry while the proxy answers 503 (no primary yet, or a projection not verified yet);
    returns the first other outcome and how many 503s came before it."""
    deadline, unavailable = time.monotonic() + seconds, 0
    while time.monotonic() < deadline:
        result = outcome(call)
        if result not in ("ServiceUnavailable", "SlowDown"):
            return result, unavailable
        unavailable += 1
        time.sleep(0.05)
    raise AssertionError(f"still unavailable after {seconds}s")


def test_a_replica_never_answers_an_authorization(ha):
    """A primary demoted while alive holds old data and its old verified mark: the authorization
    scripts are refused there (READONLY), so the proxy reconnects instead of deciding from it."""
    wait_synced_replica(ha)
    replica = next(port for port in ha.valkeys if port != ha.primary_port())
    for script in ("authorize.lua", "list_buckets.lua"):
        source = lua(script)
        with pytest.raises(ResponseError, match="read only replica"):
            Redis(host="127.0.0.1", port=replica).eval(source, 0, "any-server", "AKANY")


def test_failover_under_a_request_loop(ha):
    owner = make_person(ha.dev, "haowner")
    ws = unique("haws")
    owner.api.call("POST", "/workspaces", {"name": ws})
    owner.s3.put_object(Bucket=ws, Key="k", Body=b"payload")
    wait_synced_replica(ha)
    clients = [s3_client(url, owner.key, connect_timeout=5, read_timeout=10) for url in ha.proxies]
    results: list[tuple[float, str, float]] = []
    stop = threading.Event()

    def loop():
        for client in itertools.cycle(clients):
            if stop.is_set():
                return
            started = time.monotonic()
            result = outcome(lambda c=client: c.get_object(Bucket=ws, Key="k")["Body"].read())
            results.append((started, result, time.monotonic() - started))
            time.sleep(0.02)

    worker = threading.Thread(target=loop)
    worker.start()
    try:
        time.sleep(0.5)
        killed_at = time.monotonic()
        fail_over(ha)
        recovered = time.monotonic() + 20
        while time.monotonic() < recovered:  # until every proxy has served after the failover
            after = [r for r in results if r[0] > killed_at]
            if len([r for r in after[-6:] if r[1] == "200"]) == 6:
                break
            time.sleep(0.1)
    finally:
        stop.set()
        worker.join(30)
    assert {r[1] for r in results} <= {"200", "ServiceUnavailable"}, {r[1] for r in results}
    assert max(r[2] for r in results) < 5, "a request hung during the failover"
    after = [r for r in results if r[0] > killed_at]
    assert [r[1] for r in after[-6:]] == ["200"] * 6, "the proxies did not recover without a restart"


ROUNDS, PER_ROUND = 10, 20  # 200 revocations, the last of every round acknowledged just before the kill


def test_revocations_hold_after_the_primary_dies(ha):
    owner = make_person(ha.dev, "harevoker")
    readers = [make_person(ha.dev, "hareader") for _ in range(PER_ROUND)]
    ws = unique("harev")
    owner.api.call("POST", "/workspaces", {"name": ws})
    owner.s3.put_object(Bucket=ws, Key="secret", Body=b"s")
    revoked = 0
    for _ in range(ROUNDS):
        wait_synced_replica(ha)
        shares = [owner.api.call("POST", f"/workspaces/{ws}/shares", {"user": r.name, "permission": "read"})["id"]
                  for r in readers]
        for reader in readers:
            assert outcome(lambda r=reader: r.s3.get_object(Bucket=ws, Key="secret")) == "200"
        for share in shares:  # each answered (acknowledged) by the API before the next
            owner.api.call("DELETE", f"/workspaces/{ws}/shares/{share}")
        fail_over(ha)  # at once: the replica may not have received the last revocations
        for reader in readers:
            result, _ = until_decided(lambda r=reader: r.s3.get_object(Bucket=ws, Key="secret"))
            assert result == "AccessDenied"
            revoked += 1
        assert until_decided(lambda: owner.s3.get_object(Bucket=ws, Key="secret"))[0] == "200"
    assert revoked == ROUNDS * PER_ROUND


def test_a_server_that_lost_a_revocation_is_repaired_before_it_is_trusted(ha):
    """The failure the epoch exists for, made deterministic: after a revocation, the server is put
    back to its state before it (the share and the epoch), as a replica that missed the last write
    would be. The proxies must answer 503 (never 200) until the API has repaired the projection."""
    owner, reader = make_person(ha.dev, "halost"), make_person(ha.dev, "halostr")
    ws = unique("halost")
    owner.api.call("POST", "/workspaces", {"name": ws})
    owner.s3.put_object(Bucket=ws, Key="k", Body=b"x")
    share = owner.api.call("POST", f"/workspaces/{ws}/shares", {"user": reader.name, "permission": "read"})["id"]
    primary = Redis(host="127.0.0.1", port=ha.primary_port(), decode_responses=True)
    assert outcome(lambda: reader.s3.get_object(Bucket=ws, Key="k")) == "200"
    before = primary.hgetall(f"wio:s:{ws}"), primary.hget("wio:meta", "epoch")
    owner.api.call("DELETE", f"/workspaces/{ws}/shares/{share}")
    assert outcome(lambda: reader.s3.get_object(Bucket=ws, Key="k")) == "AccessDenied"

    with primary.pipeline(transaction=True) as pipe:  # the lost write, and a server not yet verified
        pipe.hset(f"wio:s:{ws}", mapping=before[0])
        pipe.hset("wio:meta", mapping={"epoch": before[1], "verified": "a-server-nobody-checked"})
        pipe.execute()
    clients = [s3_client(url, reader.key) for url in ha.proxies]
    seen = [outcome(lambda c=c: c.get_object(Bucket=ws, Key="k")) for c in clients]
    assert "200" not in seen
    result, _ = until_decided(lambda: reader.s3.get_object(Bucket=ws, Key="k"))
    assert result == "AccessDenied"
    assert primary.hgetall(f"wio:s:{ws}") == {}  # repaired from PostgreSQL: the share is gone


async def test_verify_marks_repairs_or_rebuilds_as_the_epochs_say(ha, tmp_path):
    """policy.projection.verify on a Valkey of its own (no keeper races it), against the HA
    stack's PostgreSQL, whose epoch and log the tests above have advanced."""
    from redis.asyncio import Redis as AsyncRedis
    from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

    from wio.dev.valkey import start_valkey
    valkey = start_valkey(tmp_path / "valkey", persist=False)
    engine = create_async_engine(ha.dev.settings.database_url)
    redis = AsyncRedis.from_url(valkey.url, decode_responses=True)
    try:
        async def run():
            async with AsyncSession(engine) as session, session.begin():
                return await verify(session, redis)
        assert await run() == "rebuilt"  # an empty server
        await redis.hset("wio:meta", "verified", "stale")
        assert await run() == "verified"
        assert await run() == "ok"
        epoch = await redis.hget("wio:meta", "epoch")
        await redis.hset("wio:meta", mapping={"verified": "stale", "epoch": str(int(epoch) - 1)})
        assert await run() == "repaired"  # one epoch behind: its change is in the log
        assert await redis.hget("wio:meta", "epoch") == epoch
        await redis.hset("wio:meta", mapping={"verified": "stale", "epoch": str(int(epoch) + 1)})
        assert await run() == "rebuilt"  # ahead of PostgreSQL (a change that was rolled back)
        assert await redis.hget("wio:meta", "epoch") == epoch
        await redis.flushdb()  # restarted empty, then a mutation wrote only its epoch
        await redis.hset("wio:meta", "epoch", epoch)
        assert await run() == "rebuilt"
        assert await redis.hget("wio:meta", "layout") == LAYOUT
    finally:
        await redis.aclose()
        await engine.dispose()
        valkey.stop()


TRIALS = 1000


def test_revocation_is_immediate_on_every_proxy_instance(ha):
    """1000 trials: granted and read through one instance, revoked, then read through another."""
    owner, reader = make_person(ha.dev, "hamulti"), make_person(ha.dev, "hamultir")
    ws = unique("hamulti")
    owner.api.call("POST", "/workspaces", {"name": ws})
    owner.s3.put_object(Bucket=ws, Key="k", Body=b"x")
    wait_synced_replica(ha)   # the failovers of the tests above are over (a Sentinel may start a late one)
    clients = [s3_client(url, reader.key) for url in ha.proxies]
    allowed_after_revoke = 0
    for trial in range(TRIALS):
        share = owner.api.call("POST", f"/workspaces/{ws}/shares", {"user": reader.name, "permission": "read"})["id"]
        first, second = clients[trial % 3], clients[(trial + 1) % 3]
        assert outcome(lambda c=first: c.head_object(Bucket=ws, Key="k")) == "200"
        owner.api.call("DELETE", f"/workspaces/{ws}/shares/{share}")
        if outcome(lambda c=second: c.head_object(Bucket=ws, Key="k")) != "403":
            allowed_after_revoke += 1
    assert allowed_after_revoke == 0
