"""``OakIDWSGIMiddleware``: the gate as WSGI middleware (Flask, Django, any WSGI app).

::

    app.wsgi_app = OakIDWSGIMiddleware(app.wsgi_app, client_id="oak_...", ...)  # Flask
    application = OakIDWSGIMiddleware(get_wsgi_application())                 # Django

Settings are keyword arguments or ``OAKID_*`` environment variables, checked
here, at construction: a mistake names the setting before the first request.

What the app receives in ``environ``, for a signed-in user:

- ``REMOTE_USER``: the ``user_claim`` (``sub`` by default), where WSGI
  frameworks already look (Flask's ``request.remote_user``, Django's
  ``RemoteUserMiddleware``, ``request.META["REMOTE_USER"]``);
- ``oakid.user``: the :class:`~oakid_gate.user.OakIDUser` (claims, email, name);
- ``oakid``: the :class:`~oakid_gate.user.SessionView`, with a fresh access token;
- ``oakid.gate``: this middleware, for the framework helpers (:mod:`oakid_gate.flask`).

On a ``public_paths`` request without a session the app runs with no
``REMOTE_USER`` and no ``oakid``, and ``oakid.user`` is
:data:`~oakid_gate.user.ANONYMOUS`: the same attributes, empty, and
``is_authenticated`` false.

Security: the app must only ever see an identity that the gate put there.
``REMOTE_USER`` (which a server such as Apache ``mod_wsgi``, or gunicorn's
``forwarder_headers``, may have filled in), ``oakid.user``, ``oakid`` and ``oakid.gate`` are
removed from every request before anything else happens, and so are the
identity headers other gates use (``Remote-User``, ``X-Forwarded-User`` and
its siblings, every ``X-Auth-Request-*``): see :mod:`oakid_gate.gate.identity`.

The gate's endpoints and ``public_paths`` match ``SCRIPT_NAME + PATH_INFO``,
the same full path the ASGI middleware sees; an app mounted below a prefix
sets ``prefix`` (and its redirect URI) to match.

Threads and processes: one middleware serves every thread of a threaded
server (``httpx.Client`` and the stores are thread-safe; the provider's
metadata is swapped in as a whole). Under a pre-forking server each process
has its own middleware; if the middleware was built before the fork, each
child makes its own HTTP client at its first call to the provider, so no
connection is ever shared between processes. Several processes need a shared
``session_store`` (``sqlite://`` or ``redis://``); ``memory://`` sessions live
in one process.

The decisions are the core's (:mod:`oakid_gate.gate`), the same as for ASGI;
the blocking driver (:func:`oakid_gate.drivers.run_sync`) performs them in the
server's thread. This module reads the environ and calls ``start_response``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from starlette.requests import cookie_parser

from .adapter import GateAdapter
from .clients import provider_client_options
from .drivers import (
    SyncEffects,
    new_request_id,
    random_token,
    run_sync,
    store_unavailable,
)
from .errors import BodyTooLarge
from .gate import Gate
from .gate.caching import from_browser
from .gate.endpoints import PING_REPLY
from .gate.identity import strip_environ
from .gate.records import Session
from .gate.replies import Forward, Outcome, Reply
from .gate.request import GATE_HEADERS, GateRequest

if TYPE_CHECKING:
    import httpx
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment  # noqa: F401 - the base class names it as a string

__all__ = ["OakIDWSGIMiddleware", "environ_request"]

log = logging.getLogger("oakid_gate")

#: (environ key, header name) for the headers the gate reads, the cookie aside
_ENVIRON_HEADERS = tuple(
    ("CONTENT_TYPE" if name == "content-type" else "HTTP_" + name.upper().replace("-", "_"), name)
    for name in sorted(GATE_HEADERS)
    if name != "cookie"
)


class OakIDWSGIMiddleware(GateAdapter["WSGIApplication", "httpx.Client"]):
    """Require an OpenID Connect sign-in for every request to the WSGI ``app``."""

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        strip_environ(environ)
        path = _full_path(environ)
        method = environ.get("REQUEST_METHOD", "GET")
        target = self.gate.hot_target(path, method)
        if target == "ping":
            return _send_reply(PING_REPLY, start_response, head=method == "HEAD")
        if target is not None:
            # The hot path: one store read, one pure decision, nothing else.
            scheme = "https" if environ.get("wsgi.url_scheme") == "https" else "http"
            key = self._hot_keys.key(environ.get("HTTP_COOKIE"), scheme)
            session = None
            if key is not None:
                try:
                    session = self.store.peek_session(key)
                except Exception as exc:
                    # Answer now: the full path would wait for the store a second time.
                    failed = store_unavailable("peek_session", exc)
                    refused = self.gate.store_failed(self._request(environ, path), failed)
                    return self._finish(refused, environ, start_response)
            hot = self.gate.hot_outcome(
                target,
                session,
                time.time(),
                environ.get("QUERY_STRING", ""),
                self._public,
                environ,
            )
            if hot is not None:
                return self._finish(hot, environ, start_response)
        effects = SyncEffects(
            http=self._client(),
            store=self.store,
            timeout=self.settings.http_timeout,
            read_body=_body_reader(environ),
        )
        req = None
        try:
            req = self._request(environ, path)
            outcome = run_sync(self.gate.handle(req, time.time(), random_token), effects)
        except Exception:
            outcome = self.unexpected(req)
        return self._finish(outcome, environ, start_response)

    def _forward(
        self, session: Session | None, environ: WSGIEnvironment, start_response: StartResponse
    ) -> Iterable[bytes]:
        environ["oakid.gate"] = self
        if session is None:
            environ["oakid.user"] = self._anonymous
        else:
            environ["REMOTE_USER"] = session.user.identity
            environ["oakid.user"] = session.user
            environ["oakid"] = session.view
            if self._cache_control and from_browser(
                environ.get("HTTP_SEC_FETCH_MODE"), environ.get("HTTP_USER_AGENT")
            ):
                start_response = _private(start_response, self._cache_control)
        return self.app(environ, start_response)

    def _public(self, environ: WSGIEnvironment) -> bool:
        """A public path, under the mount prefix (the hot path's shortcut)."""
        root, path = _text(environ.get("SCRIPT_NAME", "")), _text(environ.get("PATH_INFO", ""))
        return self.gate.passes_anonymously(root, path, environ.get("REQUEST_METHOD", "GET"))

    def _finish(
        self, outcome: Outcome, environ: WSGIEnvironment, start_response: StartResponse
    ) -> Iterable[bytes]:
        """Call the app with the session, or send the gate's own reply."""
        if isinstance(outcome, Forward):
            return self._forward(outcome.session, environ, start_response)
        return _send_reply(outcome, start_response, head=environ.get("REQUEST_METHOD") == "HEAD")

    def gate_request(self, environ: WSGIEnvironment) -> GateRequest:
        """The request of ``environ`` as the core reads it (for the framework helpers)."""
        return self._request(environ, _full_path(environ))

    def _request(self, environ: WSGIEnvironment, path: str) -> GateRequest:
        return environ_request(
            self.gate,
            environ,
            scheme="https" if environ.get("wsgi.url_scheme") == "https" else "http",
            path=path,
            root_path=_text(environ.get("SCRIPT_NAME", "")),
            app_path=_text(environ.get("PATH_INFO", "")),
        )

    def _new_http(self) -> httpx.Client:
        import httpx  # at the first exchange with the provider, not at start-up

        return httpx.Client(**provider_client_options(self.settings))

    def close(self) -> None:
        """Close the HTTP client and the session store."""
        if self._http is not None:
            self._http.close()
        self.store.close()


def environ_request(
    gate: Gate,
    environ: Mapping[str, Any],
    *,
    scheme: str,
    path: str,
    root_path: str,
    app_path: str,
) -> GateRequest:
    """The :class:`GateRequest` of a WSGI ``environ``, or of anything shaped like one
    (Django's ``request.META``, under WSGI and ASGI alike): method, query, the headers
    the gate reads, cookies and client from it; the scheme and paths as the caller
    read them (its server's scheme, the full path, the mount prefix, the routed path)."""
    cookie = environ.get("HTTP_COOKIE")
    return gate.request(
        method=environ.get("REQUEST_METHOD", "GET"),
        scheme=scheme,
        path=path,
        query_string=environ.get("QUERY_STRING", ""),
        headers={name: environ[key] for key, name in _ENVIRON_HEADERS if environ.get(key)},
        cookies=cookie_parser(cookie) if cookie else {},
        client=environ.get("REMOTE_ADDR") or None,
        root_path=root_path,
        app_path=app_path,
        generated_id=new_request_id(),
    )


def _private(start_response: StartResponse, value: str) -> StartResponse:
    """``start_response``, adding ``Cache-Control: value`` to a protected response that has
    none of its own (the back button after sign-out shows nothing)."""

    def starting(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        if not any(name.lower() == "cache-control" for name, _ in headers):
            headers = [*headers, ("Cache-Control", value)]
        return start_response(status, headers, exc_info)

    return starting


def _full_path(environ: WSGIEnvironment) -> str:
    """``SCRIPT_NAME + PATH_INFO`` as text."""
    return _text(environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", ""))


def _text(raw: str) -> str:
    """A WSGI path as text: WSGI carries its bytes as Latin-1 (PEP 3333)."""
    if raw.isascii():
        return raw
    try:
        return raw.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        # Not UTF-8 bytes, or a server (or test transport) that decoded them already.
        return raw


def _body_reader(environ: WSGIEnvironment) -> Callable[[int], bytes]:
    """Read the request body (the sign-out form), refusing more than ``limit`` bytes."""

    def read_body(limit: int) -> bytes:
        stream = environ.get("wsgi.input")
        if stream is None:
            return b""
        try:
            length = int(environ.get("CONTENT_LENGTH") or -1)
        except ValueError:
            length = -1
        if length < 0 and not environ.get("wsgi.input_terminated"):
            return b""  # no length and no end marker: reading could block (PEP 3333)
        if length > limit:
            raise BodyTooLarge("the form is too large")
        want = length if length >= 0 else limit + 1
        body = bytearray()
        while len(body) < want:
            chunk = stream.read(min(8192, want - len(body)))
            if not chunk:
                break
            body += chunk
        if len(body) > limit:
            raise BodyTooLarge("the form is too large")
        return bytes(body)

    return read_body


def _send_reply(reply: Reply, start_response: StartResponse, *, head: bool) -> list[bytes]:
    headers = [*reply.headers, ("content-length", str(len(reply.body)))]
    start_response(f"{reply.status} {HTTPStatus(reply.status).phrase}", headers)
    return [b"" if head else reply.body]
