"""The near cache of the shared stores: what the hot path's read may serve, and for how long.

Real sqlite files and the session's real ``redis-server``; a second store
handle on the same data plays another worker process. Each test that shows a
change stops being served also shows that the cache was serving before it
(no store read on a hit), so that it cannot pass with the cache unused.

The bounds under test (documented in the stores' module docstrings and the
README): sqlite, :data:`~oakid_gate.stores.data_version.CHECK_INTERVAL`
(50 ms) after another process's commit; redis, as soon as the invalidation
arrives, and two health intervals when the invalidation connection fails
silently; every entry, ``max_age``; a write through the same store, at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from test_stores import SECRETS, make_session

from oakid_gate.gate.records import Session, hash_key
from oakid_gate.stores import RedisStore, SQLiteStore
from oakid_gate.stores.codec import SessionCodec
from oakid_gate.stores.data_version import CHECK_INTERVAL
from oakid_gate.stores.near import NearCache
from oakid_gate.stores.tracking import HEALTH_INTERVAL

KEY = hash_key("near-cache-session")
Store = SQLiteStore | RedisStore
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


class RedisReads:
    """How many reads of a key redis has served: its GET count, since every read is one GET,
    sent alone or inside the near cache's miss script (EVAL of GET and PTTL)."""

    def __init__(self, url: str) -> None:
        self._client = redis.Redis.from_url(url)
        self._last = self._now()

    def _now(self) -> int:
        stats = self._client.info("commandstats")
        calls: int = stats.get("cmdstat_get", {}).get("calls", 0)
        return calls

    def take(self) -> int:
        now = self._now()
        taken, self._last = now - self._last, now
        return taken

    def close(self) -> None:
        self._client.close()


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


@pytest.fixture
async def redis_stores(redis_url: str) -> AsyncIterator[Callable[..., RedisStore]]:
    """Opens handles on the session's redis, closed after the test."""
    async with contextlib.AsyncExitStack() as stack:

        def open_(url: str = redis_url, **options: Any) -> RedisStore:
            store = RedisStore(url, SECRETS, **options)
            stack.push_async_callback(store.aclose)
            return store

        yield open_


KINDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("redis", id="redis", marks=pytest.mark.e2e),
]


@pytest.fixture(params=KINDS)
async def cached(
    request: pytest.FixtureRequest, sqlite_path: Path
) -> AsyncIterator[Callable[..., Store]]:
    """Opens a sqlite store (data version read once an hour) or a redis store, tracking."""
    url: str | None = request.getfixturevalue("redis_url") if request.param == "redis" else None
    async with contextlib.AsyncExitStack() as stack:

        def open_(**options: Any) -> Store:
            if url is None:
                store = SQLiteStore(sqlite_path, SECRETS, **{"check_interval": 3600, **options})
                return stack.enter_context(contextlib.closing(store))
            tracking = RedisStore(url, SECRETS, **options)
            stack.push_async_callback(tracking.aclose)
            return tracked(tracking)

        yield open_


#: the hot path's read of a store, as a test asks for it
READER = Callable[[Store], Callable[[str], Session | None]]


@pytest.fixture(params=["peek_session", "hot_reader"])
def reader(request: pytest.FixtureRequest) -> READER:
    """Each of the hot path's reads: ``peek_session``, and the one-frame read the ASGI
    adapter takes once (``hot_reader()``). Every bound under test holds for both."""
    if request.param == "peek_session":
        return lambda store: store.peek_session
    return lambda store: store.hot_reader()


def tracked(store: RedisStore) -> RedisStore:
    """``store`` once its invalidation listener is tracking (its near cache enabled)."""
    store.tracking.started()
    eventually(lambda: store.near.enabled, PROMPT, "tracking on")
    return store


def listener_ids(store: RedisStore) -> tuple[int, int]:
    listener = store.tracking.listener
    assert listener is not None and listener.client_ids is not None
    return listener.client_ids


def invalidations(store: RedisStore) -> int:
    listener = store.tracking.listener
    return 0 if listener is None else listener.invalidations


def settled(here: Store, write: Callable[[], object]) -> None:
    """``write``, then (redis) wait for ``here`` to handle its invalidation.

    redis invalidates every write, this process's own too (its echo arrives
    on the listener's thread): a peek whose read is in flight when the echo
    arrives is answered but not kept, so tests that count hits let it land first.
    """
    seen = invalidations(here) if isinstance(here, RedisStore) else 0
    write()
    if isinstance(here, RedisStore):
        eventually(lambda: invalidations(here) > seen, PROMPT, "the write's invalidation")


def version(session: Session | None) -> int | None:
    return None if session is None else session.version


# ---------------------------------------------------------------- round trips


async def test_sqlite_hit_reads_nothing_and_miss_reads_once(
    sqlite_stores: Callable[..., SQLiteStore],
    reader: READER,
) -> None:
    """A hit sends no statement, sync or async; a miss sends one SELECT; the data version is
    read at most once per interval, whatever the number of requests."""
    store = sqlite_stores(check_interval=3600)
    read = reader(store)
    store.put_session(KEY, make_session(), 60)
    store.put_session("other", make_session(), 60)
    reads = SQLiteReads(store)
    assert read(KEY) is not None
    assert await store.apeek_session("other") is not None
    assert [s.split()[0] for s in reads.take()] == ["SELECT", "SELECT"]
    for _ in range(100):
        assert read(KEY) is not None
        assert await store.apeek_session("other") is not None
    assert reads.take() == []

    store = sqlite_stores()  # the default interval
    read = reader(store)
    reads = SQLiteReads(store)
    started = time.monotonic()
    for _ in range(2000):
        assert read(KEY) is not None
    elapsed = time.monotonic() - started
    taken = reads.take()
    selects = [s for s in taken if s.startswith("SELECT")]
    watches = [s for s in taken if s == "watch: PRAGMA data_version"]
    assert len(selects) == 1 and len(taken) == len(selects) + len(watches)
    assert len(watches) <= elapsed / CHECK_INTERVAL + 1


async def test_redis_hit_reads_nothing_and_miss_reads_once(
    redis_stores: Callable[..., RedisStore], redis_url: str
) -> None:
    """With tracking on, a hit sends redis nothing and a miss one command, sync and async."""
    store = tracked(redis_stores())
    settled(store, lambda: store.put_session(KEY, make_session(), 60))
    settled(store, lambda: store.put_session("other", make_session(), 60))
    reads = RedisReads(redis_url)
    try:
        assert store.peek_session(KEY) is not None
        assert await store.apeek_session("other") is not None
        assert reads.take() == 2
        for _ in range(100):
            assert store.peek_session(KEY) is not None
            assert await store.apeek_session("other") is not None
        assert reads.take() == 0
    finally:
        reads.close()


# ---------------------------------------------------------------- changes made elsewhere


CHANGES = [
    pytest.param(lambda s: s.delete_session(KEY), None, id="signed-out"),
    pytest.param(lambda s: s.put_session(KEY, make_session(version=2), 60), 2, id="refreshed"),
]


@pytest.mark.parametrize(("change", "after"), CHANGES)
def test_sqlite_change_by_another_process_stops_being_served_within_the_interval(
    sqlite_stores: Callable[..., SQLiteStore],
    change: Callable[[SQLiteStore], None],
    after: Any,
    reader: READER,
) -> None:
    """A session signed out or refreshed through another handle is not served from the
    near cache once the check interval has passed since the commit."""
    here, elsewhere = sqlite_stores(), sqlite_stores()
    read = reader(here)
    elsewhere.put_session(KEY, make_session(version=1), 60)
    reads = SQLiteReads(here)
    assert version(read(KEY)) == 1
    reads.take()
    assert version(read(KEY)) == 1 and KEY in here.near
    assert [s for s in reads.take() if not s.startswith("watch:")] == []  # a hit
    change(elsewhere)
    time.sleep(CHECK_INTERVAL)
    assert version(read(KEY)) == after


def test_sqlite_read_racing_another_threads_check_serves_nothing_stale(
    sqlite_stores: Callable[..., SQLiteStore], reader: READER
) -> None:
    """Another thread's ``data_version`` check (it clears the near cache, then moves the
    next check on) landing in the middle of a hot read: the read returns the change made
    elsewhere, never the session the cache held before the clear."""
    here, elsewhere = sqlite_stores(), sqlite_stores()
    elsewhere.put_session(KEY, make_session(version=1), 60)
    watch, real = here._watch, here._watch.clock
    racing = [False]

    def clock() -> float:
        if racing[0]:  # the other thread's check, at this very moment of the read
            racing[0] = False
            watch.check()
        return real()

    watch.clock = clock
    read = reader(here)
    assert version(read(KEY)) == 1 and KEY in here.near
    elsewhere.put_session(KEY, make_session(version=2), 60)
    time.sleep(CHECK_INTERVAL)
    racing[0] = True
    assert version(read(KEY)) == 2


@pytest.mark.parametrize(("change", "after"), CHANGES)
async def test_redis_change_by_another_process_stops_being_served_when_invalidated(
    redis_stores: Callable[..., RedisStore],
    redis_url: str,
    change: Callable[[RedisStore], None],
    after: Any,
) -> None:
    """A session signed out or refreshed through another handle stops being served as
    soon as redis's invalidation arrives (on loopback: milliseconds)."""
    here, elsewhere = tracked(redis_stores()), redis_stores()
    settled(here, lambda: elsewhere.put_session(KEY, make_session(version=1), 60))
    reads = RedisReads(redis_url)
    try:
        assert version(here.peek_session(KEY)) == 1
        assert version(await here.apeek_session(KEY)) == 1 and KEY in here.near
        assert reads.take() == 1  # the second was a hit
    finally:
        reads.close()
    change(elsewhere)
    waited = eventually(lambda: version(here.peek_session(KEY)) == after, PROMPT, "invalidated")
    assert waited < 0.5
    assert version(await here.apeek_session(KEY)) == after


def test_sqlite_entry_is_not_served_past_its_records_expiry(
    sqlite_stores: Callable[..., SQLiteStore], reader: READER
) -> None:
    """A session that expires in the store (its time to live, set elsewhere) is not served
    after that moment, though nothing was written."""
    clock = [time.time()]
    here = sqlite_stores(clock=lambda: clock[0], check_interval=3600)
    read = reader(here)
    elsewhere = sqlite_stores(clock=lambda: clock[0])
    elsewhere.put_session(KEY, make_session(), 10)
    assert read(KEY) is not None and KEY in here.near
    clock[0] += 9.9
    assert read(KEY) is not None
    clock[0] += 0.1
    assert read(KEY) is None


async def test_redis_entry_is_not_served_past_its_records_expiry(
    redis_stores: Callable[..., RedisStore],
) -> None:
    """A session whose redis key expires is not served after that moment, whenever redis
    gets round to sending the invalidation for it."""
    here, elsewhere = tracked(redis_stores()), redis_stores()
    not_before = time.monotonic() + 0.5
    settled(here, lambda: elsewhere.put_session(KEY, make_session(), 0.5))
    not_after = time.monotonic() + 0.5
    assert here.peek_session(KEY) is not None and KEY in here.near
    while time.monotonic() < not_before - 0.05:
        assert here.peek_session(KEY) is not None
        await asyncio.sleep(0.01)
    await asyncio.sleep(not_after - time.monotonic() + 0.01)
    assert here.peek_session(KEY) is None
    assert await here.apeek_session(KEY) is None


def test_sqlite_entry_is_served_at_most_max_age(
    sqlite_stores: Callable[..., SQLiteStore], reader: READER
) -> None:
    """The safety net: an entry is read again from the store once it is ``max_age`` old."""
    clock = [time.time()]
    store = sqlite_stores(clock=lambda: clock[0], check_interval=3600, near_max_age=5)
    read = reader(store)
    store.put_session(KEY, make_session(), 3600)
    reads = SQLiteReads(store)
    read(KEY)
    clock[0] += 4.9
    read(KEY)
    assert len(reads.take()) == 1
    clock[0] += 0.1
    read(KEY)
    assert len(reads.take()) == 1


async def test_redis_entry_is_served_at_most_max_age(
    redis_stores: Callable[..., RedisStore], redis_url: str
) -> None:
    """The safety net: an entry is read again from redis once it is ``max_age`` old."""
    store = tracked(redis_stores(near_max_age=0.5))
    settled(store, lambda: store.put_session(KEY, make_session(), 3600))
    reads = RedisReads(redis_url)
    try:
        store.peek_session(KEY)
        store.peek_session(KEY)
        assert reads.take() == 1
        await asyncio.sleep(0.55)
        store.peek_session(KEY)
        assert reads.take() == 1
    finally:
        reads.close()


# ---------------------------------------------------------------- the process's own writes


async def test_own_writes_are_seen_at_once_with_the_cache_on(
    cached: Callable[..., Store], reader: READER
) -> None:
    """With the near cache serving (redis: tracking on), a put or delete through the store
    is what the very next peek returns."""
    store = cached()
    read = reader(store)
    settled(store, lambda: store.put_session(KEY, make_session(version=1), 60))
    assert version(read(KEY)) == 1 and KEY in store.near
    await store.aput_session(KEY, make_session(version=2), 60)
    assert version(read(KEY)) == 2
    assert version(await store.apeek_session(KEY)) == 2
    store.delete_session(KEY)
    assert read(KEY) is None
    store.put_session(KEY, make_session(version=3), 60)
    assert version(await store.apeek_session(KEY)) == 3
    await store.adelete_session(KEY)
    assert await store.apeek_session(KEY) is None


def delay_decoding(store: SQLiteStore | RedisStore, meanwhile: Callable[[], None]) -> None:
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
    sqlite_stores: Callable[..., SQLiteStore], reader: READER
) -> None:
    """A write by another thread of this process, landing while a peek's read is in flight,
    is seen by the next peek: the old answer is not kept."""
    store = sqlite_stores(check_interval=3600)
    read = reader(store)
    store.put_session(KEY, make_session(version=1), 60)
    writer = threading.Thread(target=store.put_session, args=(KEY, make_session(version=2), 60))
    delay_decoding(store, lambda: (writer.start(), writer.join()))
    assert version(read(KEY)) == 1  # what was read before the write
    assert KEY not in store.near
    assert version(read(KEY)) == 2


@pytest.mark.parametrize("where", ["this-process", "another-process"])
async def test_redis_read_in_flight_when_invalidated_is_not_kept(
    redis_stores: Callable[..., RedisStore], where: str
) -> None:
    """A change that redis invalidates while a peek's read is in flight (the answer read,
    not yet kept) is seen by the next peek: the old answer is not kept."""
    here = tracked(redis_stores())
    writer = here if where == "this-process" else redis_stores()
    here.put_session(KEY, make_session(version=1), 60)
    eventually(lambda: invalidations(here) >= 1, PROMPT, "the first write's invalidation")

    def change() -> None:
        seen = invalidations(here)
        writer.put_session(KEY, make_session(version=2), 60)
        eventually(lambda: invalidations(here) > seen, PROMPT, "the invalidation")

    delay_decoding(here, change)
    assert version(await here.apeek_session(KEY)) == 1
    assert KEY not in here.near
    assert version(here.peek_session(KEY)) == 2


def test_concurrent_peeks_and_writes_end_on_the_last_write(
    cached: Callable[..., Store], reader: READER
) -> None:
    """Eight threads peeking while another rewrites the session 200 times: once the writes
    end, every peek returns the last one at once."""
    store = cached()
    read = reader(store)
    store.put_session(KEY, make_session(version=0), 60)
    stop = threading.Event()

    def peek() -> None:
        while not stop.is_set():
            read(KEY)

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
    assert version(read(KEY)) == 200
    eventually(lambda: read(KEY) is not None and KEY in store.near, PROMPT, "kept")
    assert version(read(KEY)) == 200


# ---------------------------------------------------------------- redis: the signal's health


@pytest.mark.parametrize("connection", [0, 1], ids=["subscriber", "tracking"])
def test_redis_killed_invalidation_connection_turns_the_cache_off_until_tracking_is_back(
    redis_stores: Callable[..., RedisStore], redis_url: str, connection: int
) -> None:
    """CLIENT KILL of either listener connection empties the near cache; peeks read redis
    (and see what changed meanwhile) until tracking is back, then hits resume."""
    here, elsewhere = tracked(redis_stores()), redis_stores()
    settled(here, lambda: elsewhere.put_session(KEY, make_session(version=1), 60))
    assert version(here.peek_session(KEY)) == 1 and KEY in here.near
    admin = redis.Redis.from_url(redis_url)
    reads = RedisReads(redis_url)
    try:
        admin.execute_command("CLIENT", "KILL", "ID", listener_ids(here)[connection])
        waited = eventually(lambda: not here.near.enabled, PROMPT, "cache off")
        assert waited < 2 * HEALTH_INTERVAL and len(here.near) == 0
        reads.take()
        elsewhere.put_session(KEY, make_session(version=2), 60)
        assert version(here.peek_session(KEY)) == 2
        assert version(here.peek_session(KEY)) == 2
        if not here.near.enabled:  # (tracking is retried after a second)
            assert reads.take() == 2  # both read redis
        eventually(lambda: here.near.enabled, 3 * HEALTH_INTERVAL + PROMPT, "tracking back")
        here.peek_session(KEY)
        reads.take()
        assert version(here.peek_session(KEY)) == 2 and reads.take() == 0
        elsewhere.delete_session(KEY)
        eventually(lambda: here.peek_session(KEY) is None, PROMPT, "invalidated again")
    finally:
        reads.close()
        admin.close()


def test_redis_stalled_server_turns_the_cache_off_within_two_health_intervals(
    redis_stores: Callable[..., RedisStore], redis_url: str
) -> None:
    """A server that stops answering (CLIENT PAUSE) without closing anything: the cache is
    emptied and off within two health intervals, and back on after."""
    interval = 0.3
    here = tracked(redis_stores(health_interval=interval))
    settled(here, lambda: here.put_session(KEY, make_session(), 60))
    assert here.peek_session(KEY) is not None and KEY in here.near
    admin = redis.Redis.from_url(redis_url)
    try:
        admin.execute_command("CLIENT", "PAUSE", 1500, "ALL")
        waited = eventually(lambda: not here.near.enabled, 1.0, "cache off")
        assert waited <= 2 * interval + 0.5 and KEY not in here.near
        eventually(lambda: here.near.enabled, 1.5 + PROMPT, "tracking back")
    finally:
        admin.execute_command("CLIENT", "UNPAUSE")
        admin.close()


def test_redis_flush_clears_the_near_cache(
    redis_stores: Callable[..., RedisStore], redis_url: str
) -> None:
    """FLUSHALL (an invalidation without key names) empties the near cache."""
    here = tracked(redis_stores())
    settled(here, lambda: here.put_session(KEY, make_session(), 60))
    settled(here, lambda: here.put_session("other", make_session(), 60))
    assert here.peek_session(KEY) is not None and here.peek_session("other") is not None
    assert len(here.near) == 2
    admin = redis.Redis.from_url(redis_url)
    try:
        admin.flushall()
    finally:
        admin.close()
    eventually(lambda: len(here.near) == 0, PROMPT, "cleared")
    assert here.peek_session(KEY) is None


def test_redis_that_refuses_tracking_keeps_the_cache_off(
    redis_stores: Callable[..., RedisStore], redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A redis user without the CLIENT command (as on older or locked-down servers): the
    listener gives up, the cache stays off, and every peek reads redis, correctly."""
    admin = redis.Redis.from_url(redis_url)
    admin.execute_command(
        "ACL", "SETUSER", "no-client", "on", ">pw", "~*", "&*", "+@all", "-client"
    )
    try:
        url = redis_url.replace("redis://", "redis://no-client:pw@")
        store = redis_stores(url)
        store.put_session(KEY, make_session(), 60)
        assert store.peek_session(KEY) is not None
        listener = store.tracking.listener
        assert listener is not None
        eventually(lambda: listener.state == "unsupported", PROMPT, "gave up")
        assert "refuses client tracking" in caplog.text
        reads = RedisReads(redis_url)
        try:
            for _ in range(3):
                assert store.peek_session(KEY) is not None
            assert reads.take() == 3 and not store.near.enabled
        finally:
            reads.close()
    finally:
        admin.execute_command("ACL", "DELUSER", "no-client")
        admin.close()


# ---------------------------------------------------------------- fork, bounds, off


@pytest.mark.filterwarnings("ignore:.*fork.*:DeprecationWarning")
def test_forked_child_starts_with_an_empty_near_cache(
    cached: Callable[..., Store], reader: READER
) -> None:
    """A worker forked after the cache filled starts empty, reads the store, and caches
    again on its own (redis: once its own listener is tracking)."""
    store = cached()
    read = reader(store)
    settled(store, lambda: store.put_session(KEY, make_session(), 60))
    assert read(KEY) is not None and KEY in store.near
    pid = os.fork()
    if pid == 0:  # the child: exit 0 only if everything holds
        code = 1
        try:
            empty = len(store.near) == 0
            found = read(KEY) is not None
            if isinstance(store, RedisStore):
                tracked(store)
                found = found and read(KEY) is not None
            code = 0 if empty and found and KEY in store.near else 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert KEY in store.near  # the parent's cache is untouched


def test_near_cache_is_bounded(
    sqlite_stores: Callable[..., SQLiteStore], reader: READER
) -> None:
    """At most ``maxsize`` sessions and as many reads in flight, least recently used out."""
    store = sqlite_stores(near_cache=50, check_interval=3600)
    read = reader(store)
    for i in range(200):
        store.put_session(f"k{i}", make_session(), 60)
        assert read(f"k{i}") is not None
    assert len(store.near) == 50 and "k199" in store.near and "k0" not in store.near
    near = NearCache(maxsize=10)
    tickets = [(f"r{i}", near.reserve(f"r{i}")) for i in range(100)]
    assert len(near._pending) == 10
    for key, ticket in tickets:
        assert ticket is not None
        near.fill(key, ticket, make_session(), None)
    assert sorted(near._entries) == [f"r{i}" for i in range(90, 100)]


def test_sqlite_near_cache_off_when_sized_zero(
    sqlite_stores: Callable[..., SQLiteStore], reader: READER
) -> None:
    """``near_cache=0``: every peek reads the file."""
    sqlite_store = sqlite_stores(near_cache=0, check_interval=3600)
    read = reader(sqlite_store)
    sqlite_store.put_session(KEY, make_session(), 60)
    reads = SQLiteReads(sqlite_store)
    for _ in range(3):
        assert read(KEY) is not None
    assert len([s for s in reads.take() if s.startswith("SELECT")]) == 3


def test_redis_near_cache_off_when_sized_zero(redis_stores: Callable[..., RedisStore]) -> None:
    """``near_cache=0``: no listener starts, and every peek reads redis."""
    redis_store = redis_stores(near_cache=0)
    redis_store.put_session(KEY, make_session(), 60)
    assert redis_store.peek_session(KEY) is not None
    assert redis_store.tracking.listener is None and len(redis_store.near) == 0


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


def _race(
    read: Callable[[], object], write: Callable[[int], None], rounds: int = 20_000
) -> list[BaseException]:
    """``read`` on three threads while ``write(i)`` runs ``rounds`` times on this one;
    bounded, stops by itself; returns what the readers raised."""
    errors: list[BaseException] = []
    done = threading.Event()

    def reader() -> None:
        while not done.is_set():
            try:
                read()
            except BaseException as exc:
                errors.append(exc)
                return

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for thread in threads:
        thread.start()
    try:
        for i in range(rounds):
            write(i)
    finally:
        done.set()
        for thread in threads:
            thread.join(timeout=10)
    return errors


def test_lock_free_near_cache_reads_never_serve_a_key_after_its_invalidation() -> None:
    """The hot path reads the near cache without its lock: readers racing fills,
    invalidations, clears and evictions raise nothing, and once ``invalidate`` or
    ``clear`` has returned, no read serves what was there."""
    near = NearCache(maxsize=4)
    session = make_session()
    keys = [f"k{i}" for i in range(6)]  # more than maxsize: evictions too
    stale: list[str] = []

    def read() -> None:
        for key in keys:
            near.get(key)

    def write(i: int) -> None:
        key = keys[i % len(keys)]
        ticket = near.reserve(key)
        assert ticket is not None
        near.fill(key, ticket, session, None)
        if i % 3 == 0:
            near.invalidate(key)
            if near.get(key) is not None:
                stale.append(key)
        elif i % 7 == 0:
            near.clear()
            if any(near.get(k) is not None for k in keys):
                stale.append("clear")
        assert len(near) <= 4

    assert _race(read, write) == []
    assert stale == []


def test_lock_free_memory_store_reads_never_serve_a_deleted_session() -> None:
    """The memory store's hot read takes no lock either: readers racing writes, deletes
    and evictions raise nothing, and once ``delete_session`` has returned the session
    is not served."""
    from oakid_gate.stores import MemoryStore

    store = MemoryStore(max_sessions=4)
    session = make_session()
    keys = [f"k{i}" for i in range(6)]
    stale: list[str] = []

    def read() -> None:
        for key in keys:
            store.peek_session(key)

    def write(i: int) -> None:
        key = keys[i % len(keys)]
        store.put_session(key, session, 60)
        if i % 2 == 0:
            store.delete_session(key)
            if store.peek_session(key) is not None:
                stale.append(key)

    assert _race(read, write) == []
    assert stale == []
