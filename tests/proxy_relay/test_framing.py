"""The relay's HTTP/1.1 towards the upstream: every framing of an answer, the header rules
on answers, request bodies, and upstream failures, against raw upstream servers.

The upstream is :class:`apps.raw_upstream.RawUpstream`, whose answers each test
writes byte by byte (the framings a good server never sends), in the test's
event loop; the client side is a stand-in for the ASGI server that records
every message (:mod:`.helpers`), or uvicorn itself where its rules matter.
Every test runs on asyncio's loop and on uvloop's (``conftest.py`` here).
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import uvicorn
from apps.raw_upstream import RawUpstream, reply
from peers.ports import free_port

from oakid_gate.serve import batched_httptools_protocol

from .helpers import (
    Client,
    answering,
    close_at_once,
    in_pieces,
    never_answer,
    relay_for,
    until_close,
)

CHUNKED = (
    b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
)


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
        if status in (204, 304):
            assert seen.header(b"content-length") == []
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
    chunked; the request line carries the path the gate judged (a canonical encoding of
    the decoded path: ``;`` encoded too) and the query as sent; Host is the upstream's."""
    async with RawUpstream(answering(reply(200))) as upstream:
        relay = relay_for(upstream.url + "/base")
        client = Client(
            "POST", "/a%20b;c?q=1", chunks=[b"hello", b" ", b"world"], headers=client_headers
        )
        seen = await client.through(relay)
        await relay.aclose()
    assert seen.status == 200
    (request,) = upstream.requests
    assert (request.method, request.target, bytes(request.body)) == (
        "POST",
        b"/base/a%20b%3Bc?q=1",
        b"hello world",
    )
    framing = [
        (k.lower(), v)
        for k, v in request.headers
        if k.lower() in (b"content-length", b"transfer-encoding")
    ]
    assert framing == [upstream_sees]
    assert request.header(b"host") == [upstream.url.removeprefix("http://").encode()]


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
        pytest.param(
            b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\nonly ten b", id="content-length"
        ),
        pytest.param(
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n", id="chunked"
        ),
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


@contextlib.asynccontextmanager
async def served_by_uvicorn(app: Any, http: Any) -> AsyncIterator[str]:
    """``app`` behind uvicorn on the ``http`` protocol, in this loop: its URL."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, http=http, lifespan="off")
    config.log_level, config.access_log = "warning", False
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@pytest.mark.parametrize(
    ("answer", "method", "status", "length"),
    [
        pytest.param(b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n", "HEAD", 200, "1000", id="head"),
        pytest.param(b"HTTP/1.1 304 Not Modified\r\ncontent-length: 1000\r\n\r\n", "GET", 304, None, id="304"),
        pytest.param(b"HTTP/1.1 204 No Content\r\n\r\n", "DELETE", 204, None, id="204"),
        pytest.param(CHUNKED, "GET", 200, None, id="chunked"),
    ],
)  # fmt: skip
@pytest.mark.parametrize("protocol", ["httptools", "batched"])
async def test_answers_pass_a_real_asgi_server(
    answer: bytes,
    method: str,
    status: int,
    length: str | None,
    protocol: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Through uvicorn in front, as the proxy runs (its writes batched or not): answers without
    a body whatever length they name, and chunked ones, reach the client and leave both
    connections fit for the next."""
    front = batched_httptools_protocol() if protocol == "batched" else protocol
    async with RawUpstream(answering(answer)) as upstream:
        relay = relay_for(upstream.url)
        async with (
            served_by_uvicorn(relay, front) as url,
            httpx.AsyncClient(base_url=url) as http,
        ):
            first = await http.request(method, "/")
            second = await http.get("/")
        await relay.aclose()
    assert (first.status_code, first.headers.get("content-length")) == (status, length)
    assert (second.status_code, second.text) == (200, "second")
    assert [r.connection for r in upstream.requests] == [1, 1]
    assert "Exception" not in caplog.text and "ERROR" not in caplog.text
