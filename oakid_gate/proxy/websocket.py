"""The WebSocket relay: the handshake passed upstream, then messages both ways.

The upstream connection is made before the client's is accepted, with the
same headers rules as HTTP (identity headers from the gate only). An upstream
that refuses the handshake gives the client its answer (status and a few
headers: ``Location``, ``Set-Cookie``, ``Content-Type``, ``WWW-Authenticate``)
where the server can send one; an upstream that cannot be reached is a 502.
Close codes pass through, made valid for a close frame (RFC 6455 7.4).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
from starlette.types import Message, Receive, Scope, Send
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from .headers import Headers
from .relay import bad_gateway_reply
from .upstream import Upstream

__all__ = ["WEBSOCKET_MAX_MESSAGE", "WebSocketRelay"]

log = logging.getLogger("oakid_gate")

WEBSOCKET_MAX_MESSAGE = 16 * 1024 * 1024  # as uvicorn's default ws_max_size
#: the headers of a refused handshake that the client is given
_PASSED_ON_REFUSAL = ("location", "set-cookie", "content-type", "www-authenticate")


class _Connect(connect):
    """``connect`` that hands the upstream's redirects to the client instead of following them."""

    def process_redirect(self, exc: Exception) -> Exception | str:
        return exc


class WebSocketRelay:
    """Pass WebSocket connections through to the upstream."""

    def __init__(self, upstream: Upstream, open_timeout: float) -> None:
        self._upstream = upstream
        self._open_timeout = open_timeout
        # wss:// only: websockets refuses a context for ws://
        self._tls: dict[str, Any] = {} if upstream.tls is None else {"ssl": upstream.tls}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = await receive()
        if message["type"] != "websocket.connect":
            return
        target = self._upstream.target(scope)
        if target is None:
            await send({"type": "websocket.close", "code": 1008})
            return
        upstream = await self._connect(scope, send, self._upstream.ws_origin + target)
        if upstream is None:
            return
        try:
            await _pipe(upstream, receive, send)
        finally:
            with anyio.CancelScope(shield=True):
                await upstream.close()

    async def _connect(self, scope: Scope, send: Send, url: str) -> ClientConnection | None:
        """The upstream connection, or ``None`` once the client was refused."""
        headers = [
            (name.decode("latin-1"), value.decode("latin-1"))
            for name, value in self._upstream.headers(scope, websocket=True)
        ]
        try:
            return await _Connect(
                url,
                additional_headers=headers,
                subprotocols=scope.get("subprotocols") or None,
                user_agent_header=None,
                proxy=None,
                compression=None,
                open_timeout=self._open_timeout,
                **self._tls,
                max_size=WEBSOCKET_MAX_MESSAGE,
            )
        except InvalidStatus as exc:
            # The upstream refused the handshake: the client gets its answer.
            reply = exc.response
            passed = [
                (k.lower().encode("latin-1"), v.encode("latin-1"))
                for k, v in reply.headers.raw_items()
                if k.lower() in _PASSED_ON_REFUSAL
            ]
            await _deny(scope, send, reply.status_code, passed, bytes(reply.body or b""))
        except Exception as exc:  # OSError, TimeoutError, handshake errors
            cause = f"upstream {self._upstream.url} refused a WebSocket ({type(exc).__name__})"
            status, reply_headers, body = bad_gateway_reply(scope, timed_out=False, cause=cause)
            await _deny(scope, send, status, reply_headers, body)
        return None


async def _pipe(upstream: ClientConnection, receive: Receive, send: Send) -> None:
    """Accept the client, then relay messages both ways until either side closes."""
    accept: Message = {"type": "websocket.accept", "subprotocol": upstream.subprotocol}
    if upstream.response is not None:
        accept["headers"] = [
            (b"set-cookie", v.encode("latin-1"))
            for v in upstream.response.headers.get_all("Set-Cookie")
        ]
    pipe = _Pipe(upstream, receive, send)
    await send(accept)
    async with anyio.create_task_group() as group:

        async def run_then_stop(part: Callable[[], Awaitable[None]]) -> None:
            await part()
            group.cancel_scope.cancel()

        group.start_soon(run_then_stop, pipe.client_to_upstream)
        group.start_soon(run_then_stop, pipe.upstream_to_client)


class _Pipe:
    """The two directions of one relayed connection."""

    def __init__(self, upstream: ClientConnection, receive: Receive, send: Send) -> None:
        self._upstream, self._receive, self._send = upstream, receive, send
        self._client_gone = False

    async def client_to_upstream(self) -> None:
        while True:
            message = await self._receive()
            if message["type"] == "websocket.receive":
                text = message.get("text")
                data = text if text is not None else message.get("bytes") or b""
                try:
                    await self._upstream.send(data)
                except ConnectionClosed:
                    return
            elif message["type"] == "websocket.disconnect":
                self._client_gone = True  # before closing: the other direction must not answer
                code = _close_code(message.get("code", 1000))
                await self._upstream.close(code, message.get("reason") or "")
                return

    async def upstream_to_client(self) -> None:
        try:
            async for data in self._upstream:
                key = "text" if isinstance(data, str) else "bytes"
                await self._send({"type": "websocket.send", key: data})
        except ConnectionClosed:
            pass
        if not self._client_gone:
            with contextlib.suppress(OSError, RuntimeError):
                code = _close_code(self._upstream.close_code or 1000)
                reason = self._upstream.close_reason or ""
                await self._send({"type": "websocket.close", "code": code, "reason": reason})


def _close_code(code: int) -> int:
    """A close code that may be sent in a close frame (RFC 6455 section 7.4)."""
    if code in (1004, 1005, 1006, 1015) or not (1000 <= code < 5000) or 1016 <= code < 3000:
        return 1000 if code == 1005 else 1011
    return code


async def _deny(scope: Scope, send: Send, status: int, headers: Headers, body: bytes) -> None:
    """Refuse a WebSocket handshake with an HTTP answer, where the server can send one."""
    if "websocket.http.response" in scope.get("extensions", {}):
        await send({"type": "websocket.http.response.start", "status": status, "headers": headers})
        await send({"type": "websocket.http.response.body", "body": body})
    else:
        await send({"type": "websocket.close", "code": 1011})
