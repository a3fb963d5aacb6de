"""A raw HTTP/1.1 upstream for the relay's tests: every answer written byte by byte.

:mod:`apps.upstream` is a well-behaved ASGI app behind uvicorn; this one is an
``asyncio`` server in the test's own event loop, for what a good server never
sends: HTTP/1.0 without a length, interim 1xx answers, ``Connection: close``,
a kept-alive connection closed as it is reused, an answer cut off midway, a
reader or writer that stalls. Requests are read with httptools' request parser;
each whole request is handed to the test's *answer* coroutine with the
connection's writer, and the answer writes whatever bytes the case needs::

    async def answer(request: Request, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.0 200 OK\\r\\n\\r\\nuntil the close")
        writer.close()

    async with RawUpstream(answer) as upstream:
        ...  # upstream.url, upstream.requests, upstream.connections
"""

from __future__ import annotations

import asyncio
import hashlib
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httptools

__all__ = ["Answer", "RawUpstream", "Request", "reply"]

#: request bodies up to this size are kept whole in :attr:`Request.body`
KEPT_BODY = 1024 * 1024


@dataclass
class Request:
    """One request as the upstream read it."""

    connection: int  # 1 for the first connection accepted, 2 for the next, ...
    number: int = 0  # 1 for the first request the upstream read, 2 for the next, ...
    method: str = ""
    target: bytes = b""
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: bytearray = field(default_factory=bytearray)  # the first KEPT_BODY bytes
    size: int = 0
    digest: Any = field(default_factory=hashlib.sha256)
    #: the connection's reader, for an answer that waits for the proxy to leave
    reader: asyncio.StreamReader | None = None

    def header(self, name: bytes) -> list[bytes]:
        return [v for k, v in self.headers if k.lower() == name]


Answer = Callable[[Request, asyncio.StreamWriter], Awaitable[None]]


def reply(status: int = 200, body: bytes = b"ok", *headers: bytes) -> bytes:
    """An HTTP/1.1 answer with a Content-Length and the given raw header lines."""
    lines = [b"HTTP/1.1 %d X" % status, b"content-length: %d" % len(body), *headers]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


class _Reader:
    """httptools' callbacks: requests of one connection, as they complete."""

    def __init__(self, connection: int) -> None:
        self.connection = connection
        self.current = Request(connection)
        self.done: list[Request] = []
        self.parser = httptools.HttpRequestParser(self)

    def on_url(self, url: bytes) -> None:
        self.current.target += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.current.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.current.method = self.parser.get_method().decode()

    def on_body(self, body: bytes) -> None:
        request = self.current
        if len(request.body) < KEPT_BODY:
            request.body += body[: KEPT_BODY - len(request.body)]
        request.size += len(body)
        request.digest.update(body)

    def on_message_complete(self) -> None:
        self.done.append(self.current)
        self.current = Request(self.connection)


class RawUpstream:
    """An HTTP/1.1 server on 127.0.0.1 whose answers the test writes itself."""

    def __init__(self, answer: Answer, *, tls: ssl.SSLContext | None = None) -> None:
        self.answer = answer
        self._tls = tls
        self.requests: list[Request] = []
        self.connections = 0  # accepted so far
        self.open = 0  # open now
        self.peak_open = 0
        #: cleared by a test to stop reading requests (a slow reader)
        self.reading = asyncio.Event()
        self.reading.set()
        self._server: asyncio.Server | None = None
        self.url = ""
        self._handlers: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> RawUpstream:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self._tls)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"{'https' if self._tls else 'http'}://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._handlers):
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        await self._server.wait_closed()

    async def wait_closed(self, count: int = 0, timeout: float = 5.0) -> None:
        """Until at most ``count`` connections are open (``AssertionError`` after ``timeout``)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while self.open > count:
            assert asyncio.get_running_loop().time() < deadline, f"{self.open} still open"
            await asyncio.sleep(0.01)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        self.connections += 1
        self.open += 1
        self.peak_open = max(self.peak_open, self.open)
        parsed = _Reader(self.connections)
        try:
            while not writer.is_closing():
                await self.reading.wait()
                data = await reader.read(65536)
                if not data:
                    break
                parsed.parser.feed_data(data)
                while parsed.done:
                    request = parsed.done.pop(0)
                    self.requests.append(request)
                    request.number = len(self.requests)
                    request.reader = reader
                    await self.answer(request, writer)
                    await writer.drain()
        except (OSError, httptools.HttpParserError, asyncio.CancelledError):
            pass  # the proxy left, sent junk, or the test ended
        finally:
            self.open -= 1
            writer.close()
            self._handlers.discard(task)
