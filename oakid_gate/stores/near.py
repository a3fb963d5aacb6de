"""The near cache: opened sessions of a shared store, kept in this process for the hot path.

A shared store (``sqlite://``, ``redis://``) answers
:meth:`~oakid_gate.gate.store.SessionStore.peek_session` from here when it can,
so that a signed-in request costs no store round trip. Only the hot path reads
it; every decision that changes a session reads the store of record.

What keeps it right, whatever the store:

- Each entry is an opened :class:`Session` and the moment it stops being
  served: ``max_age`` seconds after it was cached (a safety net, whatever else
  happens), or sooner when the store's record expires.
- A write or delete made through the same store object invalidates its key at
  once; what other processes do reaches it through the store's own signal
  (sqlite: :mod:`oakid_gate.stores.data_version`; redis:
  :mod:`oakid_gate.stores.tracking`), which invalidates one key or clears all.
- A read that was in flight while its key was invalidated is not kept:
  :meth:`NearCache.reserve` leaves a marker before the read, an invalidation
  (or a clear) removes it, and :meth:`NearCache.fill` keeps the session only
  if its own marker is still there.
- While the store's signal is not known to work, the cache is *disabled*:
  empty, and nothing is filled; the hot path then reads the store.
- Bounded: at most ``maxsize`` entries (least recently used first out) and as
  many markers. A forked child starts with an empty cache.

Thread-safe: WSGI servers call from many threads, and redis's invalidations
arrive on a thread of their own. Every change is made under the lock; the hot
path's :meth:`NearCache.get` reads without it
(:meth:`~oakid_gate.stores.bounded.BoundedLRU.peek`), so a read that meets an
invalidation is ordered before it, as it would be under the lock. The same
holds for the sqlite store's one-frame hot read (:meth:`NearCache.raw_readers`),
which checks the same deadline and leaves out only the hit's move in the LRU order.
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from collections.abc import Callable
from typing import Final

from cachetools import LRUCache

from ..gate.records import Session
from .bounded import BoundedLRU

__all__ = ["MAXSIZE", "MAX_AGE", "NearCache", "Ticket", "after_fork"]

#: entries per process by default (about 2 KB each: some 20 MB at the most)
MAXSIZE: Final = 10_000
#: seconds an entry is served at most, whatever else happens (the safety net)
MAX_AGE: Final = 30.0


def after_fork(method: Callable[[], None]) -> None:
    """Call ``method``, a bound method, in every child this process forks.

    Only a weak reference is kept: a store that is gone is not kept alive for it.
    """
    ref = weakref.WeakMethod(method)

    def hook() -> None:
        bound = ref()
        if bound is not None:
            bound()

    os.register_at_fork(after_in_child=hook)


class Ticket:
    """The marker a read leaves before it goes to the store (see :meth:`NearCache.reserve`)."""

    __slots__ = ()


class NearCache:
    """Bounded, thread-safe LRU of opened sessions, each with the moment it stops being served.

    ``clock`` measures both ``max_age`` and the ``ttl`` given to :meth:`fill`
    (the store's own clock). ``maxsize=0`` keeps the cache off for good.
    """

    def __init__(
        self,
        maxsize: int = MAXSIZE,
        max_age: float = MAX_AGE,
        clock: Callable[[], float] = time.monotonic,
        *,
        enabled: bool = True,
    ) -> None:
        self.maxsize = maxsize
        self.max_age = max_age
        self._clock = clock
        #: key -> the session, each served until its own moment
        self._entries: BoundedLRU[Session] = BoundedLRU(max(1, maxsize), clock)
        self._pending: LRUCache[str, Ticket] = LRUCache(max(1, maxsize))
        self._lock = threading.Lock()
        self._enabled = enabled and maxsize > 0
        after_fork(self._after_fork)

    def __repr__(self) -> str:
        state = "enabled" if self._enabled else "disabled"
        return f"NearCache({len(self._entries)}/{self.maxsize}, {state})"

    @property
    def enabled(self) -> bool:
        return self._enabled

    # ------------------------------------------------------------ the hot path

    def get(self, key: str) -> Session | None:
        """The cached session, or ``None`` (not cached, too old, expired, or disabled)."""
        return self._entries.peek(key)

    def raw_readers(
        self,
    ) -> tuple[Callable[[str], Session | None], Callable[[str, float], float]]:
        """The entries' own reads, for a store's hot read in one frame: the session last
        kept under a key (``None``: none, and never one while the cache is disabled) and
        the moment it stops being served (on the store's clock; it must be ahead of it).
        Both read as :meth:`get` does, without moving the entry in the LRU order."""
        return self._entries.raw_reader(), self._entries.raw_expiries()

    # ------------------------------------------------------------ a miss

    def reserve(self, key: str) -> Ticket | None:
        """Before reading ``key`` from the store: the ticket to :meth:`fill` with, or ``None``
        when the cache is disabled (then read the store and keep nothing)."""
        if not self._enabled:
            return None
        ticket = Ticket()
        with self._lock:
            self._pending[key] = ticket
        return ticket

    def fill(self, key: str, ticket: Ticket, session: Session | None, ttl: float | None) -> None:
        """Keep what the read reserved with ``ticket`` found, unless ``key`` was invalidated
        (or the cache cleared or disabled) since; ``ttl``: seconds until the record
        expires in the store, ``None`` when it does not."""
        now = self._clock()
        deadline = now + (self.max_age if ttl is None else min(self.max_age, ttl))
        with self._lock:
            if self._pending.get(key) is not ticket:
                return
            del self._pending[key]
            if session is not None and self._enabled:
                self._entries.put_until(key, session, deadline)

    # ------------------------------------------------------------ invalidation

    def invalidate(self, key: str) -> None:
        """``key`` changed or went: drop it, and any read of it in flight."""
        with self._lock:
            self._entries.pop(key)
            self._pending.pop(key, None)

    def clear(self) -> None:
        """Anything may have changed: drop every entry and every read in flight."""
        with self._lock:
            self._entries.clear()
            self._pending.clear()

    def disable(self) -> None:
        """The store's signal is lost: empty, and fill nothing until :meth:`enable`."""
        with self._lock:
            self._enabled = False
            self._entries.clear()
            self._pending.clear()

    def enable(self) -> None:
        """The store's signal works again: start serving, empty (``maxsize=0``: stays off)."""
        with self._lock:
            self._entries.clear()
            self._pending.clear()
            self._enabled = self.maxsize > 0

    def _after_fork(self) -> None:
        # The parent's lock may have been held by one of its threads.
        self._lock = threading.Lock()
        self.clear()

    # ------------------------------------------------------------ inspection

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries
