"""The pool of kept-alive connections to the upstream origin, and its limits.

At most ``max_connections`` connections are open at once (a request beyond
waits for one, up to ``timeout``); at most ``max_keepalive`` idle ones are
kept, each for ``keepalive_expiry`` seconds (the newest is reused first, and a
single timer closes the expired ones). A connection the upstream closes while
idle leaves the pool at once. ``http`` and ``https`` origins (TLS with the
:class:`~.upstream.Upstream`'s context). No environment proxy settings apply.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from urllib.parse import urlsplit

from .connection import UpstreamConnection, UpstreamTimeout, UpstreamUnreachable
from .limits import Limits

__all__ = ["Origin", "Pool"]


class Origin:
    """Where connections go: host and port of an ``http(s)://`` URL, ``Host``, and TLS.

    ``tls``: the context for an ``https`` URL (``None`` for ``http``).
    """

    def __init__(self, url: str, tls: ssl.SSLContext | None) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http:// or https:// URL: {url!r}")
        if (parts.scheme == "https") != (tls is not None):
            raise ValueError("an https:// URL needs a TLS context, an http:// one none")
        self.tls = tls
        self.host = parts.hostname
        self.port = parts.port or (443 if tls else 80)
        #: the ``Host`` header: the URL's own spelling, without user information
        self.authority = parts.netloc.rpartition("@")[2].encode("ascii")


class Pool:
    """Kept-alive connections to one origin, within :class:`Limits`."""

    def __init__(self, origin: Origin, limits: Limits) -> None:
        self._origin = origin
        self._limits = limits
        self._idle: list[UpstreamConnection] = []
        self._open = 0
        self._waiting: deque[asyncio.Future[None]] = deque()
        self._sweep: asyncio.TimerHandle | None = None
        self._closed = False
        # The loop of the first request, kept: asyncio.get_running_loop() makes a
        # getpid() system call each time (CPython 3.11), a cost on every request.
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def open_connections(self) -> int:
        return self._open

    @property
    def idle_connections(self) -> int:
        return len(self._idle)

    async def acquire(self, *, fresh: bool = False) -> UpstreamConnection:
        """A connection for one request: the newest idle one, else a new one.

        ``fresh``: never an idle one (a request sent again after a stale one failed).
        """
        loop = self._loop or self._first_loop()
        idle = self._idle
        while True:
            while idle and not fresh:
                conn = idle.pop()
                if not conn.lost and loop.time() - conn.idle_since < self._limits.keepalive_expiry:
                    return conn
                self._drop(conn)
            if self._open < self._limits.max_connections:
                break
            await self._wait_for_room(loop)
        self._open += 1
        try:
            return await self._connect(loop)
        except BaseException:
            self._open -= 1
            self._wake_one()
            raise

    def release(self, conn: UpstreamConnection) -> None:
        """Take a connection back after its request: kept if it may be reused, else closed."""
        if conn.reusable and not self._closed and len(self._idle) < self._limits.max_keepalive:
            loop = self._loop or self._first_loop()
            conn.idle_since = loop.time()
            conn.reused = True
            self._idle.append(conn)
            if self._sweep is None:
                self._sweep = loop.call_later(self._limits.keepalive_expiry, self._expire_idle)
        else:
            self._drop(conn)
        self._wake_one()

    def discard(self, conn: UpstreamConnection) -> None:
        """Close a connection whose request did not end well."""
        self._drop(conn)
        self._wake_one()

    async def aclose(self) -> None:
        self._closed = True
        for conn in self._idle:
            self._drop(conn)
        self._idle.clear()
        if self._sweep is not None:
            self._sweep.cancel()
            self._sweep = None

    # ------------------------------------------------------------ inside

    async def _connect(self, loop: asyncio.AbstractEventLoop) -> UpstreamConnection:
        origin, limits = self._origin, self._limits
        try:
            _, conn = await asyncio.wait_for(
                loop.create_connection(
                    lambda: UpstreamConnection(loop, limits.timeout),
                    origin.host,
                    origin.port,
                    ssl=origin.tls,
                    server_hostname=origin.host if origin.tls is not None else None,
                ),
                limits.connect_timeout,
            )
        except asyncio.TimeoutError:
            raise UpstreamTimeout("connecting to the upstream took too long") from None
        except OSError as exc:  # refused, unreachable, TLS handshake or certificate
            raise UpstreamUnreachable(f"cannot connect to the upstream: {exc}") from None
        conn.on_lost = self._lost_while_idle
        return conn

    async def _wait_for_room(self, loop: asyncio.AbstractEventLoop) -> None:
        waiter: asyncio.Future[None] = loop.create_future()
        self._waiting.append(waiter)
        timer = loop.call_later(self._limits.timeout, _time_out, waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            if waiter in self._waiting:
                self._waiting.remove(waiter)

    def _first_loop(self) -> asyncio.AbstractEventLoop:
        self._loop = asyncio.get_running_loop()
        return self._loop

    def _wake_one(self) -> None:
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def _drop(self, conn: UpstreamConnection) -> None:
        conn.on_lost = None
        conn.close()
        self._open -= 1

    def _lost_while_idle(self, conn: UpstreamConnection) -> None:
        if conn in self._idle:
            self._idle.remove(conn)
            self._drop(conn)
            self._wake_one()

    def _expire_idle(self) -> None:
        self._sweep = None
        loop = self._loop or self._first_loop()
        expiry = self._limits.keepalive_expiry
        now = loop.time()
        expired = [c for c in self._idle if now - c.idle_since >= expiry]
        for conn in expired:
            self._idle.remove(conn)
            self._drop(conn)
        if self._idle:
            oldest = min(c.idle_since for c in self._idle)
            self._sweep = loop.call_later(oldest + expiry - now, self._expire_idle)


def _time_out(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(UpstreamTimeout("no upstream connection was free in time"))
