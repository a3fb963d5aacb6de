"""The session store contract.

A store keeps two kinds of entry, each under a key that is already a hash
(see :func:`oakid_gate.gate.records.session_key`):

- sessions, read on every signed-in request;
- short locks, so that one refresh runs at a time per session, across tasks,
  threads, processes and hosts that share the store.

(A sign-in under way is not stored: it is sealed into its own cookie, see
:mod:`oakid_gate.gate.pending`, so a flood of sign-ins costs no store anything.)

Two writes: :meth:`SessionStore.put_session` creates a session (at sign-in,
under a key nobody else has); :meth:`SessionStore.update_session` changes one,
as a compare-and-set on its ``version``, atomically in the store: it writes
only while the stored session is still there with the version the writer read.
So a sign-out racing a refresh or a touch in another process is never undone
(no write recreates a deleted session), and a touch that read the session
before a refresh never writes the superseded tokens back.

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
from collections.abc import Callable

from .records import Session

__all__ = ["SessionStore"]


class SessionStore(ABC):
    """Where sessions and refresh locks live."""

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

    def hot_reader(self) -> Callable[[str], Session | None]:
        """:meth:`peek_session` as the hot path calls it, looked up once by the adapter: a
        store may give the callable that does the read itself (one call less per request).
        Its caller serves a session only while :meth:`~oakid_gate.gate.Gate.admission`
        lets it pass, which always ends before the time to live the session was written
        with, so a store may leave that expiry unchecked here (the memory store does);
        a session deleted or replaced must read as such at once, and a near cache's
        bound on staleness holds as for :meth:`peek_session`."""
        return self.peek_session

    @abstractmethod
    def put_session(self, key: str, session: Session, ttl: float) -> None:
        """Store a new session under ``key`` (sign-in), for ``ttl`` seconds."""

    @abstractmethod
    def update_session(self, key: str, session: Session, ttl: float, expected: int) -> bool:
        """Replace the session under ``key`` with ``session`` if, and only if, it is still
        stored with version ``expected``; ``False`` (and nothing written) otherwise."""

    @abstractmethod
    def delete_session(self, key: str) -> None: ...

    @abstractmethod
    def link_session(self, index: str, key: str, ttl: float) -> None:
        """Record that session ``key`` belongs to ``index`` (a provider session or user,
        for a back-channel logout), for ``ttl`` seconds."""

    @abstractmethod
    def end_linked(self, index: str) -> int:
        """Delete every session linked to ``index``, and the link; how many went."""

    @abstractmethod
    def acquire_lock(self, key: str, owner: str, ttl: float) -> bool: ...

    @abstractmethod
    def release_lock(self, key: str, owner: str) -> None: ...

    def count_sessions(self) -> int | None:
        """How many sessions the store holds, where it can say cheaply (for the metrics);
        ``None`` where it cannot (redis would have to scan every key)."""
        return None

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

    async def alink_session(self, index: str, key: str, ttl: float) -> None:
        self.link_session(index, key, ttl)

    async def aend_linked(self, index: str) -> int:
        return self.end_linked(index)

    async def aupdate_session(self, key: str, session: Session, ttl: float, expected: int) -> bool:
        return self.update_session(key, session, ttl, expected)

    async def aacquire_lock(self, key: str, owner: str, ttl: float) -> bool:
        return self.acquire_lock(key, owner, ttl)

    async def arelease_lock(self, key: str, owner: str) -> None:
        self.release_lock(key, owner)

    async def aping(self) -> None:
        self.ping()

    async def aclose(self) -> None:
        self.close()
