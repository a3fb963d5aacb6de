"""``redis+sentinel://``: the redis store behind Redis Sentinel (high availability).

::

    session_store = "redis+sentinel://sentinel-1:26379,sentinel-2:26379/mymaster/0"
    session_store = "redis+sentinel://:password@sentinel-1:26379/mymaster"  # the data's password

The sentinels are asked which server is the primary (redis-py's own ``Sentinel``
client); every command goes to it, and after a failover the next connection goes
to the new one. A write that meets the old primary turned replica (``READONLY``)
is retried once on a fresh connection. The near cache is off behind Sentinel
(``CLIENT TRACKING`` follows one server), so each signed-in request costs one
read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from ..errors import ConfigurationError

__all__ = [
    "SCHEME",
    "SentinelSpec",
    "async_primary",
    "parse_hosts",
    "parse_sentinel_url",
    "sentinels_of",
    "sync_primary",
]

SCHEME = "redis+sentinel"


@dataclass(frozen=True)
class SentinelSpec:
    """Where the sentinels are, which service they watch, and which database."""

    hosts: tuple[tuple[str, int], ...]
    service: str
    db: int
    password: str | None

    def __repr__(self) -> str:
        return f"SentinelSpec({self.service!r}, {len(self.hosts)} sentinel(s))"  # no password


def parse_hosts(netloc: str, what: str) -> tuple[tuple[tuple[str, int], ...], str | None]:
    """``[:password@]host:port[,host:port...]`` as hosts and the password (the URLs of
    Sentinel and Cluster stores)."""
    userinfo, _, hostlist = netloc.rpartition("@")
    password = unquote(userinfo.partition(":")[2]) if userinfo else None
    hosts = []
    for item in hostlist.split(","):
        host, _, port = item.strip().rpartition(":")
        if not host or not port.isdigit():
            raise ConfigurationError("session_store", f"{what} are host:port, comma-separated")
        hosts.append((host.strip("[]"), int(port)))
    return tuple(hosts), password


def parse_sentinel_url(url: str) -> SentinelSpec:
    """``redis+sentinel://[:password@]host:port[,host:port...]/service[/db]``."""
    parts = urlsplit(url)
    if parts.scheme != SCHEME:
        raise ConfigurationError("session_store", f"a Sentinel URL starts with {SCHEME}://")
    hosts, password = parse_hosts(parts.netloc, "Sentinel hosts")
    path = [p for p in parts.path.split("/") if p]
    if not path or len(path) > 2 or (len(path) == 2 and not path[1].isdigit()):
        raise ConfigurationError(
            "session_store", "a Sentinel URL ends with /service or /service/db, like /mymaster/0"
        )
    return SentinelSpec(hosts, path[0], int(path[1]) if len(path) == 2 else 0, password)


def sync_primary(spec: SentinelSpec, **options: Any) -> Any:
    """A ``redis.Redis`` that always talks to the current primary."""
    from redis.sentinel import Sentinel

    return _primary(Sentinel, spec, options)


def async_primary(spec: SentinelSpec, **options: Any) -> Any:
    """The same for one event loop (``redis.asyncio``)."""
    from redis.asyncio.sentinel import Sentinel

    return _primary(Sentinel, spec, options)


def sentinels_of(client: Any) -> list[Any]:
    """The clients a primary's client asks the sentinels with (closed with it); none for a
    client of a plain redis URL."""
    manager = getattr(getattr(client, "connection_pool", None), "sentinel_manager", None)
    return list(manager.sentinels) if manager is not None else []


def _primary(sentinel_class: Any, spec: SentinelSpec, options: dict[str, Any]) -> Any:
    sentinels = sentinel_class(
        list(spec.hosts),
        socket_timeout=options["socket_timeout"],
        socket_connect_timeout=options["socket_connect_timeout"],
    )
    return sentinels.master_for(spec.service, db=spec.db, password=spec.password, **options)
