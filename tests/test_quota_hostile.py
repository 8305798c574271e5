"""Issue 16: quotas hold against a hostile user (invariants 4 and 8).

Each test is an attack that, before the fix, moved usage away from what the node stores (below it,
so the quota stopped holding). After each attack, the usage wio counts must equal the objects the
node really holds, and a quota must still refuse the next byte over it.
"""
from __future__ import annotations

import asyncio
import hashlib
import socket
import struct
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote, urlsplit

import aiohttp
import boto3
import pytest
from botocore.auth import SigV4Auth
from botocore.config import Config
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError
from redis import Redis

import proxy.quota
from admin_api.quotas import USAGE_CHECK_SECONDS
from policy.decide import WorkspaceView
from proxy.quota import Quotas
from tests.conftest import unique
from tools.hostile import Target, _req, send_raw
from foundation.resp import RespClient

MiB = 1024 * 1024


def usage(person, ws) -> dict:
    return person.api.call("GET", f"/workspaces/{ws}/usage")


def stored(person, ws) -> tuple[int, int]:
    """(bytes, objects) the node really holds in the workspace."""
    contents = person.s3.list_objects_v2(Bucket=ws).get("Contents", [])
    return sum(o["Size"] for o in contents), len(contents)


def assert_exact(person, ws) -> None:
    u = usage(person, ws)
    assert (u["bytes"], u["objects"]) == stored(person, ws)
    assert (u["pending_bytes"], u["pending_objects"]) == (0, 0)


def error_code(exc_info) -> str:
    return exc_info.value.response["Error"]["Code"]


def put_after_rebuilds(person, ws: str, key: str, size: int) -> str | None:
    """PutObject, again while the workspace's usage is being rebuilt (503); its error code, or None."""
    deadline = time.monotonic() + 30
    while True:
        try:
            person.s3.put_object(Bucket=ws, Key=key, Body=b"p" * size)
            return None
        except ClientError as exc:
            code = exc.response["Error"]["Code"]
            if code != "ServiceUnavailable" or time.monotonic() > deadline:
                return code
        time.sleep(0.2)


def test_a_key_repeated_in_delete_objects_is_freed_once(person, workspace):
    s3 = person.s3
    s3.put_object(Bucket=workspace, Key="keep", Body=b"k" * 5000)
    s3.put_object(Bucket=workspace, Key="twice", Body=b"t" * 1000)
    result = s3.delete_objects(Bucket=workspace, Delete={"Objects": [{"Key": "twice"}] * 5})
    assert {d["Key"] for d in result["Deleted"]} == {"twice"}
    assert (usage(person, workspace)["bytes"], usage(person, workspace)["objects"]) == (5000, 1)
    assert_exact(person, workspace)


def test_concurrent_deletes_of_one_key_free_it_once(person, workspace):
    s3 = person.s3
    s3.put_object(Bucket=workspace, Key="keep", Body=b"k" * 5000)
    for _round in range(8):
        s3.put_object(Bucket=workspace, Key="victim", Body=b"v" * 1000)
        with ThreadPoolExecutor(12) as pool:
            list(pool.map(lambda _: s3.delete_object(Bucket=workspace, Key="victim"), range(12)))
        assert_exact(person, workspace)


def test_racing_overwrites_and_deletes_of_one_key_keep_usage_exact(person, workspace):
    s3 = person.s3
    s3.put_object(Bucket=workspace, Key="keep", Body=b"k" * 5000)

    def hammer(i: int) -> None:
        if i % 3 == 2:
            s3.delete_object(Bucket=workspace, Key="contested")
        else:
            s3.put_object(Bucket=workspace, Key="contested", Body=b"c" * (1000 * (i % 7 + 1)))

    with ThreadPoolExecutor(12) as pool:
        list(pool.map(hammer, range(60)))
    assert_exact(person, workspace)


def test_an_upload_id_works_only_for_the_workspace_and_key_it_was_created_for(person, workspace):
    s3 = person.s3
    elsewhere = unique("ws")
    person.api.call("POST", "/workspaces", {"name": elsewhere})
    person.api.call("PUT", f"/workspaces/{elsewhere}/quota", {"max_bytes": 6 * MiB})
    upload = s3.create_multipart_upload(Bucket=workspace, Key="m")["UploadId"]
    s3.upload_part(Bucket=workspace, Key="m", UploadId=upload, PartNumber=1, Body=b"1" * (5 * MiB))
    # Aborting (or using) it through another workspace or key must not give its reservation back there.
    for bucket, key in ((elsewhere, "m"), (workspace, "other-key")):
        with pytest.raises(ClientError) as exc:
            s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload)
        assert error_code(exc) == "NoSuchUpload"
        with pytest.raises(ClientError) as exc:
            s3.upload_part(Bucket=bucket, Key=key, UploadId=upload, PartNumber=2, Body=b"2")
        assert error_code(exc) == "NoSuchUpload"
        with pytest.raises(ClientError) as exc:
            s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload,
                                         MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": '"x"'}]})
        assert error_code(exc) == "NoSuchUpload"
    assert usage(person, elsewhere)["pending_bytes"] == 0
    assert usage(person, workspace)["pending_bytes"] == 5 * MiB
    s3.put_object(Bucket=elsewhere, Key="fits", Body=b"f" * (6 * MiB))
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=elsewhere, Key="over", Body=b"o")
    assert error_code(exc) == "QuotaExceeded"
    s3.abort_multipart_upload(Bucket=workspace, Key="m", UploadId=upload)
    assert usage(person, workspace)["pending_bytes"] == 0


def test_made_up_upload_ids_are_refused(person, workspace):
    for upload in ("not-an-upload", "../" * 3, "x" * 500):
        with pytest.raises(ClientError) as exc:
            person.s3.upload_part(Bucket=workspace, Key="k", UploadId=upload, PartNumber=1, Body=b"p")
        assert error_code(exc) == "NoSuchUpload"
        with pytest.raises(ClientError) as exc:
            person.s3.abort_multipart_upload(Bucket=workspace, Key="k", UploadId=upload)
        assert error_code(exc) == "NoSuchUpload"
    assert_exact(person, workspace)


def test_a_copy_source_swapped_for_a_bigger_object_is_not_copied_at_the_old_size(person, workspace):
    s3 = person.s3
    s3.put_object(Bucket=workspace, Key="src", Body=b"s")

    def swap(i: int) -> None:
        s3.put_object(Bucket=workspace, Key="src", Body=b"S" * (MiB if i % 2 else 1))

    def copy(i: int) -> None:
        try:
            s3.copy_object(Bucket=workspace, Key=f"dst-{i}", CopySource={"Bucket": workspace, "Key": "src"})
        except ClientError as exc:
            assert exc.response["Error"]["Code"] == "PreconditionFailed"

    with ThreadPoolExecutor(8) as pool:
        done = [pool.submit(step, i) for i in range(40) for step in (swap, copy)]
    for future in done:
        future.result()
    assert_exact(person, workspace)


def send_signed(stack, person, method: str, path: str, headers: list[tuple[str, str]], body: bytes = b""):
    """A raw request signed by ``person`` (SigV4 joins a repeated header's values): (status, body)."""
    request = AWSRequest(method=method, url=stack.s3_url + path, data=body,
                         headers={"x-amz-content-sha256": hashlib.sha256(body).hexdigest()})
    for name, value in headers:
        request.headers.add_header(name, value)
    SigV4Auth(Credentials(person.key["access_key_id"], person.key["secret_access_key"]), "s3",
              "us-east-1").add_auth(request)
    url = urlsplit(stack.s3_url)
    (status, _, answer), = send_raw(Target(url.hostname, url.port), _req(
        method, path, [("Host", url.netloc), *request.headers.items(), ("Content-Length", str(len(body)))], body))
    return status, answer


def test_a_repeated_single_valued_header_is_refused_before_anything(stack, person, workspace):
    """One value measured for the quota, another read by the node: no request may carry both."""
    s3 = person.s3
    person.api.call("PUT", f"/workspaces/{workspace}/quota", {"max_bytes": 3 * MiB})
    s3.put_object(Bucket=workspace, Key="src", Body=b"s" * (2 * MiB))
    s3.put_object(Bucket=workspace, Key="tiny", Body=b"t")
    upload = s3.create_multipart_upload(Bucket=workspace, Key="m")["UploadId"]
    part_path = f"/{workspace}/m?partNumber=1&uploadId={quote(upload, safe='')}"
    attempts = [
        ("PUT", part_path, [("x-amz-copy-source", f"/{workspace}/src"),
                            ("x-amz-copy-source-range", "bytes=0-0"),
                            ("x-amz-copy-source-range", f"bytes=0-{2 * MiB - 1}")], b""),
        ("PUT", f"/{workspace}/copy", [("x-amz-copy-source", f"/{workspace}/tiny"),
                                       ("x-amz-copy-source", f"/{workspace}/src")], b""),
        ("PUT", f"/{workspace}/copy", [("x-amz-copy-source", f"/{workspace}/src"),
                                       ("x-amz-copy-source-if-match", '"nothing"'),
                                       ("x-amz-copy-source-if-match", "*")], b""),
        ("PUT", f"/{workspace}/copy", [("x-amz-copy-source", f"/{workspace}/src"),
                                       ("x-amz-metadata-directive", "COPY"),
                                       ("x-amz-metadata-directive", "REPLACE")], b""),
        ("PUT", f"/{workspace}/stored", [("x-amz-storage-class", "STANDARD"), ("x-amz-storage-class", "GLACIER")], b"x"),
        ("PUT", f"/{workspace}/tagged", [("x-amz-tagging", "a=1"), ("x-amz-tagging", "b=2")], b"x"),
        ("GET", f"/{workspace}/src", [("Range", "bytes=0-0"), ("Range", "bytes=0-9")], b""),
        ("GET", f"/{workspace}/src", [("If-Match", '"nothing"'), ("If-Match", "*")], b""),
    ]
    for method, path, headers, body in attempts:
        status, answer = send_signed(stack, person, method, path, headers, body)
        assert (status, b"<Code>InvalidArgument</Code>" in answer) == (400, True), (path, headers)
    assert usage(person, workspace)["pending_bytes"] == 0
    assert s3.list_parts(Bucket=workspace, Key="m", UploadId=upload).get("Parts", []) == []
    assert {o["Key"] for o in s3.list_objects_v2(Bucket=workspace)["Contents"]} == {"src", "tiny"}
    # Headers S3 reads as lists still pass, joined as SigV4 signed them.
    status, _ = send_signed(stack, person, "PUT", f"/{workspace}/listed",
                            [("x-amz-meta-note", "a"), ("x-amz-meta-note", "b")], b"x")
    assert status == 200
    assert s3.head_object(Bucket=workspace, Key="listed")["Metadata"]["note"] == "a,b"
    s3.abort_multipart_upload(Bucket=workspace, Key="m", UploadId=upload)
    assert_exact(person, workspace)


def test_an_upload_completed_and_aborted_concurrently_is_counted_once(person, workspace):
    s3 = person.s3
    for _round in range(3):
        upload = s3.create_multipart_upload(Bucket=workspace, Key="m")["UploadId"]
        etag = s3.upload_part(Bucket=workspace, Key="m", UploadId=upload, PartNumber=1, Body=b"p" * MiB)["ETag"]

        def finish(i: int) -> None:
            try:
                if i % 2:
                    s3.abort_multipart_upload(Bucket=workspace, Key="m", UploadId=upload)
                else:
                    s3.complete_multipart_upload(Bucket=workspace, Key="m", UploadId=upload,
                                                 MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]})
            except ClientError as exc:
                assert exc.response["Error"]["Code"] in ("NoSuchUpload", "OperationAborted")

        with ThreadPoolExecutor(6) as pool:
            list(pool.map(finish, range(6)))
        assert_exact(person, workspace)


def test_keys_a_node_treats_as_one_object_are_freed_once(person, workspace):
    """SeaweedFS (like any node that normalises paths) stores "d/k", "d//k" and "/d/k" as one object."""
    s3 = person.s3
    s3.put_object(Bucket=workspace, Key="keep", Body=b"k" * 5000)
    s3.put_object(Bucket=workspace, Key="d/k", Body=b"v" * 1000)
    s3.delete_objects(Bucket=workspace, Delete={"Objects": [{"Key": "d/k"}, {"Key": "d//k"}, {"Key": "/d/k"}]})
    assert_exact(person, workspace)
    s3.put_object(Bucket=workspace, Key="d/k", Body=b"v" * 1000)

    def hammer(i: int) -> None:   # the same object under three names, written and deleted at once
        name = ("d/k", "d//k", "/d/k")[i % 3]
        try:
            if i % 2:
                s3.delete_object(Bucket=workspace, Key=name)
            else:
                s3.put_object(Bucket=workspace, Key=name, Body=b"v" * (1000 * (i % 5 + 1)))
        except ClientError as exc:   # aliases are refused at the front door now (listings change)
            assert name != "d/k" and exc.response["Error"]["Code"] == "InvalidArgument"

    with ThreadPoolExecutor(12) as pool:
        list(pool.map(hammer, range(60)))
    assert_exact(person, workspace)


def test_hanging_up_right_after_the_body_does_not_store_uncounted_bytes(stack, person, workspace):
    """The whole body reaches the node, then the client disconnects before the answer: still counted."""
    url = urlsplit(stack.s3_url)
    target = Target(url.hostname, url.port, person.key["access_key_id"], person.key["secret_access_key"])
    for i in range(40):
        body = b"h" * (64 * 1024 if i % 2 else 2 * MiB)   # read whole, or streamed to the node
        path = f"/{workspace}/hangup-{i}"
        signed = target.sign("PUT", path, {"Content-Length": str(len(body))}, body)
        with socket.create_connection((url.hostname, url.port)) as sock:
            sock.sendall(_req("PUT", path, signed, body, close=False))
            time.sleep(i % 10 * 0.003)   # hang up at different moments around the end of the body
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))   # reset, don't wait
    time.sleep(2)   # let the proxy and the node finish what was sent
    assert stored(person, workspace)[1] > 0   # some hang-ups came after the node had the whole body
    assert_exact(person, workspace)


def post_form(url: str, fields: dict, data: bytes) -> tuple[int, str]:
    async def send():
        form = aiohttp.FormData()
        for k, v in fields.items():
            form.add_field(k, v)
        form.add_field("file", data, filename="f.bin", content_type="application/octet-stream")
        async with aiohttp.ClientSession() as session:
            async with session.post(url, data=form) as resp:
                return resp.status, await resp.text()
    return asyncio.run(send())


def test_a_post_upload_is_reserved_at_its_policy_maximum_before_the_body_is_read(person, workspace):
    s3 = person.s3
    person.api.call("PUT", f"/workspaces/{workspace}/quota", {"max_bytes": 2 * MiB})
    s3.put_object(Bucket=workspace, Key="base", Body=b"b" * MiB)
    # No content-length-range: the form could carry 5 GiB, so it is refused under a quota, however small its file.
    post = s3.generate_presigned_post(workspace, "open", ExpiresIn=300)
    status, body = post_form(post["url"], post["fields"], b"x" * 10)
    assert status == 403 and "QuotaExceeded" in body and "content-length-range" in body
    # A range whose maximum does not fit is refused too; one that fits is settled to the file's real size.
    post = s3.generate_presigned_post(workspace, "ranged", ExpiresIn=300,
                                      Conditions=[["content-length-range", 1, 2 * MiB]])
    status, body = post_form(post["url"], post["fields"], b"x" * 10)
    assert status == 403 and "QuotaExceeded" in body
    post = s3.generate_presigned_post(workspace, "ranged", ExpiresIn=300,
                                      Conditions=[["content-length-range", 1, MiB // 2]])
    assert post_form(post["url"], post["fields"], b"x" * 1000)[0] == 204
    status, body = post_form(post["url"], post["fields"], b"x" * (MiB // 2 + 1))
    assert status == 400 and "EntityTooLarge" in body
    assert_exact(person, workspace)
    assert usage(person, workspace)["bytes"] == MiB + 1000


def test_complete_refuses_parts_beyond_the_quota_before_the_object_is_visible(stack, person, workspace):
    """Parts the ledger lost track of (a record dropped with Redis) are checked again by Complete."""
    s3 = person.s3
    person.api.call("PUT", f"/workspaces/{workspace}/quota", {"max_bytes": 8 * MiB})
    upload = s3.create_multipart_upload(Bucket=workspace, Key="m")["UploadId"]
    etag = s3.upload_part(Bucket=workspace, Key="m", UploadId=upload, PartNumber=1, Body=b"1" * (5 * MiB))["ETag"]
    s3.put_object(Bucket=workspace, Key="filler", Body=b"f" * (2 * MiB))
    redis = Redis.from_url(stack.settings.redis_url, decode_responses=True)
    try:   # the ledger forgets the part: 5 MiB stored on the node, reserved nowhere
        redis.hdel(f"wio:mpu:{upload}", "1")
        for scope in (f"w:{workspace}", f"u:{person.name}"):
            redis.hincrby(f"wio:use:{scope}", "pbytes", -5 * MiB)
    finally:
        redis.close()
    s3.put_object(Bucket=workspace, Key="more", Body=b"m" * (2 * MiB))   # fits only because the part is forgotten
    with pytest.raises(ClientError) as exc:
        s3.complete_multipart_upload(Bucket=workspace, Key="m", UploadId=upload,
                                     MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]})
    assert error_code(exc) == "QuotaExceeded"
    assert {o["Key"] for o in s3.list_objects_v2(Bucket=workspace)["Contents"]} == {"filler", "more"}
    s3.delete_object(Bucket=workspace, Key="more")
    s3.complete_multipart_upload(Bucket=workspace, Key="m", UploadId=upload,
                                 MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]})
    assert_exact(person, workspace)


def node_client(s3_node):
    return boto3.client("s3", endpoint_url=s3_node.endpoint, aws_access_key_id=s3_node.access_key,
                        aws_secret_access_key=s3_node.secret_key, region_name="us-east-1",
                        config=Config(s3={"addressing_style": "path"}))


def test_puts_caught_by_a_redis_outage_are_settled_by_reconciliation_after_their_deadline(
        stack, person, workspace, s3_node, monkeypatch):
    """Reserved, sent, never settled (Redis went away before the answer): given back against the node."""
    person.api.call("PUT", f"/workspaces/{workspace}/quota", {"max_bytes": 4 * MiB})
    root = person.api.call("GET", f"/workspaces/{workspace}")["root"]
    view = WorkspaceView(workspace, "n", "wio-private", f"{person.name}/{workspace}/", person.name, False, root)
    monkeypatch.setattr(proxy.quota, "RESERVATION_GRACE", 0)   # the deadline has passed by the time we reconcile

    async def in_flight(action):
        client = RespClient(stack.settings.redis_url)
        try:
            return await action(Quotas(client))
        finally:
            await client.close()

    for _ in range(3):
        asyncio.run(in_flight(lambda q: q.reserve(view, MiB, 1)))
    node = node_client(s3_node)
    for i in range(2):   # the node stored two of the three writes
        node.put_object(Bucket="wio-private", Key=f"{view.prefix}caught-{i}", Body=b"c" * MiB)
    assert usage(person, workspace)["pending_bytes"] == 3 * MiB
    person.api.call("POST", f"/workspaces/{workspace}/usage/reconcile")
    assert_exact(person, workspace)
    assert usage(person, workspace)["bytes"] == 2 * MiB
    # (the API's usage keeper may be rebuilding this workspace too: its records were overdue at once, and
    # while a rebuild runs writes answer 503; the answer that counts is the one after it)
    assert put_after_rebuilds(person, workspace, "fits", 2 * MiB) is None
    assert put_after_rebuilds(person, workspace, "over", 1) == "QuotaExceeded"

    # A write whose reservation was reclaimed while it still ran: its settle cannot know whether the count
    # saw it, so usage becomes unknown, and writes wait for the next rebuild.
    async def reclaimed(q):
        res = await q.reserve(view, 1000, 1)
        node.put_object(Bucket="wio-private", Key=f"{view.prefix}late", Body=b"l" * 1000)
        await asyncio.to_thread(person.api.call, "POST", f"/workspaces/{workspace}/usage/reconcile")
        await q.settle(res, 1000, 1)
    person.s3.delete_object(Bucket=workspace, Key="fits")
    asyncio.run(in_flight(reclaimed))
    assert usage(person, workspace)["known"] is False
    with pytest.raises(ClientError) as exc:
        person.s3.put_object(Bucket=workspace, Key="waits", Body=b"w")
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    person.api.call("POST", f"/workspaces/{workspace}/usage/reconcile")
    person.s3.put_object(Bucket=workspace, Key="waits", Body=b"w")
    assert_exact(person, workspace)


def test_usage_lost_with_redis_refuses_writes_until_the_keeper_rebuilds_it_from_the_node(stack, person, workspace):
    s3 = person.s3
    person.api.call("PUT", f"/workspaces/{workspace}/quota", {"max_bytes": 64 * 1024})
    s3.put_object(Bucket=workspace, Key="held", Body=b"h" * (48 * 1024))
    redis = Redis.from_url(stack.settings.redis_url, decode_responses=True)
    try:   # Valkey came back without its data (the projection is rebuilt from PostgreSQL, usage is not)
        redis.delete(f"wio:use:w:{workspace}", f"wio:use:u:{person.name}")
    finally:
        redis.close()
    with pytest.raises(ClientError) as exc:   # refused: unknown (503), or already rebuilt by the API's usage keeper
        s3.put_object(Bucket=workspace, Key="more", Body=b"m" * (32 * 1024))
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503 or error_code(exc) == "QuotaExceeded"
    deadline = time.monotonic() + 3 * USAGE_CHECK_SECONDS   # nobody asks: the API's usage keeper rebuilds it
    while not usage(person, workspace)["known"] and time.monotonic() < deadline:
        time.sleep(0.5)
    assert usage(person, workspace)["bytes"] == 48 * 1024
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=workspace, Key="more", Body=b"m" * (32 * 1024))
    assert error_code(exc) == "QuotaExceeded"
    s3.put_object(Bucket=workspace, Key="fits", Body=b"m" * (16 * 1024))
    assert_exact(person, workspace)
    assert person.api.call("GET", f"/users/{person.name}/usage")["bytes"] == 64 * 1024
