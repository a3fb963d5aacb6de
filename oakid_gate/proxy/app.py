"""``ProxyApp``: a plain ASGI app that forwards every request to ``upstream``."""

from __future__ import annotations

import ssl
from typing import TYPE_CHECKING

from starlette.types import Receive, Scope, Send

from ..settings import Settings
from .limits import DEFAULT_LIMITS, Limits
from .relay import HTTPRelay
from .upstream import Upstream

if TYPE_CHECKING:
    from .websocket import WebSocketRelay

__all__ = ["ProxyApp"]


class ProxyApp:
    """An ASGI app that forwards requests (and WebSockets) to ``settings.upstream``.

    Wrapped by :class:`~oakid_gate.asgi.OakIDMiddleware`, it only ever sees
    requests the gate let through. ``limits`` sets the upstream timeouts and
    pool sizes; ``ssl_context`` replaces the default one for an ``https``
    upstream (a private certificate authority, a client certificate).
    """

    def __init__(
        self,
        settings: Settings,
        *,
        limits: Limits = DEFAULT_LIMITS,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.settings = settings
        self.upstream = Upstream(settings, ssl_context)
        self._http = HTTPRelay(self.upstream, limits)
        self._connect_timeout = limits.connect_timeout
        self._websocket: WebSocketRelay | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "websocket":
            await self._websockets()(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)

    def _websockets(self) -> WebSocketRelay:
        # The websockets library loads with the first WebSocket, not at start-up.
        if self._websocket is None:
            from .websocket import WebSocketRelay

            self._websocket = WebSocketRelay(self.upstream, self._connect_timeout)
        return self._websocket

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return
