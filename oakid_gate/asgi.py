"""``OakIDMiddleware``: the gate as ASGI middleware (Starlette, FastAPI, any ASGI app).

::

    app = OakIDMiddleware(app, client_id="oak_...", client_secret="...", secret="...")
    # or: app.add_middleware(OakIDMiddleware, client_id=..., ...)

The app receives ``scope["user"]`` (an :class:`~oakid_gate.user.OakIDUser`, so
``request.user`` works), ``scope["auth"]`` (Starlette ``AuthCredentials`` with
``"authenticated"`` and the granted scopes) and ``scope["oakid"]`` (a
:class:`~oakid_gate.user.SessionView` with a fresh access token). Lifespan
events pass straight through; WebSocket connections need a session too.

This module only translates: every decision is made in :mod:`oakid_gate.gate`.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import httpx
from starlette.authentication import AuthCredentials, UnauthenticatedUser
from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .effects import (
    BodyTooLarge,
    provider_client_options,
    random_token,
    run_async,
    store_unavailable,
)
from .errors import StoreUnavailable
from .gate import GATE_HEADERS, UNEXPECTED_ERROR, Forward, Gate, GateRequest, Outcome, Reply
from .proxies import TrustedProxies
from .session import Session
from .settings import Settings
from .stores import SessionStore, store_for
from .user import has_identity_header, is_identity_header

__all__ = ["OakIDMiddleware"]

log = logging.getLogger("oakid_gate")

_GATE_HEADERS_BYTES = frozenset(h.encode() for h in GATE_HEADERS)


class OakIDMiddleware:
    """Require an OpenID Connect sign-in for every request to ``app``."""

    def __init__(
        self,
        app: ASGIApp,
        settings: Settings | None = None,
        *,
        store: SessionStore | None = None,
        http: httpx.AsyncClient | None = None,
        **kwargs: Any,
    ) -> None:
        self.app = app
        self.settings = settings if settings is not None else Settings.load(**kwargs)
        self.gate = Gate(self.settings)
        self.store = store if store is not None else store_for(self.settings)
        self.http = (
            http
            if http is not None
            else httpx.AsyncClient(**provider_client_options(self.settings))
        )
        self._proxies = TrustedProxies(self.settings.trusted_proxies)
        self._anonymous = UnauthenticatedUser()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = scope["headers"]
        if has_identity_header(headers):
            # Only the gate says who the user is: an app once deployed behind
            # another gate may still trust these, and a client must not send them.
            scope["headers"] = [(n, v) for n, v in headers if not is_identity_header(n)]
        if not self.gate.is_gate_path(scope["path"]):
            # The hot path: one store read, one pure decision, nothing else.
            try:
                session = await self._fast_session(scope)
            except StoreUnavailable as exc:
                # Answer now: the full path would wait for the store a second time.
                await self._finish(
                    self.gate.store_failed(self._request(scope), exc), scope, receive, send
                )
                return
            if session is not None:
                self._inject(scope, session)
                await self.app(scope, receive, send)
                return
        req = self._request(scope)

        async def read_body(limit: int) -> bytes:
            body = bytearray()
            while True:
                message = await receive()
                body += message.get("body", b"")
                if len(body) > limit:
                    raise BodyTooLarge("the form is too large")
                if not message.get("more_body", False):
                    return bytes(body)

        try:
            outcome = await run_async(
                self.gate.handle(req, time.time(), random_token),
                http=self.http,
                store=self.store,
                read_body=read_body,
                timeout=self.settings.http_timeout,
            )
        except Exception:
            log.exception("oakid-gate: unexpected error")
            outcome = UNEXPECTED_ERROR
        await self._finish(outcome, scope, receive, send)

    def _inject(self, scope: Scope, session: Session | None) -> None:
        if session is None:
            scope["user"] = self._anonymous
            scope["auth"] = AuthCredentials()
        else:
            scope["user"] = session.user
            scope["auth"] = AuthCredentials(["authenticated", *session.scopes])
            scope["oakid"] = session.view

    async def _finish(self, outcome: Outcome, scope: Scope, receive: Receive, send: Send) -> None:
        """Call the app with the session, or send the gate's own reply."""
        if isinstance(outcome, Forward):
            self._inject(scope, outcome.session)
            await self.app(scope, receive, send)
        elif scope["type"] == "websocket":
            # Refuse before accepting: the server answers 403.
            await send({"type": "websocket.close", "code": 1008})
        else:
            await _send_reply(outcome, send, head=scope.get("method") == "HEAD")

    async def _fast_session(self, scope: Scope) -> Session | None:
        """The signed-in session if it passes as it is, else ``None`` (take the full path)."""
        cookie = None
        for name, value in scope["headers"]:
            if name == b"cookie":
                cookie = value.decode("latin-1")
                break
        key = self.gate.hot_key(
            cookie, "https" if scope.get("scheme") in ("https", "wss") else "http"
        )
        if key is None:
            return None
        try:
            session = await self.store.aget_session(key)
        except Exception as exc:
            raise store_unavailable("get_session", exc) from None
        return session if self.gate.admit(session, time.time()) else None

    def _request(self, scope: Scope) -> GateRequest:
        headers: dict[str, str] = {}
        cookie_parts: list[str] = []
        for name, value in scope["headers"]:
            if name in _GATE_HEADERS_BYTES:
                text = value.decode("latin-1")
                if name == b"cookie":
                    cookie_parts.append(text)
                else:
                    key = name.decode("latin-1")
                    headers[key] = headers[key] + ", " + text if key in headers else text
        client = scope.get("client")
        client_host = client[0] if client else None
        scheme = "https" if scope.get("scheme") in ("https", "wss") else "http"
        scheme = self._proxies.apply(client_host, scheme, headers)
        return GateRequest(
            method=scope.get("method", "GET"),
            scheme=scheme,
            path=scope["path"],
            query_string=scope.get("query_string", b"").decode("latin-1"),
            headers=headers,
            cookies=cookie_parser("; ".join(cookie_parts)) if cookie_parts else {},
            client=client_host,
        )

    async def aclose(self) -> None:
        await self.http.aclose()
        await self.store.aclose()


async def _send_reply(reply: Reply, send: Send, *, head: bool) -> None:
    headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in reply.headers]
    headers.append((b"content-length", str(len(reply.body)).encode()))
    start: Message = {"type": "http.response.start", "status": reply.status, "headers": headers}
    await send(start)
    await send({"type": "http.response.body", "body": b"" if head else reply.body})
