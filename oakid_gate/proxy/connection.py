"""One HTTP/1.1 connection to the upstream: an asyncio protocol, llhttp parsing every answer.

The proxy writes requests itself (a request line and headers are serialization)
and never parses HTTP: :class:`httptools.HttpResponseParser` (llhttp) reads each
answer and says where it ends: ``Content-Length``, chunked, no body (``HEAD``,
1xx, 204, 304), or until the upstream closes (RFC 9112 section 6.3). Interim
1xx answers (``100 Continue``) are skipped.

Flow control both ways: :meth:`UpstreamConnection.drain` waits while the
socket's write buffer is full (the request body), and reading stops while more
than :data:`READ_HIGH_WATER` bytes of the answer wait for the client
(:meth:`UpstreamConnection.take` starts it again). Each wait for the upstream
has one timer (the read or write timeout), cancelled when the wait ends.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import cast

from httptools import HttpParserError, HttpParserUpgrade, HttpResponseParser

from .headers import Headers

__all__ = [
    "READ_HIGH_WATER",
    "ClientGone",
    "UpstreamBroken",
    "UpstreamConnection",
    "UpstreamError",
    "UpstreamTimeout",
    "UpstreamUnreachable",
]

#: answer bytes held for a slow client before reading from the upstream pauses
READ_HIGH_WATER = 256 * 1024


class UpstreamError(Exception):
    """The upstream failed this request (the client gets a 502, or a cut-off answer)."""


class UpstreamUnreachable(UpstreamError):
    """No connection could be made."""


class UpstreamTimeout(UpstreamError):
    """A connect, read or write took longer than its timeout."""


class UpstreamBroken(UpstreamError):
    """The connection closed, or the answer is not HTTP/1.1, before the answer ended."""


class ClientGone(Exception):
    """The client disconnected; the upstream connection is given up."""


class UpstreamConnection(asyncio.Protocol):
    """A kept-alive connection to the upstream; one request at a time.

    The relay calls :meth:`start`, writes a body with :meth:`write` and
    :meth:`drain`, waits with :meth:`wait` until ``head_done`` (``status`` and
    ``headers`` set), then takes the body with :meth:`take` until ``complete``.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, timeout: float) -> None:
        self._loop = loop
        self._timeout = timeout
        self._transport: asyncio.Transport | None = None
        self._parser = HttpResponseParser(self)
        self._renew_parser = False
        self._waiter: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._reading_paused = False
        self._writing_paused = False
        self._in_flight = False
        self._head_request = False
        self._interim = False
        #: called once when a wait has lasted ``slow_after`` seconds (the relay's disconnect watch)
        self.on_slow: Callable[[], None] | None = None
        self.slow_after = 0.0
        #: set by the pool
        self.on_lost: Callable[[UpstreamConnection], None] | None = None
        self.idle_since = 0.0
        self.reused = False
        self.lost = False
        self.spoiled = False  # the request was not sent whole: never reused
        self._new_response()

    def _new_response(self) -> None:
        self.status = 0
        self.headers: Headers = []
        self.head_done = False
        self.complete = False
        self.keep_alive = False
        self.got_data = False
        self.error: BaseException | None = None
        self._body: list[bytes] = []
        self._buffered = 0

    # ------------------------------------------------------------ the relay's side

    def start(self, head: bytes, *, head_request: bool) -> None:
        """Send a request's line and headers; its answer is expected from now on."""
        if self._renew_parser:  # llhttp still expects the body a HEAD answer announced
            self._parser = HttpResponseParser(self)
            self._renew_parser = False
        self._new_response()
        self._head_request = head_request
        self._in_flight = True
        self.write(head)

    def write(self, data: bytes) -> None:
        transport = self._transport
        if self.lost or transport is None or transport.is_closing():
            raise self.error or UpstreamBroken("the upstream closed the connection")
        transport.write(data)

    async def drain(self) -> None:
        """Until the socket takes more (or the upstream answered before the body was sent)."""
        while self._writing_paused and not self.head_done:
            await self.wait()

    async def wait(self) -> None:
        """Until the protocol has news (head, body, end, writable) or fails; bounded by the timeout."""
        if self.error is not None:
            raise self.error
        waiter = self._waiter = self._loop.create_future()
        hook = self.on_slow
        delay = self.slow_after if hook is not None and self.slow_after < self._timeout else 0.0
        if delay:
            self._timer = self._loop.call_later(delay, self._slow, waiter, self._timeout - delay)
        else:
            self._timer = self._loop.call_later(self._timeout, self._expire, waiter)
        try:
            await waiter
        finally:
            self._waiter = None
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

    def take(self) -> bytes:
        """The answer's body bytes received so far (reading resumes if it was paused)."""
        body = self._body
        if not body:
            chunk = b""
        elif len(body) == 1:
            chunk = body[0]
            body.clear()
        else:
            chunk = b"".join(body)
            body.clear()
        self._buffered = 0
        if self._reading_paused and self._transport is not None and not self.lost:
            self._reading_paused = False
            self._transport.resume_reading()
        return chunk

    @property
    def reusable(self) -> bool:
        """The answer ended and the connection may carry another request."""
        return self.complete and self.keep_alive and not self.lost and not self.spoiled

    def abort(self, error: BaseException) -> None:
        """Give the connection up now: the wait in progress (or the next) raises ``error``."""
        self._fail(error)
        self.close()

    def close(self) -> None:
        self.lost = True
        if self._transport is not None:
            self._transport.close()

    # ------------------------------------------------------------ timers

    def _slow(self, waiter: asyncio.Future[None], left: float) -> None:
        hook, self.on_slow = self.on_slow, None
        if hook is not None and not waiter.done():
            hook()
        if not waiter.done():
            self._timer = self._loop.call_later(left, self._expire, waiter)

    def _expire(self, waiter: asyncio.Future[None]) -> None:
        if not waiter.done():
            self.spoiled = True
            self.error = UpstreamTimeout("the upstream did not answer in time")
            waiter.set_exception(self.error)

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _fail(self, error: BaseException) -> None:
        self.spoiled = True
        if self.complete or self.error is not None:
            return
        self.error = error
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)

    # ------------------------------------------------------------ asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        if not self._in_flight or self.complete:
            # Bytes nobody asked for (a 408 on an idle connection, junk after an answer).
            self.spoiled = True
            self.close()
            return
        self.got_data = True
        try:
            self._parser.feed_data(data)
        except HttpParserUpgrade:
            self.abort(UpstreamBroken("the upstream switched protocols unasked"))
        except HttpParserError as exc:
            self.abort(UpstreamBroken(f"the upstream's answer is not HTTP/1.1: {exc}"))

    def eof_received(self) -> bool | None:
        self.lost = True  # never reused, nor written to
        return None  # the transport closes itself; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if self._in_flight and not self.complete:
            if self.head_done and self._until_close():
                self.complete = True  # RFC 9112 6.3 item 8: the body ends with the connection
                self._wake()
            else:
                self._fail(UpstreamBroken("the upstream closed the connection"))
        self._wake()
        if self.on_lost is not None:
            self.on_lost(self)

    def pause_writing(self) -> None:
        self._writing_paused = True

    def resume_writing(self) -> None:
        self._writing_paused = False
        self._wake()

    def _until_close(self) -> bool:
        """The answer has no length of its own: its body is what came before the close.

        llhttp read it so (RFC 9112 section 6.3): no ``Content-Length``, and no
        ``Transfer-Encoding`` ending in ``chunked``.
        """
        if self._head_request:
            return False
        for name, value in self.headers:
            if name == b"content-length":
                return False
            if name == b"transfer-encoding" and value.rstrip().lower().endswith(b"chunked"):
                return False
        return True

    # ------------------------------------------------------------ llhttp callbacks

    def on_message_begin(self) -> None:
        if self.complete:
            raise UpstreamBroken("a second answer to one request")

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        if status < 200:  # 100 Continue, 102, 103: interim, skipped (a 101 raises an upgrade)
            self._interim = True
            self.headers = []
            return
        self.status = status
        self.keep_alive = self._parser.should_keep_alive()
        self.head_done = True
        if self._head_request:  # no body, whatever the headers announce (RFC 9110 9.3.2)
            self._renew_parser = True
            self.complete = True
        self._wake()

    def on_body(self, body: bytes) -> None:
        if self.complete:  # the announced body of a HEAD answer never comes; if it does: junk
            return
        self._body.append(body)
        self._buffered += len(body)
        if self._buffered >= READ_HIGH_WATER and not self._reading_paused:
            self._reading_paused = True
            assert self._transport is not None
            self._transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if self._interim:
            self._interim = False
            return
        self.complete = True
        self._wake()
