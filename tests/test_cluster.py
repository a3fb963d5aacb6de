"""``redis+cluster://`` (issue 11 item 7): the redis store on a real Redis Cluster of three
primaries started here (``redis-server --cluster-enabled``, ``redis-cli --cluster
create``): the store contract holds with keys spread over the nodes, through both the
blocking and the asynchronous clients."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
import time
from collections.abc import Iterator

import pytest
import redis
from conftest import require_peer
from peers.ports import free_port
from peers.process import spawn, terminate

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


def _cluster_port() -> int:
    """A free port whose cluster bus port (10,000 higher) is free too, and below 65,536."""
    import socket

    while True:
        port = free_port()
        if port > 55535:
            continue
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port


@pytest.fixture(scope="module")
def cluster_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if shutil.which("redis-cli") is None:
        require_peer("redis-cli (Debian's redis-tools, with redis-server)")
    workdir = tmp_path_factory.mktemp("cluster")
    ports = [_cluster_port() for _ in range(3)]
    processes = [
        spawn(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--cluster-enabled", "yes",
             "--cluster-config-file", f"nodes-{port}.conf", "--save", "", "--appendonly", "no",
             "--dir", str(workdir)],
            log_path=workdir / f"node-{port}.log", cwd=workdir,
        )
        for port in ports
    ]
    try:
        deadline = time.monotonic() + 10
        for port in ports:
            while True:
                with contextlib.suppress(redis.RedisError, OSError):
                    if redis.Redis(port=port).ping():
                        break
                assert time.monotonic() < deadline
                time.sleep(0.05)
        create = subprocess.run(
            ["redis-cli", "--cluster", "create", *(f"127.0.0.1:{p}" for p in ports),
             "--cluster-replicas", "0", "--cluster-yes"],
            capture_output=True, text=True, timeout=60,
        )
        assert create.returncode == 0, create.stdout[-1000:] + create.stderr[-1000:]
        deadline = time.monotonic() + 20
        while redis.Redis(port=ports[0]).cluster("info")["cluster_state"] != "ok":
            assert time.monotonic() < deadline, "the cluster did not come up"
            time.sleep(0.1)
        yield "redis+cluster://" + ",".join(f"127.0.0.1:{p}" for p in ports)
    finally:
        for process in processes:
            terminate(process)


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
