"""sqlite's signal to the near cache: ``PRAGMA data_version``, read at most every 50 ms.

``PRAGMA data_version`` on a connection changes whenever any *other*
connection commits a change to the file: another worker process, another
host process, or another thread of this one (each thread has a connection of
its own). The sqlite store keeps one more connection for this alone, and on
the hot path, at most once every :data:`CHECK_INTERVAL` seconds, reads it;
when it moved, the whole near cache (:mod:`oakid_gate.stores.near`) is
cleared. It does not say which key changed, so any session written anywhere
empties the cache, at most once per interval: a host that writes sessions
constantly gets fewer hits, never a stale one.

The bound: a hot-path read that is served from the near cache was preceded
by a check less than :data:`CHECK_INTERVAL` ago, so a session signed out,
expired or refreshed by another process stops being served here within
50 ms of its commit (the safety net, ``max_age``, and the record's own expiry
apply as well). 50 ms is below what a person notices after signing out, and
the read costs about 10 us, so checking that often costs nothing measurable.

The first reading (at start, after an error, in a forked child) clears the
cache too, since what changed before it is unknown.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Callable
from typing import Final

from .near import NearCache, after_fork

__all__ = ["CHECK_INTERVAL", "DataVersionWatch"]

#: seconds between two readings of ``PRAGMA data_version``, at the most, while requests come
CHECK_INTERVAL: Final = 0.05


class DataVersionWatch:
    """Clears ``near`` when another connection committed to the file since the last look.

    ``connect`` opens the watch's own connection (it is used under a lock, by
    whichever thread checks).
    """

    def __init__(
        self,
        connect: Callable[[], sqlite3.Connection],
        near: NearCache,
        *,
        interval: float = CHECK_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.interval = interval
        self._connect = connect
        self._near = near
        #: the clock of :attr:`next_check`
        self.clock = clock
        self._conn: sqlite3.Connection | None = None
        self._version: int | None = None
        #: when the next :meth:`check` reads ``data_version`` (the first one does): a
        #: hot read may serve the near cache without a check only before it
        self.next_check = 0.0
        self._lock = threading.Lock()
        after_fork(self._after_fork)

    def check(self) -> None:
        """Read ``data_version`` if the last reading is ``interval`` old; raises ``sqlite3.Error``."""
        now = self.clock()
        if now < self.next_check:
            return
        with self._lock:
            if now < self.next_check:  # another thread read it while this one waited
                return
            try:
                if self._conn is None:
                    self._conn = self._connect()
                version = self._conn.execute("PRAGMA data_version").fetchone()[0]
            except sqlite3.Error:
                # Start again at the next check: a new connection, a new first reading.
                self._drop()
                self._near.clear()
                raise
            if version != self._version:
                self._near.clear()
                self._version = version
            self.next_check = self.clock() + self.interval

    def close(self) -> None:
        with self._lock:
            self._drop()

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        self._version = None
        if conn is not None:
            with contextlib.suppress(sqlite3.Error):
                conn.close()

    def _after_fork(self) -> None:
        """In a forked child: the parent's connection is left alone (as the store's own are)."""
        self._lock = threading.Lock()
        self._conn = None
        self._version = None
        self.next_check = 0.0
