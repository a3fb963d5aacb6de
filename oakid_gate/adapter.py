"""What both middleware are made of, built the same way from their settings.

:class:`~oakid_gate.asgi.OakIDMiddleware` and
:class:`~oakid_gate.wsgi.OakIDWSGIMiddleware` differ only in how they read a
request and answer it; their settings (checked here, at construction, so a
mistake names the setting before the first request), their core, their store
and their provider HTTP client are made here, once.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from starlette.authentication import UnauthenticatedUser

from .gate import Gate
from .gate.store import SessionStore
from .settings import Settings
from .stores import store_for

__all__ = ["GateAdapter"]

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
        self.gate = Gate(self.settings)
        self.store = store if store is not None else store_for(self.settings)
        self._own_http = http is None
        self.http: ClientT = http if http is not None else self._new_http()
        #: the user of a request on a public path without a session
        self._anonymous = UnauthenticatedUser()

    def _new_http(self) -> ClientT:
        """A provider HTTP client of this adapter's kind."""
        raise NotImplementedError
