"""``redis://host:port/db`` and ``rediss://`` (TLS): a store that several hosts share.

::

    pip install 'oakid-gate[redis]'
    session_store = "redis://127.0.0.1:6379/0"     # or rediss://:password@redis.internal:6380/0

Keys, values and locks:

- ``oakid:s:<hash>`` a session, ``oakid:l:<hash>`` a sign-in under way,
  ``oakid:k:<hash>`` a refresh lock; ``<hash>`` is already the SHA-256 of the
  cookie's session id or of ``state`` (:func:`oakid_gate.gate.records.hash_key`).
- Values are sealed with AES-256-GCM (:mod:`oakid_gate.stores.codec`); every
  key has a time to live (``SET ... PX``), so redis expires what is stale.
- A sign-in is taken with ``GETDEL`` (redis 6.2 or later): read and deleted
  in one step, once.
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
and how its reply is read (``_Op``). The synchronous methods (WSGI) send it
with ``redis.Redis``, the asynchronous ones (ASGI) with ``redis.asyncio.Redis``;
each client is created at its first use, and the asynchronous one once per
event loop (in practice: once). Operations that must touch several keys at
once are one Lua script (``EVAL``), so every operation stays one command.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, TypeVar
from urllib.parse import urlsplit

from ..errors import ConfigurationError, StoreUnavailable
from ..gate.records import PendingLogin, Session
from ..gate.store import SessionStore
from .codec import SessionCodec

if TYPE_CHECKING:
    import redis
    import redis.asyncio

__all__ = ["RedisStore"]

log = logging.getLogger("oakid_gate")

SESSION_PREFIX = "oakid:s:"
LOGIN_PREFIX = "oakid:l:"
LOCK_PREFIX = "oakid:k:"

#: delete the lock only if it still holds this owner's value
RELEASE_LOCK = """\
if redis.call("GET", KEYS[1]) == ARGV[1] then
    return redis.call("DEL", KEYS[1])
end
return 0
"""

_UNAVAILABLE = "the session store (redis) is not answering"
_INSTALL = "redis:// and rediss:// need redis-py: pip install 'oakid-gate[redis]'"

T = TypeVar("T")
#: a redis command as sent, ``("SET", key, value, "PX", 60000)``
Command = tuple[str | bytes | int, ...]


@dataclass(frozen=True, slots=True)
class _Op(Generic[T]):
    """One store operation: the command to send, and what its reply means."""

    command: Command
    read: Callable[[object], T]


def _nothing(reply: object) -> None:
    return None


def _require_redis() -> None:
    try:
        import redis.asyncio  # noqa: F401 - redis-py is installed
    except ImportError:
        raise ConfigurationError("session_store", _INSTALL) from None


def _millis(ttl: float) -> int:
    return max(1, math.ceil(ttl * 1000))


def _bytes(value: object) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()


# ---------------------------------------------------------------- operations
#
# Replies come through redis-py's execute_command, so its reply callbacks apply
# by command name, as they do for its methods: SET gives True ("OK") or None
# (NX and the key exists), PING gives True; GET, GETDEL, DEL and EVAL give the raw
# reply (bytes, None, an integer).


def _get_session(codec: SessionCodec, key: str) -> _Op[Session | None]:
    def read(blob: object) -> Session | None:
        return None if blob is None else codec.decode_session(key, _bytes(blob))

    return _Op(("GET", SESSION_PREFIX + key), read)


def _put_session(codec: SessionCodec, key: str, session: Session, ttl: float) -> _Op[None]:
    blob = codec.encode_session(key, session)
    return _Op(("SET", SESSION_PREFIX + key, blob, "PX", _millis(ttl)), _nothing)


def _delete_session(key: str) -> _Op[None]:
    return _Op(("DEL", SESSION_PREFIX + key), _nothing)


def _put_login(codec: SessionCodec, key: str, login: PendingLogin, ttl: float) -> _Op[None]:
    blob = codec.encode_login(key, login)
    return _Op(("SET", LOGIN_PREFIX + key, blob, "PX", _millis(ttl)), _nothing)


def _take_login(codec: SessionCodec, key: str) -> _Op[PendingLogin | None]:
    def read(blob: object) -> PendingLogin | None:
        return None if blob is None else codec.decode_login(key, _bytes(blob))

    return _Op(("GETDEL", LOGIN_PREFIX + key), read)  # read and delete in one step


def _acquire_lock(key: str, owner: str, ttl: float) -> _Op[bool]:
    return _Op(("SET", LOCK_PREFIX + key, owner, "NX", "PX", _millis(ttl)), bool)


def _release_lock(key: str, owner: str) -> _Op[None]:
    return _Op(("EVAL", RELEASE_LOCK, 1, LOCK_PREFIX + key, owner), _nothing)


_PING: _Op[None] = _Op(("PING",), _nothing)


class RedisStore(SessionStore):
    """Sessions, sign-ins under way and refresh locks in redis."""

    shared = True
    waits_on_network = True

    def __init__(
        self,
        url: str,
        secrets: Sequence[str],
        *,
        socket_timeout: float = 2.0,
        connect_timeout: float = 1.0,
    ) -> None:
        _require_redis()
        import redis.connection

        if not url.startswith(("redis://", "rediss://")):
            raise ConfigurationError(
                "session_store", "a redis URL starts with redis:// or rediss://"
            )
        try:
            redis.connection.parse_url(url)  # type: ignore[no-untyped-call]
            db = urlsplit(url).path.strip("/")
            if db and not db.isdigit():
                raise ValueError("the path must be a database number, like /0")
        except ValueError as exc:
            # The message names the part, never the password.
            raise ConfigurationError("session_store", f"invalid redis URL: {exc}") from None
        self._url = url
        self._codec = SessionCodec(secrets)
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
                self._sync = redis.Redis.from_url(
                    self._url,
                    socket_timeout=self._socket_timeout,
                    socket_connect_timeout=self._connect_timeout,
                    # One immediate retry on a broken connection (redis just
                    # restarted); a timeout is not retried: answer fast.
                    retry=Retry(NoBackoff(), 1, supported_errors=(redis.ConnectionError,)),
                )
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
        client = redis.asyncio.Redis.from_url(
            self._url,
            socket_timeout=self._socket_timeout,
            socket_connect_timeout=self._connect_timeout,
            retry=Retry(NoBackoff(), 1, supported_errors=(redis.ConnectionError,)),
        )
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

    def _run(self, op: _Op[T]) -> T:
        """Send ``op`` with the synchronous client (WSGI)."""
        with self._errors():
            reply = self._client().execute_command(*op.command)  # type: ignore[no-untyped-call]
        return op.read(reply)

    async def _arun(self, op: _Op[T]) -> T:
        """Send ``op`` with this event loop's asynchronous client (ASGI)."""
        with self._errors():
            reply = await self._aclient().execute_command(*op.command)  # type: ignore[no-untyped-call]
        return op.read(reply)

    # ------------------------------------------------------------ synchronous

    def get_session(self, key: str) -> Session | None:
        return self._run(_get_session(self._codec, key))

    def put_session(self, key: str, session: Session, ttl: float) -> None:
        self._run(_put_session(self._codec, key, session, ttl))

    def delete_session(self, key: str) -> None:
        self._run(_delete_session(key))

    def put_login(self, key: str, login: PendingLogin, ttl: float) -> None:
        self._run(_put_login(self._codec, key, login, ttl))

    def take_login(self, key: str) -> PendingLogin | None:
        return self._run(_take_login(self._codec, key))

    def acquire_lock(self, key: str, owner: str, ttl: float) -> bool:
        return self._run(_acquire_lock(key, owner, ttl))

    def release_lock(self, key: str, owner: str) -> None:
        self._run(_release_lock(key, owner))

    def ping(self) -> None:
        self._run(_PING)

    def close(self) -> None:
        with self._mutex:
            client, self._sync = self._sync, None
        if client is not None:
            with contextlib.suppress(*self._failures):
                client.close()
        # An asynchronous client can only be closed on its own loop (aclose);
        # here they are let go.
        self._async.clear()

    # ------------------------------------------------------------ asynchronous

    async def aget_session(self, key: str) -> Session | None:
        return await self._arun(_get_session(self._codec, key))

    async def aput_session(self, key: str, session: Session, ttl: float) -> None:
        await self._arun(_put_session(self._codec, key, session, ttl))

    async def adelete_session(self, key: str) -> None:
        await self._arun(_delete_session(key))

    async def aput_login(self, key: str, login: PendingLogin, ttl: float) -> None:
        await self._arun(_put_login(self._codec, key, login, ttl))

    async def atake_login(self, key: str) -> PendingLogin | None:
        return await self._arun(_take_login(self._codec, key))

    async def aacquire_lock(self, key: str, owner: str, ttl: float) -> bool:
        return await self._arun(_acquire_lock(key, owner, ttl))

    async def arelease_lock(self, key: str, owner: str) -> None:
        await self._arun(_release_lock(key, owner))

    async def aping(self) -> None:
        await self._arun(_PING)

    async def aclose(self) -> None:
        """Close this event loop's client and the synchronous one."""
        client = self._async.pop(asyncio.get_running_loop(), None)
        if client is not None:
            with contextlib.suppress(*self._failures):
                await client.aclose()
        with self._mutex:
            sync, self._sync = self._sync, None
        if sync is not None:
            with contextlib.suppress(*self._failures):
                sync.close()
