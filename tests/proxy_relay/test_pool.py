"""The relay's connections: the pool (reuse, retry, expiry, limits), back-pressure both
ways, clients that leave, and TLS, against raw upstream servers in the test's loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import ssl
from collections.abc import Iterator
from typing import Any

import pytest
from apps.raw_upstream import RawUpstream, Request, reply
from support.tls import ThrowawayCA, make_ca

from oakid_gate.proxy.relay import WATCH_AFTER, HTTPRelay

from .helpers import MB, Client, answering, never_answer, relay_for


def stale_after_first() -> Any:
    """The first connection answers once, then closes as its next request arrives (the race
    of a keep-alive timeout); every later connection answers."""

    async def answer(request: Request, writer: asyncio.StreamWriter) -> None:
        if request.connection == 1 and request.number > 1:
            writer.close()
        else:
            writer.write(reply(200, b"answered"))

    return answer


@pytest.mark.parametrize(
    ("method", "chunks", "status", "connections"),
    [
        pytest.param("GET", None, 200, [1, 1, 2], id="get-retried"),
        pytest.param("HEAD", None, 200, [1, 1, 2], id="head-retried"),
        pytest.param("OPTIONS", None, 200, [1, 1, 2], id="options-retried"),
        pytest.param("DELETE", None, 502, [1, 1], id="delete-not-retried"),
        pytest.param("POST", [b"data"], 502, [1, 1], id="post-with-body-not-retried"),
        pytest.param("GET", [b"data"], 502, [1, 1], id="get-with-body-not-retried"),
    ],
)
async def test_stale_connection_is_retried_once_only_when_idempotent_and_bodiless(
    method: str, chunks: list[bytes] | None, status: int, connections: list[int]
) -> None:
    """A kept-alive connection that dies as it is reused, before any answer: a GET, HEAD or
    OPTIONS without a body is sent again on a new connection; anything else is a 502."""
    async with RawUpstream(stale_after_first()) as upstream:
        relay = relay_for(upstream.url)
        assert (await Client().through(relay)).status == 200
        headers = [(b"content-length", b"4")] if chunks else []
        seen = await Client(method, chunks=chunks, headers=headers).through(relay)
        assert seen.status == status
        assert [r.connection for r in upstream.requests] == connections
        await relay.aclose()


async def test_retry_happens_once() -> None:
    """An upstream that closes every reused connection and every new one: one retry, then a 502."""

    async def answer(request: Request, writer: asyncio.StreamWriter) -> None:
        if request.number == 1:
            writer.write(reply(200))
        else:
            writer.close()

    async with RawUpstream(answer) as upstream:
        relay = relay_for(upstream.url)
        assert (await Client().through(relay)).status == 200
        assert (await Client().through(relay)).status == 502
        assert [r.connection for r in upstream.requests] == [1, 1, 2]
        await relay.aclose()


async def test_connection_closed_by_the_upstream_while_idle_leaves_the_pool() -> None:
    """The upstream closing an idle kept-alive connection takes it out of the pool at once;
    the next request opens a new one without a failed attempt."""
    async with RawUpstream(answering(reply(200), close=True)) as upstream:
        relay = relay_for(upstream.url)
        assert (await Client().through(relay)).status == 200
        await upstream.wait_closed()
        await asyncio.sleep(0.05)
        assert (relay.pool.open_connections, relay.pool.idle_connections) == (0, 0)
        assert (await Client().through(relay)).status == 200
        assert [r.connection for r in upstream.requests] == [1, 2]
        await relay.aclose()


async def test_idle_connections_expire_and_are_closed() -> None:
    """An idle connection is closed after keepalive_expiry, with no request to notice it."""
    async with RawUpstream(answering()) as upstream:
        relay = relay_for(upstream.url, keepalive_expiry=0.2)
        assert (await Client().through(relay)).status == 200
        assert (upstream.open, relay.pool.idle_connections) == (1, 1)
        await upstream.wait_closed(timeout=1.0)
        assert relay.pool.open_connections == 0
        assert (await Client().through(relay)).status == 200
        assert [r.connection for r in upstream.requests] == [1, 2]
        await relay.aclose()


async def slow_answer(request: Request, writer: asyncio.StreamWriter) -> None:
    await asyncio.sleep(0.1)
    writer.write(reply(200, b"slow"))


async def test_max_connections_and_max_keepalive_bound_the_pool() -> None:
    """Six requests at once over max_connections=2: never more than two connections open,
    every request answered; afterwards max_keepalive=1 idle connection is kept."""
    async with RawUpstream(slow_answer) as upstream:
        relay = relay_for(upstream.url, max_connections=2, max_keepalive=1)
        seen = await asyncio.gather(*(Client().through(relay) for _ in range(6)))
        assert [s.status for s in seen] == [200] * 6
        assert upstream.peak_open == 2
        assert (relay.pool.open_connections, relay.pool.idle_connections) == (1, 1)
        await upstream.wait_closed(1)
        await relay.aclose()


async def test_waiting_too_long_for_a_free_connection_is_a_502() -> None:
    """With every connection busy for longer than the timeout, a waiting request gets a 502."""

    async def trickle(request: Request, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n")
        for _ in range(10):
            await asyncio.sleep(0.1)
            writer.write(b"x")

    async with RawUpstream(trickle) as upstream:
        relay = relay_for(upstream.url, max_connections=1, timeout=0.3)
        first, second = await asyncio.gather(
            Client().through(relay),
            Client(headers=[(b"accept", b"application/json")]).through(relay),
        )
        assert (first.status, bytes(first.body), first.ended) == (200, b"x" * 10, True)
        assert second.status == 502 and b"in time" in second.body
        await relay.aclose()


async def endless(request: Request, writer: asyncio.StreamWriter) -> None:
    writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
    while True:
        writer.write(b"5\r\nchunk\r\n")
        await writer.drain()
        await asyncio.sleep(0.02)


async def assert_nothing_left(relay: HTTPRelay, upstream: RawUpstream) -> None:
    """No connection open on either side, no task but the test's own."""
    await upstream.wait_closed()
    await asyncio.sleep(0.01)
    assert relay.pool.open_connections == 0
    tasks = asyncio.all_tasks() - {asyncio.current_task()}
    assert not [t for t in tasks if "HTTPRelay" in repr(t) or "_watch" in repr(t)]


async def test_client_leaving_mid_answer_closes_the_upstream_connection() -> None:
    """The client disconnecting while an endless answer streams: the relay returns, the
    upstream connection is closed, no task is left."""
    async with RawUpstream(endless) as upstream:
        relay = relay_for(upstream.url)
        client = Client()
        call = asyncio.create_task(client.through(relay))
        while len(client.seen.body) < 10:
            await asyncio.sleep(0.01)
        client.leave.set()
        seen = await asyncio.wait_for(call, 2)
        assert seen.status == 200 and not seen.ended
        await assert_nothing_left(relay, upstream)
        await relay.aclose()


@pytest.mark.parametrize(
    "chunks", [pytest.param(None, id="no-body"), pytest.param([b"x"], id="with-body")]
)
async def test_client_leaving_while_the_upstream_thinks_closes_the_connection(
    chunks: list[bytes] | None,
) -> None:
    """The client disconnecting while the upstream has not answered yet: noticed within
    WATCH_AFTER (half a second), the upstream connection closed, nothing sent, no task left."""
    assert WATCH_AFTER < 1
    async with RawUpstream(never_answer) as upstream:
        relay = relay_for(upstream.url)
        client = Client(
            "POST", chunks=chunks, headers=[(b"content-length", b"1")] if chunks else []
        )
        call = asyncio.create_task(client.through(relay))
        await asyncio.sleep(0.1)
        client.leave.set()
        seen = await asyncio.wait_for(call, 2)
        assert seen.status == 0
        await assert_nothing_left(relay, upstream)
        await relay.aclose()


async def test_client_leaving_during_the_upload_closes_the_upstream_connection() -> None:
    """The client disconnecting halfway through its request body: nothing is answered and
    the upstream connection is closed."""

    def halfway(client: Client) -> Iterator[bytes]:
        yield b"first half"
        client.leave.set()
        yield b"never sent"

    async with RawUpstream(never_answer) as upstream:
        relay = relay_for(upstream.url)
        client = Client("PUT", headers=[(b"content-length", b"20")])
        client.messages = client._messages(halfway(client))
        seen = await asyncio.wait_for(client.through(relay), 2)
        assert seen.status == 0
        await assert_nothing_left(relay, upstream)
        await relay.aclose()


async def test_upstream_answering_before_the_body_is_sent_gets_no_more_of_it() -> None:
    """An early answer (a 413 before the body is read): the client gets it, the rest of the
    body is not sent, and the connection is not reused."""
    answered = asyncio.Event()
    body_read = [0]

    async def early(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(reply(413, b"too large"))
        answered.set()
        while data := await reader.read(65536):
            body_read[0] += len(data)
        writer.close()

    server = await asyncio.start_server(early, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    relay = relay_for(f"http://127.0.0.1:{port}")
    client = Client(
        "POST", chunks=[b"x" * 1000, b"y" * 1000], headers=[(b"content-length", b"2000")]
    )
    receive = client.receive

    async def receive_after_the_answer() -> dict[str, Any]:
        message = await receive()
        if message.get("more_body"):
            await answered.wait()
            await asyncio.sleep(0.1)  # the 413 reaches the relay before the next chunk
        return message

    client.receive = receive_after_the_answer  # type: ignore[method-assign]
    seen = await asyncio.wait_for(client.through(relay), 5)
    assert (seen.status, bytes(seen.body)) == (413, b"too large")
    assert client.seen.pulled < 2000 and body_read[0] < 2000
    assert relay.pool.open_connections == 0
    await relay.aclose()
    server.close()
    await server.wait_closed()


async def test_slow_client_pauses_reading_from_the_upstream() -> None:
    """A client that stops reading: the relay stops reading the upstream (which then cannot
    write more than socket buffers hold), and resumes when the client does; 64 MB arrive whole."""
    size, written = 64 * MB, [0]
    block = hashlib.sha256(b"block").digest() * 2048  # 64 KiB

    async def download(request: Request, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % size)
        for _ in range(size // len(block)):
            writer.write(block)
            await writer.drain()
            written[0] += len(block)

    async with RawUpstream(download) as upstream:
        relay = relay_for(upstream.url)
        client = Client()
        client.stall.clear()
        call = asyncio.create_task(client.through(relay))
        await asyncio.sleep(0.5)
        held = written[0]
        await asyncio.sleep(0.3)
        assert written[0] == held, "the upstream kept writing while the client read nothing"
        assert held < 24 * MB
        client.stall.set()
        seen = await asyncio.wait_for(call, 30)
        assert (len(seen.body), seen.ended) == (size, True)
        assert (
            hashlib.sha256(seen.body).digest()
            == hashlib.sha256(block * (size // len(block))).digest()
        )
        await relay.aclose()


async def test_slow_upstream_reader_pauses_the_upload() -> None:
    """An upstream that stops reading: the relay stops taking the client's body (bounded
    memory), and goes on when the upstream reads again; 64 MB arrive whole."""
    size = 64 * MB
    block = hashlib.sha256(b"up").digest() * 2048

    async with RawUpstream(answering(reply(200))) as upstream:
        relay = relay_for(upstream.url)
        upstream.reading.clear()
        client = Client(
            "PUT", chunks=(block for _ in range(size // len(block))),
            headers=[(b"content-length", str(size).encode())],
        )  # fmt: skip
        call = asyncio.create_task(client.through(relay))
        await asyncio.sleep(0.5)
        held = client.seen.pulled
        await asyncio.sleep(0.3)
        assert client.seen.pulled == held, (
            "the relay kept taking the body the upstream did not read"
        )
        assert held < 24 * MB
        upstream.reading.set()
        seen = await asyncio.wait_for(call, 30)
        assert seen.status == 200
        (request,) = upstream.requests
        assert request.size == size
        assert request.digest.digest() == hashlib.sha256(block * (size // len(block))).digest()
        await relay.aclose()


# ---------------------------------------------------------------- https


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> ThrowawayCA:
    """A certificate for 127.0.0.1 from a throwaway CA (:mod:`support.tls`)."""
    return make_ca(tmp_path_factory.mktemp("tls"))


@pytest.mark.parametrize(
    ("trusted", "status"),
    [pytest.param(False, 502, id="default-context-refuses"), pytest.param(True, 200, id="trusted")],
)
async def test_https_upstream_certificates_are_verified(
    certificate: ThrowawayCA, trusted: bool, status: int
) -> None:
    """An https upstream is reached over TLS with certificates verified: one from a private
    CA is refused with a 502 by default, and accepted with a context that trusts the CA."""
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(certificate.server_cert, certificate.server_key)
    client_tls = ssl.create_default_context(cafile=str(certificate.ca_cert)) if trusted else None
    async with RawUpstream(answering(reply(200, b"secure")), tls=server_tls) as upstream:
        relay = relay_for(upstream.url, client_tls)
        seen = await Client().through(relay)
        assert seen.status == status
        if trusted:
            assert bytes(seen.body) == b"secure"
            assert (await Client().through(relay)).status == 200
            assert [r.connection for r in upstream.requests] == [1, 1]
        await relay.aclose()
