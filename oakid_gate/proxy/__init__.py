"""``oakid-gate proxy``: the gate in front of any HTTP service.

::

    oakid-gate proxy --upstream http://127.0.0.1:3000 --client-id ... (or OAKID_* variables)

    # or, in Python:
    app = OakIDMiddleware(ProxyApp(settings), settings)

The package: :mod:`.headers` (the header rules, pure), :mod:`.upstream`
(where a request goes, with which headers), :mod:`.relay` (HTTP),
:mod:`.connection` and :mod:`.pool` (the upstream connections: HTTP/1.1 on
asyncio protocols, every answer parsed by llhttp; their :mod:`.limits`), :mod:`.websocket`
(WebSockets), :mod:`.app` (:class:`ProxyApp`). The ``oakid-gate proxy``
command is in :mod:`oakid_gate.cli`.

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
to them, and redirects are passed to the client, never followed. An ``https``
upstream's certificate is verified with the system's default trust (or the
``ssl_context`` given to :class:`ProxyApp`). The proxy speaks HTTP/1.1 to the
upstream with a client of its own, on asyncio protocols with httptools (llhttp)
parsing every answer: measured, httpx cost over 1 ms of CPU per request here,
this client about 50 µs (``benchmarks/README.md``).

The names below load with the first use of one of them: the ``oakid-gate``
command reads :mod:`.limits` for its help without importing the proxy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..lazy import lazy_names

if TYPE_CHECKING:
    from .app import ProxyApp
    from .headers import downstream_headers, upstream_headers
    from .limits import DEFAULT_LIMITS, Limits
    from .relay import bad_gateway_reply

#: where each public name lives
_MODULES = {
    "DEFAULT_LIMITS": "limits",
    "Limits": "limits",
    "ProxyApp": "app",
    "bad_gateway_reply": "relay",
    "downstream_headers": "headers",
    "upstream_headers": "headers",
}

__all__ = [
    "DEFAULT_LIMITS",
    "Limits",
    "ProxyApp",
    "bad_gateway_reply",
    "downstream_headers",
    "upstream_headers",
]

__getattr__, __dir__ = lazy_names(__name__, _MODULES, __all__)
