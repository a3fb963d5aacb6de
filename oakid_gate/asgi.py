"""``OakIDMiddleware``: the gate as ASGI middleware (Starlette, FastAPI, any ASGI app).

::

    app = OakIDMiddleware(app, client_id="oak_...", client_secret="...", secret="...")
    # or: app.add_middleware(OakIDMiddleware, client_id=..., ...)

The app receives ``scope["user"]`` (an :class:`~oakid_gate.user.OakIDUser`, so
``request.user`` works), ``scope["auth"]`` (a read-only Starlette
``AuthCredentials``, :class:`~oakid_gate.user.GrantedScopes`: ``"authenticated"``
and the granted scopes, one per session) and ``scope["oakid"]`` (a
:class:`~oakid_gate.user.SessionView` with a fresh access token). On a public
path without a session ``scope["user"]`` is :data:`~oakid_gate.user.ANONYMOUS`,
``scope["auth"]`` holds no scope and there is no ``scope["oakid"]``.
``scope["oakid.gate"]`` is this middleware, for the framework helpers
(:mod:`oakid_gate.fastapi`, :mod:`oakid_gate.starlette`). Lifespan
events pass straight through; WebSocket connections need a session too.
Client-sent identity headers are removed before anything else happens
(:mod:`oakid_gate.gate.identity`).

Every decision is made in the core (:mod:`oakid_gate.gate`) and its effects
run on the event loop (:func:`oakid_gate.drivers.run_async`); this module reads
the scope and writes ASGI messages.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .adapter import GateAdapter
from .clients import provider_client_options
from .drivers import (
    AsyncEffects,
    new_request_id,
    random_token,
    run_async,
    store_unavailable,
)
from .errors import BodyTooLarge
from .gate.caching import from_browser
from .gate.endpoints import PING_REPLY
from .gate.gate import HotTarget
from .gate.identity import (
    IDENTITY_FIRST_BYTES,
    PLAIN_LOOKALIKES,
    is_identity_header,
    without_identity_headers,
)
from .gate.records import Session
from .gate.replies import Forward, Outcome, Reply
from .gate.request import GATE_HEADERS, GateRequest
from .user import NO_SCOPES

if TYPE_CHECKING:
    import httpx

__all__ = ["OakIDMiddleware", "route_path"]

log = logging.getLogger("oakid_gate")

_GATE_HEADERS_BYTES = frozenset(h.encode() for h in GATE_HEADERS if h != "cookie")


class OakIDMiddleware(GateAdapter[ASGIApp, "httpx.AsyncClient"]):
    """Require an OpenID Connect sign-in for every request to ``app``."""

    def _new_http(self) -> httpx.AsyncClient:
        import httpx  # at the first exchange with the provider, not at start-up

        return httpx.AsyncClient(**provider_client_options(self.settings))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind != "http" and kind != "websocket":
            await self.app(scope, receive, send)
            return
        cookie, forged, fetch_mode, user_agent = _scan(scope["headers"])
        if forged:
            scope["headers"] = without_identity_headers(scope["headers"])
        if kind == "websocket" and await self._refused_websocket(scope, send):
            return
        path: str = scope["path"]
        # Outside the prefix every path is the app's; a WebSocket scope has no method.
        target = (
            self.gate.hot_target(path, scope.get("method", ""))
            if self._prefix <= path < self._prefix_end  # path.startswith(prefix): prefix_end
            else "app"
        )
        forward = session = None
        if cookie is not None and target is not None and target != "ping":
            # The hot path: one store read, one pure decision, nothing else.
            scheme = _SCHEMES.get(scope.get("scheme"), "http")  # _scheme(scope), inline
            keys = self._hot_keys
            entry = keys.by_scheme[scheme].get(cookie) or keys.entry(cookie, scheme)
            key = entry.key
            if key is not None:
                try:
                    if self._direct_reads:
                        session = self._peek(key)
                    else:
                        session = await self.store.apeek_session(key)
                except Exception as exc:
                    if (forward := await self._store_failed(exc, scope, send)) is None:
                        return
                if session is not None and target == "app":
                    kept = entry.kept  # the gate's answer for this very session object
                    if kept is None or kept[0] is not session:
                        kept = entry.kept = self.gate.admission(session)
                    if time.time() < kept[1]:
                        forward = kept[2]
        if (
            forward is None
            and (forward := await self._rest(target, session, scope, receive, send)) is None
        ):
            return  # the gate answered
        # The one place the app is called: with the user in the scope.
        scope["oakid.gate"] = self
        if (session := forward.session) is None:
            scope["user"], scope["auth"] = self._anonymous, NO_SCOPES
            scope.pop("oakid", None)
        else:
            scope["user"], scope["auth"] = session.user, session.credentials
            scope["oakid"] = session.view
            if self._cache_control and kind == "http" and from_browser(fetch_mode, user_agent):
                # a browser's protected response: protected_cache_control (.gate.caching)
                send = _private(send, self._cache_control_bytes)
        await self.app(scope, receive, send)

    async def _refused_websocket(self, scope: Scope, send: Send) -> bool:
        """Refuse a WebSocket from another origin (the server answers 403)."""
        if self.gate.websocket_allowed(self._request(scope)):
            return False
        log.info("a WebSocket from another origin was refused")
        await send({"type": "websocket.close", "code": 1008})
        return True

    async def _rest(
        self,
        target: HotTarget | None,
        session: Session | None,
        scope: Scope,
        receive: Receive,
        send: Send,
    ) -> Forward | None:
        """What the hot path's common case leaves: ``ping``, ``auth``, nobody signed in on a
        public path (:meth:`Gate.hot_outcome`), then the full path. ``None``: answered."""
        if target == "ping":
            return await _answer(PING_REPLY, scope, send)
        outcome = None
        if target is not None:
            query = _query(scope) if target == "auth" else ""
            outcome = self.gate.hot_outcome(
                target, session, time.time(), query, self._public, scope
            )
        if outcome is None:
            outcome = await self._full(scope, receive)
        return await _answer(outcome, scope, send)

    async def _store_failed(self, exc: Exception, scope: Scope, send: Send) -> Forward | None:
        """The store could not be read on the hot path: answer now (the full path would wait
        for the store a second time). ``None``: answered."""
        failed = store_unavailable("peek_session", exc)
        return await _answer(self.gate.store_failed(self._request(scope), failed), scope, send)

    async def _full(self, scope: Scope, receive: Receive) -> Outcome:
        """The full path: the core's whole program for this request."""
        effects = AsyncEffects(
            http=self.http,
            store=self.store,
            timeout=self.settings.http_timeout,
            read_body=_body_reader(receive),
        )
        req = None
        try:
            req = self._request(scope)
            return await run_async(self.gate.handle(req, time.time(), random_token), effects)
        except Exception:
            return self.unexpected(req)

    def _public(self, scope: Scope) -> bool:
        """A public path, under the configured mount prefix (the hot path's shortcut)."""
        root, method = scope.get("root_path", ""), scope.get("method", "GET")
        return self.gate.passes_anonymously(root, route_path(scope), method)

    def gate_request(self, scope: Scope) -> GateRequest:
        """The request of ``scope`` as the core reads it (for the framework helpers)."""
        return self._request(scope)

    def _request(self, scope: Scope) -> GateRequest:
        headers: dict[str, str] = {}
        for name, value in scope["headers"]:
            if name in _GATE_HEADERS_BYTES:
                key, text = name.decode("latin-1"), value.decode("latin-1")
                headers[key] = headers[key] + ", " + text if key in headers else text
        client = scope.get("client")
        return self.gate.request(
            method=scope.get("method", "GET"),
            scheme=_scheme(scope),
            path=scope["path"],
            query_string=scope.get("query_string", b"").decode("latin-1"),
            headers=headers,
            cookies=_cookies(scope["headers"]),
            client=client[0] if client else None,
            root_path=scope.get("root_path", ""),
            app_path=route_path(scope),
            generated_id=new_request_id(),
        )

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
        await self.store.aclose()


#: the Cookie header, whether an identity header was sent, and the two headers that
#: tell a browser, Sec-Fetch-Mode and User-Agent (:func:`~oakid_gate.gate.caching.from_browser`)
_Scanned = tuple[bytes | None, bool, bytes | None, bytes | None]

#: the scheme a request came in on, as the gate names it (anything else: "http")
_SCHEMES: dict[Any, str] = {"https": "https", "wss": "https"}


def _query(scope: Scope) -> str:
    query: bytes = scope.get("query_string", b"")
    return query.decode("latin-1") if query else ""


def _scheme(scope: Scope) -> str:
    return _SCHEMES.get(scope.get("scheme"), "http")


def route_path(scope: Scope) -> str:
    """The path an ASGI app routes this request on: ``path`` less ``root_path``, the rule of
    Starlette's router (``starlette._utils.get_route_path``; a test keeps them equal)."""
    path: str = scope["path"]
    root_path: str = scope.get("root_path", "")
    if not root_path or not path.startswith(root_path):
        return path
    if path == root_path:
        return ""
    return path[len(root_path) :] if path[len(root_path)] == "/" else path


def _scan(headers: list[tuple[bytes, bytes]]) -> _Scanned:
    """One pass over the headers: every ``Cookie`` header as one (HTTP/2 may send
    several), whether any header claims an identity, and the two headers that
    tell a browser (:func:`~oakid_gate.gate.caching.from_browser`): the hot path's reads."""
    cookie = fetch_mode = user_agent = None
    forged = False
    first, plain = IDENTITY_FIRST_BYTES, PLAIN_LOOKALIKES
    for name, value in headers:
        if not name:
            continue
        initial = name[0]  # one byte decides which comparison, if any, is made
        if initial == 99:  # c
            if name == b"cookie":
                cookie = value if cookie is None else cookie + b"; " + value
        elif initial == 115:  # s
            if name == b"sec-fetch-mode":
                fetch_mode = value
        elif initial == 117:  # u
            if name == b"user-agent":
                user_agent = value
        elif initial in first and name not in plain and is_identity_header(name):
            forged = True
    return cookie, forged, fetch_mode, user_agent


def _private(send: Send, value: bytes) -> Send:
    """``send``, adding ``Cache-Control: value`` to a response that has none of its own.

    A plain function returning ``send``'s awaitable: no coroutine of its own per
    message (the hot path's cost)."""

    def sending(message: Message) -> Awaitable[None]:
        if message["type"] == "http.response.start":
            headers = message.get("headers", ())
            if type(headers) is not list:  # an iterable read once: keep what it holds
                headers = message["headers"] = list(headers)
            for name, _ in headers:
                if name.lower() == b"cache-control":
                    break
            else:
                message["headers"] = [*headers, (b"cache-control", value)]
        return send(message)

    return sending


def _cookies(headers: list[tuple[bytes, bytes]]) -> dict[str, str]:
    """The request's cookies, parsed (Starlette's parser)."""
    cookie = _scan(headers)[0]
    return {} if cookie is None else cookie_parser(cookie.decode("latin-1"))


def _body_reader(receive: Receive) -> Callable[[int], Awaitable[bytes]]:
    async def read_body(limit: int) -> bytes:
        body = bytearray()
        while True:
            message = await receive()
            body += message.get("body", b"")
            if len(body) > limit:
                raise BodyTooLarge("the form is too large")
            if not message.get("more_body", False):
                return bytes(body)

    return read_body


async def _answer(outcome: Outcome, scope: Scope, send: Send) -> Forward | None:
    """``outcome`` if it calls the app; else its reply sent (a WebSocket is refused before
    it is accepted: the server answers 403) and ``None``."""
    if isinstance(outcome, Forward):
        return outcome
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1008})
    else:
        await _send_reply(outcome, send, head=scope.get("method") == "HEAD")
    return None


async def _send_reply(reply: Reply, send: Send, *, head: bool) -> None:
    headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in reply.headers]
    headers.append((b"content-length", str(len(reply.body)).encode()))
    start: Message = {"type": "http.response.start", "status": reply.status, "headers": headers}
    await send(start)
    await send({"type": "http.response.body", "body": b"" if head else reply.body})
