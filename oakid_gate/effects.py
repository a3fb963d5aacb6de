"""Effects and the two drivers that perform them.

The gate's logic (:mod:`oakid_gate.gate`) is written once, as generators that
yield what they need done and receive the result:

- an :class:`httpx.Request` (to the provider): receives the :class:`httpx.Response`;
- :class:`StoreCall`: a method of the session store; receives its result;
- :class:`Sleep`: wait a little (refresh single flight); receives the new ``now``;
- :class:`ReadBody`: the request body (the sign-out form); receives ``bytes``.

:func:`run_async` performs them on ``httpx.AsyncClient`` and the store's
asynchronous methods (ASGI); :func:`run_sync` on ``httpx.Client`` and the
synchronous methods (WSGI). Failures are thrown back into the generator as
:class:`ProviderUnavailable` or :class:`StoreUnavailable`, so the logic decides
what a failure means in one place.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Generator
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx

from .errors import OakIDGateError, ProviderError, ProviderUnavailable, StoreUnavailable
from .settings import Settings
from .stores.base import SessionStore

__all__ = [
    "Program",
    "ReadBody",
    "Sleep",
    "StoreCall",
    "provider_client_options",
    "random_token",
    "run_async",
    "run_sync",
    "store_unavailable",
]

log = logging.getLogger("oakid_gate")

T = TypeVar("T")
Program = Generator[Any, Any, T]

#: the largest provider answer the gate reads (discovery, keys, tokens, userinfo)
MAX_PROVIDER_BODY = 1 << 20
#: the largest request body the gate itself reads (the sign-out form)
MAX_FORM_BODY = 16 << 10


def random_token() -> str:
    """The randomness the drivers' callers hand to the gate: 256 bits, URL-safe."""
    return secrets.token_urlsafe(32)


@dataclass(frozen=True, slots=True)
class StoreCall:
    """Call ``method`` (a :class:`SessionStore` method name) with ``args``."""

    method: str
    args: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class Sleep:
    seconds: float


@dataclass(frozen=True, slots=True)
class ReadBody:
    limit: int = MAX_FORM_BODY


class BodyTooLarge(OakIDGateError):
    error = "invalid_request"
    status_hint = 413


def run_sync(
    program: Program[T],
    *,
    http: httpx.Client,
    store: SessionStore,
    clock: Callable[[], float] = time.time,
    read_body: Callable[[int], bytes] | None = None,
    timeout: float = 10.0,
) -> T:
    """Drive ``program`` with blocking I/O (WSGI, the CLI's checks).

    ``timeout`` bounds each provider request as a whole (connect, headers and
    body), whatever the client's own per-read timeouts.
    """
    value: Any = None
    error: BaseException | None = None
    while True:
        try:
            effect = program.send(value) if error is None else program.throw(error)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        value, error = None, None
        try:
            if isinstance(effect, StoreCall):
                value = getattr(store, effect.method)(*effect.args)
            elif isinstance(effect, httpx.Request):
                value = _send_sync(http, effect, timeout)
            elif isinstance(effect, Sleep):
                time.sleep(effect.seconds)
                value = clock()
            elif isinstance(effect, ReadBody):
                value = read_body(effect.limit) if read_body is not None else b""
            else:  # pragma: no cover - a programming error
                raise TypeError(f"unknown effect {effect!r}")
        except (OakIDGateError, httpx.HTTPError) as exc:
            error = _as_gate_error(exc)
        except Exception as exc:  # the store's own failure, whatever its type
            error = _store_failure(effect, exc)


async def run_async(
    program: Program[T],
    *,
    http: httpx.AsyncClient,
    store: SessionStore,
    clock: Callable[[], float] = time.time,
    read_body: Callable[[int], Awaitable[bytes]] | None = None,
    timeout: float = 10.0,
) -> T:
    """Drive ``program`` on the event loop (ASGI); ``timeout`` as in :func:`run_sync`."""
    value: Any = None
    error: BaseException | None = None
    while True:
        try:
            effect = program.send(value) if error is None else program.throw(error)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        value, error = None, None
        try:
            if isinstance(effect, StoreCall):
                value = await getattr(store, "a" + effect.method)(*effect.args)
            elif isinstance(effect, httpx.Request):
                try:
                    value = await asyncio.wait_for(_send_async(http, effect), timeout)
                except asyncio.TimeoutError:
                    raise _too_slow(effect) from None
            elif isinstance(effect, Sleep):
                await asyncio.sleep(effect.seconds)
                value = clock()
            elif isinstance(effect, ReadBody):
                value = await read_body(effect.limit) if read_body is not None else b""
            else:  # pragma: no cover - a programming error
                raise TypeError(f"unknown effect {effect!r}")
        except (OakIDGateError, httpx.HTTPError) as exc:
            error = _as_gate_error(exc)
        except Exception as exc:
            error = _store_failure(effect, exc)


def _send_sync(http: httpx.Client, request: httpx.Request, timeout: float) -> httpx.Response:
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
    headers = [(k, v) for k, v in response.headers.items() if k.lower() != "content-encoding"]
    return httpx.Response(
        response.status_code, headers=headers, content=body, request=response.request
    )


def _as_gate_error(exc: Exception) -> OakIDGateError:
    if isinstance(exc, OakIDGateError):
        return exc
    # httpx.HTTPError: connection refused, timeouts, protocol errors. The URL is
    # the provider's endpoint, never a token, so naming its host is safe.
    host = ""
    with contextlib.suppress(AttributeError, RuntimeError):
        host = exc.request.url.host  # type: ignore[attr-defined]
    log.warning("provider request failed: %s %s", type(exc).__name__, host)
    return ProviderUnavailable(f"the identity provider could not be reached ({type(exc).__name__})")


def _store_failure(effect: Any, exc: Exception) -> OakIDGateError:
    if isinstance(effect, StoreCall):
        return store_unavailable(effect.method, exc)
    raise exc


def store_unavailable(method: str, exc: Exception) -> StoreUnavailable:
    """Any failure of a store call, as the one error the gate answers with a 503.

    The drivers and the adapters' hot paths both use it; only the exception's
    type is logged, never its text (it may quote a URL with a password).
    """
    if isinstance(exc, StoreUnavailable):
        return exc
    log.warning("session store %s failed: %s", method, type(exc).__name__)
    return StoreUnavailable("the session store is not answering")


def provider_client_options(settings: Settings) -> dict[str, Any]:
    """How every ``httpx`` client towards the provider is built: the gate's own
    timeout, no redirects followed, no proxy or certificate settings taken from
    the environment."""
    return {"timeout": settings.http_timeout, "follow_redirects": False, "trust_env": False}
