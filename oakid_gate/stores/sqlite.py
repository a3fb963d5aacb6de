"""``sqlite:///path.db``: an embedded store for one host, shared by its worker processes.

::

    session_store = "sqlite:///var/lib/oakid/sessions.db"   # relative: sqlite:///sessions.db

Sessions survive restarts, and every worker process of the host (``uvicorn
--workers``, gunicorn, several ``oakid-gate run``) sees the same sessions and
the same refresh locks. For several hosts, use ``redis://``.

How it is kept safe:

- The file is created with mode 0600 (sqlite gives its ``-wal`` and ``-shm``
  files the same mode). Records are sealed with AES-256-GCM
  (:mod:`oakid_gate.stores.codec`) under the hash of the cookie's session id:
  a copy of the file yields neither a token nor a usable cookie.
- WAL journal: readers never wait for the writer. ``busy_timeout``: a writer
  waits for another process's write instead of failing.
- Every change is one statement, or one ``BEGIN IMMEDIATE`` transaction (which
  takes the database's write lock before reading): a session is updated by
  one ``UPDATE ... WHERE`` its stored version is the one the writer read (a
  deleted session is never written back); a refresh lock is inserted only
  when absent or expired, so one process at a time holds it; a lock is
  released only by its owner.
- Times are wall-clock seconds (``time.time``), the only clock that worker
  processes and restarts share. Expired rows are never returned, and are
  swept at most once a minute, on a write.
- One connection per thread (and per process: a worker forked after the
  store was opened opens its own); any ``sqlite3.Error`` is raised as
  :class:`~oakid_gate.errors.StoreUnavailable`.

``synchronous=NORMAL``: a commit survives a crash of the process (a
refresh token that rotated is never lost to it); a power cut may lose the last
commits, and their users sign in again.

The hot path's read (``peek_session``) is served from a near cache in each
process (:mod:`oakid_gate.stores.near`, 10,000 sessions by default), so a
signed-in request costs no sqlite read on a hit and one ``SELECT`` on a miss.
Its bound: **a session signed out, expired or refreshed by another process
stops being served from this process's near cache within 50 ms** (``PRAGMA
data_version``, :mod:`oakid_gate.stores.data_version`); a write or delete made
through this process's store is seen at once; no entry is served longer than
30 s, nor past its record's expiry. Every other read (refresh under its lock,
sign-out, the full path) reads the file. ``near_cache=0`` turns it off.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from urllib.parse import urlsplit

from ..errors import ConfigurationError, StoreUnavailable
from ..gate.records import Session
from ..gate.store import SessionStore
from .codec import VERSION_BYTES, SessionCodec
from .data_version import CHECK_INTERVAL, DataVersionWatch
from .near import MAX_AGE, MAXSIZE, NearCache
from .sqlite_schema import SCHEMA_VERSION, create_private_file, create_schema, with_wal

__all__ = ["SCHEMA_VERSION", "SQLiteStore", "sqlite_path"]

log = logging.getLogger("oakid_gate")

SWEEP_INTERVAL = 60.0

_UNAVAILABLE = "the session store (sqlite) is not answering"


def _unavailable(exc: sqlite3.Error) -> StoreUnavailable:
    log.warning("session store: sqlite failed: %s", exc)
    return StoreUnavailable(_UNAVAILABLE)


def sqlite_path(url: str) -> str:
    """The file of a ``sqlite:///relative`` or ``sqlite:////absolute`` URL."""
    parts = urlsplit(url)
    if parts.scheme != "sqlite" or parts.netloc or parts.query or parts.fragment:
        raise ConfigurationError(
            "session_store",
            "use sqlite:///relative/path.db or sqlite:////absolute/path.db (no host, no query)",
        )
    path = parts.path[1:] if parts.path.startswith("/") else parts.path
    if not path or path.endswith("/"):
        raise ConfigurationError(
            "session_store", "sqlite:/// needs a file name, like sqlite:///sessions.db"
        )
    if path == ":memory:" or path.startswith("file:"):
        raise ConfigurationError(
            "session_store", "an in-memory sqlite database is not shared; use memory:// instead"
        )
    return path


class SQLiteStore(SessionStore):
    """Sessions and refresh locks in one sqlite file."""

    shared = True

    def __init__(
        self,
        path: str | os.PathLike[str],
        secrets: Sequence[str],
        *,
        timeout: float = 5.0,
        clock: Callable[[], float] = time.time,
        near_cache: int = MAXSIZE,
        near_max_age: float = MAX_AGE,
        check_interval: float = CHECK_INTERVAL,
    ) -> None:
        self.path = Path(path).absolute()  # threads opening connections later may see another cwd
        self._codec = SessionCodec(secrets)
        #: the hot path's near cache (the records' expiry is on ``clock``, so are its entries)
        self.near = NearCache(near_cache, near_max_age, clock)
        self._watch = DataVersionWatch(self._connect, self.near, interval=check_interval)
        self._timeout = timeout
        self._clock = clock
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._connections_lock = threading.Lock()
        self._closed = False
        self._pid = os.getpid()
        self._next_sweep = clock()  # the first write sweeps
        try:
            create_private_file(self.path)
            conn = self._conn()
            with_wal(conn, self.path, self._timeout)
            with self._transaction(conn):
                create_schema(conn)
        except (OSError, sqlite3.Error) as exc:
            self.close()
            raise ConfigurationError(
                "session_store", f"cannot open the sqlite file {str(self.path)!r}: {exc}"
            ) from exc

    @classmethod
    def from_url(cls, url: str, secrets: Sequence[str]) -> SQLiteStore:
        return cls(sqlite_path(url), secrets)

    def __repr__(self) -> str:
        return f"SQLiteStore({str(self.path)!r})"

    # ------------------------------------------------------------ set-up

    def _conn(self) -> sqlite3.Connection:
        if self._pid != os.getpid():
            self._forked()
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        conn = self._connect()
        self._local.conn = conn
        with self._connections_lock:
            self._connections.append(conn)
        return conn

    def _connect(self) -> sqlite3.Connection:
        if self._closed:
            raise StoreUnavailable("the session store is closed")
        # Autocommit (isolation_level=None): every statement is its own
        # transaction unless BEGIN IMMEDIATE opens one. check_same_thread=False
        # so that close() may close every thread's connection, and any thread
        # may check the data version.
        conn = sqlite3.connect(
            self.path, timeout=self._timeout, isolation_level=None, check_same_thread=False
        )
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    def _forked(self) -> None:
        """In a child process (a server forking its workers after the store was opened):
        the parent's connections must not be used, nor closed (closing could checkpoint
        and remove the WAL under the parent). Leave them, and open new ones."""
        self._connections_lock = threading.Lock()  # another thread may have held it
        self._connections = []
        self._local = threading.local()
        self._pid = os.getpid()

    @contextlib.contextmanager
    def _transaction(self, conn: sqlite3.Connection) -> Iterator[None]:
        """``BEGIN IMMEDIATE``: the write lock is taken before the first read."""
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    @contextlib.contextmanager
    def _errors(self) -> Iterator[sqlite3.Connection]:
        """This thread's connection; sqlite's failures become :class:`StoreUnavailable`."""
        try:
            yield self._conn()
        except sqlite3.Error as exc:
            raise _unavailable(exc) from exc

    def _put(self, table: str, key: str, blob: bytes, ttl: float) -> None:
        """Write a sealed record that expires ``ttl`` seconds from now."""
        now = self._clock()
        with self._errors() as conn:
            conn.execute(
                f"INSERT OR REPLACE INTO {table} (key, value, expires_at) VALUES (?, ?, ?)",  # noqa: S608 - fixed names
                (key, blob, now + ttl),
            )
            self._after_write(conn, now)

    def _after_write(self, conn: sqlite3.Connection, now: float) -> None:
        if now >= self._next_sweep:
            self._next_sweep = now + SWEEP_INTERVAL
            self._sweep(conn, now)

    def _sweep(self, conn: sqlite3.Connection, now: float) -> int:
        removed = 0
        for table in ("sessions", "locks", "links"):
            removed += conn.execute(f"DELETE FROM {table} WHERE expires_at <= ?", (now,)).rowcount  # noqa: S608 - fixed names
        return removed

    def sweep(self) -> int:
        """Delete every expired row now; return how many went."""
        with self._errors() as conn:
            return self._sweep(conn, self._clock())

    # ------------------------------------------------------------ sessions

    def get_session(self, key: str) -> Session | None:
        return self._read_session(key)[0]

    def peek_session(self, key: str) -> Session | None:
        """The hot path's read: from the near cache when it holds ``key``, else one SELECT."""
        try:
            self._watch.check()
        except sqlite3.Error as exc:
            raise _unavailable(exc) from exc
        session = self.near.get(key)
        if session is not None:
            return session
        ticket = self.near.reserve(key)
        session, expires_at = self._read_session(key)
        if ticket is not None:
            self.near.fill(key, ticket, session, expires_at - self._clock())
        return session

    def hot_reader(self) -> Callable[[str], Session | None]:
        """:meth:`peek_session` in one frame: a near-cache hit before the next
        ``data_version`` check is due, and before the entry's own deadline, is four C
        calls (the watch's clock, the entry, the entry's deadline, the store's clock);
        anything else (a miss, a check due, an entry past its deadline, the cache off)
        is :meth:`peek_session` itself. Both bounds on staleness hold as they do there;
        only a hit's move in the LRU order is left out (an entry in use is kept again
        at least every ``near_max_age``, so the order is right to within it)."""
        cached, deadline = self.near.raw_readers()
        watch, clock, peek = self._watch, self._clock, self.peek_session
        watch_clock = watch.clock

        def read(key: str) -> Session | None:
            # The watch first: a check that clears the cache meanwhile is then seen
            # either in next_check (so peek) or as the cleared entry, never neither.
            if watch_clock() >= watch.next_check or (session := cached(key)) is None:
                return peek(key)
            return session if clock() < deadline(key, -math.inf) else peek(key)

        return read

    async def apeek_session(self, key: str) -> Session | None:
        return self.peek_session(key)  # a direct call, as every sqlite call here

    def _read_session(self, key: str) -> tuple[Session | None, float]:
        """The session under ``key`` and when its row expires."""
        with self._errors() as conn:
            row = conn.execute(
                "SELECT value, expires_at FROM sessions WHERE key = ? AND expires_at > ?",
                (key, self._clock()),
            ).fetchone()
        if row is None:
            return None, 0.0
        return self._codec.decode_session(key, row[0]), row[1]

    def put_session(self, key: str, session: Session, ttl: float) -> None:
        try:
            self._put("sessions", key, self._codec.encode_session(key, session), ttl)
        finally:
            self.near.invalidate(key)  # after the commit: a read that follows sees it

    def update_session(self, key: str, session: Session, ttl: float, expected: int) -> bool:
        """One ``UPDATE ... WHERE`` the stored record still holds version ``expected`` (its
        clear prefix, :mod:`~oakid_gate.stores.codec`): atomic in sqlite, across processes."""
        blob = self._codec.encode_session(key, session)
        now = self._clock()
        try:
            with self._errors() as conn:
                written = conn.execute(
                    "UPDATE sessions SET value = ?, expires_at = ? "
                    "WHERE key = ? AND expires_at > ? AND substr(value, 1, ?) = ?",
                    (blob, now + ttl, key, now, VERSION_BYTES, self._codec.version_tag(expected)),
                ).rowcount
                self._after_write(conn, now)
        finally:
            self.near.invalidate(key)
        return written == 1

    def link_session(self, index: str, key: str, ttl: float) -> None:
        now = self._clock()
        with self._errors() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO links (index_key, session_key, expires_at) VALUES (?, ?, ?)",
                (index, key, now + ttl),
            )

    def end_linked(self, index: str) -> int:
        """One transaction: the linked sessions and the links go together."""
        keys: list[str] = []
        try:
            with self._errors() as conn, self._transaction(conn):
                keys = [
                    row[0]
                    for row in conn.execute(
                        "SELECT session_key FROM links WHERE index_key = ?", (index,)
                    )
                ]
                ended = 0
                for key in keys:
                    ended += conn.execute("DELETE FROM sessions WHERE key = ?", (key,)).rowcount
                conn.execute("DELETE FROM links WHERE index_key = ?", (index,))
        finally:
            for key in keys:
                self.near.invalidate(key)
        return ended

    def delete_session(self, key: str) -> None:
        try:
            with self._errors() as conn:
                conn.execute("DELETE FROM sessions WHERE key = ?", (key,))
        finally:
            self.near.invalidate(key)

    # ------------------------------------------------------------ locks

    def acquire_lock(self, key: str, owner: str, ttl: float) -> bool:
        now = self._clock()
        with self._errors() as conn:
            # Waiters poll while a refresh runs: a plain read answers them
            # without queueing for the write lock.
            row = conn.execute("SELECT expires_at FROM locks WHERE key = ?", (key,)).fetchone()
            if row is not None and row[0] > now:
                return False
            with self._transaction(conn):
                return self._insert_lock(conn, key, owner, now, ttl)

    def _insert_lock(
        self, conn: sqlite3.Connection, key: str, owner: str, now: float, ttl: float
    ) -> bool:
        """Inside BEGIN IMMEDIATE: nobody else can insert between this read and write."""
        row = conn.execute("SELECT expires_at FROM locks WHERE key = ?", (key,)).fetchone()
        if row is not None and row[0] > now:
            return False
        conn.execute(
            "INSERT OR REPLACE INTO locks (key, owner, expires_at) VALUES (?, ?, ?)",
            (key, owner, now + ttl),
        )
        return True

    def release_lock(self, key: str, owner: str) -> None:
        with self._errors() as conn:
            conn.execute("DELETE FROM locks WHERE key = ? AND owner = ?", (key, owner))

    # ------------------------------------------------------------ the rest

    def count_sessions(self) -> int:
        """The sessions not yet expired, every worker's (one indexed count)."""
        with self._errors() as conn:
            row = conn.execute(
                "SELECT count(*) FROM sessions WHERE expires_at > ?", (self._clock(),)
            ).fetchone()
        return int(row[0])

    def ping(self) -> None:
        with self._errors() as conn:
            conn.execute("SELECT 1 FROM sessions LIMIT 1").fetchall()

    def close(self) -> None:
        self._closed = True
        self._watch.close()
        self.near.clear()
        with self._connections_lock:
            connections, self._connections = self._connections, []
        for conn in connections:
            with contextlib.suppress(sqlite3.Error):
                conn.close()
        self._local = threading.local()
