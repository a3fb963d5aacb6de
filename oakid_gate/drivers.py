"""The drivers: they run the core's programs and perform the effects they yield.

A program (:mod:`oakid_gate.gate.effects`) is a generator; a driver resumes it
with the result of each effect it yields until it returns. The loop is written
once (:func:`run_sync`, and its twin :func:`run_async` for an event loop); what
performing means is a *performer*, a callable from an effect to its result:

- :class:`SyncEffects`: ``httpx.Client`` and the store's synchronous methods
  (WSGI, the ``check`` command);
- :class:`AsyncEffects`: ``httpx.AsyncClient`` and the store's asynchronous
  methods (ASGI);
- in tests, any function: ``run_sync(program, lambda effect: ...)``.

Failures become the core's errors before they are thrown back into the
program: a transport failure or a timeout is
:class:`~oakid_gate.errors.ProviderUnavailable`, any failure of a store call
is :class:`~oakid_gate.errors.StoreUnavailable` (only the exception's type is
logged, never its text, which may quote a URL with a password). Each request to
the provider is bounded as a whole: ``timeout`` seconds (connect, headers and
body) and :data:`MAX_PROVIDER_BODY` bytes.

The core has no randomness of its own: :func:`random_token` is what the
adapters hand it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import ssl
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from .errors import OakIDGateError, ProviderError, ProviderUnavailable, StoreUnavailable
from .gate.effects import Program, ReadBody, Sleep, StoreOp
from .gate.store import SessionStore

if TYPE_CHECKING:
    import httpx

__all__ = [
    "MAX_PROVIDER_BODY",
    "AsyncEffects",
    "SyncEffects",
    "new_request_id",
    "random_token",
    "run_async",
    "run_sync",
    "store_unavailable",
    "timings",
]

log = logging.getLogger("oakid_gate")

T = TypeVar("T")

#: the largest provider answer the gate reads (discovery, keys, tokens, userinfo)
MAX_PROVIDER_BODY = 1 << 20


def random_token() -> str:
    """The randomness the adapters hand to the gate: 256 bits, URL-safe."""
    return secrets.token_urlsafe(32)


def new_request_id() -> str:
    """An id for a request's log lines: 64 random bits, hex."""
    return secrets.token_hex(8)


# ---------------------------------------------------------------- the loop


class _Run(Generic[T]):
    """One program being driven: the next effect it yields, and what resumes it."""

    __slots__ = ("_error", "_program", "_value", "result")

    def __init__(self, program: Program[T]) -> None:
        self._program = program
        self._value: Any = None
        self._error: BaseException | None = None
        self.result: T

    def next_effect(self) -> Any:
        """Resume the program; its next effect, or ``None`` once it has returned."""
        value, error, self._value, self._error = self._value, self._error, None, None
        try:
            return self._program.send(value) if error is None else self._program.throw(error)
        except StopIteration as stop:
            self.result = stop.value
            return None

    def answer(self, value: Any) -> None:
        self._value = value

    def fail(self, effect: Any, exc: Exception) -> None:
        self._error = _failure(effect, exc)


def run_sync(program: Program[T], perform: Callable[[Any], Any]) -> T:
    """Drive ``program``, performing each effect with ``perform``."""
    run = _Run(program)
    while (effect := run.next_effect()) is not None:
        try:
            run.answer(perform(effect))
        except Exception as exc:
            run.fail(effect, exc)
    return run.result


async def run_async(program: Program[T], perform: Callable[[Any], Awaitable[Any]]) -> T:
    """Drive ``program`` on the event loop; ``perform`` returns awaitables."""
    run = _Run(program)
    while (effect := run.next_effect()) is not None:
        try:
            run.answer(await perform(effect))
        except Exception as exc:
            run.fail(effect, exc)
    return run.result


def _failure(effect: Any, exc: Exception) -> BaseException:
    """What to throw into the program for ``exc``; anything unforeseen is re-raised."""
    if isinstance(exc, OakIDGateError):
        return exc
    import httpx  # loaded already: a failure is of an effect that ran

    if isinstance(exc, httpx.HTTPError):
        # Connection refused, timeouts, protocol errors. The URL is the
        # provider's endpoint, never a token, so naming its host is safe.
        host = ""
        with contextlib.suppress(AttributeError, RuntimeError):
            host = exc.request.url.host
        if _untrusted_certificate(exc):
            log.warning("provider request failed: %s's TLS certificate is not trusted", host)
            return ProviderUnavailable(
                "the identity provider's TLS certificate is not trusted: set ca_file "
                "to the certificate of the CA that signed it"
            )
        log.warning("provider request failed: %s %s", type(exc).__name__, host)
        return ProviderUnavailable(
            f"the identity provider could not be reached ({type(exc).__name__})"
        )
    if isinstance(effect, StoreOp):
        return store_unavailable(type(effect).__name__, exc)
    raise exc


def _untrusted_certificate(exc: BaseException) -> bool:
    """Whether a certificate that did not verify is behind ``exc``."""
    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None:
            return False
        if isinstance(seen, ssl.SSLCertVerificationError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def store_unavailable(operation: str, exc: Exception) -> StoreUnavailable:
    """Any failure of a store call, as the one error the gate answers with a 503.

    The drivers and the adapters' hot paths both use it; only the exception's
    type is logged, never its text (it may quote a URL with a password).
    """
    if isinstance(exc, StoreUnavailable):
        return exc
    log.warning("session store %s failed: %s", operation, type(exc).__name__)
    return StoreUnavailable("the session store is not answering")


# ---------------------------------------------------------------- performers


#: who is told how long each provider request and store call took: ``(kind, name,
#: seconds, ok)`` with kind ``provider`` (name: the endpoint's last path segment) or
#: ``store`` (name: the operation); empty unless the metrics are on
timings: list[Callable[[str, str, float, bool], None]] = []


def _timed_name(effect: Any) -> tuple[str, str]:
    if isinstance(effect, StoreOp):
        return "store", type(effect).__name__
    path = str(getattr(getattr(effect, "url", None), "path", "") or "/")
    return "provider", path.rstrip("/").rsplit("/", 1)[-1] or "/"


def _told(effect: Any, started: float, ok: bool) -> None:
    kind, name = _timed_name(effect)
    elapsed = time.perf_counter() - started
    for observer in timings:
        observer(kind, name, elapsed, ok)


class SyncEffects:
    """Perform effects with blocking I/O (WSGI threads, the CLI)."""

    def __init__(
        self,
        *,
        http: httpx.Client,
        store: SessionStore,
        timeout: float,
        read_body: Callable[[int], bytes] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.http, self.store, self.timeout = http, store, timeout
        self.read_body, self.clock = read_body, clock

    def __call__(self, effect: Any) -> Any:
        if not timings or isinstance(effect, (Sleep, ReadBody)):
            return self._perform(effect)
        started = time.perf_counter()
        try:
            result = self._perform(effect)
        except BaseException:
            _told(effect, started, False)
            raise
        _told(effect, started, True)
        return result

    def _perform(self, effect: Any) -> Any:
        if isinstance(effect, StoreOp):
            return effect.on(self.store)
        if isinstance(effect, Sleep):
            time.sleep(effect.seconds)
            return self.clock()
        if isinstance(effect, ReadBody):
            return self.read_body(effect.limit) if self.read_body is not None else b""
        return _send_sync(self.http, _http_request(effect), self.timeout)


class AsyncEffects:
    """Perform effects on the event loop (ASGI)."""

    def __init__(
        self,
        *,
        http: httpx.AsyncClient,
        store: SessionStore,
        timeout: float,
        read_body: Callable[[int], Awaitable[bytes]] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.http, self.store, self.timeout = http, store, timeout
        self.read_body, self.clock = read_body, clock

    async def __call__(self, effect: Any) -> Any:
        if not timings or isinstance(effect, (Sleep, ReadBody)):
            return await self._perform(effect)
        started = time.perf_counter()
        try:
            result = await self._perform(effect)
        except BaseException:
            _told(effect, started, False)
            raise
        _told(effect, started, True)
        return result

    async def _perform(self, effect: Any) -> Any:
        if isinstance(effect, StoreOp):
            return await effect.aon(self.store)
        if isinstance(effect, Sleep):
            await asyncio.sleep(effect.seconds)
            return self.clock()
        if isinstance(effect, ReadBody):
            return await self.read_body(effect.limit) if self.read_body is not None else b""
        request = _http_request(effect)
        try:
            return await asyncio.wait_for(_send_async(self.http, request), self.timeout)
        except asyncio.TimeoutError:
            raise _too_slow(request) from None


# ---------------------------------------------------------------- bounded sends


def _http_request(effect: Any) -> httpx.Request:
    """The effect left once the gate's own are ruled out: a request to the provider."""
    import httpx  # loaded already: the flows built the request with it

    if not isinstance(effect, httpx.Request):
        raise TypeError(f"unknown effect {type(effect).__name__}")
    return effect


#: threads that send provider requests for the blocking driver (see :func:`_send_sync`)
PROVIDER_THREADS = 8
_senders: tuple[int, ThreadPoolExecutor] | None = None
_senders_lock = threading.Lock()


def _sender_pool() -> ThreadPoolExecutor:
    """This process's pool of sender threads (a forked worker makes its own)."""
    global _senders
    pool = _senders
    if pool is None or pool[0] != os.getpid():
        with _senders_lock:
            pool = _senders
            if pool is None or pool[0] != os.getpid():
                executor = ThreadPoolExecutor(PROVIDER_THREADS, thread_name_prefix="oakid-provider")
                pool = _senders = (os.getpid(), executor)
    return pool[1]


def _send_sync(http: httpx.Client, request: httpx.Request, timeout: float) -> httpx.Response:
    """Send ``request`` and read its answer within ``timeout`` seconds in all.

    A blocking read cannot be interrupted, and httpx's timeouts are per read: a
    provider that trickles its status line and headers a byte at a time would
    hold the server's thread indefinitely. So the exchange runs on a small pool
    of sender threads and the request's thread waits for it at most ``timeout``
    seconds; a sender stuck on such a provider is bounded by the pool's size
    (further exchanges wait their turn, and time out the same way).
    """
    future = _sender_pool().submit(_send_blocking, http, request, timeout)
    try:
        return future.result(timeout)
    except FutureTimeout:
        future.cancel()
        raise _too_slow(request) from None


def _send_blocking(http: httpx.Client, request: httpx.Request, timeout: float) -> httpx.Response:
    import httpx

    deadline = time.monotonic() + timeout
    request.extensions["timeout"] = httpx.Timeout(timeout).as_dict()
    response = http.send(request, stream=True)
    try:
        body = bytearray()
        for chunk in response.iter_bytes():
            if time.monotonic() > deadline:
                raise _too_slow(request)
            body += chunk
            if len(body) > MAX_PROVIDER_BODY:
                raise ProviderError("the provider's answer is too large")
    finally:
        response.close()
    return _complete(response, bytes(body))


async def _send_async(http: httpx.AsyncClient, request: httpx.Request) -> httpx.Response:
    response = await http.send(request, stream=True)
    try:
        body = bytearray()
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) > MAX_PROVIDER_BODY:
                raise ProviderError("the provider's answer is too large")
    finally:
        await response.aclose()
    return _complete(response, bytes(body))


def _too_slow(request: httpx.Request) -> ProviderUnavailable:
    log.warning("provider request timed out: %s", request.url.host)
    return ProviderUnavailable("the identity provider did not answer in time")


def _complete(response: httpx.Response, body: bytes) -> httpx.Response:
    import httpx

    headers = [(k, v) for k, v in response.headers.items() if k.lower() != "content-encoding"]
    return httpx.Response(
        response.status_code, headers=headers, content=body, request=response.request
    )
