"""``redis+sentinel://`` (issue 11 item 7): the redis store behind a real ``redis-sentinel``
(Debian's) watching a primary and a replica started here; the store contract holds, and a
failover during the test loses no session and no refresh.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Iterator

import pytest
import redis
from conftest import require_peer
from peers.redis_topologies import SERVICE, SentinelSet, start_sentinel, wait_for

from oakid_gate.errors import ConfigurationError
from oakid_gate.gate.records import Session
from oakid_gate.stores import open_store
from oakid_gate.stores.redis_sentinel import parse_sentinel_url

pytestmark = pytest.mark.e2e

SECRETS = ("a-store-secret-of-at-least-32-bytes!",)


def session(version: int, token: str = "at") -> Session:
    now = time.time()
    return Session(
        claims={"sub": "alice"}, access_token=f"{token}-{version}", refresh_token=f"rt-{version}",
        expires_at=now + 600, refresh_at=now + 570, scopes=("openid",), created_at=now,
        last_seen=now, claims_at=now, version=version,
    )


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentinelSet]:
    """A sentinel set of this module's own: its failover must not disturb other tests."""
    if shutil.which("redis-sentinel") is None:
        require_peer("redis-sentinel (scripts/install-peers.sh installs it)")
    found = start_sentinel(tmp_path_factory.mktemp("sentinel"))
    try:
        yield found
    finally:
        found.stop()


def _failover_started(cluster: SentinelSet) -> bool:
    try:
        cluster.sentinel_client().execute_command("SENTINEL", "FAILOVER", SERVICE)
    except redis.ResponseError as exc:
        if "NOGOODSLAVE" in str(exc) or "INPROG" in str(exc):
            return "INPROG" in str(exc)  # one under way counts
        raise
    return True


def test_the_url_names_sentinels_service_and_database() -> None:
    spec = parse_sentinel_url("redis+sentinel://:pw@a:26379,b:26380/mymaster/3")
    assert spec.hosts == (("a", 26379), ("b", 26380)) and spec.service == "mymaster"
    assert spec.db == 3 and spec.password == "pw" and "pw" not in repr(spec)
    for bad in ("redis+sentinel://a/mymaster", "redis+sentinel://a:1/", "redis+sentinel://a:1/m/x"):
        with pytest.raises(ConfigurationError) as info:
            parse_sentinel_url(bad)
        assert info.value.setting == "session_store" and "pw" not in str(info.value)


def test_the_store_contract_behind_sentinel(cluster: SentinelSet) -> None:
    store = open_store(cluster.url, SECRETS)
    try:
        store.put_session("k", session(1), 60)
        stored = store.get_session("k")
        assert stored is not None and stored.version == 1
        assert store.peek_session("k") is not None
        assert store.update_session("k", session(2), 60, 1)
        assert not store.update_session("k", session(2, "stale"), 60, 1)
        store.link_session("user", "k", 60)
        assert store.acquire_lock("k", "me", 60) and not store.acquire_lock("k", "you", 60)
        store.release_lock("k", "me")
        assert store.end_linked("user") == 1 and store.get_session("k") is None

        async def both() -> None:
            await store.aput_session("a", session(1), 60)
            assert await store.aupdate_session("a", session(2), 60, 1)
            got = await store.aget_session("a")
            assert got is not None and got.version == 2
            await store.aclose()

        asyncio.run(both())
    finally:
        store.close()


def test_a_failover_loses_no_session_and_no_refresh(cluster: SentinelSet) -> None:
    """A session written and refreshed, replicated; the sentinel fails the primary over to
    the replica; the store finds the new primary by itself: the refreshed session is
    there, and the next refresh (a write) lands."""
    store = open_store(cluster.url, SECRETS)
    try:
        store.put_session("s", session(1), 600)
        assert store.update_session("s", session(2), 600, 1)  # a refresh, rotated tokens
        old = cluster.primary_port()
        assert redis.Redis(port=old).execute_command("WAIT", 1, 2000) == 1  # replicated
        # The sentinel promotes a replica it has heard from lately: until then it answers
        # NOGOODSLAVE, so the failover is asked for again (a loaded machine is slow).
        wait_for(lambda: _failover_started(cluster), "the sentinel to accept the failover")
        wait_for(lambda: cluster.primary_port() != old, "the failover")
        wait_for(lambda: redis.Redis(port=cluster.primary_port()).info("replication")["role"] == "master", "the new primary")
        deadline = time.monotonic() + 20
        while True:  # a command may meet the switch itself once (StoreUnavailable, a 503)
            try:
                got = store.get_session("s")
                break
            except Exception:
                assert time.monotonic() < deadline
                time.sleep(0.2)
        assert got is not None and got.version == 2 and got.refresh_token == "rt-2"
        deadline = time.monotonic() + 20
        while True:
            try:
                assert store.update_session("s", session(3), 600, 2)  # the next refresh writes
                break
            except AssertionError:
                raise
            except Exception:
                assert time.monotonic() < deadline
                time.sleep(0.2)
        latest = store.get_session("s")
        assert latest is not None and latest.version == 3
    finally:
        store.close()


