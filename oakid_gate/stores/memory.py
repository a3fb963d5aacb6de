"""``memory://``: a bounded in-process store, for one process.

::

    session_store = "memory://"                        # at most 100,000 sessions
    session_store = "memory://?max_sessions=20000"     # or another bound

A session costs about 1.9 KB with the claims a provider usually sends (name,
email, groups; measured by ``benchmarks/footprint.py``), so the default bound
is about 190 MiB at most; set ``max_sessions`` from the memory you give the
process. When the bound is reached the least recently used session goes (its
user signs in again): recency is that of the last write or full read, and a
session in use is written at least once a touch interval (a minute, or a tenth
of ``idle_timeout``), so the order is right to within that interval.

Entries expire by their own time to live (dropped when met by a full read, and
swept on writes); the least recently used go first when the store is full. A sign-in under way is not stored (it travels sealed
in its own cookie), so a flood of unauthenticated requests starting sign-ins
cannot evict a signed-in session. Nothing survives a restart, and several worker
processes cannot share it: use ``sqlite://`` or ``redis://`` for that.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from urllib.parse import parse_qsl, urlsplit

from ..errors import ConfigurationError
from ..gate.records import Session
from ..gate.store import SessionStore
from .bounded import BoundedLRU

__all__ = ["MemoryStore"]

#: seconds between sweeps of expired entries, done on a write
SWEEP_INTERVAL = 60.0
DEFAULT_MAX_SESSIONS = 100_000
#: the largest max_sessions taken (about 19 GB of sessions)
LARGEST_MAX_SESSIONS = 10_000_000


class MemoryStore(SessionStore):
    """Sessions in this process's memory, bounded and LRU."""

    def __init__(
        self,
        max_sessions: int = DEFAULT_MAX_SESSIONS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_sessions = max_sessions
        self._sessions: BoundedLRU[Session] = BoundedLRU(max_sessions, clock)
        self._locks: BoundedLRU[str] = BoundedLRU(max_sessions, clock)
        #: index -> the sessions linked to it, each with when the link lapses
        self._links: dict[str, dict[str, float]] = {}
        self._mutex = threading.Lock()  # WSGI servers call from many threads
        self._clock = clock
        self._swept_at = clock()

    @classmethod
    def from_url(cls, url: str) -> MemoryStore:
        """``memory://`` or ``memory://?max_sessions=N``; anything else names the setting."""
        parts = urlsplit(url)
        params = dict(parse_qsl(parts.query, keep_blank_values=True))
        if parts.netloc or parts.path or parts.fragment or set(params) - {"max_sessions"}:
            raise ConfigurationError(
                "session_store",
                "memory:// takes only ?max_sessions=N, like memory://?max_sessions=20000",
            )
        raw = params.get("max_sessions", str(DEFAULT_MAX_SESSIONS))
        if not raw.isdigit() or not 1 <= int(raw) <= LARGEST_MAX_SESSIONS:
            raise ConfigurationError(
                "session_store",
                f"max_sessions must be a whole number from 1 to {LARGEST_MAX_SESSIONS:,}",
            )
        return cls(max_sessions=int(raw))

    def get_session(self, key: str) -> Session | None:
        with self._mutex:
            return self._sessions.get(key)

    def peek_session(self, key: str) -> Session | None:
        """The hot path's read (this store is the store of record: a read), without the
        lock: each step is one atomic dict operation, and an entry gone or replaced
        meanwhile reads as it was a moment before (an expired one is never served)."""
        return self._sessions.peek(key)

    def hot_reader(self) -> Callable[[str], Session | None]:
        """The session last written under a key, in one C call (the LRU's
        :meth:`~oakid_gate.stores.bounded.BoundedLRU.raw_reader`): neither its expiry
        checked nor its recency moved. The hot path serves a session only until its
        admission (:meth:`~oakid_gate.gate.Gate.admission`: at most the touch interval
        after it was written, never past its lifetime), which always comes before the
        expiry it was written with (:meth:`~oakid_gate.gate.lifecycle.Lifecycle.ttl`),
        and a session in use is written again at least every touch interval."""
        return self._sessions.raw_reader()

    def put_session(self, key: str, session: Session, ttl: float) -> None:
        with self._mutex:
            self._sessions.put(key, session, ttl)
            self._maybe_sweep()

    def delete_session(self, key: str) -> None:
        with self._mutex:
            self._sessions.pop(key)

    def update_session(self, key: str, session: Session, ttl: float, expected: int) -> bool:
        with self._mutex:
            current = self._sessions.get(key)
            if current is None or current.version != expected:
                return False
            self._sessions.put(key, session, ttl)
            return True

    def link_session(self, index: str, key: str, ttl: float) -> None:
        with self._mutex:
            self._links.setdefault(index, {})[key] = self._clock() + ttl

    def end_linked(self, index: str) -> int:
        with self._mutex:
            linked = self._links.pop(index, {})
            return sum(self._sessions.pop(key) is not None for key in linked)

    def acquire_lock(self, key: str, owner: str, ttl: float) -> bool:
        with self._mutex:
            if self._locks.get(key) is not None:
                return False
            self._locks.put(key, owner, ttl)
            return True

    def release_lock(self, key: str, owner: str) -> None:
        with self._mutex:
            if self._locks.get(key) == owner:
                self._locks.pop(key)

    def sweep(self) -> int:
        """Drop expired entries (they are also dropped when met, and swept on writes
        at most once every ``SWEEP_INTERVAL`` seconds)."""
        with self._mutex:
            return self._sweep()

    def _maybe_sweep(self) -> None:
        if self._clock() - self._swept_at >= SWEEP_INTERVAL:
            self._sweep()

    def _sweep(self) -> int:
        self._swept_at = self._clock()
        now = self._clock()
        for index in list(self._links):
            live = {k: t for k, t in self._links[index].items() if t > now}
            if live:
                self._links[index] = live
            else:
                del self._links[index]
        return self._sessions.sweep() + self._locks.sweep()

    def __len__(self) -> int:
        return len(self._sessions)

    def count_sessions(self) -> int:
        return len(self._sessions)
