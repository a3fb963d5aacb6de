"""The HTTP relay: one request to the upstream, its answer streamed back.

Bodies stream both ways as they come (never held whole in memory, never
decompressed). Connections to the upstream are pooled and kept alive; no
environment proxy settings apply to them; redirects and ``Set-Cookie`` go to
the client as the upstream wrote them (nothing is followed or kept). An
idempotent request without a body is sent once more when a kept-alive
connection broke just as it was reused. An upstream that cannot be reached or
does not answer in time is a 502 page (JSON for API clients), never a
traceback; an answer that breaks off midway closes the client's connection
unfinished, which is how the client learns the body is incomplete.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from http.cookiejar import Cookie, CookieJar
from typing import Any

import anyio
import httpx
from starlette.types import Message, Receive, Scope, Send

from ..gate.replies import error_reply
from .headers import Headers, downstream_headers
from .upstream import Upstream

__all__ = ["DEFAULT_LIMITS", "HTTPRelay", "Limits", "bad_gateway_reply", "send_simple"]

log = logging.getLogger("oakid_gate")

_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS"})
_RETRIED = (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)


class Limits:
    """Timeouts and pool sizes towards the upstream."""

    def __init__(
        self,
        *,
        timeout: float = 60.0,  # read and write
        connect_timeout: float = 10.0,
        max_connections: int = 100,
        max_keepalive: int = 20,
        # below the 5 s idle limit of common upstream servers (uvicorn, node), so
        # that the proxy drops an idle connection before the upstream does
        keepalive_expiry: float = 4.0,
    ) -> None:
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.max_connections = max_connections
        self.max_keepalive = max_keepalive
        self.keepalive_expiry = keepalive_expiry


DEFAULT_LIMITS = Limits()


class _ClientDisconnected(Exception):
    """The client went away while its request body was being forwarded."""


class _NoCookies(CookieJar):
    """A cookie jar that keeps nothing: upstream cookies are the browser's business."""

    def set_cookie(self, cookie: Cookie) -> None:
        return None

    def extract_cookies(self, response: Any, request: Any) -> None:
        return None


class HTTPRelay:
    """Forward HTTP requests to the upstream over a pool of kept-alive connections."""

    def __init__(
        self,
        upstream: Upstream,
        limits: Limits,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._upstream = upstream
        self.client = httpx.AsyncClient(
            timeout=httpx.Timeout(limits.timeout, connect=limits.connect_timeout),
            limits=httpx.Limits(
                max_connections=limits.max_connections,
                max_keepalive_connections=limits.max_keepalive,
                keepalive_expiry=limits.keepalive_expiry,
            ),
            follow_redirects=False,
            trust_env=False,
            cookies=_NoCookies(),
            transport=transport,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        target = self._upstream.target(scope)
        try:
            if target is None:
                raise httpx.InvalidURL("not a path")
            url = httpx.URL(self._upstream.origin + target)
        except httpx.InvalidURL:
            await send_simple(send, 400, b"Bad request target\n")
            return
        names = {name.lower() for name, _ in scope["headers"]}
        has_body = b"content-length" in names or b"transfer-encoding" in names
        # A kept-alive connection that the upstream closes just as it is reused
        # fails the request: one without a body or side effects is sent again.
        retry = scope["method"] in _IDEMPOTENT and not has_body
        headers = self._upstream.headers(scope)
        while True:
            content = _body(receive) if has_body else None
            request = httpx.Request(scope["method"], url, headers=headers, content=content)
            try:
                response = await self.client.send(request, stream=True)
            except _ClientDisconnected:
                return
            except httpx.HTTPError as exc:
                if retry and isinstance(exc, _RETRIED):
                    retry = False
                    continue
                await self._bad_gateway(scope, send, exc)
                return
            break
        try:
            await _stream(response, receive, send)
        finally:
            await response.aclose()

    async def _bad_gateway(self, scope: Scope, send: Send, exc: Exception) -> None:
        timed_out = isinstance(exc, httpx.TimeoutException)
        log.warning(
            "proxy: upstream %s %s (%s)",
            self._upstream.url,
            "did not answer in time" if timed_out else "is not answering",
            type(exc).__name__,
        )
        status, headers, body = bad_gateway_reply(scope, timed_out=timed_out)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send(
            {"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body}
        )

    async def aclose(self) -> None:
        await self.client.aclose()


async def _body(receive: Receive) -> AsyncIterator[bytes]:
    """The client's request body, as it arrives."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _ClientDisconnected
        chunk = message.get("body", b"")
        if chunk:
            yield chunk
        if not message.get("more_body", False):
            return


async def _stream(response: httpx.Response, receive: Receive, send: Send) -> None:
    """Stream the upstream's answer to the client; stop when the client leaves."""
    start: Message = {
        "type": "http.response.start",
        "status": response.status_code,
        "headers": downstream_headers(response.headers.raw),
    }

    async def watch_disconnect(scope: anyio.CancelScope) -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                scope.cancel()
                return

    async with anyio.create_task_group() as group:
        group.start_soon(watch_disconnect, group.cancel_scope)
        try:
            await send(start)
            async for chunk in response.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except (httpx.HTTPError, OSError) as exc:
            # The status line is gone: closing the connection unfinished is
            # how the client learns that the body is incomplete.
            log.warning("proxy: the upstream's answer broke off (%s)", type(exc).__name__)
        finally:
            group.cancel_scope.cancel()


async def send_simple(send: Send, status: int, text: bytes) -> None:
    headers = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(text)).encode()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": text})


def bad_gateway_reply(scope: Scope, *, timed_out: bool) -> tuple[int, Headers, bytes]:
    """The 502 answer: a page for browsers, JSON for everything else."""
    message = (
        "The service behind this gate did not answer in time. Try again in a moment."
        if timed_out
        else "The service behind this gate is not answering. Try again in a moment."
    )
    accept = b"".join(value for name, value in scope["headers"] if name == b"accept")
    reply = error_reply(502, "bad_gateway", "Bad gateway", message, html=b"text/html" in accept)
    headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in reply.headers]
    headers.append((b"content-length", str(len(reply.body)).encode()))
    return reply.status, headers, reply.body
