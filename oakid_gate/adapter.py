"""What both middleware are made of, built the same way from their settings.

:class:`~oakid_gate.asgi.OakIDMiddleware` and
:class:`~oakid_gate.wsgi.OakIDWSGIMiddleware` differ only in how they read a
request and answer it; their settings (checked here, at construction, so a
mistake names the setting before the first request), their core, their store
and their provider HTTP client are made here, once.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any, Generic, TypeVar

from starlette.requests import cookie_parser

from .gate import Gate
from .gate.gate import Admission
from .gate.replies import UNEXPECTED_ERROR, Reply
from .gate.request import GateRequest
from .gate.store import SessionStore
from .logs import protect_access_logs
from .settings import Settings
from .stores import store_for
from .user import ANONYMOUS

__all__ = ["GateAdapter", "HotEntry", "HotKeys"]

log = logging.getLogger("oakid_gate")

AppT = TypeVar("AppT")
ClientT = TypeVar("ClientT")


class GateAdapter(Generic[AppT, ClientT]):
    """The gate in front of ``app``: settings, core, store and provider client.

    ``settings`` or keyword settings (else ``OAKID_*`` variables); ``store`` and
    ``http`` replace the store named by ``session_store`` and the provider
    client (tests, shared pools).
    """

    def __init__(
        self,
        app: AppT,
        settings: Settings | None = None,
        *,
        store: SessionStore | None = None,
        http: ClientT | None = None,
        **kwargs: Any,
    ) -> None:
        self.app = app
        self.settings = settings if settings is not None else Settings.load(**kwargs)
        # Under a server of the user's own, its access log must not show a code either.
        protect_access_logs()
        if self.settings.metrics_address:
            from .metrics import enable_metrics  # the commands' workers count too

            enable_metrics()
        self.gate = Gate(self.settings)
        self.store = store if store is not None else store_for(self.settings)
        self._own_http = http is None
        #: made at the first call to the provider, not at start-up (an SSL context
        #: with the CA bundle costs tens of milliseconds)
        self._http: ClientT | None = http
        self._http_lock = threading.Lock()  # WSGI threads may ask at once
        self._pid = os.getpid()  # of the process that made ``_http``
        #: the user of a request on a public path without a session
        self._anonymous = ANONYMOUS
        self._hot_keys = HotKeys(self.gate)
        #: every path outside it is the app's (:meth:`~oakid_gate.gate.Gate.hot_target`)
        self._prefix, self._prefix_end = self.gate.prefix, self.gate.prefix_end
        #: added to protected responses without a Cache-Control of their own
        self._cache_control = self.settings.protected_cache_control
        self._cache_control_bytes = self._cache_control.encode("latin-1")
        #: a store whose reads never wait on the network is read without a coroutine
        self._direct_reads = not self.store.waits_on_network
        #: the store's hot read, looked up once
        self._peek = self.store.hot_reader()

    @property
    def http(self) -> ClientT:
        """The provider HTTP client, made when first needed."""
        client = self._http
        if client is None:
            with self._http_lock:
                client = self._http
                if client is None:
                    client = self._http = self._new_http()
                    self._pid = os.getpid()
        return client

    def use_http(self, client: ClientT) -> None:
        """Call the provider through ``client`` from now on, as if it had been given as
        ``http=`` (the adapter will not replace it; tests:
        :meth:`oakid_gate.testing.FakeProvider.connect`). Before the first call to the
        provider: a client the adapter made itself would be left open."""
        with self._http_lock:
            if self._own_http and self._http is not None:
                raise RuntimeError(
                    "use_http: this gate has called its provider already; give it the "
                    "client before its first request (or as http= when building it)"
                )
            self._own_http = False
            self._http = client

    def _client(self) -> ClientT:
        """The HTTP client of this process: a forked child never reuses its parent's pool
        (the blocking adapters, whose servers may fork after the adapter is built)."""
        if self._own_http and self._http is not None and os.getpid() != self._pid:
            # The parent's pool (and a lock another thread may have held at the
            # fork) stay behind: this process makes its own.
            self._http, self._http_lock = None, threading.Lock()
        return self.http

    def unexpected(self, req: GateRequest | None) -> Reply:
        """The 500 after an error nobody expected (call it while handling that error): the
        gate's page with a reference that is also in the log line, or, when even that
        fails (or the request could not be read), the bare answer."""
        if req is not None:
            try:
                return self.gate.parts.replies.unexpected(req)
            except Exception:  # noqa: S110 - the bare answer below is what is left
                pass
        log.exception("oakid-gate: unexpected error")
        return UNEXPECTED_ERROR

    def _new_http(self) -> ClientT:
        """A provider HTTP client of this adapter's kind."""
        raise NotImplementedError


class HotEntry:
    """What the hot path keeps for one ``Cookie`` header: ``key``, the store key of its
    session cookie (``None``: no session cookie, or the full path must decide), and
    ``kept``, the gate's last :meth:`~oakid_gate.gate.Gate.admission` of a session
    read under that key (its first item is that session object: an answer is used
    only for the very object the store gives back)."""

    __slots__ = ("kept", "key")

    def __init__(self, key: str | None) -> None:
        self.key = key
        self.kept: Admission | None = None


class HotKeys:
    """The :class:`HotEntry` of each ``Cookie`` header, for the hot path.

    A browser sends the same ``Cookie`` header with every request, so parsing it
    (Starlette's ``cookie_parser``) and hashing the session id
    (:meth:`~oakid_gate.gate.Gate.hot_key`) happen once per distinct header.
    The key is a pure function of the header and the scheme, so a cached one
    is always the answer parsing would give. Bounded: headers over
    :data:`MAX_HEADER` bytes are never kept, and the cache is emptied when it
    holds :data:`MAX_ENTRIES` (at most about 10 MB, with the sessions the
    entries' admissions hold). An adapter reads ``by_scheme[scheme]`` directly and
    calls :meth:`entry` on a miss.
    """

    MAX_ENTRIES = 4096
    MAX_HEADER = 2048

    def __init__(self, gate: Gate) -> None:
        self._gate = gate
        #: scheme -> Cookie header -> its entry
        self.by_scheme: dict[str, dict[bytes | str, HotEntry]] = {"http": {}, "https": {}}

    def entry(self, cookie: bytes | str, scheme: str) -> HotEntry:
        """The entry of this ``Cookie`` header, made and kept on a miss."""
        cache = self.by_scheme[scheme]
        found = cache.get(cookie)
        if found is not None:
            return found
        text = cookie.decode("latin-1") if isinstance(cookie, bytes) else cookie
        made = HotEntry(self._gate.hot_key(cookie_parser(text), scheme))
        if len(cookie) <= self.MAX_HEADER:
            if len(cache) >= self.MAX_ENTRIES:
                cache.clear()
            cache[cookie] = made
        return made

    def key(self, cookie: bytes | str | None, scheme: str) -> str | None:
        """The session's store key for this ``Cookie`` header, or ``None``."""
        return None if cookie is None else self.entry(cookie, scheme).key
