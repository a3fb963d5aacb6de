"""The HTTP relay: one request to the upstream, its answer streamed back.

Bodies stream both ways as they come (never held whole in memory, never
decompressed): a request body with a ``Content-Length`` is sent as it is, one
the client sent chunked is sent chunked; the answer goes to the client as it
arrives, and reading from the upstream pauses while the client is slow.
Connections come from the :class:`~.pool.Pool`, kept alive; redirects and
``Set-Cookie`` go to the client as the upstream wrote them (nothing is followed
or kept). An idempotent request without a body is sent once more, on a new
connection, when a kept-alive one turns out dead before any answer. An upstream
that cannot be reached or does not answer in time is a 502 page (JSON for API
clients), never a traceback; an answer that breaks off midway closes the
client's connection unfinished, which is how the client learns the body is
incomplete.

The client leaving is noticed by a task that waits on ``receive()``, started
only when it matters: while a body streams, or once the upstream has taken
:data:`WATCH_AFTER` seconds to answer. The upstream connection is then closed.
"""

from __future__ import annotations

import asyncio
import logging

from starlette.types import Receive, Scope, Send

from ..gate.replies import error_reply
from .connection import (
    ClientGone,
    UpstreamBroken,
    UpstreamConnection,
    UpstreamError,
    UpstreamTimeout,
)
from .headers import Headers, downstream_headers
from .limits import Limits
from .pool import Origin, Pool
from .upstream import Upstream

__all__ = ["WATCH_AFTER", "HTTPRelay", "bad_gateway_reply", "send_simple"]

log = logging.getLogger("oakid_gate")

_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS"})
#: a wait for the upstream's answer longer than this starts watching for the client leaving
WATCH_AFTER = 0.5
_LENGTH, _CHUNKED = 1, 2  # how the client framed its request body


class HTTPRelay:
    """Forward HTTP requests to the upstream over a pool of kept-alive connections."""

    def __init__(self, upstream: Upstream, limits: Limits) -> None:
        self._upstream = upstream
        self._origin = Origin(upstream.url, upstream.tls)
        self.pool = Pool(self._origin, limits)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        target = self._upstream.target(scope)
        if target is None:
            await send_simple(send, 400, b"Bad request target\n")
            return
        method: str = scope["method"]
        framing = _framing(scope["headers"])
        head = _request_head(
            method, target, self._origin.authority, self._upstream.headers(scope), framing
        )
        watch = _DisconnectWatch(receive)
        try:
            conn = await self._request(method, head, framing, receive, watch)
            await self._respond(conn, watch, send)
        except ClientGone:
            return
        except UpstreamError as exc:
            await self._bad_gateway(scope, send, exc)
        finally:
            watch.stop()

    async def _request(
        self, method: str, head: bytes, framing: int, receive: Receive, watch: _DisconnectWatch
    ) -> UpstreamConnection:
        """Send the request; the connection once the answer's status and headers are in."""
        retry = not framing and method in _IDEMPOTENT
        fresh = False
        while True:
            conn = await self.pool.acquire(fresh=fresh)
            try:
                conn.start(head, head_request=method == "HEAD")
                if framing:
                    await _send_body(conn, receive, chunked=framing == _CHUNKED)
                watch.conn = conn
                conn.on_slow, conn.slow_after = watch.start, WATCH_AFTER
                while not conn.head_done:
                    await conn.wait()
                conn.on_slow = None
                return conn
            except UpstreamBroken:
                self.pool.discard(conn)
                # A kept-alive connection the upstream closed just as it was reused:
                # a request without a body or side effects is sent again, once.
                if retry and conn.reused and not conn.got_data:
                    retry, fresh = False, True
                    continue
                raise
            except BaseException:
                self.pool.discard(conn)
                raise

    async def _respond(self, conn: UpstreamConnection, watch: _DisconnectWatch, send: Send) -> None:
        """Stream the answer to the client; the connection goes back to the pool if it ended well."""
        released = False
        try:
            headers = downstream_headers(conn.headers, conn.status)
            await send({"type": "http.response.start", "status": conn.status, "headers": headers})
            chunk = conn.take()
            while not conn.complete:
                if chunk:
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                else:
                    watch.start()  # a streamed answer: the client may leave in the middle
                    await conn.wait()
                chunk = conn.take()
            watch.stop()
            self.pool.release(conn)
            released = True
            await send({"type": "http.response.body", "body": chunk, "more_body": False})
        except UpstreamError as exc:
            # The status line is gone: closing the connection unfinished is
            # how the client learns that the body is incomplete.
            log.warning("proxy: the upstream's answer broke off (%s)", type(exc).__name__)
        except OSError:
            pass  # the client went away (servers that raise on send)
        finally:
            if not released:
                self.pool.discard(conn)

    async def _bad_gateway(self, scope: Scope, send: Send, exc: UpstreamError) -> None:
        timed_out = isinstance(exc, UpstreamTimeout)
        how = "did not answer in time" if timed_out else "is not answering"
        cause = f"upstream {self._upstream.url} {how} ({type(exc).__name__})"
        status, headers, body = bad_gateway_reply(scope, timed_out=timed_out, cause=cause)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send(
            {"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body}
        )

    async def aclose(self) -> None:
        await self.pool.aclose()


class _DisconnectWatch:
    """Closes the upstream connection when the client disconnects: a task on ``receive()``.

    Started only when needed (:meth:`start`), after the request body was read.
    """

    __slots__ = ("_receive", "_task", "conn")

    def __init__(self, receive: Receive) -> None:
        self._receive = receive
        self._task: asyncio.Task[None] | None = None
        self.conn: UpstreamConnection | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._watch())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def _watch(self) -> None:
        try:
            while (await self._receive())["type"] != "http.disconnect":
                pass
        except Exception:  # noqa: S110 - a server whose receive() fails: the client is gone too
            pass
        if self.conn is not None:
            self.conn.abort(ClientGone())


def _framing(headers: Headers) -> int:
    """How the client's request body is framed: 0 (none), ``_LENGTH`` or ``_CHUNKED``."""
    for name, _ in headers:
        lower = name.lower()
        if lower == b"content-length":
            return _LENGTH
        if lower == b"transfer-encoding":
            return _CHUNKED
    return 0


def _request_head(
    method: str, target: str, authority: bytes, headers: Headers, framing: int
) -> bytes:
    """The request line and headers, serialized in one join (RFC 9112 sections 3 and 5)."""
    parts = [method.encode("ascii"), b" ", target.encode("latin-1"), b" HTTP/1.1\r\nhost: "]
    parts.append(authority)
    for name, value in headers:
        parts += (b"\r\n", name, b": ", value)
    if framing == _CHUNKED:  # the client's own Transfer-Encoding is hop-by-hop, hence gone
        parts.append(b"\r\ntransfer-encoding: chunked")
    parts.append(b"\r\n\r\n")
    return b"".join(parts)


async def _send_body(conn: UpstreamConnection, receive: Receive, *, chunked: bool) -> None:
    """The client's request body, as it arrives, at the pace the upstream reads it.

    An upstream that answers before the body is whole gets no more of it (and
    the connection is not reused).
    """
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        if conn.head_done:
            conn.spoiled = True
            return
        chunk: bytes = message.get("body", b"")
        more: bool = message.get("more_body", False)
        if chunked:
            if chunk:
                conn.write(b"%x\r\n%b\r\n" % (len(chunk), chunk))
            if not more:
                conn.write(b"0\r\n\r\n")
        elif chunk:
            conn.write(chunk)
        if not more:
            return
        await conn.drain()


async def send_simple(send: Send, status: int, text: bytes) -> None:
    headers = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(text)).encode()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": text})


def bad_gateway_reply(scope: Scope, *, timed_out: bool, cause: str) -> tuple[int, Headers, bytes]:
    """The 502 answer, logged with ``cause``: the gate's page for browsers (its templates,
    the site's name, a reference that is also in the log line), JSON for everything else.
    Behind no gate (the relay alone, in tests), a plain page."""
    message = (
        "The service behind this gate did not answer in time. Try again in a moment."
        if timed_out
        else "The service behind this gate is not answering. Try again in a moment."
    )
    gate = scope.get("oakid.gate")
    if gate is not None:
        reply = gate.gate.parts.replies.bad_gateway(gate.gate_request(scope), message, cause)
    else:
        log.warning("proxy: %s", cause)
        accept = b"".join(value for name, value in scope["headers"] if name == b"accept")
        reply = error_reply(502, "bad_gateway", "Bad gateway", message, html=b"text/html" in accept)
    headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in reply.headers]
    headers.append((b"content-length", str(len(reply.body)).encode()))
    return reply.status, headers, reply.body
