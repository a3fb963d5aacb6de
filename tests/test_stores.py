"""The session store contract, one suite for ``memory://``, ``sqlite://`` and the three
redis kinds: ``redis://``, ``redis+sentinel://`` and ``redis+cluster://``.

Every test of the contract runs against each store: a sqlite file in the test's
own directory, the session's ``redis-server``, its primary and replica behind
``redis-sentinel``, and its three-node Redis Cluster (each flushed first). Then
what only the shared stores promise (several handles, as several processes
have, see one store), what each does on its own (sqlite's file, redis's
outage), and ``open_store``.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sqlite3
import stat
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
from peers.redis_server import RedisServer

from oakid_gate.errors import ConfigurationError, StoreUnavailable
from oakid_gate.gate.records import Session, hash_key
from oakid_gate.stores import (
    MemoryStore,
    RedisStore,
    SessionStore,
    SQLiteStore,
    open_store,
)
from oakid_gate.stores import sqlite as sqlite_module

SECRETS = ("a-store-secret-of-at-least-32-bytes!",)
RACERS = 20
SHORT = 0.3  # a time to live that the tests outwait
T = TypeVar("T")


def make_session(**changes: Any) -> Session:
    """A session whose every field differs from its default."""
    now = time.time()
    values: dict[str, Any] = {
        "claims": {
            "sub": "u-alice",
            "email": "alice@example.test",
            "email_verified": True,
            "name": "Alice Ærø 🌳",
            "groups": ["admins", "staff"],
            "address": {"country": "NO"},
            "updated_at": 1_700_000_000,
        },
        "access_token": "access-token-value",
        "refresh_token": "refresh-token-value",
        "expires_at": now + 3600.25,
        "refresh_at": now + 3570.5,
        "scopes": ("openid", "profile", "email"),
        "created_at": now - 10.125,
        "last_seen": now - 1.5,
        "claims_at": now - 5.75,
        "version": 7,
        "user_claim": "email",
    }
    values.update(changes)
    return Session(**values)


@dataclass
class Backend:
    """Opens stores of one kind over the same data (for memory: a store of its own each)."""

    name: str
    url: str
    opened: list[SessionStore] = field(default_factory=list)

    def open(self, secrets: tuple[str, ...] = SECRETS) -> SessionStore:
        store = open_store(self.url, secrets)
        self.opened.append(store)
        return store

    async def close_all(self) -> None:
        for store in self.opened:
            await store.aclose()


BACKENDS = [
    pytest.param("memory", id="memory"),
    pytest.param("sqlite", id="sqlite"),
    pytest.param("redis", id="redis", marks=pytest.mark.e2e),
    pytest.param("sentinel", id="redis-sentinel", marks=pytest.mark.e2e),
    pytest.param("cluster", id="redis-cluster", marks=pytest.mark.e2e),
]
#: the redis kinds: one server, a primary found through Sentinel, a Cluster
REDIS = frozenset({"redis", "sentinel", "cluster"})
SHARED = BACKENDS[1:]


def _url(name: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if name == "memory":
        return "memory://"
    if name == "sqlite":
        return f"sqlite:///{tmp_path / 'sessions.db'}"
    # each skips (or fails under CI) without its redis peers
    url: str = request.getfixturevalue(f"{name}_url")
    return url


@pytest.fixture(params=BACKENDS)
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    b = Backend(request.param, _url(request.param, request, tmp_path))
    yield b
    await b.close_all()


@pytest.fixture(params=SHARED)
async def shared(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    b = Backend(request.param, _url(request.param, request, tmp_path))
    yield b
    await b.close_all()


@pytest.fixture
def store(backend: Backend) -> SessionStore:
    return backend.open()


def race(n: int, action: Callable[[int], T]) -> list[T]:
    """Run ``action(i)`` in ``n`` threads released at the same moment."""
    barrier = threading.Barrier(n)

    def run(i: int) -> T:
        barrier.wait()
        return action(i)

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(run, range(n)))


# ---------------------------------------------------------------- sessions


async def test_session_round_trip_keeps_every_field(store: SessionStore) -> None:
    """A stored session comes back equal in every field, through both forms."""
    session = make_session()
    store.put_session("k1", session, 60)
    await store.aput_session("k2", session, 60)
    for got in (store.get_session("k1"), await store.aget_session("k1"), store.get_session("k2")):
        assert got is not None
        assert got == session
        assert got.to_dict() == session.to_dict()
        assert got.user.identity == "alice@example.test"
        assert got.view.access_token == "access-token-value"


def test_session_round_trip_with_nulls(store: SessionStore) -> None:
    """Optional fields stored as None stay None."""
    session = make_session(refresh_token=None, expires_at=None, refresh_at=None, scopes=())
    store.put_session("k", session, 60)
    assert store.get_session("k") == session


def test_any_json_claims_round_trip(store: SessionStore) -> None:
    """Claims are whatever JSON the provider sent: nesting, numbers, any text, even a lone
    surrogate from a ``\\ud800`` escape."""
    claims = {
        "sub": "u-1",
        "nested": {"list": [1, 2.5, None, True, {"deep": ["x"]}]},
        "big": 2**63 + 1,
        "text": "línea\nnueva \u2028 \x00 \U0001f600",
        "odd": "\ud800",
    }
    session = make_session(claims=claims)
    store.put_session("k", session, 60)
    got = store.get_session("k")
    assert got is not None and dict(got.claims) == claims


def test_missing_entries_are_none(store: SessionStore) -> None:
    """Unknown keys read as absent, and deleting one is not an error."""
    assert store.get_session("nope") is None
    assert store.update_session("nope", make_session(), 60, 1) is False
    store.delete_session("nope")
    store.release_lock("nope", "owner")


def test_put_replaces_and_delete_removes(store: SessionStore) -> None:
    """A put replaces the session under its key; a delete removes it, and only it."""
    store.put_session("k", make_session(version=1), 60)
    store.put_session("k", make_session(version=2), 60)
    store.put_session("other", make_session(version=9), 60)
    got = store.get_session("k")
    assert got is not None and got.version == 2
    store.delete_session("k")
    assert store.get_session("k") is None
    other = store.get_session("other")
    assert other is not None and other.version == 9


async def test_session_expires_after_its_ttl(store: SessionStore) -> None:
    """A session is gone once its time to live has passed, and a new put renews it."""
    store.put_session("short", make_session(), SHORT)
    store.put_session("renewed", make_session(), SHORT)
    store.put_session("long", make_session(), 60)
    assert store.get_session("short") is not None
    await asyncio.sleep(SHORT / 2)
    store.put_session("renewed", make_session(), 60)
    await asyncio.sleep(SHORT / 2 + 0.2)
    assert store.get_session("short") is None
    assert await store.aget_session("short") is None
    assert store.get_session("renewed") is not None
    assert store.get_session("long") is not None


def test_a_session_and_its_lock_do_not_collide(store: SessionStore) -> None:
    """A session and a lock under the same key are two separate entries."""
    session = make_session()
    store.put_session("same", session, 60)
    assert store.acquire_lock("same", "owner", 60)
    assert store.get_session("same") == session
    store.delete_session("same")
    assert not store.acquire_lock("same", "other", 60)


# ---------------------------------------------------------------- compare and set


def test_update_writes_only_over_the_version_it_read(store: SessionStore) -> None:
    """An update over the stored version writes; over any other version it writes nothing."""
    store.put_session("k", make_session(version=3), 60)
    assert store.update_session("k", make_session(version=4, access_token="new"), 60, 3)
    got = store.get_session("k")
    assert got is not None and (got.version, got.access_token) == (4, "new")
    assert not store.update_session("k", make_session(version=4, access_token="stale"), 60, 3)
    got = store.get_session("k")
    assert got is not None and got.access_token == "new"
    # A touch keeps the version: it writes over itself.
    assert store.update_session("k", make_session(version=4, last_seen=99.0), 60, 4)


def test_sign_out_racing_a_refresh_is_not_undone(store: SessionStore) -> None:
    """Resurrection: a refresh (or touch) that read the session before a sign-out deleted
    it writes nothing afterwards; the session stays deleted."""
    store.put_session("k", make_session(version=1), 60)
    store.delete_session("k")
    assert not store.update_session("k", make_session(version=2), 60, 1)
    assert not store.update_session("k", make_session(version=1), 60, 1)
    assert store.get_session("k") is None
    assert store.peek_session("k") is None


async def test_expired_session_is_not_written_back(store: SessionStore) -> None:
    """An update after the session's time to live has passed does not bring it back."""
    store.put_session("k", make_session(version=1), SHORT)
    await asyncio.sleep(SHORT + 0.2)
    assert not store.update_session("k", make_session(version=2), 60, 1)
    assert store.get_session("k") is None


def test_concurrent_updates_of_one_version_have_one_winner(store: SessionStore) -> None:
    """Twenty threads refreshing the same version at once: exactly one write lands, and
    the stored session is the winner's."""
    for round_ in range(3):
        key = f"k-{round_}"
        store.put_session(key, make_session(version=1), 60)
        results = race(
            RACERS,
            lambda i, k=key: store.update_session(
                k, make_session(version=2, access_token=f"at-{i}"), 60, 1
            ),
        )
        assert results.count(True) == 1
        got = store.get_session(key)
        assert got is not None and got.access_token == f"at-{results.index(True)}"


async def test_aupdate_race_has_one_winner(store: SessionStore) -> None:
    """Twenty tasks updating the same version at once: exactly one write lands."""
    store.put_session("k", make_session(version=1), 60)
    results = await asyncio.gather(
        *(store.aupdate_session("k", make_session(version=2), 60, 1) for _ in range(RACERS))
    )
    assert results.count(True) == 1


def test_update_seen_by_every_process_sharing_the_store(shared: Backend) -> None:
    """A compare-and-set made through one store object is judged against what another
    wrote: the version in the store, never a process's near cache."""
    one, two = shared.open(), shared.open()
    one.put_session("k", make_session(version=1), 60)
    assert two.peek_session("k") is not None  # in two's near cache now
    assert one.update_session("k", make_session(version=2), 60, 1)
    assert not two.update_session("k", make_session(version=2, access_token="stale"), 60, 1)
    got = one.get_session("k")
    assert got is not None and got.access_token != "stale"
    one.delete_session("k")
    assert not two.update_session("k", make_session(version=3), 60, 2)
    assert one.get_session("k") is None


# ---------------------------------------------------------------- links (back-channel logout)


def test_end_linked_deletes_the_linked_sessions_only(store: SessionStore) -> None:
    """Sessions linked to an index end together; others stay; the link goes with them."""
    for key in ("a", "b", "c"):
        store.put_session(key, make_session(), 60)
    store.link_session("user-1", "a", 60)
    store.link_session("user-1", "b", 60)
    store.link_session("user-2", "c", 60)
    assert store.peek_session("a") is not None  # in a near cache, where there is one
    assert store.end_linked("user-1") == 2
    assert store.get_session("a") is None and store.peek_session("a") is None
    assert store.get_session("b") is None
    assert store.get_session("c") is not None
    assert store.end_linked("user-1") == 0  # the link went too
    assert store.end_linked("nobody") == 0


async def test_aend_linked_equals_end_linked(store: SessionStore) -> None:
    store.put_session("a", make_session(), 60)
    await store.alink_session("i", "a", 60)
    assert await store.aend_linked("i") == 1
    assert store.get_session("a") is None


def test_a_link_to_a_session_already_gone_ends_nothing(store: SessionStore) -> None:
    store.link_session("i", "gone", 60)
    assert store.end_linked("i") == 0


def test_end_linked_is_seen_by_every_handle(shared: Backend) -> None:
    """A back-channel logout handled by one process ends the session for all of them."""
    one, two = shared.open(), shared.open()
    one.put_session("k", make_session(), 60)
    one.link_session("user", "k", 60)
    assert two.get_session("k") is not None
    assert two.end_linked("user") == 1
    assert one.get_session("k") is None


def test_count_sessions_where_the_store_can(backend: Backend) -> None:
    """memory and sqlite count their sessions (expired ones not, for sqlite); redis says
    it cannot (it would have to scan every key)."""
    store = backend.open()
    store.put_session("a", make_session(), 60)
    store.put_session("b", make_session(), 60)
    count = store.count_sessions()
    if backend.name in REDIS:
        assert count is None
    else:
        assert count == 2


# ---------------------------------------------------------------- locks


def test_lock_is_exclusive(store: SessionStore) -> None:
    """While a lock is held, nobody else, not even its owner, acquires it again."""
    assert store.acquire_lock("k", "owner-1", 60)
    assert not store.acquire_lock("k", "owner-2", 60)
    assert not store.acquire_lock("k", "owner-1", 60)
    assert store.acquire_lock("other-key", "owner-2", 60)


def test_lock_race_has_one_winner(store: SessionStore) -> None:
    """Twenty threads acquiring the same lock at once: exactly one holds it."""
    for round_ in range(3):
        results = race(RACERS, lambda i, r=round_: store.acquire_lock(f"k-{r}", f"owner-{i}", 60))
        assert results.count(True) == 1


async def test_alock_race_has_one_winner(store: SessionStore) -> None:
    """Twenty tasks acquiring the same lock at once: exactly one holds it."""
    results = await asyncio.gather(
        *(store.aacquire_lock("k", f"owner-{i}", 60) for i in range(RACERS))
    )
    assert results.count(True) == 1


def test_release_only_by_owner(store: SessionStore) -> None:
    """Only the owner's release frees a lock; anyone's release of a free lock is harmless."""
    assert store.acquire_lock("k", "owner-1", 60)
    store.release_lock("k", "owner-2")
    assert not store.acquire_lock("k", "owner-2", 60)
    store.release_lock("k", "owner-1")
    assert store.acquire_lock("k", "owner-2", 60)
    store.release_lock("k", "owner-1")  # no longer the owner: nothing happens
    assert not store.acquire_lock("k", "owner-3", 60)


async def test_lock_expires_and_a_late_release_spares_the_next_holder(store: SessionStore) -> None:
    """A lock whose holder vanished frees itself; the old holder cannot release the new one's."""
    assert store.acquire_lock("k", "crashed", SHORT)
    await asyncio.sleep(SHORT + 0.2)
    assert store.acquire_lock("k", "next", 60)
    store.release_lock("k", "crashed")
    assert not store.acquire_lock("k", "third", 60)


# ---------------------------------------------------------------- async forms


async def test_async_forms_equal_sync_forms(store: SessionStore) -> None:
    """Each ``a``-method does what its synchronous twin does, on the same data."""
    session = make_session()
    await store.aput_session("k", session, 60)
    assert store.get_session("k") == session
    store.put_session("k2", session, 60)
    assert await store.aget_session("k2") == session
    assert await store.aupdate_session("k2", make_session(version=8), 60, 7)
    assert not await store.aupdate_session("k2", make_session(version=8), 60, 7)
    assert store.update_session("k2", make_session(version=9), 60, 8)
    refreshed = await store.aget_session("k2")
    assert refreshed is not None and refreshed.version == 9
    await store.adelete_session("k2")
    assert store.get_session("k2") is None

    assert await store.aacquire_lock("l", "a", 60)
    assert not store.acquire_lock("l", "b", 60)
    await store.arelease_lock("l", "b")
    assert not await store.aacquire_lock("l", "b", 60)
    await store.arelease_lock("l", "a")
    assert store.acquire_lock("l", "b", 60)

    store.ping()
    await store.aping()


async def test_peek_sees_this_processs_own_writes_at_once(store: SessionStore) -> None:
    """The hot path's read never lags behind a write or delete made through the same store."""
    key = hash_key("peeked")
    first, second = make_session(version=1), make_session(version=2, access_token="at-2")
    assert store.peek_session(key) is None and await store.apeek_session(key) is None
    store.put_session(key, first, 60)
    assert store.peek_session(key) == first and await store.apeek_session(key) == first
    await store.aput_session(key, second, 60)
    assert store.peek_session(key) == second and await store.apeek_session(key) == second
    store.delete_session(key)
    assert store.peek_session(key) is None and await store.apeek_session(key) is None


# ---------------------------------------------------------------- shared stores


async def test_a_second_handle_sees_the_same_store(shared: Backend) -> None:
    """Two handles (as two worker processes have) share sessions and locks."""
    one, two = shared.open(), shared.open()
    assert one.shared and two.shared
    session = make_session()
    one.put_session("k", session, 60)
    assert two.get_session("k") == session
    assert await two.aget_session("k") == session
    assert one.acquire_lock("l", "first", 60)
    assert not two.acquire_lock("l", "second", 60)
    two.release_lock("l", "second")
    one.release_lock("l", "first")
    assert two.acquire_lock("l", "second", 60)
    two.delete_session("k")
    assert one.get_session("k") is None


def test_races_across_handles_have_one_winner(shared: Backend) -> None:
    """Twenty threads, each with a handle of its own, race to update one session and for
    one lock."""
    handles = [shared.open() for _ in range(RACERS)]
    handles[0].put_session("s", make_session(version=1), 60)
    updated = race(RACERS, lambda i: handles[i].update_session("s", make_session(version=2), 60, 1))
    assert updated.count(True) == 1
    locked = race(RACERS, lambda i: handles[i].acquire_lock("k", f"owner-{i}", 60))
    assert locked.count(True) == 1


# ---------------------------------------------------------------- sqlite


@pytest.fixture
def db(tmp_path: Path) -> Iterator[SQLiteStore]:
    store = SQLiteStore(tmp_path / "sessions.db", SECRETS)
    yield store
    store.close()


def test_sqlite_file_is_private_and_in_wal_mode(db: SQLiteStore) -> None:
    """The file and its WAL companions are readable by their owner only; the journal is WAL."""
    db.put_session("k", make_session(), 60)
    files = [p for p in db.path.parent.iterdir() if p.name.startswith("sessions.db")]
    assert {p.name for p in files} >= {"sessions.db", "sessions.db-wal", "sessions.db-shm"}
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name
    with sqlite3.connect(db.path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_sqlite_ignores_and_sweeps_expired_rows(db: SQLiteStore, tmp_path: Path) -> None:
    """Expired rows are never read back, and a sweep deletes them."""
    clock = [time.time()]
    store = SQLiteStore(db.path, SECRETS, clock=lambda: clock[0])
    try:
        store.put_session("old", make_session(), 10)
        assert store.acquire_lock("old", "owner", 10)
        store.put_session("new", make_session(), 100)
        clock[0] += 50
        assert store.get_session("old") is None
        assert store.sweep() == 2  # the session and the lock
        with sqlite3.connect(db.path) as conn:
            assert conn.execute("SELECT key FROM sessions").fetchall() == [("new",)]
            assert conn.execute("SELECT count(*) FROM locks").fetchone() == (0,)
    finally:
        store.close()


def test_sqlite_sweeps_on_writes(db: SQLiteStore) -> None:
    """Writes sweep expired rows now and then, without anyone calling sweep()."""
    clock = [time.time()]
    store = SQLiteStore(db.path, SECRETS, clock=lambda: clock[0])
    try:
        for i in range(5):
            store.put_session(f"old-{i}", make_session(), 1)
        clock[0] += sqlite_module.SWEEP_INTERVAL + 1
        store.put_session("new", make_session(), 100)
        with sqlite3.connect(db.path) as conn:
            assert conn.execute("SELECT key FROM sessions").fetchall() == [("new",)]
    finally:
        store.close()


@pytest.mark.filterwarnings("ignore:.*fork.*:DeprecationWarning")
def test_sqlite_store_opened_before_a_fork_works_in_the_child(db: SQLiteStore) -> None:
    """A worker forked after the store was opened uses connections of its own."""
    session = make_session()
    db.put_session("parent", session, 60)
    inherited = db._conn()
    pid = os.fork()
    if pid == 0:  # the child: exit 0 only if everything works
        code = 1
        try:
            ok = db.get_session("parent") == session and db._conn() is not inherited
            db.put_session("child", session, 60)
            code = 0 if ok and db.acquire_lock("k", "child", 60) else 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert db.get_session("child") == session  # the parent's connection still works
    assert not db.acquire_lock("k", "parent", 60)


def test_sqlite_of_the_earlier_schema_is_brought_up_to_date(tmp_path: Path) -> None:
    """A file made by the version that stored sign-ins (schema 1, a ``logins`` table) is
    opened, and the table of sign-ins is dropped."""
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE logins (key TEXT PRIMARY KEY, value BLOB, expires_at REAL)")
        conn.execute("PRAGMA user_version = 1")
    store = SQLiteStore(path, SECRETS)
    try:
        store.put_session("k", make_session(), 60)
        assert store.get_session("k") is not None
    finally:
        store.close()
    with sqlite3.connect(path) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert "logins" not in tables
        assert conn.execute("PRAGMA user_version").fetchone()[0] == sqlite_module.SCHEMA_VERSION


def test_sqlite_sessions_survive_reopening(db: SQLiteStore) -> None:
    """A new store on the same file (a restarted process) finds the sessions."""
    session = make_session()
    db.put_session("k", session, 60)
    db.close()
    again = SQLiteStore(db.path, SECRETS)
    try:
        assert again.get_session("k") == session
    finally:
        again.close()


def test_sqlite_failure_is_store_unavailable(db: SQLiteStore) -> None:
    """sqlite's errors (here: a table gone under the store) answer StoreUnavailable."""
    db.put_session("k", make_session(), 60)
    with sqlite3.connect(db.path) as conn:
        conn.execute("DROP TABLE sessions")
    with pytest.raises(StoreUnavailable):
        db.get_session("k")
    with pytest.raises(StoreUnavailable):
        db.put_session("k", make_session(), 60)
    with pytest.raises(StoreUnavailable):
        db.ping()


def test_sqlite_closed_store_is_unavailable(db: SQLiteStore) -> None:
    """After close(), calls answer StoreUnavailable."""
    db.close()
    with pytest.raises(StoreUnavailable):
        db.get_session("k")


def test_sqlite_file_that_cannot_be_opened_names_the_setting(tmp_path: Path) -> None:
    """A sqlite path in a missing directory is a start-up error naming session_store."""
    with pytest.raises(ConfigurationError) as info:
        open_store(f"sqlite:///{tmp_path}/missing/dir/sessions.db", SECRETS)
    assert info.value.setting == "session_store"


# ---------------------------------------------------------------- redis outage


@pytest.fixture
async def redis_store(redis_url: str) -> AsyncIterator[RedisStore]:
    store = RedisStore(redis_url, SECRETS)
    yield store
    await store.aclose()


async def test_redis_outage_is_fast_store_unavailable_and_recovers(
    redis_store: RedisStore, redis_server: RedisServer
) -> None:
    """With redis down every call, sync and async, fails fast as StoreUnavailable; it
    works again once redis is back, with the same store object."""
    session = make_session()
    redis_store.put_session("k", session, 60)
    assert await redis_store.aget_session("k") == session  # both clients connected
    redis_server.stop()
    try:
        calls: list[Callable[[], Any]] = [
            lambda: redis_store.get_session("k"),
            lambda: redis_store.put_session("k", session, 60),
            lambda: redis_store.delete_session("k"),
            lambda: redis_store.update_session("k", session, 60, 7),
            lambda: redis_store.acquire_lock("k", "o", 60),
            lambda: redis_store.release_lock("k", "o"),
            redis_store.ping,
        ]
        for call in calls:
            started = time.monotonic()
            with pytest.raises(StoreUnavailable):
                call()
            assert time.monotonic() - started < 1.5
        acalls: list[Callable[[], Any]] = [
            lambda: redis_store.aget_session("k"),
            lambda: redis_store.aput_session("k", session, 60),
            lambda: redis_store.adelete_session("k"),
            lambda: redis_store.aupdate_session("k", session, 60, 7),
            lambda: redis_store.aacquire_lock("k", "o", 60),
            lambda: redis_store.arelease_lock("k", "o"),
            redis_store.aping,
        ]
        for acall in acalls:
            started = time.monotonic()
            with pytest.raises(StoreUnavailable):
                await acall()
            assert time.monotonic() - started < 1.5
    finally:
        redis_server.start()
    # The pooled connections broke; redis-py replaces them by itself.
    redis_store.ping()
    await redis_store.aping()
    redis_store.put_session("k", session, 60)
    assert await redis_store.aget_session("k") == session
    assert redis_store.acquire_lock("l", "o", 60)
    await redis_store.arelease_lock("l", "o")
    assert await redis_store.aacquire_lock("l", "p", 60)


async def test_redis_that_hangs_times_out_as_store_unavailable() -> None:
    """A redis that accepts connections and never answers costs one socket timeout, then
    StoreUnavailable: requests are never held indefinitely."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)  # connections complete in the backlog; nothing ever replies
        port = silent.getsockname()[1]
        store = RedisStore(f"redis://127.0.0.1:{port}/0", SECRETS, socket_timeout=0.3)
        try:
            for call in (lambda: store.get_session("k"), store.ping):
                started = time.monotonic()
                with pytest.raises(StoreUnavailable):
                    call()
                assert time.monotonic() - started < 1.0
            started = time.monotonic()
            with pytest.raises(StoreUnavailable):
                await store.aget_session("k")
            assert time.monotonic() - started < 1.0
        finally:
            await store.aclose()


async def test_redis_store_serves_several_event_loops(redis_store: RedisStore) -> None:
    """A store used from another event loop (another thread) gets a client for that loop."""
    session = make_session()
    await redis_store.aput_session("k", session, 60)

    async def elsewhere() -> Session | None:
        try:
            return await redis_store.aget_session("k")
        finally:
            await redis_store.aclose()

    assert await asyncio.to_thread(asyncio.run, elsewhere()) == session
    assert await redis_store.aget_session("k") == session


# ---------------------------------------------------------------- open_store


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        pytest.param("memory://", MemoryStore, id="memory"),
        pytest.param("sqlite:///{tmp}/abs.db", SQLiteStore, id="sqlite-absolute"),
        pytest.param("sqlite:///rel.db", SQLiteStore, id="sqlite-relative"),
        pytest.param("redis://127.0.0.1:6379/0", RedisStore, id="redis"),
        pytest.param("rediss://:pw@127.0.0.1:6380/2", RedisStore, id="rediss"),
    ],
)
async def test_open_store_forms(
    url: str, kind: type[SessionStore], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each supported URL form opens its store (redis connects only when first used)."""
    monkeypatch.chdir(tmp_path)
    store = open_store(url.replace("{tmp}", str(tmp_path)), SECRETS)
    try:
        assert isinstance(store, kind)
        assert store.shared is (kind is not MemoryStore)
        if kind is SQLiteStore:
            assert isinstance(store, SQLiteStore)
            expected = tmp_path / ("abs.db" if "abs" in url else "rel.db")
            assert store.path.resolve() == expected
            assert expected.exists()
        assert "pw" not in repr(store)
    finally:
        await store.aclose()


@pytest.mark.parametrize(
    ("url", "says"),
    [
        pytest.param("postgres://db/sessions", "unsupported store postgres://", id="other-scheme"),
        pytest.param("sessions.db", "not a store URL", id="no-scheme"),
        pytest.param("sqlite://host/sessions.db", "sqlite:///relative", id="sqlite-host"),
        pytest.param("sqlite:///", "needs a file name", id="sqlite-no-file"),
        pytest.param("sqlite:///:memory:", "use memory://", id="sqlite-in-memory"),
        pytest.param("sqlite:///x.db?mode=ro", "no query", id="sqlite-query"),
        pytest.param("redis://127.0.0.1:notaport/0", "invalid redis URL", id="redis-port"),
        pytest.param("redis://127.0.0.1:6379/zero", "invalid redis URL", id="redis-db"),
    ],
)
def test_open_store_refuses_bad_urls(url: str, says: str) -> None:
    """A bad session_store is a ConfigurationError that names the setting and says why."""
    with pytest.raises(ConfigurationError) as info:
        open_store(url, SECRETS)
    assert info.value.setting == "session_store"
    assert says in str(info.value)


def test_unsupported_store_lists_the_forms() -> None:
    """The error for an unknown store lists every supported form."""
    with pytest.raises(ConfigurationError) as info:
        open_store("mongodb://user:hunter2@db/0", SECRETS)
    message = str(info.value)
    for form in ("memory://", "sqlite:///", "sqlite:////", "redis://", "rediss://"):
        assert form in message
    assert "hunter2" not in message


def test_redis_without_redis_py_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the redis extra, redis:// names the setting and the pip command."""
    monkeypatch.setitem(sys.modules, "redis", None)
    monkeypatch.setitem(sys.modules, "redis.asyncio", None)
    with pytest.raises(ConfigurationError) as info:
        open_store("redis://127.0.0.1:6379/0", SECRETS)
    assert info.value.setting == "session_store"
    assert "pip install 'oakid-gate[redis]'" in str(info.value)


def test_memory_store_sweeps_expired_entries_on_writes() -> None:
    """The memory store drops expired records on a write, at most once a minute, unasked."""
    from oakid_gate.stores.memory import SWEEP_INTERVAL, MemoryStore

    now = [1000.0]
    store = MemoryStore(clock=lambda: now[0])
    store.put_session("old", make_session(), 10)
    now[0] = 1011.0
    store.put_session("new", make_session(), 100)
    assert len(store) == 2  # "old" has expired, but the last sweep was 11 s ago
    now[0] = 1000.0 + SWEEP_INTERVAL + 1
    store.put_session("newer", make_session(), 100)
    assert len(store) == 2  # swept: "old" is gone, "new" and "newer" live
    assert store.get_session("new") is not None and store.get_session("old") is None


# -- redis operations as values (no server) ----------------------------------------


def test_redis_operations_are_one_command_each() -> None:
    """Each redis store operation is the one command it sends and how its reply reads."""
    from oakid_gate.stores import SessionCodec, redis_ops

    op = redis_ops.acquire_lock("k", "owner", 1.5)
    assert op.command == ("SET", "oakid:k:k", "owner", "NX", "PX", 1500)
    assert op.read(True) is True and op.read(None) is False
    codec = SessionCodec(["s" * 32])
    get = redis_ops.get_session(codec, "k")
    assert get.command == ("GET", "oakid:s:k") and get.read(None) is None
    update = redis_ops.update_session(codec, "k", make_session(version=8), 1, 7)
    assert update.command[:4] == ("EVAL", redis_ops.UPDATE_SESSION, 1, "oakid:s:k")
    assert update.command[4] == (7).to_bytes(8, "big") and update.command[6] == 1000
    assert update.read(1) is True and update.read(0) is False and update.changes == "k"
    release = redis_ops.release_lock("k", "owner")
    assert release.command[0] == "EVAL" and release.command[3:] == ("oakid:k:k", "owner")
    put = redis_ops.put_session(codec, "k", make_session(), 1)
    assert put.changes == "k" and redis_ops.delete_session("k").changes == "k"
    assert get.changes is None


@pytest.mark.parametrize(
    ("url", "bound"),
    [
        pytest.param("memory://", 100_000, id="default"),
        pytest.param("memory://?max_sessions=3", 3, id="three"),
    ],
)
def test_memory_store_bound_comes_from_the_url(url: str, bound: int) -> None:
    """``max_sessions`` bounds the memory store; the least recently used session goes first."""
    store = open_store(url, SECRETS)
    assert isinstance(store, MemoryStore) and store.max_sessions == bound
    if bound > 10:
        return
    for i in range(bound + 1):
        store.put_session(f"k{i}", make_session(), 60)
        if i == 0:
            continue
        store.get_session("k1")  # k1 is used, k0 is not
    assert store.get_session("k0") is None
    assert store.get_session("k1") is not None and len(store) == bound


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("memory://?max_sessions=0", id="zero"),
        pytest.param("memory://?max_sessions=-5", id="negative"),
        pytest.param("memory://?max_sessions=lots", id="not-a-number"),
        pytest.param("memory://?max_sessions=99999999999", id="too-large"),
        pytest.param("memory://?max_session=5", id="misspelled"),
        pytest.param("memory://host", id="a-host"),
    ],
)
def test_a_bad_memory_store_url_names_the_setting(url: str) -> None:
    """A memory:// URL the store cannot take is a start-up error naming session_store."""
    with pytest.raises(ConfigurationError, match="session_store"):
        open_store(url, SECRETS)
