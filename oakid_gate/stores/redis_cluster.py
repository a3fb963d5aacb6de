"""``redis+cluster://``: the redis store on a Redis Cluster.

::

    session_store = "redis+cluster://node-1:6379,node-2:6379,node-3:6379"
    session_store = "redis+cluster://:password@node-1:6379"

redis-py's own cluster clients learn the slots from any node given and follow the
cluster as it changes. Every store operation touches one key (a session, a lock,
the set of a user's sessions), so each goes to the node that holds it; ending a
user's sessions (back-channel logout) reads the set, then deletes each session
and the set, one command each. The near cache is off there (``CLIENT TRACKING``
follows one node), so each signed-in request costs one read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ..errors import ConfigurationError
from .redis_sentinel import parse_hosts

__all__ = ["SCHEME", "ClusterSpec", "async_cluster", "parse_cluster_url", "sync_cluster"]

SCHEME = "redis+cluster"


@dataclass(frozen=True)
class ClusterSpec:
    """The nodes to start from, and the password."""

    nodes: tuple[tuple[str, int], ...]
    password: str | None

    def __repr__(self) -> str:
        return f"ClusterSpec({len(self.nodes)} node(s))"  # no password


def parse_cluster_url(url: str) -> ClusterSpec:
    """``redis+cluster://[:password@]host:port[,host:port...]`` (database 0 only)."""
    parts = urlsplit(url)
    if parts.scheme != SCHEME:
        raise ConfigurationError("session_store", f"a Cluster URL starts with {SCHEME}://")
    nodes, password = parse_hosts(parts.netloc, "Cluster nodes")
    if parts.path.strip("/") not in ("", "0"):
        raise ConfigurationError("session_store", "a Redis Cluster has database 0 only")
    return ClusterSpec(nodes, password)


def sync_cluster(spec: ClusterSpec, **options: Any) -> Any:
    """A ``redis.cluster.RedisCluster`` started from ``spec``'s nodes."""
    from redis import cluster

    return _cluster(cluster.ClusterNode, cluster.RedisCluster, spec, options)


def async_cluster(spec: ClusterSpec, **options: Any) -> Any:
    """The same for one event loop (``redis.asyncio.cluster``)."""
    from redis.asyncio import cluster

    return _cluster(cluster.ClusterNode, cluster.RedisCluster, spec, options)


def _cluster(node: Any, client: Any, spec: ClusterSpec, options: dict[str, Any]) -> Any:
    nodes = [node(host, port) for host, port in spec.nodes]
    return client(startup_nodes=nodes, password=spec.password, **options)
