"""The proxy's HTTP relay and its connection pool, against real upstream servers on 127.0.0.1.

The upstream is :class:`apps.raw_upstream.RawUpstream`, whose answers each test
writes byte by byte (the framings a good server never sends), in the test's
event loop; the client side is a stand-in for the ASGI server that records
every message and can stall or leave at a chosen moment. Every test runs on
asyncio's loop and on uvloop's (``conftest.py`` here).
"""

from __future__ import annotations

import asyncio
import datetime
import gzip
import hashlib
import ipaddress
import json
import ssl
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from apps.raw_upstream import RawUpstream, Request, reply
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from peers.ports import free_port

from oakid_gate.proxy.pool import Limits
from oakid_gate.proxy.relay import WATCH_AFTER, HTTPRelay
from oakid_gate.proxy.upstream import Upstream
from oakid_gate.settings import Settings

MB = 1024 * 1024
SECOND = reply(200, b"second")  # every answer after the first, unless a test says otherwise


def relay_for(url: str, ssl_context: ssl.SSLContext | None = None, **limits: Any) -> HTTPRelay:
    settings = Settings.load(env={}, client_id="c", client_secret="x", secret="s" * 32, upstream=url)
    return HTTPRelay(Upstream(settings, ssl_context), Limits(**limits))


@dataclass
class Seen:
    """What the client was sent, and how much of its body the relay took."""

    status: int = 0
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: bytearray = field(default_factory=bytearray)
    ended: bool = False  # the last body message (more_body false) came
    pulled: int = 0  # request body bytes the relay received

    def header(self, name: bytes) -> list[bytes]:
        return [v for k, v in self.headers if k == name]


class Client:
    """A stand-in for the ASGI server: one request, its body as ``chunks``; stalls and leaves."""

    def __init__(
        self,
        method: str = "GET",
        target: str = "/",
        *,
        chunks: Iterable[bytes] | None = None,
        headers: Iterable[tuple[bytes, bytes]] = (),
    ) -> None:
        path, _, query = target.partition("?")
        self.scope = {
            "type": "http",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": query.encode(),
            "headers": [(b"host", b"app.example"), *headers],
            "client": ("192.0.2.10", 40000),
        }
        self.seen = Seen()
        self.messages = self._messages(chunks)
        self.leave = asyncio.Event()  # set: the client disconnects
        self.stall = asyncio.Event()  # cleared: the client stops reading the answer
        self.stall.set()

    def _messages(self, chunks: Iterable[bytes] | None) -> Iterator[dict[str, Any]]:
        if chunks is None:
            yield {"type": "http.request", "body": b"", "more_body": False}
            return
        pending: bytes | None = None
        for chunk in chunks:
            if pending is not None:
                yield {"type": "http.request", "body": pending, "more_body": True}
            self.seen.pulled += len(chunk)
            pending = chunk
        yield {"type": "http.request", "body": pending or b"", "more_body": False}

    async def receive(self) -> dict[str, Any]:
        if not self.leave.is_set():
            message = next(self.messages, None)
            if message is not None:
                return message
        await self.leave.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            self.seen.status = message["status"]
            self.seen.headers = list(message["headers"])
            return
        await self.stall.wait()
        self.seen.body += message.get("body", b"")
        self.seen.ended = not message.get("more_body", False)

    async def through(self, relay: HTTPRelay) -> Seen:
        await relay(self.scope, self.receive, self.send)
        return self.seen


def answering(first: bytes = SECOND, *, close: bool = False) -> Any:
    """An upstream that answers ``first`` to its first request (then closes, with ``close``),
    and :data:`SECOND` to every other."""

    async def answer(request: Request, writer: asyncio.StreamWriter) -> None:
        writer.write(first if request.number == 1 else SECOND)
        if close and request.number == 1:
            await writer.drain()
            writer.close()

    return answer


def until_close(status: bytes) -> Any:
    async def answer(request: Request, writer: asyncio.StreamWriter) -> None:
        if request.number == 1:
            writer.write(status + b"\r\nx-kind: until-close\r\n\r\nuntil the close")
            await writer.drain()
            writer.close()
        else:
            writer.write(SECOND)

    return answer


def in_pieces(data: bytes) -> Any:
    """The first answer seven bytes at a time (llhttp reads it across many packets)."""

    async def answer(request: Request, writer: asyncio.StreamWriter) -> None:
        if request.number > 1:
            writer.write(SECOND)
            return
        for i in range(0, len(data), 7):
            writer.write(data[i : i + 7])
            await writer.drain()
            await asyncio.sleep(0.002)

    return answer


CHUNKED = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"


@pytest.mark.parametrize(
    ("answer", "method", "status", "body", "reused"),
    [
        pytest.param(answering(reply(200, b"hello")), "GET", 200, b"hello", True, id="content-length"),
        pytest.param(answering(CHUNKED), "GET", 200, b"hello world", True, id="chunked"),
        pytest.param(
            answering(CHUNKED.replace(b"0\r\n\r\n", b"0\r\nx-trailer: 1\r\n\r\n")),
            "GET", 200, b"hello world", True, id="chunked-with-trailer",
        ),
        pytest.param(in_pieces(CHUNKED), "GET", 200, b"hello world", True, id="chunked-in-pieces"),
        pytest.param(until_close(b"HTTP/1.1 200 OK"), "GET", 200, b"until the close", False, id="http11-until-close"),
        pytest.param(until_close(b"HTTP/1.0 200 OK"), "GET", 200, b"until the close", False, id="http10-until-close"),
        pytest.param(answering(b"HTTP/1.0 200 OK\r\ncontent-length: 3\r\n\r\nold"), "GET", 200, b"old", False, id="http10-length"),
        pytest.param(
            answering(b"HTTP/1.0 200 OK\r\nconnection: keep-alive\r\ncontent-length: 3\r\n\r\nold"),
            "GET", 200, b"old", True, id="http10-keep-alive",
        ),
        pytest.param(answering(reply(200, b"bye", b"connection: close")), "GET", 200, b"bye", False, id="connection-close"),
        pytest.param(answering(b"HTTP/1.1 204 No Content\r\n\r\n"), "DELETE", 204, b"", True, id="204"),
        pytest.param(
            answering(b"HTTP/1.1 304 Not Modified\r\netag: \"x\"\r\ncontent-length: 100\r\n\r\n"),
            "GET", 304, b"", True, id="304-with-length",
        ),
        pytest.param(answering(b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n"), "HEAD", 200, b"", True, id="head-with-length"),
        pytest.param(answering(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"), "HEAD", 200, b"", True, id="head-chunked"),
        pytest.param(
            answering(b"HTTP/1.1 100 Continue\r\n\r\n" + reply(200, b"after")),
            "GET", 200, b"after", True, id="100-continue-skipped",
        ),
        pytest.param(
            answering(b"HTTP/1.1 103 Early Hints\r\nlink: </a.css>\r\n\r\n" + reply(201, b"made")),
            "GET", 201, b"made", True, id="103-early-hints-skipped",
        ),
    ],
)  # fmt: skip
async def test_every_framing_reaches_the_client_whole(
    answer: Any, method: str, status: int, body: bytes, reused: bool
) -> None:
    """Each way an answer can be framed reaches the client whole and ended; the connection
    is reused exactly when the answer's framing and headers allow it."""
    async with RawUpstream(answer) as upstream:
        relay = relay_for(upstream.url)
        seen = await Client(method).through(relay)
        assert (seen.status, bytes(seen.body), seen.ended) == (status, body, True)
        assert seen.header(b"transfer-encoding") == []
        if method == "HEAD" and status == 200:
            assert seen.header(b"content-length") in ([], [b"1000"])
        second = await Client().through(relay)
        assert (second.status, bytes(second.body)) == (200, b"second")
        assert [r.connection for r in upstream.requests] == [1, 1 if reused else 2]
        await relay.aclose()


async def test_headers_hop_by_hop_and_date_dropped_cookies_location_and_encoding_kept() -> None:
    """The upstream's hop-by-hop headers (and those Connection names) and Date stop at the
    proxy; Set-Cookie lines, Location and a gzip body pass as written, never decompressed."""
    compressed = gzip.compress(b"compressed " * 50, mtime=0)
    answer = reply(
        302,
        compressed,
        b"Connection: X-Hop",
        b"X-Hop: secret",
        b"Keep-Alive: timeout=5",
        b"Date: Mon, 01 Jan 2024 00:00:00 GMT",
        b"Location: /next?a=1",
        b"Set-Cookie: a=1; Path=/",
        b"Set-Cookie: b=2; HttpOnly",
        b"Content-Encoding: gzip",
    )
    async with RawUpstream(answering(answer)) as upstream:
        relay = relay_for(upstream.url)
        seen = await Client().through(relay)
        await relay.aclose()
    assert bytes(seen.body) == compressed
    assert seen.headers == [
        (b"content-length", str(len(compressed)).encode()),
        (b"location", b"/next?a=1"),
        (b"set-cookie", b"a=1; Path=/"),
        (b"set-cookie", b"b=2; HttpOnly"),
        (b"content-encoding", b"gzip"),
    ]


@pytest.mark.parametrize(
    ("client_headers", "upstream_sees"),
    [
        pytest.param([(b"content-length", b"11")], (b"content-length", b"11"), id="content-length"),
        pytest.param(
            [(b"transfer-encoding", b"chunked")], (b"transfer-encoding", b"chunked"), id="chunked"
        ),
    ],
)
async def test_request_body_is_sent_framed_as_the_client_framed_it(
    client_headers: list[tuple[bytes, bytes]], upstream_sees: tuple[bytes, bytes]
) -> None:
    """A body with a Content-Length is sent as it is; one the client sent chunked is sent
    chunked; the request line keeps the path and query, Host is the upstream's."""
    async with RawUpstream(answering(reply(200))) as upstream:
        relay = relay_for(upstream.url + "/base")
        client = Client("POST", "/a%2Fb?q=1", chunks=[b"hello", b" ", b"world"], headers=client_headers)
        seen = await client.through(relay)
        await relay.aclose()
    assert seen.status == 200
    (request,) = upstream.requests
    assert (request.method, request.target, bytes(request.body)) == ("POST", b"/base/a%2Fb?q=1", b"hello world")
    framing = [(k.lower(), v) for k, v in request.headers if k.lower() in (b"content-length", b"transfer-encoding")]
    assert framing == [upstream_sees]
    assert request.header(b"host") == [upstream.url.removeprefix("http://").encode()]


async def never_answer(request: Request, writer: asyncio.StreamWriter) -> None:
    """Read on, answer nothing, until the proxy closes the connection."""
    assert request.reader is not None
    while await request.reader.read(65536):
        pass


async def close_at_once(request: Request, writer: asyncio.StreamWriter) -> None:
    writer.close()


@pytest.mark.parametrize(
    ("answer", "timeout", "words"),
    [
        pytest.param(None, 5.0, "not answering", id="refused"),
        pytest.param(close_at_once, 5.0, "not answering", id="closed-before-status"),
        pytest.param(answering(b"SSH-2.0-OpenSSH_9.2\r\n\r\n"), 5.0, "not answering", id="not-http"),
        pytest.param(
            answering(b"HTTP/1.1 101 Switching Protocols\r\nupgrade: x\r\nconnection: upgrade\r\n\r\n"),
            5.0, "not answering", id="101-unasked",
        ),
        pytest.param(never_answer, 0.3, "in time", id="read-timeout"),
    ],
)  # fmt: skip
@pytest.mark.parametrize("method", ["GET", "HEAD"])
async def test_upstream_failing_before_the_status_line_is_a_502(
    answer: Any, timeout: float, words: str, method: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Refused, closed, not HTTP, an unasked upgrade, or too slow: the client gets the 502
    (JSON here; no body for HEAD), a warning is logged, never a traceback, nothing stays open."""
    async with RawUpstream(answer or never_answer) as upstream:
        url = f"http://127.0.0.1:{free_port()}" if answer is None else upstream.url
        relay = relay_for(url, timeout=timeout)
        seen = await Client(method, headers=[(b"accept", b"application/json")]).through(relay)
        assert (seen.status, seen.ended) == (502, True)
        if method == "GET":
            assert words in json.loads(seen.body)["error_description"]
        else:
            assert seen.body == b""
        assert relay.pool.open_connections == 0
        await upstream.wait_closed()
        await relay.aclose()
    assert "Traceback" not in caplog.text
    assert "proxy: upstream" in caplog.text


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\nonly ten b", id="content-length"),
        pytest.param(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n", id="chunked"),
    ],
)
async def test_answer_cut_off_midway_leaves_the_client_unfinished(answer: bytes) -> None:
    """An answer that breaks off after its status line: the client gets what came, never an
    end, so its connection is closed unfinished; the upstream connection is not kept."""
    async with RawUpstream(answering(answer, close=True)) as upstream:
        relay = relay_for(upstream.url)
        seen = await Client().through(relay)
        assert seen.status == 200 and not seen.ended
        assert relay.pool.open_connections == 0
        await relay.aclose()


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
            Client().through(relay), Client(headers=[(b"accept", b"application/json")]).through(relay)
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


@pytest.mark.parametrize("chunks", [pytest.param(None, id="no-body"), pytest.param([b"x"], id="with-body")])
async def test_client_leaving_while_the_upstream_thinks_closes_the_connection(
    chunks: list[bytes] | None,
) -> None:
    """The client disconnecting while the upstream has not answered yet: noticed within
    WATCH_AFTER (half a second), the upstream connection closed, nothing sent, no task left."""
    assert WATCH_AFTER < 1
    async with RawUpstream(never_answer) as upstream:
        relay = relay_for(upstream.url)
        client = Client("POST", chunks=chunks, headers=[(b"content-length", b"1")] if chunks else [])
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
    client = Client("POST", chunks=[b"x" * 1000, b"y" * 1000], headers=[(b"content-length", b"2000")])
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
        assert hashlib.sha256(seen.body).digest() == hashlib.sha256(block * (size // len(block))).digest()
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
        assert client.seen.pulled == held, "the relay kept taking the body the upstream did not read"
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
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, and its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.mark.parametrize(
    ("trusted", "status"),
    [pytest.param(False, 502, id="default-context-refuses"), pytest.param(True, 200, id="trusted")],
)
async def test_https_upstream_certificates_are_verified(
    certificate: tuple[Path, Path], trusted: bool, status: int
) -> None:
    """An https upstream is reached over TLS with certificates verified: a self-signed one
    is refused with a 502 by default, and accepted with a context that trusts it."""
    cert_path, key_path = certificate
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert_path, key_path)
    client_tls = ssl.create_default_context(cafile=str(cert_path)) if trusted else None
    async with RawUpstream(answering(reply(200, b"secure")), tls=server_tls) as upstream:
        relay = relay_for(upstream.url, client_tls)
        seen = await Client().through(relay)
        assert seen.status == status
        if trusted:
            assert bytes(seen.body) == b"secure"
            assert (await Client().through(relay)).status == 200
            assert [r.connection for r in upstream.requests] == [1, 1]
        await relay.aclose()
