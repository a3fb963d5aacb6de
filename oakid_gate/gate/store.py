"""The session store contract.

A store keeps three kinds of entry, each under a key that is already a hash
(see :func:`oakid_gate.gate.records.hash_key`):

- sessions, read on every signed-in request;
- sign-ins under way, taken exactly once (atomically read and deleted);
- short locks, so that one refresh runs at a time per session, across tasks,
  threads, processes and hosts that share the store.

Two reads: :meth:`SessionStore.get_session` is the store of record, and every
decision that changes a session (refresh under its lock, sign-out) reads with
it; :meth:`SessionStore.peek_session` is the hot path's read, which a shared
store may answer from a near cache in its own process as long as a session
changed or deleted elsewhere is never served from it for longer than the
store's documented bound. The hot path only ever uses a peeked session that
needs nothing (no refresh, no touch), so a peek can never send a superseded
refresh token anywhere.

Every method has a synchronous form (WSGI) and an ``a``-prefixed asynchronous
form (ASGI). Stores whose calls are local and quick (memory, sqlite) inherit
the asynchronous forms, which call the synchronous ones directly; a network
store (redis) overrides them. A store that cannot answer raises
:class:`~oakid_gate.errors.StoreUnavailable`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from .records import PendingLogin, Session

__all__ = ["SessionStore"]


class SessionStore(ABC):
    """Where sessions, sign-ins under way and refresh locks live."""

    #: whether several processes may share this store
    shared: bool = False
    #: whether its calls wait on the network (an ASGI adapter then awaits them);
    #: a store whose calls never do is read directly on the hot path
    waits_on_network: bool = False

    @abstractmethod
    def get_session(self, key: str) -> Session | None: ...

    def peek_session(self, key: str) -> Session | None:
        """The hot path's read: may be served from a near cache (see the module docstring)."""
        return self.get_session(key)

    @abstractmethod
    def put_session(self, key: str, session: Session, ttl: float) -> None: ...

    @abstractmethod
    def delete_session(self, key: str) -> None: ...

    @abstractmethod
    def put_login(self, key: str, login: PendingLogin, ttl: float) -> None: ...

    @abstractmethod
    def take_login(self, key: str) -> PendingLogin | None: ...

    @abstractmethod
    def acquire_lock(self, key: str, owner: str, ttl: float) -> bool: ...

    @abstractmethod
    def release_lock(self, key: str, owner: str) -> None: ...

    def ping(self) -> None:  # noqa: B027 - a no-op is right for local stores
        """Raise :class:`StoreUnavailable` when the store does not answer."""

    def close(self) -> None:  # noqa: B027
        """Release connections and files."""

    # -------- asynchronous forms: direct calls, for stores that never wait

    async def aget_session(self, key: str) -> Session | None:
        return self.get_session(key)

    async def apeek_session(self, key: str) -> Session | None:
        return await self.aget_session(key)

    async def aput_session(self, key: str, session: Session, ttl: float) -> None:
        self.put_session(key, session, ttl)

    async def adelete_session(self, key: str) -> None:
        self.delete_session(key)

    async def aput_login(self, key: str, login: PendingLogin, ttl: float) -> None:
        self.put_login(key, login, ttl)

    async def atake_login(self, key: str) -> PendingLogin | None:
        return self.take_login(key)

    async def aacquire_lock(self, key: str, owner: str, ttl: float) -> bool:
        return self.acquire_lock(key, owner, ttl)

    async def arelease_lock(self, key: str, owner: str) -> None:
        self.release_lock(key, owner)

    async def aping(self) -> None:
        self.ping()

    async def aclose(self) -> None:
        self.close()
