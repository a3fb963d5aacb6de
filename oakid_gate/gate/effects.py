"""What a core program asks its driver to do, as typed values.

The gate's logic is written once, as generators (*programs*) that yield an
effect and receive its result, in the manner of httpx's ``auth_flow``:

==========================  ===============================================
the program yields          it receives
==========================  ===============================================
:class:`httpx.Request`      the provider's :class:`httpx.Response`
a :class:`StoreOp`          what that store operation returns
:class:`Sleep`              the new ``now``, after a short wait
:class:`ReadBody`           the request body (``bytes``), at most ``limit``
==========================  ===============================================

A failure is thrown back into the program at the ``yield`` as
:class:`~oakid_gate.errors.ProviderUnavailable` or
:class:`~oakid_gate.errors.StoreUnavailable`, so the logic decides in one place
what a failure means. The drivers that perform effects are
:mod:`oakid_gate.drivers`; nothing here does I/O.

Each store operation is a small frozen dataclass that knows which method of
the :class:`~oakid_gate.gate.store.SessionStore` it stands for, in its
synchronous and asynchronous form, so the core is type-checked end to end:
``session = yield from perform(GetSession(key))`` is a ``Session | None``.
They are a declared table, one entry per method of the contract, and look
alike on purpose.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast

from .records import Session
from .store import SessionStore

__all__ = [
    "MAX_FORM_BODY",
    "AcquireLock",
    "DeleteSession",
    "EndLinked",
    "GetSession",
    "LinkSession",
    "PingStore",
    "Program",
    "PutSession",
    "Random",
    "ReadBody",
    "ReleaseLock",
    "Sleep",
    "StoreOp",
    "UpdateSession",
    "perform",
    "read_body",
    "sleep",
]

T = TypeVar("T")
#: a core program: yields effects, receives their results, returns a ``T``
Program = Generator[Any, Any, T]

#: a source of random tokens (256 bits, URL-safe), handed in by the driver
Random = Callable[[], str]

#: the largest request body the gate itself reads (the sign-out form)
MAX_FORM_BODY = 16 << 10


class StoreOp(Generic[T]):
    """One call of the session store, returning a ``T``."""

    __slots__ = ()

    def on(self, store: SessionStore) -> T:
        """Perform the call on the store's synchronous methods (WSGI)."""
        raise NotImplementedError

    def aon(self, store: SessionStore) -> Awaitable[T]:
        """Perform the call on the store's asynchronous methods (ASGI)."""
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class GetSession(StoreOp["Session | None"]):
    key: str

    def on(self, store: SessionStore) -> Session | None:
        return store.get_session(self.key)

    def aon(self, store: SessionStore) -> Awaitable[Session | None]:
        return store.aget_session(self.key)


@dataclass(frozen=True, slots=True)
class PutSession(StoreOp[None]):
    key: str
    session: Session
    ttl: float

    def on(self, store: SessionStore) -> None:
        store.put_session(self.key, self.session, self.ttl)

    def aon(self, store: SessionStore) -> Awaitable[None]:
        return store.aput_session(self.key, self.session, self.ttl)


@dataclass(frozen=True, slots=True)
class UpdateSession(StoreOp[bool]):
    """Write ``session`` only over the version ``expected`` (compare and set): ``False``
    when the stored session was deleted or changed meanwhile, and nothing was written."""

    key: str
    session: Session
    ttl: float
    expected: int

    def on(self, store: SessionStore) -> bool:
        return store.update_session(self.key, self.session, self.ttl, self.expected)

    def aon(self, store: SessionStore) -> Awaitable[bool]:
        return store.aupdate_session(self.key, self.session, self.ttl, self.expected)


@dataclass(frozen=True, slots=True)
class LinkSession(StoreOp[None]):
    """Session ``key`` belongs to ``index`` (:meth:`SessionStore.link_session`)."""

    index: str
    key: str
    ttl: float

    def on(self, store: SessionStore) -> None:
        store.link_session(self.index, self.key, self.ttl)

    def aon(self, store: SessionStore) -> Awaitable[None]:
        return store.alink_session(self.index, self.key, self.ttl)


@dataclass(frozen=True, slots=True)
class EndLinked(StoreOp[int]):
    """Delete the sessions linked to ``index`` (:meth:`SessionStore.end_linked`)."""

    index: str

    def on(self, store: SessionStore) -> int:
        return store.end_linked(self.index)

    def aon(self, store: SessionStore) -> Awaitable[int]:
        return store.aend_linked(self.index)


@dataclass(frozen=True, slots=True)
class DeleteSession(StoreOp[None]):
    key: str

    def on(self, store: SessionStore) -> None:
        store.delete_session(self.key)

    def aon(self, store: SessionStore) -> Awaitable[None]:
        return store.adelete_session(self.key)


@dataclass(frozen=True, slots=True)
class AcquireLock(StoreOp[bool]):
    key: str
    owner: str
    ttl: float

    def on(self, store: SessionStore) -> bool:
        return store.acquire_lock(self.key, self.owner, self.ttl)

    def aon(self, store: SessionStore) -> Awaitable[bool]:
        return store.aacquire_lock(self.key, self.owner, self.ttl)


@dataclass(frozen=True, slots=True)
class ReleaseLock(StoreOp[None]):
    key: str
    owner: str

    def on(self, store: SessionStore) -> None:
        store.release_lock(self.key, self.owner)

    def aon(self, store: SessionStore) -> Awaitable[None]:
        return store.arelease_lock(self.key, self.owner)


@dataclass(frozen=True, slots=True)
class PingStore(StoreOp[None]):
    def on(self, store: SessionStore) -> None:
        store.ping()

    def aon(self, store: SessionStore) -> Awaitable[None]:
        return store.aping()


@dataclass(frozen=True, slots=True)
class Sleep:
    """Wait ``seconds`` (a refresh held elsewhere); the program receives the new ``now``."""

    seconds: float


@dataclass(frozen=True, slots=True)
class ReadBody:
    """Read the request body; more than ``limit`` bytes is :class:`~oakid_gate.errors.BodyTooLarge`."""

    limit: int = MAX_FORM_BODY


def perform(op: StoreOp[T]) -> Program[T]:
    """Yield one store operation and return its result, typed."""
    result = yield op
    return cast(T, result)


def sleep(seconds: float) -> Program[float]:
    """Wait, and return the new ``now``."""
    now = yield Sleep(seconds)
    return cast(float, now)


def read_body(limit: int = MAX_FORM_BODY) -> Program[bytes]:
    """The request body, at most ``limit`` bytes."""
    body = yield ReadBody(limit)
    return cast(bytes, body)
