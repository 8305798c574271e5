"""The SSRF guard on node endpoints (issue 17 item 9): IPv6 forms that wrap a blocked IPv4 address, and
DNS rebinding (a name checked at registration that later resolves elsewhere). Name resolution is
replaced by a table and connections are refused by the test: nothing leaves the process."""
from __future__ import annotations

import asyncio
import socket

import pytest
from yarl import URL

from nodeclient.client import NodeClient, NodeError, check_address, check_endpoint, node_session
from nodeclient.pool import NodePool, NodeUnreachable

METADATA_FORMS = ["169.254.169.254", "::ffff:169.254.169.254", "::ffff:a9fe:a9fe", "64:ff9b::a9fe:a9fe",
                  "64:ff9b:1::a9fe:a9fe", "2002:a9fe:a9fe::1", "2001:0:4136:e378:8000:63bf:5601:5601",
                  "fe80::1", "0.0.0.0", "::"]
PRIVATE_FORMS = ["10.0.0.1", "127.0.0.1", "::ffff:10.0.0.1", "64:ff9b::a00:1", "2002:0a00:0001::1", "::1"]


@pytest.mark.parametrize("address", METADATA_FORMS)
def test_metadata_and_its_ipv6_disguises_are_always_blocked(address):
    with pytest.raises(NodeError, match="blocked"):
        check_address(address, allow_private=True)


@pytest.mark.parametrize("address", PRIVATE_FORMS)
def test_private_addresses_and_their_ipv6_disguises_need_the_operators_consent(address):
    with pytest.raises(NodeError, match="private"):
        check_address(address, allow_private=False)
    check_address(address, allow_private=True)


def test_public_addresses_pass():
    for address in ("8.8.8.8", "2001:4860:4860::8888", "64:ff9b::808:808", "2002:808:808::1"):
        check_address(address, allow_private=False)


class FakeDNS:
    """Answers getaddrinfo from a table that the test changes (the rebinding); connecting is forbidden."""

    def __init__(self, monkeypatch, answers: dict[str, str]):
        self.answers, self.lookups, self.connects = answers, [], []
        loop = asyncio.get_running_loop()

        async def getaddrinfo(host, port, *args, **kwargs):
            self.lookups.append(host)
            address = self.answers[host]
            family = socket.AF_INET6 if ":" in address else socket.AF_INET
            return [(family, socket.SOCK_STREAM, 6, "", (address, port or 80))]

        async def create_connection(*args, **kwargs):
            self.connects.append(args)
            raise ConnectionRefusedError("connections are disabled in this test")

        monkeypatch.setattr(loop, "getaddrinfo", getaddrinfo)
        monkeypatch.setattr(loop, "create_connection", create_connection)
        monkeypatch.setattr(loop, "sock_connect", create_connection)


async def test_dns_rebinding_is_refused_by_the_control_plane_client(monkeypatch):
    dns = FakeDNS(monkeypatch, {"node.example": "93.184.216.34"})
    assert await check_endpoint("http://node.example:9000", allow_private=False) == "http://node.example:9000"
    dns.answers["node.example"] = "169.254.169.254"          # rebound after registration
    async with node_session(allow_private=True) as session:
        client = NodeClient(session, "http://node.example:9000", "us-east-1", "k", "s")
        with pytest.raises(NodeError, match="blocked"):
            await client.check()
    assert dns.lookups == ["node.example", "node.example"] and dns.connects == []


async def test_dns_rebinding_is_refused_by_the_proxys_node_client(monkeypatch):
    dns = FakeDNS(monkeypatch, {"node.example": "::ffff:169.254.169.254"})
    pool = NodePool(allow_private=True)
    try:
        with pytest.raises(NodeUnreachable, match="blocked"):
            await pool.request("GET", URL("http://node.example:9000/b/k"), {"host": "node.example:9000"})
        assert dns.connects == []
        dns.answers["node.example"] = "93.184.216.34"        # a checked address is what gets connected to
        with pytest.raises(NodeUnreachable, match="disabled"):
            await pool.request("GET", URL("http://node.example:9000/b/k"), {"host": "node.example:9000"})
        assert dns.connects[0][1:3] == ("93.184.216.34", 9000)
    finally:
        pool.close()


# -- node XML goes through the one safe parser (issue 17 item 10) --------------------------------

LAUGHS = (b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>'
          b'<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Contents><Key>&b;</Key>'
          b'<Size>1</Size></Contents></ListBucketResult>')


async def test_node_xml_with_a_dtd_is_refused():
    async def answer(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        body = LAUGHS.decode().encode("utf-16")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    endpoint = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    try:
        async with node_session(allow_private=True) as session:
            client = NodeClient(session, endpoint, "us-east-1", "k", "s")
            with pytest.raises(NodeError, match="not acceptable XML"):
                await client.has_objects("bucket", "p/")
            with pytest.raises(NodeError, match="not acceptable XML"):
                await client.count_prefix("bucket", "p/")
    finally:
        server.close()


@pytest.mark.parametrize("body", [b'<?xml version="1.0" encoding="x-made-up"?><a/>',
                                  b'<?xml version="1.0" encoding="utf-16"?><a/>', b"<a>", b"\xff\xfe"])
def test_untrusted_xml_that_cannot_be_read_is_refused_as_such(body):
    """Every way a node's (or a client's) XML can be unreadable is one refusal, never another exception
    (an unknown encoding raised LookupError: a 500 where the caller expects MalformedXML)."""
    from foundation.safexml import XMLRefused, parse_untrusted_xml
    with pytest.raises(XMLRefused):
        parse_untrusted_xml(body)
