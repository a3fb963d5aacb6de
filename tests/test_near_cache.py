"""The near cache of the shared stores: what the hot path's read may serve, and for how long.

Real sqlite files; a second store
handle on the same data plays another worker process. Each test that shows a
change stops being served also shows that the cache was serving before it
(no store read on a hit), so that it cannot pass with the cache unused.

The bounds under test (documented in the stores' module docstrings): sqlite,
:data:`~oakid_gate.stores.data_version.CHECK_INTERVAL` (50 ms) after another
process's commit; every entry, ``max_age``; a write through the same store,
at once.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from test_stores import SECRETS, make_session

from oakid_gate.gate.records import Session, hash_key
from oakid_gate.stores import SQLiteStore
from oakid_gate.stores.codec import SessionCodec
from oakid_gate.stores.data_version import CHECK_INTERVAL
from oakid_gate.stores.near import NearCache

KEY = hash_key("near-cache-session")
Store = SQLiteStore
#: how long a test waits for something that should happen at once over loopback
PROMPT = 2.0


def eventually(condition: Callable[[], bool], within: float, what: str) -> float:
    """Poll ``condition`` until it holds; fail after ``within`` seconds; return the wait."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > within:
            pytest.fail(f"{what}: not within {within} s")
        time.sleep(0.001)
    return time.monotonic() - started


# ---------------------------------------------------------------- counting store reads


class SQLiteReads:
    """The statements a sqlite store sends, on this thread's connection and its watch's."""

    def __init__(self, store: SQLiteStore) -> None:
        self.statements: list[str] = []
        store.peek_session("warm-up")  # opens both connections
        store._conn().set_trace_callback(self.statements.append)
        watch = store._watch._conn
        assert watch is not None
        watch.set_trace_callback(lambda sql: self.statements.append("watch: " + sql))

    def take(self) -> list[str]:
        taken, self.statements[:] = list(self.statements), []
        return taken


# ---------------------------------------------------------------- fixtures


@pytest.fixture
def sqlite_path(tmp_path: Path) -> Path:
    return tmp_path / "sessions.db"


@pytest.fixture
def sqlite_stores(sqlite_path: Path) -> Iterator[Callable[..., SQLiteStore]]:
    """Opens handles on one sqlite file (as worker processes have), closed after the test."""
    with contextlib.ExitStack() as stack:

        def open_(**options: Any) -> SQLiteStore:
            store = SQLiteStore(sqlite_path, SECRETS, **options)
            return stack.enter_context(contextlib.closing(store))

        yield open_


KINDS = [pytest.param("sqlite", id="sqlite")]


@pytest.fixture(params=KINDS)
async def cached(
    request: pytest.FixtureRequest, sqlite_path: Path
) -> AsyncIterator[Callable[..., Store]]:
    """Opens a sqlite store (data version read once an hour)."""
    async with contextlib.AsyncExitStack() as stack:

        def open_(**options: Any) -> Store:
            store = SQLiteStore(sqlite_path, SECRETS, **{"check_interval": 3600, **options})
            return stack.enter_context(contextlib.closing(store))

        yield open_


def settled(here: Store, write: Callable[[], object]) -> None:
    """``write`` (a store whose signal arrives later would wait for it here)."""
    write()


def version(session: Session | None) -> int | None:
    return None if session is None else session.version


# ---------------------------------------------------------------- round trips


async def test_sqlite_hit_reads_nothing_and_miss_reads_once(
    sqlite_stores: Callable[..., SQLiteStore],
) -> None:
    """A hit sends no statement, sync or async; a miss sends one SELECT; the data version is
    read at most once per interval, whatever the number of requests."""
    store = sqlite_stores(check_interval=3600)
    store.put_session(KEY, make_session(), 60)
    store.put_session("other", make_session(), 60)
    reads = SQLiteReads(store)
    assert store.peek_session(KEY) is not None
    assert await store.apeek_session("other") is not None
    assert [s.split()[0] for s in reads.take()] == ["SELECT", "SELECT"]
    for _ in range(100):
        assert store.peek_session(KEY) is not None
        assert await store.apeek_session("other") is not None
    assert reads.take() == []

    store = sqlite_stores()  # the default interval
    reads = SQLiteReads(store)
    started = time.monotonic()
    for _ in range(2000):
        assert store.peek_session(KEY) is not None
    elapsed = time.monotonic() - started
    taken = reads.take()
    selects = [s for s in taken if s.startswith("SELECT")]
    watches = [s for s in taken if s == "watch: PRAGMA data_version"]
    assert len(selects) == 1 and len(taken) == len(selects) + len(watches)
    assert len(watches) <= elapsed / CHECK_INTERVAL + 1


# ---------------------------------------------------------------- changes made elsewhere


CHANGES = [
    pytest.param(lambda s: s.delete_session(KEY), None, id="signed-out"),
    pytest.param(lambda s: s.put_session(KEY, make_session(version=2), 60), 2, id="refreshed"),
]


@pytest.mark.parametrize(("change", "after"), CHANGES)
def test_sqlite_change_by_another_process_stops_being_served_within_the_interval(
    sqlite_stores: Callable[..., SQLiteStore], change: Callable[[SQLiteStore], None], after: Any
) -> None:
    """A session signed out or refreshed through another handle is not served from the
    near cache once the check interval has passed since the commit."""
    here, elsewhere = sqlite_stores(), sqlite_stores()
    elsewhere.put_session(KEY, make_session(version=1), 60)
    reads = SQLiteReads(here)
    assert version(here.peek_session(KEY)) == 1
    reads.take()
    assert version(here.peek_session(KEY)) == 1 and KEY in here.near
    assert [s for s in reads.take() if not s.startswith("watch:")] == []  # a hit
    change(elsewhere)
    time.sleep(CHECK_INTERVAL)
    assert version(here.peek_session(KEY)) == after


def test_sqlite_entry_is_not_served_past_its_records_expiry(
    sqlite_stores: Callable[..., SQLiteStore],
) -> None:
    """A session that expires in the store (its time to live, set elsewhere) is not served
    after that moment, though nothing was written."""
    clock = [time.time()]
    here = sqlite_stores(clock=lambda: clock[0], check_interval=3600)
    elsewhere = sqlite_stores(clock=lambda: clock[0])
    elsewhere.put_session(KEY, make_session(), 10)
    assert here.peek_session(KEY) is not None and KEY in here.near
    clock[0] += 9.9
    assert here.peek_session(KEY) is not None
    clock[0] += 0.1
    assert here.peek_session(KEY) is None


def test_sqlite_entry_is_served_at_most_max_age(
    sqlite_stores: Callable[..., SQLiteStore],
) -> None:
    """The safety net: an entry is read again from the store once it is ``max_age`` old."""
    clock = [time.time()]
    store = sqlite_stores(clock=lambda: clock[0], check_interval=3600, near_max_age=5)
    store.put_session(KEY, make_session(), 3600)
    reads = SQLiteReads(store)
    store.peek_session(KEY)
    clock[0] += 4.9
    store.peek_session(KEY)
    assert len(reads.take()) == 1
    clock[0] += 0.1
    store.peek_session(KEY)
    assert len(reads.take()) == 1


# ---------------------------------------------------------------- the process's own writes


async def test_own_writes_are_seen_at_once_with_the_cache_on(
    cached: Callable[..., Store],
) -> None:
    """With the near cache serving, a put or delete through the store is what the very
    next peek returns."""
    store = cached()
    settled(store, lambda: store.put_session(KEY, make_session(version=1), 60))
    assert version(store.peek_session(KEY)) == 1 and KEY in store.near
    await store.aput_session(KEY, make_session(version=2), 60)
    assert version(store.peek_session(KEY)) == 2
    assert version(await store.apeek_session(KEY)) == 2
    store.delete_session(KEY)
    assert store.peek_session(KEY) is None
    store.put_session(KEY, make_session(version=3), 60)
    assert version(await store.apeek_session(KEY)) == 3
    await store.adelete_session(KEY)
    assert await store.apeek_session(KEY) is None


def delay_decoding(store: Store, meanwhile: Callable[[], None]) -> None:
    """Make the store's next read run ``meanwhile`` after the store answered, before the
    answer is opened and kept: the moment a concurrent change races the read."""
    codec: SessionCodec = store._codec
    decode = codec.decode_session
    done = threading.Event()

    def decode_later(key: str, blob: bytes) -> Session | None:
        if not done.is_set():
            done.set()
            meanwhile()
        return decode(key, blob)

    codec.decode_session = decode_later  # type: ignore[method-assign]


def test_sqlite_read_in_flight_while_this_process_writes_is_not_kept(
    sqlite_stores: Callable[..., SQLiteStore],
) -> None:
    """A write by another thread of this process, landing while a peek's read is in flight,
    is seen by the next peek: the old answer is not kept."""
    store = sqlite_stores(check_interval=3600)
    store.put_session(KEY, make_session(version=1), 60)
    writer = threading.Thread(target=store.put_session, args=(KEY, make_session(version=2), 60))
    delay_decoding(store, lambda: (writer.start(), writer.join()))
    assert version(store.peek_session(KEY)) == 1  # what was read before the write
    assert KEY not in store.near
    assert version(store.peek_session(KEY)) == 2


def test_concurrent_peeks_and_writes_end_on_the_last_write(cached: Callable[..., Store]) -> None:
    """Eight threads peeking while another rewrites the session 200 times: once the writes
    end, every peek returns the last one at once."""
    store = cached()
    store.put_session(KEY, make_session(version=0), 60)
    stop = threading.Event()

    def peek() -> None:
        while not stop.is_set():
            store.peek_session(KEY)

    peekers = [threading.Thread(target=peek) for _ in range(8)]
    for thread in peekers:
        thread.start()
    try:
        for n in range(1, 201):
            store.put_session(KEY, make_session(version=n), 60)
    finally:
        stop.set()
        for thread in peekers:
            thread.join()
    assert version(store.peek_session(KEY)) == 200
    eventually(lambda: store.peek_session(KEY) is not None and KEY in store.near, PROMPT, "kept")
    assert version(store.peek_session(KEY)) == 200


# ---------------------------------------------------------------- fork, bounds, off


@pytest.mark.filterwarnings("ignore:.*fork.*:DeprecationWarning")
def test_forked_child_starts_with_an_empty_near_cache(cached: Callable[..., Store]) -> None:
    """A worker forked after the cache filled starts empty, reads the store, and caches
    again on its own."""
    store = cached()
    settled(store, lambda: store.put_session(KEY, make_session(), 60))
    assert store.peek_session(KEY) is not None and KEY in store.near
    pid = os.fork()
    if pid == 0:  # the child: exit 0 only if everything holds
        code = 1
        try:
            empty = len(store.near) == 0
            read = store.peek_session(KEY) is not None
            code = 0 if empty and read and KEY in store.near else 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert KEY in store.near  # the parent's cache is untouched


def test_near_cache_is_bounded(sqlite_stores: Callable[..., SQLiteStore]) -> None:
    """At most ``maxsize`` sessions and as many reads in flight, least recently used out."""
    store = sqlite_stores(near_cache=50, check_interval=3600)
    for i in range(200):
        store.put_session(f"k{i}", make_session(), 60)
        assert store.peek_session(f"k{i}") is not None
    assert len(store.near) == 50 and "k199" in store.near and "k0" not in store.near
    near = NearCache(maxsize=10)
    tickets = [(f"r{i}", near.reserve(f"r{i}")) for i in range(100)]
    assert len(near._pending) == 10
    for key, ticket in tickets:
        assert ticket is not None
        near.fill(key, ticket, make_session(), None)
    assert sorted(near._entries) == [f"r{i}" for i in range(90, 100)]


def test_sqlite_near_cache_off_when_sized_zero(sqlite_stores: Callable[..., SQLiteStore]) -> None:
    """``near_cache=0``: every peek reads the file."""
    sqlite_store = sqlite_stores(near_cache=0, check_interval=3600)
    sqlite_store.put_session(KEY, make_session(), 60)
    reads = SQLiteReads(sqlite_store)
    for _ in range(3):
        assert sqlite_store.peek_session(KEY) is not None
    assert len([s for s in reads.take() if s.startswith("SELECT")]) == 3


# ---------------------------------------------------------------- NearCache on its own


def test_fill_keeps_nothing_once_its_key_was_invalidated_or_the_cache_cleared() -> None:
    """A read's answer is kept only if nothing invalidated its key since it was reserved."""
    near = NearCache()
    session = make_session()
    for spoil in (near.invalidate, lambda _k: near.clear(), lambda _k: near.disable()):
        near.enable()
        ticket = near.reserve("k")
        assert ticket is not None
        spoil("k")
        near.fill("k", ticket, session, None)
        assert near.get("k") is None
    near.enable()
    first, second = near.reserve("k"), near.reserve("k")
    assert first is not None and second is not None
    near.fill("k", first, session, None)  # superseded by a later read of the same key
    assert near.get("k") is None
    near.fill("k", second, session, None)
    assert near.get("k") is session


def test_disabled_cache_reserves_nothing_and_enable_starts_empty() -> None:
    """While disabled no read is reserved; enabling starts from an empty cache."""
    near = NearCache(enabled=False)
    assert near.reserve("k") is None and not near.enabled
    near.enable()
    ticket = near.reserve("k")
    assert ticket is not None
    near.fill("k", ticket, make_session(), None)
    assert "k" in near
    near.disable()
    near.enable()
    assert len(near) == 0
    assert not NearCache(maxsize=0).enabled
    off = NearCache(maxsize=0)
    off.enable()
    assert off.reserve("k") is None


def test_entry_lives_until_the_sooner_of_max_age_and_its_ttl() -> None:
    """An entry is served until ``max_age`` or the record's expiry, whichever comes first."""
    now = [100.0]
    near = NearCache(max_age=10, clock=lambda: now[0])
    for key, ttl, last in (("long", 60.0, 109.9), ("short", 3.0, 102.9), ("none", None, 109.9)):
        ticket = near.reserve(key)
        assert ticket is not None
        near.fill(key, ticket, make_session(), ttl)
        now[0] = last
        assert near.get(key) is not None, key
        now[0] = last + 0.1
        assert near.get(key) is None, key
        now[0] = 100.0


def test_sqlite_watch_failure_is_store_unavailable_and_clears(
    sqlite_stores: Callable[..., SQLiteStore], sqlite_path: Path
) -> None:
    """When the data version cannot be read, the near cache is emptied and the hot path
    answers StoreUnavailable rather than serve what it cannot check."""
    from oakid_gate.errors import StoreUnavailable

    store = sqlite_stores(check_interval=0)
    store.put_session(KEY, make_session(), 60)
    assert store.peek_session(KEY) is not None and KEY in store.near
    watch = store._watch._conn
    assert watch is not None
    watch.close()  # the next reading fails
    with pytest.raises(StoreUnavailable):
        store.peek_session(KEY)
    assert len(store.near) == 0
    assert store.peek_session(KEY) is not None  # a new watch connection, a new reading
    with sqlite3.connect(sqlite_path) as conn:
        assert conn.execute("SELECT count(*) FROM sessions").fetchone()[0] >= 1
