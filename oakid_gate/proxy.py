"""``oakid-gate proxy``: the gate in front of any HTTP service.

::

    oakid-gate proxy --upstream http://127.0.0.1:3000 --client-id ... (or OAKID_* variables)

    # or, in Python:
    app = OakIDMiddleware(ProxyApp(settings), settings)

:class:`ProxyApp` is a plain ASGI app that forwards every request to
``settings.upstream``. Wrapped by :class:`~oakid_gate.asgi.OakIDMiddleware`,
it only ever sees requests the gate let through: a signed-in user
(``scope["user"]``, ``scope["oakid"]``), or an anonymous one on a
``public_paths`` path. The gate's own endpoints (``/oauth2/...``) are never
forwarded.

What the upstream receives
--------------------------

- ``X-Forwarded-User`` (the ``user_claim``), ``X-Forwarded-Email``,
  ``X-Forwarded-Preferred-Username``, ``X-Forwarded-Groups`` (comma-joined) for
  a signed-in user, and ``X-Forwarded-Access-Token`` with ``pass_access_token``.
  Claim values lose control characters and are sent as UTF-8 bytes.
- ``X-Forwarded-For``, ``X-Forwarded-Proto`` and ``X-Forwarded-Host``: the
  client's address, scheme and ``Host``. ``Host`` itself is the upstream's.
- Everything else the client sent, less the hop-by-hop headers (``Connection``
  and the headers it names, ``Keep-Alive``, ``TE``, ``Transfer-Encoding``,
  ``Upgrade``, ``Proxy-*``, ``Trailer``), ``Expect``, and the gate's own
  cookies (the session cookie never reaches the upstream; other cookies do).

It is a security issue to let the client choose the identity the upstream
believes. So every client-sent header that *could be read as* one of the
identity headers is removed first, on every request, public paths included:
any letter case, ``_`` for ``-`` (many servers, WSGI among them, read
``X_Forwarded_User`` as ``X-Forwarded-User``), repeated lines, and also
``X-Auth-Request-*``. The client's own ``X-Forwarded-*``, ``Forwarded`` and
``X-Real-IP`` are dropped as well, unless the client is one of
``trusted_proxies``; then its ``X-Forwarded-For`` is extended, its
``X-Forwarded-Proto``/``-Host`` are believed, and the others pass.

What the client receives
------------------------

The upstream's answer, streamed as it comes (bodies are never held whole in
memory, in either direction, and never decompressed), less hop-by-hop headers
and the upstream's ``Date`` (the server adds its own). Redirects
(``Location``) and ``Set-Cookie`` are left as the upstream wrote them. When the
upstream cannot be reached or does not answer in time: a 502 page (or JSON for
API clients), never a traceback. WebSocket connections are passed through,
message by message.

Connections to the upstream are pooled and kept alive (``max_connections``,
``max_keepalive``, ``keepalive_expiry``); no environment proxy settings apply
to them, and redirects are passed to the client, never followed.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from http.cookiejar import Cookie, CookieJar
from typing import Any
from urllib.parse import quote, urlsplit

import anyio
import httpx
from starlette.types import Message, Receive, Scope, Send
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from .errors import ConfigurationError
from .gate import error_reply
from .proxies import TrustedProxies
from .settings import Settings
from .user import (
    OakIDUser,
    SessionView,
    header_value,
    identity_fields,
    is_identity_header,
)

__all__ = [
    "ProxyApp",
    "add_proxy_command",
    "downstream_headers",
    "header_value",
    "identity_headers",
    "run_proxy",
    "upstream_headers",
]

log = logging.getLogger("oakid_gate")

Headers = list[tuple[bytes, bytes]]

#: RFC 9110 section 7.6.1 (and the de facto ``Proxy-Connection``): meaningful for
#: one connection only, never forwarded.
HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)

#: headers about the connection that only a trusted proxy may set
_FORWARDING = frozenset({b"forwarded", b"x-real-ip"})
#: the request headers made anew for the upstream (besides the identity headers)
_REPLACED = frozenset({b"host", b"expect", b"cookie"})
#: what a WebSocket client library writes itself for the upstream handshake
_WEBSOCKET_HANDSHAKE = frozenset(
    {
        b"sec-websocket-key",
        b"sec-websocket-version",
        b"sec-websocket-extensions",
        b"sec-websocket-accept",
        b"sec-websocket-protocol",
        b"content-length",
    }
)

DEFAULT_TIMEOUT = 60.0  # seconds: read and write towards the upstream
DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_MAX_CONNECTIONS = 100
DEFAULT_MAX_KEEPALIVE = 20
#: below the 5 s idle limit of common upstream servers (uvicorn, node), so that
#: the proxy drops an idle connection before the upstream does
DEFAULT_KEEPALIVE_EXPIRY = 4.0
WEBSOCKET_MAX_MESSAGE = 16 * 1024 * 1024  # as uvicorn's default ws_max_size

_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS"})


# ---------------------------------------------------------------- headers (pure)


def normalized_name(name: bytes) -> bytes:
    """The name as servers that fold case and ``_``/``-`` will read it."""
    return name.lower().replace(b"_", b"-")


_is_identity = is_identity_header


def identity_headers(
    user: OakIDUser | None, view: SessionView | None, *, pass_access_token: bool
) -> Headers:
    """The identity headers for a signed-in user; none for an anonymous one."""
    if user is None:
        return []
    out: Headers = [
        (b"x-forwarded-" + name.encode(), value) for name, value in identity_fields(user)
    ]
    if pass_access_token and view is not None and (token := header_value(view.access_token)):
        out.append((b"x-forwarded-access-token", token))
    return out


def _connection_tokens(headers: Iterable[tuple[bytes, bytes]]) -> frozenset[bytes]:
    """The header names a ``Connection`` header lists (RFC 9110 section 7.6.1)."""
    tokens: set[bytes] = set()
    for name, value in headers:
        if name.lower() == b"connection":
            tokens.update(t.strip().lower() for t in value.split(b",") if t.strip())
    return frozenset(tokens)


def strip_cookies(
    values: Sequence[bytes], drop_exact: frozenset[bytes], drop_prefixes: tuple[bytes, ...]
) -> bytes | None:
    """The ``Cookie`` header without the gate's cookies; the other pairs untouched."""
    kept = []
    for value in values:
        for pair in value.split(b";"):
            pair = pair.strip()
            if not pair:
                continue
            name = pair.split(b"=", 1)[0].strip()
            if name in drop_exact or name.startswith(drop_prefixes):
                continue
            kept.append(pair)
    return b"; ".join(kept) if kept else None


def upstream_headers(
    headers: Iterable[tuple[bytes, bytes]],
    *,
    client: str | None,
    scheme: str,
    trusted: bool,
    identity: Headers,
    drop_cookies: tuple[frozenset[bytes], tuple[bytes, ...]] = (frozenset(), ()),
    websocket: bool = False,
) -> Headers:
    """The request headers to send upstream, from the client's (ASGI: lower-case names).

    Removes hop-by-hop headers and every client-sent spelling of the identity
    headers, sets ``X-Forwarded-For``/``-Proto``/``-Host`` and adds
    ``identity``. ``Host`` is left out: the HTTP client writes the upstream's.
    ``trusted``: the client is a trusted proxy, whose forwarding headers count.
    """
    headers = list(headers)
    connection = _connection_tokens(headers)
    out: Headers = []
    cookies: list[bytes] = []
    forwarded_for: list[bytes] = []
    host: bytes | None = None
    forwarded: dict[str, str] = {}
    for name, value in headers:
        lower = name.lower()
        norm = normalized_name(lower)
        if lower in HOP_BY_HOP or lower in connection or norm in HOP_BY_HOP:
            continue
        if _is_identity(norm):
            continue  # never believed, whoever sent it
        if websocket and norm in _WEBSOCKET_HANDSHAKE:
            continue
        if lower == b"host":
            host = value
            continue
        if lower == b"cookie":
            cookies.append(value)
            continue
        if norm in _REPLACED:
            continue
        if norm.startswith(b"x-forwarded-") or norm in _FORWARDING:
            if not trusted or lower != norm:
                continue  # untrusted, or an odd spelling of a header we set
            if lower == b"x-forwarded-for":
                forwarded_for.append(value)
                continue
            if lower in (b"x-forwarded-proto", b"x-forwarded-host"):
                key = lower.decode()
                text = value.decode("latin-1")
                forwarded[key] = forwarded[key] + ", " + text if key in forwarded else text
                continue
        out.append((name, value))

    if cookies:
        kept = strip_cookies(cookies, *drop_cookies)
        if kept is not None:
            out.append((b"cookie", kept))
    chain = [v.strip() for v in b",".join(forwarded_for).split(b",") if v.strip()]
    if client:
        chain.append(client.encode("latin-1"))
    if chain:
        out.append((b"x-forwarded-for", b", ".join(chain)))
    proto = "https" if scheme in ("https", "wss") else "http"
    original_host = host
    if trusted:
        proto, fhost = TrustedProxies.forwarded(proto, forwarded)
        if fhost is not None:
            original_host = fhost.encode("latin-1")
    out.append((b"x-forwarded-proto", proto.encode()))
    if original_host:
        out.append((b"x-forwarded-host", original_host))
    out.extend(identity)
    return out


def downstream_headers(headers: Iterable[tuple[bytes, bytes]]) -> Headers:
    """The upstream's response headers for the client: hop-by-hop and ``Date`` removed.

    ``Location`` and ``Set-Cookie`` pass unchanged.
    """
    headers = list(headers)
    connection = _connection_tokens(headers)
    return [
        (name, value)
        for name, value in headers
        if (lower := name.lower()) not in HOP_BY_HOP
        and lower not in connection
        and lower != b"date"
    ]


# ---------------------------------------------------------------- the app


class _ClientDisconnected(Exception):
    """The client went away while its request body was being forwarded."""


class _NoCookies(CookieJar):
    """A cookie jar that keeps nothing: upstream cookies are the browser's business."""

    def set_cookie(self, cookie: Cookie) -> None:
        return None

    def extract_cookies(self, response: Any, request: Any) -> None:
        return None


class ProxyApp:
    """An ASGI app that forwards requests (and WebSockets) to ``settings.upstream``."""

    def __init__(
        self,
        settings: Settings,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        max_keepalive: int = DEFAULT_MAX_KEEPALIVE,
        keepalive_expiry: float = DEFAULT_KEEPALIVE_EXPIRY,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if not settings.upstream:
            raise ConfigurationError(
                "upstream", "is required for the proxy (--upstream URL or OAKID_UPSTREAM)"
            )
        parts = urlsplit(settings.upstream)
        if parts.query or parts.fragment:
            raise ConfigurationError("upstream", "must not hold a query or a fragment")
        self.settings = settings
        self.upstream = settings.upstream
        self._scheme = parts.scheme
        self._netloc = parts.netloc
        self._path_prefix = parts.path.rstrip("/")
        self._ws_base = ("wss" if parts.scheme == "https" else "ws") + "://" + parts.netloc
        self._proxies = TrustedProxies(settings.trusted_proxies)
        self._pass_token = settings.pass_access_token
        name = settings.cookie_name.encode()
        self._drop_cookies = (
            frozenset({name, b"__Host-" + name}),
            (name + b"_login_", b"__Secure-" + name + b"_login_"),
        )
        self.timeout = httpx.Timeout(timeout, connect=connect_timeout)
        self.client = httpx.AsyncClient(
            timeout=self.timeout,
            limits=httpx.Limits(
                max_connections=max_connections,
                max_keepalive_connections=max_keepalive,
                keepalive_expiry=keepalive_expiry,
            ),
            follow_redirects=False,
            trust_env=False,
            cookies=_NoCookies(),
            transport=transport,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)

    async def aclose(self) -> None:
        await self.client.aclose()

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    # ------------------------------------------------------------ requests

    def _headers(self, scope: Scope, *, websocket: bool = False) -> Headers:
        client = scope.get("client")
        peer = client[0] if client else None
        user = scope.get("user")
        signed_in = isinstance(user, OakIDUser)
        view = scope.get("oakid")
        return upstream_headers(
            scope["headers"],
            client=peer,
            scheme=scope.get("scheme", "http"),
            trusted=self._proxies.trusts(peer),
            identity=identity_headers(
                user if signed_in else None,
                view if isinstance(view, SessionView) else None,
                pass_access_token=self._pass_token,
            ),
            drop_cookies=self._drop_cookies,
            websocket=websocket,
        )

    def _target(self, scope: Scope) -> str | None:
        """The upstream path and query: the client's bytes, after the upstream's path.

        ``None`` for a request target that is not a path (absolute-form, ``*``).
        """
        raw: bytes | None = scope.get("raw_path")
        if raw:
            path = raw.partition(b"?")[0].decode("latin-1")
        else:
            path = quote(scope["path"], safe="/:@!$&'()*+,;=-._~%")
        if not path.startswith("/"):
            return None
        query: bytes = scope.get("query_string", b"")
        return self._path_prefix + path + ("?" + query.decode("latin-1") if query else "")

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        method: str = scope["method"]
        headers = self._headers(scope)
        names = {name.lower() for name, _ in scope["headers"]}
        has_body = b"content-length" in names or b"transfer-encoding" in names
        target = self._target(scope)
        try:
            if target is None:
                raise httpx.InvalidURL("not a path")
            url = httpx.URL(self._scheme + "://" + self._netloc + target)
        except httpx.InvalidURL:
            await _send_simple(send, 400, b"Bad request target\n")
            return

        async def body() -> AsyncIterator[bytes]:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    raise _ClientDisconnected
                chunk = message.get("body", b"")
                if chunk:
                    yield chunk
                if not message.get("more_body", False):
                    return

        # A kept-alive connection that the upstream closes just as it is reused
        # fails the request: one without a body or side effects is sent again.
        retry = method in _IDEMPOTENT and not has_body
        while True:
            request = httpx.Request(
                method, url, headers=headers, content=body() if has_body else None
            )
            try:
                response = await self.client.send(request, stream=True)
            except _ClientDisconnected:
                return
            except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as exc:
                if retry:
                    retry = False
                    continue
                await self._bad_gateway(scope, send, exc)
                return
            except httpx.HTTPError as exc:
                await self._bad_gateway(scope, send, exc)
                return
            break
        try:
            await self._relay(response, receive, send)
        finally:
            await response.aclose()

    async def _relay(self, response: httpx.Response, receive: Receive, send: Send) -> None:
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

    async def _bad_gateway(self, scope: Scope, send: Send, exc: Exception) -> None:
        timed_out = isinstance(exc, httpx.TimeoutException)
        log.warning(
            "proxy: upstream %s %s (%s)",
            self.upstream,
            "did not answer in time" if timed_out else "is not answering",
            type(exc).__name__,
        )
        status, headers, body = bad_gateway_reply(scope, timed_out=timed_out)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send(
            {"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body}
        )

    # ------------------------------------------------------------ websockets

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = await receive()
        if message["type"] != "websocket.connect":
            return
        target = self._target(scope)
        if target is None:
            await send({"type": "websocket.close", "code": 1008})
            return
        url = self._ws_base + target
        headers = [
            (name.decode("latin-1"), value.decode("latin-1"))
            for name, value in self._headers(scope, websocket=True)
        ]
        subprotocols = scope.get("subprotocols") or None
        try:
            upstream: ClientConnection = await _WebSocketConnect(
                url,
                additional_headers=headers,
                subprotocols=subprotocols,
                user_agent_header=None,
                proxy=None,
                compression=None,
                open_timeout=self.timeout.connect,
                max_size=WEBSOCKET_MAX_MESSAGE,
            )
        except InvalidStatus as exc:
            # The upstream refused the handshake: the client gets its answer.
            reply = exc.response
            passed = [
                (k.lower().encode("latin-1"), v.encode("latin-1"))
                for k, v in reply.headers.raw_items()
                if k.lower() in ("location", "set-cookie", "content-type", "www-authenticate")
            ]
            await _deny(scope, send, reply.status_code, passed, bytes(reply.body or b""))
            return
        except Exception as exc:  # OSError, TimeoutError, handshake errors
            log.warning(
                "proxy: upstream %s refused a WebSocket (%s)", self.upstream, type(exc).__name__
            )
            status, reply_headers, body = bad_gateway_reply(scope, timed_out=False)
            await _deny(scope, send, status, reply_headers, body)
            return

        accept: Message = {"type": "websocket.accept", "subprotocol": upstream.subprotocol}
        if upstream.response is not None:
            accept["headers"] = [
                (b"set-cookie", v.encode("latin-1"))
                for v in upstream.response.headers.get_all("Set-Cookie")
            ]
        client_gone = False

        async def client_to_upstream() -> None:
            nonlocal client_gone
            while True:
                message = await receive()
                if message["type"] == "websocket.receive":
                    text = message.get("text")
                    data = text if text is not None else message.get("bytes") or b""
                    try:
                        await upstream.send(data)
                    except ConnectionClosed:
                        return
                elif message["type"] == "websocket.disconnect":
                    client_gone = True
                    await upstream.close(
                        _close_code(message.get("code", 1000)), message.get("reason") or ""
                    )
                    return

        async def upstream_to_client() -> None:
            try:
                async for data in upstream:
                    if isinstance(data, str):
                        await send({"type": "websocket.send", "text": data})
                    else:
                        await send({"type": "websocket.send", "bytes": data})
            except ConnectionClosed:
                pass
            if not client_gone:
                with contextlib.suppress(OSError, RuntimeError):
                    await send(
                        {
                            "type": "websocket.close",
                            "code": _close_code(upstream.close_code or 1000),
                            "reason": upstream.close_reason or "",
                        }
                    )

        await send(accept)
        try:
            async with anyio.create_task_group() as group:

                async def run_then_stop(part: Callable[[], Awaitable[None]]) -> None:
                    await part()
                    group.cancel_scope.cancel()

                group.start_soon(run_then_stop, client_to_upstream)
                group.start_soon(run_then_stop, upstream_to_client)
        finally:
            with anyio.CancelScope(shield=True):
                await upstream.close()


class _WebSocketConnect(connect):
    """``connect`` that hands the upstream's redirects to the client instead of following them."""

    def process_redirect(self, exc: Exception) -> Exception | str:
        return exc


def _close_code(code: int) -> int:
    """A close code that may be sent in a close frame (RFC 6455 section 7.4)."""
    if code in (1004, 1005, 1006, 1015) or not (1000 <= code < 5000) or 1016 <= code < 3000:
        return 1000 if code == 1005 else 1011
    return code


async def _send_simple(send: Send, status: int, text: bytes) -> None:
    headers = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(text)).encode()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": text})


async def _deny(scope: Scope, send: Send, status: int, headers: Headers, body: bytes) -> None:
    """Refuse a WebSocket handshake with an HTTP answer, where the server can send one."""
    if "websocket.http.response" in scope.get("extensions", {}):
        await send({"type": "websocket.http.response.start", "status": status, "headers": headers})
        await send({"type": "websocket.http.response.body", "body": body})
    else:
        await send({"type": "websocket.close", "code": 1011})


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


# ---------------------------------------------------------------- the command


def add_proxy_command(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``oakid-gate proxy`` to the command line."""
    from .cli import _add_settings

    proxy = subparsers.add_parser(
        "proxy",
        help="a reverse proxy to any HTTP service, behind the gate",
        description="Forward every signed-in request to --upstream, with the user in "
        "X-Forwarded-User, -Email, -Preferred-Username and -Groups.",
    )
    _add_settings(proxy)
    tuning = proxy.add_argument_group("upstream connections")
    tuning.add_argument(
        "--upstream-timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help=f"read and write timeout towards the upstream (default {DEFAULT_TIMEOUT:g})",
    )
    tuning.add_argument(
        "--upstream-connect-timeout",
        type=float,
        default=DEFAULT_CONNECT_TIMEOUT,
        metavar="SECONDS",
        help=f"connect timeout (default {DEFAULT_CONNECT_TIMEOUT:g})",
    )
    tuning.add_argument(
        "--upstream-max-connections",
        type=int,
        default=DEFAULT_MAX_CONNECTIONS,
        metavar="N",
        help=f"connections open at once (default {DEFAULT_MAX_CONNECTIONS})",
    )
    tuning.add_argument(
        "--upstream-max-keepalive",
        type=int,
        default=DEFAULT_MAX_KEEPALIVE,
        metavar="N",
        help=f"idle connections kept for reuse (default {DEFAULT_MAX_KEEPALIVE})",
    )
    tuning.add_argument(
        "--upstream-keepalive-expiry",
        type=float,
        default=DEFAULT_KEEPALIVE_EXPIRY,
        metavar="SECONDS",
        help=f"how long an idle connection is kept (default {DEFAULT_KEEPALIVE_EXPIRY:g})",
    )


def run_proxy(args: argparse.Namespace) -> int:
    """Serve :class:`ProxyApp` behind the gate on ``host``:``port``."""
    from .asgi import OakIDMiddleware
    from .cli import _serve, _settings_from

    settings = _settings_from(args)
    for name in ("upstream_timeout", "upstream_connect_timeout", "upstream_keepalive_expiry"):
        if getattr(args, name) <= 0:
            raise ConfigurationError(name, "must be greater than 0")
    for name in ("upstream_max_connections", "upstream_max_keepalive"):
        if getattr(args, name) < 1:
            raise ConfigurationError(name, "must be at least 1")
    proxy = ProxyApp(
        settings,
        timeout=args.upstream_timeout,
        connect_timeout=args.upstream_connect_timeout,
        max_connections=args.upstream_max_connections,
        max_keepalive=args.upstream_max_keepalive,
        keepalive_expiry=args.upstream_keepalive_expiry,
    )
    log.info(
        "oakid-gate proxy: http://%s:%s -> %s", settings.host, settings.port, settings.upstream
    )
    _serve([(OakIDMiddleware(proxy, settings), settings.host, settings.port)])
    return 0
