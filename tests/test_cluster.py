"""``redis+cluster://`` (issue 11 item 7): the redis store on a real Redis Cluster of three
primaries started here (``redis-server --cluster-enabled``, ``redis-cli --cluster
create``): the store contract holds with keys spread over the nodes, through both the
blocking and the asynchronous clients."""

from __future__ import annotations

import asyncio
import time

import pytest

from oakid_gate.errors import ConfigurationError
from oakid_gate.gate.records import Session
from oakid_gate.stores import open_store
from oakid_gate.stores.redis_cluster import parse_cluster_url

pytestmark = pytest.mark.e2e

SECRETS = ("a-store-secret-of-at-least-32-bytes!",)


def session(version: int) -> Session:
    now = time.time()
    return Session(
        claims={"sub": "alice"}, access_token=f"at-{version}", refresh_token=f"rt-{version}",
        expires_at=now + 600, refresh_at=now + 570, scopes=("openid",), created_at=now,
        last_seen=now, claims_at=now, version=version,
    )


def test_the_url_names_the_nodes() -> None:
    spec = parse_cluster_url("redis+cluster://:pw@a:7000,b:7001")
    assert spec.nodes == (("a", 7000), ("b", 7001)) and spec.password == "pw"
    assert "pw" not in repr(spec)
    for bad in ("redis+cluster://a", "redis+cluster://a:1/2"):
        with pytest.raises(ConfigurationError) as info:
            parse_cluster_url(bad)
        assert info.value.setting == "session_store"


def test_the_store_contract_on_a_cluster(cluster_url: str) -> None:
    """Sessions, compare-and-set, locks and links with keys on every node."""
    store = open_store(cluster_url, SECRETS)
    try:
        keys = [f"key-{n}" for n in range(12)]  # spread over the slots of three nodes
        for key in keys:
            store.put_session(key, session(1), 60)
            store.link_session("user", key, 60)
        assert all(store.get_session(k) is not None for k in keys)
        assert store.update_session(keys[0], session(2), 60, 1)
        assert not store.update_session(keys[0], session(2), 60, 1)
        assert store.acquire_lock(keys[1], "me", 60) and not store.acquire_lock(keys[1], "you", 60)
        store.release_lock(keys[1], "me")
        assert store.acquire_lock(keys[1], "you", 60)
        store.delete_session(keys[2])
        assert not store.update_session(keys[2], session(2), 60, 1)  # no resurrection
        assert store.end_linked("user") == len(keys) - 1
        assert all(store.get_session(k) is None for k in keys)
        assert store.end_linked("user") == 0

        async def both() -> None:
            await store.aput_session("a", session(1), 60)
            await store.alink_session("other", "a", 60)
            assert await store.aupdate_session("a", session(2), 60, 1)
            assert await store.apeek_session("a") is not None
            assert await store.aend_linked("other") == 1
            assert await store.aget_session("a") is None
            await store.aclose()

        asyncio.run(both())
    finally:
        store.close()
