"""Redis behind Sentinel, and a Redis Cluster, started here on loopback (Debian's
``redis-server``, ``redis-sentinel`` and ``redis-cli``).

::

    sentinel = start_sentinel(tmp_path)   # a primary, a replica, one sentinel
    sentinel.url                          # "redis+sentinel://127.0.0.1:PORT/oakid/0"
    cluster = start_cluster(tmp_path)     # three primaries, slots spread over them
    cluster.url                           # "redis+cluster://127.0.0.1:A,127.0.0.1:B,..."
    sentinel.flush(); cluster.flush()     # empty, between tests
    sentinel.stop(); cluster.stop()

Nothing is saved; every process listens on 127.0.0.1 only and logs to the work
directory.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import redis

from peers.ports import free_port
from peers.process import spawn, terminate

__all__ = ["SERVICE", "Cluster", "SentinelSet", "start_cluster", "start_sentinel", "wait_for"]

SERVICE = "oakid"
_COMMON = ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]


def wait_for(check: Callable[[], object], what: str, timeout: float = 20.0) -> None:
    """Poll ``check`` until it is true (redis errors count as not yet)."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(redis.RedisError, OSError):
            if check():
                return
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@dataclass
class SentinelSet:
    """A primary, its replica and a sentinel watching them under :data:`SERVICE`."""

    primary: int
    replica: int
    sentinel: int
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list, repr=False)

    @property
    def url(self) -> str:
        return f"redis+sentinel://127.0.0.1:{self.sentinel}/{SERVICE}/0"

    def sentinel_client(self) -> redis.Redis:
        return redis.Redis(port=self.sentinel)

    def primary_port(self) -> int:
        _host, port = self.sentinel_client().execute_command(
            "SENTINEL", "get-master-addr-by-name", SERVICE
        )
        return int(port)

    def replica_ready(self) -> bool:
        """The sentinel sees a replica, linked to the primary, with nothing against it."""
        replicas = self.sentinel_client().execute_command("SENTINEL", "replicas", SERVICE)
        for replica in replicas:
            fields = replica if isinstance(replica, dict) else dict(zip(replica[::2], replica[1::2]))
            fields = {_text(k): _text(v) for k, v in fields.items()}
            if fields.get("flags") == "slave" and fields.get("master-link-status") == "ok":
                return True
        return False

    def flush(self) -> None:
        """Empty the current primary (it may have changed by a failover)."""
        wait_for(lambda: redis.Redis(port=self.primary_port()).flushall(), "the primary")

    def stop(self) -> None:
        for process in self.processes:
            terminate(process)


def start_sentinel(workdir: Path) -> SentinelSet:
    primary, replica, sentinel = free_port(), free_port(), free_port()
    common = [*_COMMON, "--dir", str(workdir)]
    found = SentinelSet(primary, replica, sentinel)
    found.processes += [
        spawn(["redis-server", "--port", str(primary), *common],
              log_path=workdir / "primary.log", cwd=workdir),
        spawn(["redis-server", "--port", str(replica), "--replicaof", "127.0.0.1", str(primary),
               *common], log_path=workdir / "replica.log", cwd=workdir),
    ]
    conf = workdir / "sentinel.conf"
    conf.write_text(
        f"port {sentinel}\nbind 127.0.0.1\ndir {workdir}\n"
        f"sentinel monitor {SERVICE} 127.0.0.1 {primary} 1\n"
        f"sentinel down-after-milliseconds {SERVICE} 1000\n"
        f"sentinel failover-timeout {SERVICE} 5000\n"
        f"sentinel parallel-syncs {SERVICE} 1\n"
    )
    found.processes.append(
        spawn(["redis-sentinel", str(conf)], log_path=workdir / "sentinel.log", cwd=workdir)
    )
    try:
        wait_for(
            lambda: redis.Redis(port=replica).info("replication")["master_link_status"] == "up",
            "the replica",
        )
        wait_for(lambda: found.primary_port() == primary, "the sentinel")
        wait_for(found.replica_ready, "the sentinel to see the replica ready")
    except BaseException:
        found.stop()
        raise
    return found


@dataclass
class Cluster:
    """Three cluster-enabled primaries, every slot assigned."""

    ports: list[int]
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list, repr=False)

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{p}" for p in self.ports)

    def flush(self) -> None:
        for port in self.ports:
            redis.Redis(port=port).flushall()

    def stop(self) -> None:
        for process in self.processes:
            terminate(process)


def _cluster_port() -> int:
    """A free port whose cluster bus port (10,000 higher) is free too, and below 65,536."""
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


def start_cluster(workdir: Path) -> Cluster:
    ports = [_cluster_port() for _ in range(3)]
    found = Cluster(ports)
    found.processes += [
        spawn(["redis-server", "--port", str(port), *_COMMON, "--cluster-enabled", "yes",
               "--cluster-config-file", f"nodes-{port}.conf", "--dir", str(workdir)],
              log_path=workdir / f"node-{port}.log", cwd=workdir)
        for port in ports
    ]
    try:
        for port in ports:
            wait_for(redis.Redis(port=port).ping, f"node {port}", timeout=10)
        create = subprocess.run(
            ["redis-cli", "--cluster", "create", *(f"127.0.0.1:{p}" for p in ports),
             "--cluster-replicas", "0", "--cluster-yes"],
            capture_output=True, text=True, timeout=60, check=False,
        )
        assert create.returncode == 0, create.stdout[-1000:] + create.stderr[-1000:]
        wait_for(lambda: redis.Redis(port=ports[0]).cluster("info")["cluster_state"] == "ok",
                 "the cluster")
    except BaseException:
        found.stop()
        raise
    return found
