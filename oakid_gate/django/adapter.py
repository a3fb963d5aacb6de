"""The gate inside Django: a request's decision, and the one gate of the process.

:class:`DjangoGate` is a :class:`~oakid_gate.adapter.GateAdapter` (settings,
core, store and provider client, built once) that reads a Django
``HttpRequest`` instead of a WSGI environ or an ASGI scope: the same hot path as
the WSGI and ASGI middleware (one store read, one pure decision), else the
core's full path, driven by the blocking driver with an ``httpx.Client``
(:meth:`DjangoGate.decide`, Django under WSGI, the test ``Client``) or by the
event-loop driver with an ``httpx.AsyncClient`` (:meth:`DjangoGate.adecide`,
Django under ASGI, the ``AsyncClient``). The outcome is the core's: call the
view (with the gate's session, or none on a public path) or send the reply.

:func:`gate_adapter` is the gate of this process, built from ``settings.OAKID``
at its first use (the middleware's start-up) and built again when a test
changes ``OAKID`` (``override_settings``); :func:`set_gate_adapter` puts one of
the caller's in its place (a store or provider client of a test's own). It is
what :func:`oakid_gate.testing.django.sign_in_django` writes sessions through.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from django.conf import settings as django_settings
from django.core.signals import setting_changed
from django.http import HttpRequest

from ..adapter import GateAdapter
from ..clients import provider_client_options
from ..drivers import (
    AsyncEffects,
    SyncEffects,
    random_token,
    run_async,
    run_sync,
    store_unavailable,
)
from ..errors import BodyTooLarge
from ..gate.endpoints import PING_REPLY
from ..gate.gate import HotTarget
from ..gate.identity import strip_environ
from ..gate.records import Session
from ..gate.replies import Outcome
from ..gate.request import GateRequest
from ..settings import Settings
from ..stores import SessionStore
from ..wsgi import environ_request
from .conf import DjangoOptions, load

if TYPE_CHECKING:
    import httpx

__all__ = ["DjangoGate", "gate_adapter", "set_gate_adapter"]

log = logging.getLogger("oakid_gate")


class DjangoGate(GateAdapter[None, "httpx.Client"]):
    """The gate of a Django project: its settings, core, store and provider clients.

    ``settings`` and ``options`` as :func:`~oakid_gate.django.conf.load` reads them
    from ``OAKID`` (:meth:`from_settings`); ``store``, ``http`` and ``async_http``
    replace the store named by ``session_store`` and the provider clients.
    """

    def __init__(
        self,
        settings: Settings,
        options: DjangoOptions | None = None,
        *,
        store: SessionStore | None = None,
        http: httpx.Client | None = None,
        async_http: httpx.AsyncClient | None = None,
    ) -> None:
        super().__init__(None, settings, store=store, http=http)
        self.options = options if options is not None else DjangoOptions()
        self._async_http = async_http
        self._own_async_http = async_http is None

    @classmethod
    def from_settings(cls, oakid: Any = None, **kwargs: Any) -> DjangoGate:
        """The gate for ``oakid`` (default: ``settings.OAKID``), checked; ``kwargs`` as
        for the constructor (``store``, ``http``, ``async_http``)."""
        if oakid is None:
            oakid = getattr(django_settings, "OAKID", {})
        settings, options = load(oakid)
        return cls(settings, options, **kwargs)

    @property
    def anonymous(self) -> Any:
        """The gate's user of a request without a session (``request.oakid_user``)."""
        return self._anonymous

    # ------------------------------------------------------------ one request

    def decide(self, request: HttpRequest) -> Outcome:
        """What the gate does with ``request``, with blocking I/O (WSGI, the test ``Client``)."""
        target = self._prepare(request)
        if target == "ping":
            return PING_REPLY
        if target is not None:
            key = self._key(request)
            session = None
            if key is not None:
                try:
                    session = self.store.peek_session(key)
                except Exception as exc:
                    return self._store_failed(request, exc)
            outcome = self._hot(request, target, session)
            if outcome is not None:
                return outcome
        effects = SyncEffects(
            http=self._client(),
            store=self.store,
            timeout=self.settings.http_timeout,
            read_body=_body_reader(request),
        )
        req = None
        try:
            req = self.gate_request(request)
            return run_sync(self.gate.handle(req, time.time(), random_token), effects)
        except Exception:
            return self.unexpected(req)

    async def adecide(self, request: HttpRequest) -> Outcome:
        """What the gate does with ``request``, on the event loop (ASGI, ``AsyncClient``)."""
        target = self._prepare(request)
        if target == "ping":
            return PING_REPLY
        if target is not None:
            key = self._key(request)
            session = None
            if key is not None:
                try:
                    if self._direct_reads:
                        session = self.store.peek_session(key)
                    else:
                        session = await self.store.apeek_session(key)
                except Exception as exc:
                    return self._store_failed(request, exc)
            outcome = self._hot(request, target, session)
            if outcome is not None:
                return outcome
        read = _body_reader(request)

        async def read_body(limit: int) -> bytes:
            return read(limit)  # Django's ASGI handler has read the body already

        effects = AsyncEffects(
            http=self.async_http,
            store=self.store,
            timeout=self.settings.http_timeout,
            read_body=read_body,
        )
        req = None
        try:
            req = self.gate_request(request)
            return await run_async(self.gate.handle(req, time.time(), random_token), effects)
        except Exception:
            return self.unexpected(req)

    def gate_request(self, request: HttpRequest) -> GateRequest:
        """The core's view of ``request`` (:func:`~oakid_gate.wsgi.environ_request`)."""
        meta = request.META
        if not meta.get("HTTP_HOST") and meta.get("SERVER_NAME"):
            # No Host header (Django's test clients): the host Django itself falls back to.
            meta = {**meta, "HTTP_HOST": _server_host(meta)}
        return environ_request(
            self.gate,
            meta,
            scheme=_scheme(request),
            path=request.path,
            root_path=_mount_prefix(request),
            app_path=request.path_info,
        )

    # ------------------------------------------------------------ the hot path

    def _prepare(self, request: HttpRequest) -> HotTarget | None:
        """Remove every identity a client or server sent; what the hot path may answer."""
        strip_environ(request.META)
        request.__dict__.pop("headers", None)  # a copy of META an earlier middleware read
        return self.gate.hot_target(request.path, request.method or "GET")

    def _key(self, request: HttpRequest) -> str | None:
        return self._hot_keys.key(request.META.get("HTTP_COOKIE"), _scheme(request))

    def _hot(
        self, request: HttpRequest, target: HotTarget, session: Session | None
    ) -> Outcome | None:
        """The hot path's decision on the session just read; ``None``: take the full path."""
        return self.gate.hot_outcome(
            target,
            session,
            time.time(),
            request.META.get("QUERY_STRING", ""),
            self._public,
            request,
        )

    def _public(self, request: HttpRequest) -> bool:
        """A public path, under the mount prefix (the hot path's shortcut)."""
        return self.gate.passes_anonymously(
            _mount_prefix(request), request.path_info, request.method or "GET"
        )

    def _store_failed(self, request: HttpRequest, exc: Exception) -> Outcome:
        # Answer now: the full path would wait for the store a second time.
        failed = store_unavailable("peek_session", exc)
        return self.gate.store_failed(self.gate_request(request), failed)

    # ------------------------------------------------------------ provider clients

    def _new_http(self) -> httpx.Client:
        import httpx  # at the first exchange with the provider, not at start-up

        return httpx.Client(**provider_client_options(self.settings))

    @property
    def async_http(self) -> httpx.AsyncClient:
        """The provider client of the event-loop driver, made when first needed."""
        client = self._async_http
        if client is None:
            with self._http_lock:
                client = self._async_http
                if client is None:
                    import httpx

                    options = provider_client_options(self.settings)
                    client = self._async_http = httpx.AsyncClient(**options)
        return client

    def close(self) -> None:
        """Close the blocking provider client and the store (the event loop's client is
        closed by :meth:`aclose`)."""
        if self._own_http and self._http is not None:
            self._http.close()
        self.store.close()

    async def aclose(self) -> None:
        if self._own_async_http and self._async_http is not None:
            await self._async_http.aclose()
        self.close()


def _scheme(request: HttpRequest) -> str:
    """The scheme the server received the request on (the gate judges forwarded ones)."""
    scope = getattr(request, "scope", None)
    raw = scope.get("scheme") if isinstance(scope, dict) else request.META.get("wsgi.url_scheme")
    return "https" if raw == "https" else "http"


def _server_host(meta: Any) -> str:
    """``SERVER_NAME``, and ``SERVER_PORT`` unless it is the default (PEP 3333)."""
    name, port = str(meta["SERVER_NAME"]), str(meta.get("SERVER_PORT", ""))
    default = "443" if meta.get("wsgi.url_scheme") == "https" else "80"
    return name if port in ("", default) else f"{name}:{port}"


def _mount_prefix(request: HttpRequest) -> str:
    """The prefix Django is served under: ``path`` less the ``path_info`` it routes on."""
    path, routed = str(request.path), str(request.path_info)
    if routed and path.endswith(routed):
        return path[: len(path) - len(routed)]
    return str(request.META.get("SCRIPT_NAME", ""))


def _body_reader(request: HttpRequest) -> Callable[[int], bytes]:
    """Read the request body (the sign-out form), refusing more than ``limit`` bytes."""

    def read_body(limit: int) -> bytes:
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > limit:
            raise BodyTooLarge("the form is too large")
        body: bytes = request.read(limit + 1)  # Django's stream ends at Content-Length
        if len(body) > limit:
            raise BodyTooLarge("the form is too large")
        return body

    return read_body


# ---------------------------------------------------------------- the gate of the process

_lock = threading.Lock()
_current: DjangoGate | None = None
_chosen = False  # set_gate_adapter gave one: settings changes leave it


def gate_adapter() -> DjangoGate:
    """The gate of this process: built from ``settings.OAKID`` at the first call (the
    middleware's start-up: a mistake is ``ImproperlyConfigured`` there), then the same."""
    global _current
    adapter = _current
    if adapter is None:
        with _lock:
            adapter = _current
            if adapter is None:
                adapter = _current = DjangoGate.from_settings()
    return adapter


def set_gate_adapter(adapter: DjangoGate | None) -> None:
    """Use ``adapter`` as the gate of this process (a test's own store or provider
    client); ``None``: back to the one built from ``settings.OAKID``."""
    global _current, _chosen
    with _lock:
        _current, _chosen = adapter, adapter is not None


def _settings_changed(*, setting: str, **kwargs: Any) -> None:
    """``override_settings(OAKID=...)`` in a test: the next request builds the gate again."""
    global _current
    if setting == "OAKID" and not _chosen:
        with _lock:
            old, _current = _current, None
        if old is not None:
            old.close()


setting_changed.connect(_settings_changed, dispatch_uid="oakid_gate.django.adapter")
