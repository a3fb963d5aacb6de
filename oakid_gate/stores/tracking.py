"""redis's signal to the near cache: server-assisted client-side caching (``CLIENT TRACKING``).

redis (6.0 or later) tells a client which keys changed. redis-py's asyncio
client has no client-side caching, so the redis store does it here, the same
way for ASGI and WSGI: a daemon thread per store and process holds two
connections of its own (RESP2),

- a *subscriber* on ``__redis__:invalidate``, and
- a *tracking* connection that sent ``CLIENT TRACKING ON REDIRECT <subscriber>
  BCAST PREFIX oakid:s:``,

so that redis sends the subscriber the name of every session key that is
written, deleted, expired or evicted, by anyone, whichever connection read it
(broadcast mode: the store's reads go over its ordinary pooled connections).
Each name invalidates that key in the near cache (:mod:`oakid_gate.stores.near`);
a ``FLUSHDB`` or ``FLUSHALL`` (no names) clears it.

Health: every :data:`HEALTH_INTERVAL` (1 s) both connections are sent a
``PING``; if either has not answered the previous one, or breaks, the near
cache is emptied and disabled (the hot path reads redis) until both are
connected and tracking again, which is retried every second. The cache is
enabled only once tracking is on.

The bounds: a session signed out, expired or refreshed by another process
stops being served from this process's near cache as soon as redis's
invalidation arrives (a network round trip, on loopback well under a
millisecond); if the invalidation connection fails silently (a stalled
server, a dropped route), within 2 s (two health intervals); never longer
than the entry's ``max_age`` (30 s) nor past the record's expiry.

A redis that refuses tracking (older than 6.0, or ``CLIENT`` not allowed to
this user) leaves the near cache off for the life of the store; a warning
says so, and the store works as without it.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from .near import NearCache, after_fork

if TYPE_CHECKING:
    from redis.connection import AbstractConnection

__all__ = ["HEALTH_INTERVAL", "Tracking"]

log = logging.getLogger("oakid_gate")

CHANNEL: Final = "__redis__:invalidate"
#: seconds between health checks of the two connections
HEALTH_INTERVAL: Final = 1.0
#: the longest the listener waits before it looks whether it should stop
POLL: Final = 0.1


class _Unsupported(Exception):
    """The server refused a command that tracking needs."""


class _Stalled(Exception):
    """A connection did not answer its health check in time."""


@dataclass(eq=False, repr=False)
class Tracking:
    """Keeps ``near`` in step with redis through ``CLIENT TRACKING``, on a daemon thread.

    Started lazily by :meth:`started` (the hot path calls it: one attribute
    check once running), again in a forked child, and after :meth:`stop`.
    Only the current listener may enable or disable the cache.
    """

    url: str
    near: NearCache
    prefix: str
    interval: float = HEALTH_INTERVAL
    connect_timeout: float = 1.0
    _listener: _Listener | None = field(default=None, init=False)
    _mutex: threading.Lock = field(default_factory=threading.Lock, init=False)

    def __post_init__(self) -> None:
        after_fork(self._after_fork)

    def __repr__(self) -> str:
        return f"Tracking({self.prefix!r}, {self._listener!r})"  # never the URL: it may hold a password

    def started(self) -> NearCache:
        """The near cache, its listener started if it was not (the hot path's call)."""
        if self._listener is None and self.near.maxsize > 0:
            with self._mutex:
                if self._listener is None:
                    self._listener = _Listener(self)
                    self._listener.start()
        return self.near

    @property
    def listener(self) -> _Listener | None:
        """The listener, for inspection (its state, its connections' client ids)."""
        return self._listener

    def stop(self) -> None:
        """Stop listening (the listener closes its connections within ``POLL``); empty the cache."""
        with self._mutex:
            listener, self._listener = self._listener, None
            self.near.disable()
        if listener is not None:
            listener.stop()

    def enable(self, listener: _Listener) -> None:
        with self._mutex:
            if self._listener is listener:
                self.near.enable()

    def disable(self, listener: _Listener) -> None:
        with self._mutex:
            if self._listener is listener:
                self.near.disable()

    def _after_fork(self) -> None:
        """In a forked child: no listener runs here; the cache waits for one of its own."""
        self._mutex = threading.Lock()
        self._listener = None
        self.near.disable()


class _Listener(threading.Thread):
    """Connects, turns tracking on, listens; on any failure disables the cache and retries."""

    def __init__(self, tracking: Tracking) -> None:
        super().__init__(name="oakid-gate redis tracking", daemon=True)
        self.state = "starting"  # then "tracking", "down", "unsupported" or "stopped"
        #: the client ids of (subscriber, tracking connection) while tracking
        self.client_ids: tuple[int, int] | None = None
        #: invalidation messages handled so far
        self.invalidations = 0
        self._t = tracking
        self._prefix = tracking.prefix.encode()
        self._stopping = threading.Event()
        self._unanswered: set[str] = set()

    def __repr__(self) -> str:
        return f"_Listener({self.state}, ids={self.client_ids})"

    def stop(self) -> None:
        self._stopping.set()

    def run(self) -> None:
        try:
            while not self._stopping.is_set():
                try:
                    self._track()
                except _Unsupported as exc:
                    log.warning(
                        "session store: redis refuses client tracking (%s); "
                        "the near cache stays off and every request reads redis",
                        exc,
                    )
                    self.state = "unsupported"
                    return
                except Exception as exc:  # whatever broke, the cache must not outlive the signal
                    self._t.disable(self)
                    if self.state != "down" and not self._stopping.is_set():
                        log.warning(
                            "session store: redis client tracking is not on (%s); "
                            "the near cache is off until it is back",
                            type(exc).__name__,
                        )
                self.state = "down"
                self._stopping.wait(self._t.interval)
        finally:
            self._t.disable(self)
            if self.state != "unsupported":
                self.state = "stopped"

    # ------------------------------------------------------------ one session

    def _connection(self) -> _Conn:
        import redis

        # RESP2 (invalidations arrive as messages on the subscriber), bytes, and
        # timeouts that make a stalled server a failure of the health check.
        options: dict[str, Any] = {
            "protocol": 2,
            "decode_responses": False,
            "socket_timeout": self._t.interval,
            "socket_connect_timeout": self._t.connect_timeout,
        }
        pool = redis.ConnectionPool.from_url(self._t.url, **options)
        options = {**pool.connection_kwargs, **options}  # even if the URL says otherwise
        options.pop("maint_notifications_config", None)  # redis-py 7: RESP3 only
        return _Conn(pool.connection_class(**options))

    def _track(self) -> None:
        """Connect both, turn tracking on, enable the cache, listen until something fails."""
        opened: list[_Conn] = []
        try:
            sub = self._connection()
            opened.append(sub)
            sub_id = sub.client_id()
            sub.setup("SUBSCRIBE", CHANNEL)
            trk = self._connection()
            opened.append(trk)
            trk_id = trk.client_id()
            trk.setup(
                "CLIENT", "TRACKING", "ON", "REDIRECT", sub_id, "BCAST", "PREFIX", self._t.prefix
            )
            self.client_ids = (sub_id, trk_id)
            self._t.enable(self)
            self.state = "tracking"
            self._listen(sub, trk)
        finally:
            self._t.disable(self)
            self.client_ids = None
            for conn in opened:
                conn.close()

    def _listen(self, sub: _Conn, trk: _Conn) -> None:
        """Handle messages as they come; every ``interval``, check both answered their PING."""
        next_ping = time.monotonic() + self._t.interval
        self._unanswered = set()
        while not self._stopping.is_set():
            now = time.monotonic()
            if now >= next_ping:
                if self._unanswered:
                    raise _Stalled(" and ".join(sorted(self._unanswered)))
                sub.send("PING")
                trk.send("PING")
                self._unanswered = {"subscriber", "tracking"}
                next_ping = now + self._t.interval
            if sub.readable(min(POLL, max(0.0, next_ping - now))):
                self._message(sub.read())
                while sub.readable(0):
                    self._message(sub.read())
            while trk.readable(0):
                if trk.read() == b"PONG":
                    self._unanswered.discard("tracking")

    def _message(self, reply: object) -> None:
        """A message on the subscriber: an invalidation (names, or none: a flush) or a pong."""
        if not isinstance(reply, list) or not reply:
            return
        if reply[0] == b"pong":
            self._unanswered.discard("subscriber")
        elif reply[0] == b"message" and len(reply) == 3:
            keys = reply[2]
            near = self._t.near
            if keys is None:
                near.clear()
            else:
                for key in keys if isinstance(keys, list) else [keys]:
                    if isinstance(key, bytes) and key.startswith(self._prefix):
                        near.invalidate(key[len(self._prefix) :].decode())
            self.invalidations += 1


class _Conn:
    """One connection of the listener's own (redis-py's, typed here once)."""

    def __init__(self, raw: AbstractConnection) -> None:
        self._raw = raw
        raw.connect()  # type: ignore[no-untyped-call]

    def send(self, *command: str | int) -> None:
        self._raw.send_command(*command)  # type: ignore[no-untyped-call]

    def read(self) -> object:
        return self._raw.read_response()

    def readable(self, timeout: float) -> bool:
        return bool(self._raw.can_read(timeout=timeout))

    def setup(self, *command: str | int) -> object:
        """Send one set-up command and read its reply; a refusal means tracking is unsupported."""
        import redis

        self.send(*command)
        try:
            return self.read()
        except redis.ResponseError as exc:
            raise _Unsupported(str(exc).split("\n")[0][:120]) from None

    def client_id(self) -> int:
        reply = self.setup("CLIENT", "ID")
        if not isinstance(reply, int):
            raise _Unsupported(f"CLIENT ID answered {type(reply).__name__}")
        return reply

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._raw.disconnect()  # type: ignore[no-untyped-call]
