"""The dev-idp as a Starlette app: HTTP in and out around :mod:`._provider`.

This module owns the I/O: the clock, randomness, the routes and the event
log. Each route reads the request (:mod:`._http`), asks the sans-I/O core for
the answer, records the event (:mod:`._events`) and renders the answer.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from . import _pages
from ._authorize import (
    Answer,
    ConsentPage,
    ErrorPage,
    Redirect,
    authorize_get,
    authorize_post,
    cross_origin,
    cross_origin_refused,
    form_refused,
)
from ._discovery import JWKS, discovery_document
from ._errors import InvalidRequest, OAuthError, ServerError
from ._events import (
    EventLog,
    authorize_event,
    failure_event,
    revoke_event,
    token_event,
    userinfo_event,
)
from ._http import (
    NO_STORE,
    client_auth_error,
    html,
    json_error,
    json_no_store,
    query_params,
    read_form,
    redirect,
)
from ._provider import DevProvider
from .config import DevIdPConfig

__all__ = ["create_app"]

logger = logging.getLogger(__name__)

_BEARER_CHALLENGE = {"WWW-Authenticate": 'Bearer error="invalid_token"'}


def _new_token() -> str:
    return secrets.token_urlsafe(32)


def create_app(config: DevIdPConfig, *, clock: Callable[[], float] = time.time) -> Starlette:
    """A Starlette app serving an OakID-compatible provider for ``config``.

    ``clock`` gives the current Unix time (tests pass a fake one). The event
    list is ``app.state.events``; it is also appended to ``config.log_path``.
    """
    log = EventLog(config.log_path)
    endpoints = _Endpoints(config, DevProvider(config, _new_token), clock, log)
    prefix = urlsplit(config.issuer).path
    routes = [
        Route(prefix + "/", endpoints.index, methods=["GET"]),
        Route(prefix + "/.well-known/openid-configuration", endpoints.discovery, methods=["GET"]),
        Route(
            prefix + "/.well-known/oauth-authorization-server", endpoints.discovery, methods=["GET"]
        ),
        Route(prefix + "/.well-known/jwks.json", endpoints.jwks, methods=["GET"]),
        Route(prefix + "/oauth/authorize", endpoints.authorize, methods=["GET", "POST"]),
        Route(prefix + "/oauth/token", endpoints.token, methods=["POST"]),
        Route(prefix + "/oauth/userinfo", endpoints.userinfo, methods=["GET", "POST"]),
        Route(prefix + "/oauth/revoke", endpoints.revoke, methods=["POST"]),
    ]
    app = Starlette(routes=routes)
    app.state.events = log.events
    app.state.config = config
    return app


class _Endpoints:
    """One method per route: read the request, ask the core, log, render."""

    def __init__(
        self,
        config: DevIdPConfig,
        provider: DevProvider,
        clock: Callable[[], float],
        log: EventLog,
    ) -> None:
        self.config = config
        self.provider = provider
        self.clock = clock
        self.log = log
        self.issuer = config.issuer
        self.authorize_path = urlsplit(config.issuer).path + "/oauth/authorize"

    async def index(self, request: Request) -> Response:
        return html(_pages.index_page(self.issuer, self.config.users))

    async def discovery(self, request: Request) -> Response:
        return JSONResponse(discovery_document(self.issuer))

    async def jwks(self, request: Request) -> Response:
        return JSONResponse(JWKS)

    async def authorize(self, request: Request) -> Response:
        if request.method == "GET":
            return self._render(authorize_get(self.provider, query_params(request)))
        if cross_origin(request.headers.get("origin"), str(request.url), self.issuer):
            return self._render(cross_origin_refused())
        try:
            params = await read_form(request)
        except InvalidRequest as exc:
            return self._render(form_refused(exc))
        return self._render(authorize_post(self.provider, params, self.clock()))

    def _render(self, answer: Answer) -> Response:
        if answer.event is not None:
            self.log.record(authorize_event(answer.event, self.clock()))
        show = answer.show
        if isinstance(show, Redirect):
            return redirect(show.location)
        if isinstance(show, ErrorPage):
            return html(_pages.error_page(show.message), show.status)
        if isinstance(show, ConsentPage):
            page = _pages.consent_page(show.request, show.user, self.authorize_path, show.ticket)
            return html(page)
        page = _pages.sign_in_page(
            show.request,
            self.config.users,
            self.authorize_path,
            message=show.message,
            username=show.username,
        )
        return html(page)

    async def token(self, request: Request) -> Response:
        authorization = request.headers.get("authorization")
        params: dict[str, list[str]] = {}
        try:
            params = await read_form(request)
            response = self.provider.token(authorization, params, self.clock())
        except OAuthError as exc:
            self.log.record(token_event(authorization, params, exc.error, self.clock()))
            return client_auth_error(exc, NO_STORE)
        except Exception:
            logger.exception("dev-idp: token request failed")
            self.log.record(token_event(authorization, params, ServerError.error, self.clock()))
            return json_error(ServerError("internal error while issuing tokens"), NO_STORE)
        self.log.record(token_event(authorization, params, None, self.clock()))
        return json_no_store(response)

    async def userinfo(self, request: Request) -> Response:
        try:
            info = self.provider.userinfo(request.headers.get("authorization"), self.clock())
        except OAuthError as exc:
            self.log.record(failure_event("userinfo", exc.error, self.clock()))
            return json_error(exc, _BEARER_CHALLENGE)
        self.log.record(userinfo_event(info, self.clock()))
        return json_no_store(info.claims)

    async def revoke(self, request: Request) -> Response:
        authorization = request.headers.get("authorization")
        try:
            params = await read_form(request)
            revoked = self.provider.revoke(authorization, params)
        except OAuthError as exc:
            self.log.record(failure_event("revoke", exc.error, self.clock()))
            return client_auth_error(exc, {})
        self.log.record(revoke_event(authorization, params, revoked, self.clock()))
        return Response(status_code=200, headers=NO_STORE)
