"""``redis://host:port/db`` and ``rediss://`` (TLS): a store that several hosts share.

::

    pip install 'oakid-gate[redis]'
    session_store = "redis://127.0.0.1:6379/0"     # or rediss://:password@redis.internal:6380/0

Keys, values and locks:

- ``oakid:s:<hash>`` a session, ``oakid:k:<hash>`` its refresh lock;
  ``<hash>`` is already a SHA-256 of the app (issuer, client) and the cookie's
  session id (:func:`oakid_gate.gate.records.session_key`), so apps sharing a
  redis never share a key.
- Values are sealed with AES-256-GCM (:mod:`oakid_gate.stores.codec`); every
  key has a time to live (``SET ... PX``), so redis expires what is stale.
- A session is updated by a Lua script that writes only over the version the
  writer read (compare and set on the record's clear version prefix): a
  sign-out is never undone by a refresh or touch that was in flight.
- A lock is ``SET NX PX`` (one holder, which a crash cannot keep forever) and
  is released by a Lua script only when it still holds the releasing owner's
  value, so a holder whose lock expired cannot release its successor's.

Outages: connections and reads time out after 1 and 2 seconds, so a request
learns fast that redis is down; it then answers 503 (through
:class:`~oakid_gate.errors.StoreUnavailable`) rather than hang or pass
anonymously. redis-py reconnects by itself at the next command once redis is
back, and a pooled connection that broke meanwhile is replaced before use;
nothing needs restarting.

Each operation is written once, as a value: the one redis command it sends
and how its reply is read (:mod:`oakid_gate.stores.redis_ops`). The
synchronous methods (WSGI) send it with ``redis.Redis``, the asynchronous ones
(ASGI) with ``redis.asyncio.Redis``; each client is created at its first use,
and the asynchronous one once per event loop (in practice: once).

The hot path's read (``peek_session``) is served from a near cache in each
process (:mod:`oakid_gate.stores.near`, 10,000 sessions by default) kept in
step by redis's server-assisted client-side caching
(:mod:`oakid_gate.stores.tracking`): a signed-in request costs no redis round
trip on a hit and one command on a miss. Its bounds: **a session signed out,
expired or refreshed by another process stops being served from this
process's near cache as soon as redis's invalidation arrives, within 2 s if
the invalidation connection fails silently**, and never longer than 30 s; a
write or delete made through this store is seen at once. It needs redis 6.0
or later and the ``CLIENT`` command (without them: off, every request reads
redis); two more connections per process; ``near_cache=0`` turns it off.
Every other read (refresh under its lock, sign-out, the full path) reads redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import threading
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from ..errors import ConfigurationError, StoreUnavailable
from ..gate.records import Session
from ..gate.store import SessionStore
from . import redis_ops as ops
from .codec import SessionCodec
from .near import MAX_AGE, MAXSIZE, NearCache
from .redis_cluster import SCHEME as CLUSTER
from .redis_cluster import async_cluster, parse_cluster_url, sync_cluster
from .redis_sentinel import SCHEME, async_primary, parse_sentinel_url, sentinels_of, sync_primary
from .tracking import HEALTH_INTERVAL, Tracking

if TYPE_CHECKING:
    import redis
    import redis.asyncio

__all__ = ["RedisStore"]

log = logging.getLogger("oakid_gate")

_UNAVAILABLE = "the session store (redis) is not answering"
_INSTALL = "redis:// and rediss:// need redis-py: pip install 'oakid-gate[redis]'"

T = TypeVar("T")


def _require_redis() -> None:
    try:
        import redis.asyncio  # noqa: F401 - redis-py is installed
    except ImportError:
        raise ConfigurationError("session_store", _INSTALL) from None


def _check_url(url: str) -> None:
    import redis.connection

    if not url.startswith(("redis://", "rediss://")):
        raise ConfigurationError(
            "session_store", "a redis URL starts with redis://, rediss:// or redis+sentinel://"
        )
    try:
        redis.connection.parse_url(url)  # type: ignore[no-untyped-call]
        db = urlsplit(url).path.strip("/")
        if db and not db.isdigit():
            raise ValueError("the path must be a database number, like /0")
    except ValueError as exc:
        # The message names the part, never the password.
        raise ConfigurationError("session_store", f"invalid redis URL: {exc}") from None


def _retried() -> tuple[type[redis.RedisError], ...]:
    import redis

    return (redis.ConnectionError, redis.ReadOnlyError)


class RedisStore(SessionStore):
    """Sessions and refresh locks in redis."""

    shared = True
    waits_on_network = True

    def __init__(
        self,
        url: str,
        secrets: Sequence[str],
        *,
        socket_timeout: float = 2.0,
        connect_timeout: float = 1.0,
        near_cache: int = MAXSIZE,
        near_max_age: float = MAX_AGE,
        health_interval: float = HEALTH_INTERVAL,
    ) -> None:
        _require_redis()
        import redis.connection

        #: behind Sentinel: where the sentinels are (redis_sentinel.py); else None
        self._sentinel = parse_sentinel_url(url) if url.startswith(SCHEME + "://") else None
        #: on a Redis Cluster: the nodes to start from (redis_cluster.py); else None
        self._cluster = parse_cluster_url(url) if url.startswith(CLUSTER + "://") else None
        if self._sentinel is not None or self._cluster is not None:
            near_cache = 0  # CLIENT TRACKING follows one server: no near cache
        else:
            _check_url(url)
        self._url = url
        self._codec = SessionCodec(secrets)
        #: the hot path's near cache; off until tracking is on
        self.near = NearCache(near_cache, near_max_age, enabled=False)
        self.tracking = Tracking(
            url, self.near, ops.SESSION_PREFIX, health_interval, connect_timeout
        )
        self._socket_timeout = socket_timeout
        self._connect_timeout = connect_timeout
        self._sync: redis.Redis | None = None
        self._async: dict[asyncio.AbstractEventLoop, redis.asyncio.Redis] = {}
        self._mutex = threading.Lock()
        self._failures: tuple[type[BaseException], ...] = (
            redis.RedisError,
            OSError,
            asyncio.TimeoutError,  # not an OSError before Python 3.11
        )

    @classmethod
    def from_url(cls, url: str, secrets: Sequence[str]) -> RedisStore:
        return cls(url, secrets)

    def __repr__(self) -> str:
        return "RedisStore(...)"  # the URL may hold a password

    # ------------------------------------------------------------ clients

    def _client(self) -> redis.Redis:
        client = self._sync
        if client is not None:
            return client
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        with self._mutex:
            if self._sync is None:
                options: dict[str, Any] = {
                    "socket_timeout": self._socket_timeout,
                    "socket_connect_timeout": self._connect_timeout,
                    # One immediate retry on a broken connection (redis just restarted,
                    # or a failover: the old primary answers READONLY); a timeout is
                    # not retried: answer fast.
                    "retry": Retry(NoBackoff(), 1, supported_errors=_retried()),
                }
                if self._cluster is not None:
                    del options["retry"]  # the cluster client retries by its own rules
                    self._sync = sync_cluster(self._cluster, **options)
                elif self._sentinel is not None:
                    self._sync = sync_primary(self._sentinel, **options)
                else:
                    self._sync = redis.Redis.from_url(self._url, **options)
            return self._sync

    def _aclient(self) -> redis.asyncio.Redis:
        loop = asyncio.get_running_loop()
        current = self._async.get(loop)
        if current is not None:
            return current
        import redis
        import redis.asyncio
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        # A client belongs to the loop it was made in; a new loop gets its own.
        options: dict[str, Any] = {
            "socket_timeout": self._socket_timeout,
            "socket_connect_timeout": self._connect_timeout,
            "retry": Retry(NoBackoff(), 1, supported_errors=_retried()),
        }
        client: redis.asyncio.Redis
        if self._cluster is not None:
            del options["retry"]
            client = async_cluster(self._cluster, **options)
        elif self._sentinel is not None:
            client = async_primary(self._sentinel, **options)
        else:
            client = redis.asyncio.Redis.from_url(self._url, **options)
        self._async[loop] = client
        return client

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        """redis-py's failures (refused, timed out, reset, error replies) become StoreUnavailable."""
        try:
            yield
        except self._failures as exc:
            log.warning("session store: redis failed: %s", type(exc).__name__)
            raise StoreUnavailable(_UNAVAILABLE) from exc

    # ------------------------------------------------------------ running an operation

    def _run(self, op: ops.Op[T]) -> T:
        """Send ``op`` with the synchronous client (WSGI)."""
        try:
            with self._errors():
                reply = self._client().execute_command(*op.command)  # type: ignore[no-untyped-call]
        finally:
            self._changed(op)
        return op.read(reply)

    async def _arun(self, op: ops.Op[T]) -> T:
        """Send ``op`` with this event loop's asynchronous client (ASGI)."""
        try:
            with self._errors():
                client = self._aclient()
                if self._cluster is not None:
                    # Commands that start a new cluster client at once break it (redis-py
                    # 8.1); started by one, under its lock, the client serves any number.
                    await client.initialize()
                reply = await client.execute_command(*op.command)  # type: ignore[no-untyped-call]
        finally:
            self._changed(op)
        return op.read(reply)

    def _changed(self, op: ops.Op[T]) -> None:
        """After a write through this store (even one that failed): its key is not served."""
        if op.changes is not None:
            self.near.invalidate(op.changes)

    def _peek(self, key: str) -> ops.Op[Session | None]:
        """A near-cache miss: read, and keep what was read unless invalidated meanwhile."""
        ticket = self.near.reserve(key)
        if ticket is None:  # the cache is off (tracking is not on)
            return ops.get_session(self._codec, key)
        return ops.peek_session(self._codec, key, functools.partial(self.near.fill, key, ticket))

    # ------------------------------------------------------------ synchronous

    def get_session(self, key: str) -> Session | None:
        return self._run(ops.get_session(self._codec, key))

    def peek_session(self, key: str) -> Session | None:
        session = self.tracking.started().get(key)
        return session if session is not None else self._run(self._peek(key))

    def put_session(self, key: str, session: Session, ttl: float) -> None:
        self._run(ops.put_session(self._codec, key, session, ttl))

    def delete_session(self, key: str) -> None:
        self._run(ops.delete_session(key))

    def link_session(self, index: str, key: str, ttl: float) -> None:
        self._run(ops.link_session(index, key, ttl))

    def end_linked(self, index: str) -> int:
        if self._cluster is not None:  # the keys live on several nodes: one command each
            keys = self._run(ops.linked(index))
            count = sum(self._run(ops.delete_counted(key)) for key in keys)
            self._run(ops.unlink(index))
            return count
        ended = self._run(ops.end_linked(index))
        for key in ended:
            self.near.invalidate(key)
        return len(ended)

    def update_session(self, key: str, session: Session, ttl: float, expected: int) -> bool:
        return self._run(ops.update_session(self._codec, key, session, ttl, expected))

    def acquire_lock(self, key: str, owner: str, ttl: float) -> bool:
        return self._run(ops.acquire_lock(key, owner, ttl))

    def release_lock(self, key: str, owner: str) -> None:
        self._run(ops.release_lock(key, owner))

    def ping(self) -> None:
        self._run(ops.PING)

    def close(self) -> None:
        self.tracking.stop()
        with self._mutex:
            client, self._sync = self._sync, None
        if client is not None:
            with contextlib.suppress(*self._failures):
                client.close()
                for sentinel in sentinels_of(client):
                    sentinel.close()
        # An asynchronous client can only be closed on its own loop (aclose);
        # here they are let go.
        self._async.clear()

    # ------------------------------------------------------------ asynchronous

    async def aget_session(self, key: str) -> Session | None:
        return await self._arun(ops.get_session(self._codec, key))

    async def apeek_session(self, key: str) -> Session | None:
        session = self.tracking.started().get(key)
        return session if session is not None else await self._arun(self._peek(key))

    async def aput_session(self, key: str, session: Session, ttl: float) -> None:
        await self._arun(ops.put_session(self._codec, key, session, ttl))

    async def adelete_session(self, key: str) -> None:
        await self._arun(ops.delete_session(key))

    async def alink_session(self, index: str, key: str, ttl: float) -> None:
        await self._arun(ops.link_session(index, key, ttl))

    async def aend_linked(self, index: str) -> int:
        if self._cluster is not None:
            keys = await self._arun(ops.linked(index))
            count = 0
            for key in keys:
                count += await self._arun(ops.delete_counted(key))
            await self._arun(ops.unlink(index))
            return count
        ended = await self._arun(ops.end_linked(index))
        for key in ended:
            self.near.invalidate(key)
        return len(ended)

    async def aupdate_session(self, key: str, session: Session, ttl: float, expected: int) -> bool:
        return await self._arun(ops.update_session(self._codec, key, session, ttl, expected))

    async def aacquire_lock(self, key: str, owner: str, ttl: float) -> bool:
        return await self._arun(ops.acquire_lock(key, owner, ttl))

    async def arelease_lock(self, key: str, owner: str) -> None:
        await self._arun(ops.release_lock(key, owner))

    async def aping(self) -> None:
        await self._arun(ops.PING)

    async def aclose(self) -> None:
        """Close this event loop's client and the synchronous one."""
        self.tracking.stop()
        client = self._async.pop(asyncio.get_running_loop(), None)
        if client is not None:
            with contextlib.suppress(*self._failures):
                await client.aclose()
                for sentinel in sentinels_of(client):
                    await sentinel.aclose()
        with self._mutex:
            sync, self._sync = self._sync, None
        if sync is not None:
            with contextlib.suppress(*self._failures):
                sync.close()
                for sentinel in sentinels_of(sync):
                    sentinel.close()
