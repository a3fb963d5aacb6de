"""The dev-idp as a Starlette app: HTTP in and out around :mod:`._provider`.

This module owns the I/O: the clock, randomness, form parsing, HTML and JSON
responses and the event log. The protocol decisions live in ``_provider``.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from . import _pages
from ._errors import (
    AccessDenied,
    InvalidRequest,
    LoginRequired,
    OAuthError,
    ServerError,
    UntrustedRedirect,
)
from ._provider import (
    CLAIMS_SUPPORTED,
    GRANT_TYPES,
    SCOPES,
    AuthorizeRequest,
    DevProvider,
    Params,
    authorization_error_uri,
    authorization_response_uri,
    client_credentials,
    lenient_param,
    lenient_state,
    optional_param,
    parse_authorize_request,
    sha256_hex,
    verify_redirect_target,
)
from .config import DevIdPConfig, DevUser

__all__ = ["create_app"]

logger = logging.getLogger(__name__)

_FORM = "application/x-www-form-urlencoded"
_MAX_BODY = 64 * 1024
_MAX_FIELDS = 100
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_PAGE_HEADERS = {
    **_NO_STORE,
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    # same-origin, not no-referrer: with no-referrer Chromium sends "Origin: null" on
    # the sign-in form POST, which the login-CSRF check must refuse.
    "Referrer-Policy": "same-origin",
}
_BASIC_CHALLENGE = 'Basic realm="oakid-gate dev-idp", charset="UTF-8"'


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


class EventLog:
    """Events as a list, and as JSON lines in a file when a path is given.

    Events carry token digests, never a token, code, password or secret.
    """

    def __init__(self, path: str | None) -> None:
        self.events: list[dict[str, Any]] = []
        self._path = path
        if path is not None:
            with open(path, "a", encoding="utf-8"):
                pass  # fail at start-up, not at the first event, if it cannot be written

    def record(self, event: dict[str, Any]) -> None:
        self.events.append(event)
        if self._path is not None:
            with open(self._path, "a", encoding="utf-8") as file:
                file.write(json.dumps(event) + "\n")
                file.flush()


def _query(request: Request) -> dict[str, list[str]]:
    return _multi(parse_qsl(request.url.query, keep_blank_values=True))


def _multi(pairs: list[tuple[str, str]]) -> dict[str, list[str]]:
    params: dict[str, list[str]] = {}
    for name, value in pairs:
        params.setdefault(name, []).append(value)
    return params


async def _form(request: Request) -> dict[str, list[str]]:
    """An ``application/x-www-form-urlencoded`` body; InvalidRequest otherwise."""
    content_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if content_type != _FORM:
        raise InvalidRequest(f"the body must be {_FORM}")
    body = await request.body()
    if len(body) > _MAX_BODY:
        raise InvalidRequest("request body too large")
    try:
        text = body.decode("utf-8")
        pairs = parse_qsl(text, keep_blank_values=True, max_num_fields=_MAX_FIELDS)
    except (UnicodeDecodeError, ValueError):
        raise InvalidRequest("malformed form body") from None
    return _multi(pairs)


def _json_error(error: OAuthError, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error.as_json(), status_code=error.status_hint, headers=headers)


def _html(content: str, status_code: int = 200) -> HTMLResponse:
    return HTMLResponse(content, status_code=status_code, headers=_PAGE_HEADERS)


def _redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=302, headers=_NO_STORE)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def _cross_origin(request: Request, issuer: str) -> bool:
    """A browser POST from another site (login CSRF); scripts send no Origin."""
    origin = request.headers.get("origin")
    if origin is None:
        return False
    return origin.lower() not in (_origin(str(request.url)), _origin(issuer))


class _Endpoints:
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

    # -- metadata ---------------------------------------------------------

    async def index(self, request: Request) -> Response:
        return _html(_pages.index_page(self.issuer, self.config.users))

    async def discovery(self, request: Request) -> Response:
        """OpenID Connect Discovery 1.0 section 3 (also served as RFC 8414 metadata)."""
        issuer = self.issuer
        return JSONResponse(
            {
                "issuer": issuer,
                "authorization_endpoint": f"{issuer}/oauth/authorize",
                "token_endpoint": f"{issuer}/oauth/token",
                "userinfo_endpoint": f"{issuer}/oauth/userinfo",
                "revocation_endpoint": f"{issuer}/oauth/revoke",
                "jwks_uri": f"{issuer}/.well-known/jwks.json",
                "response_types_supported": ["code"],
                "response_modes_supported": ["query"],
                "grant_types_supported": list(GRANT_TYPES),
                "code_challenge_methods_supported": ["S256"],
                "id_token_signing_alg_values_supported": ["HS256"],
                "token_endpoint_auth_methods_supported": [
                    "client_secret_basic",
                    "client_secret_post",
                ],
                "revocation_endpoint_auth_methods_supported": [
                    "client_secret_basic",
                    "client_secret_post",
                    "none",
                ],
                "scopes_supported": list(SCOPES),
                "subject_types_supported": ["public"],
                "claims_supported": list(CLAIMS_SUPPORTED),
                "authorization_response_iss_parameter_supported": True,
                "claims_parameter_supported": False,
                "request_parameter_supported": False,
                "request_uri_parameter_supported": False,
            }
        )

    async def jwks(self, request: Request) -> Response:
        """No public keys: ID tokens are HS256, keyed with the client secret."""
        return JSONResponse({"keys": []})

    # -- authorization endpoint (RFC 6749 4.1.1, OIDC Core 3.1.2) ---------

    async def authorize(self, request: Request) -> Response:
        if request.method == "GET":
            return self._authorize_get(_query(request))
        if _cross_origin(request, self.issuer):
            self._authorize_event(None, "cross_origin_refused", ok=False)
            return _html(_pages.error_page("Cross-site sign-in form refused."), 403)
        try:
            params = await _form(request)
        except InvalidRequest as exc:
            self._authorize_event(None, "error_page", ok=False, error=exc.error)
            return _html(_pages.error_page(exc.description), 400)
        return self._authorize_post(params)

    def _verified_request(self, params: Params) -> AuthorizeRequest | Response:
        """The checked request, or the error page or error redirect to answer."""
        try:
            client, redirect_uri = verify_redirect_target(params, self.provider.clients)
        except UntrustedRedirect as exc:
            self._authorize_event(None, "error_page", ok=False, error="invalid_request")
            return _html(_pages.error_page(str(exc)), 400)
        try:
            return parse_authorize_request(params, client, redirect_uri)
        except OAuthError as exc:
            return self._error_redirect(client.client_id, redirect_uri, exc, lenient_state(params))

    def _authorize_get(self, params: Params) -> Response:
        checked = self._verified_request(params)
        if isinstance(checked, Response):
            return checked
        prompt = lenient_param(params, "prompt") or ""
        if "none" in prompt.split():
            # OIDC Core 3.1.2.6: there is never a session to use without UI.
            error = LoginRequired("the dev-idp has no sessions; sign in interactively")
            return self._error_redirect(
                checked.client_id, checked.redirect_uri, error, checked.state
            )
        self._authorize_event(checked.client_id, "sign_in_page", ok=True)
        return self._sign_in(checked, username=lenient_param(params, "login_hint") or "")

    def _authorize_post(self, params: Params) -> Response:
        checked = self._verified_request(params)
        if isinstance(checked, Response):
            return checked
        try:
            consent = optional_param(params, "consent")
        except InvalidRequest as exc:
            return self._sign_in(checked, message=exc.description)
        if consent not in (None, "approve", "deny"):
            self._authorize_event(
                checked.client_id, "error_page", ok=False, error="invalid_request"
            )
            return _html(_pages.error_page("consent must be approve or deny."), 400)
        now = self.clock()
        signed_in = self._signed_in_user(checked, params, now)
        if isinstance(signed_in, Response):
            return signed_in
        user, auth_time = signed_in
        return self._consent_then_code(checked, user, auth_time, consent, now)

    def _signed_in_user(
        self, request: AuthorizeRequest, params: Params, now: float
    ) -> tuple[DevUser, int] | Response:
        """The user and sign-in time from a consent ticket or a password, or a page."""
        try:
            ticket = optional_param(params, "login_ticket")
            username = optional_param(params, "username")
            password = optional_param(params, "password")
        except InvalidRequest as exc:
            return self._sign_in(request, message=exc.description)
        if ticket is not None:
            signed_in = self.provider.redeem_login_ticket(ticket, request, now)
            if signed_in is None:
                self._authorize_event(request.client_id, "ticket_rejected", ok=False)
                return self._sign_in(request, message="Your sign-in expired; sign in again.")
            return signed_in
        if username is None or password is None:
            return self._sign_in(request, message="Enter a username and a password.")
        user = self.provider.verify_user(username, password)
        if user is None:
            self._authorize_event(request.client_id, "bad_credentials", ok=False, username=username)
            return self._sign_in(request, message="Wrong username or password.", username=username)
        return user, int(now)

    def _consent_then_code(
        self,
        request: AuthorizeRequest,
        user: DevUser,
        auth_time: int,
        consent: str | None,
        now: float,
    ) -> Response:
        """Deny, ask for consent, or redirect with a code (RFC 6749 4.1.2)."""
        if consent == "deny":
            error = AccessDenied("the user denied the request")
            return self._error_redirect(
                request.client_id, request.redirect_uri, error, request.state
            )
        sub = str(user.claims["sub"])
        if consent == "approve":
            self.provider.remember_consent(user, request)
        elif self.provider.consent_needed(user, request):
            ticket = self.provider.issue_login_ticket(user, request, now, auth_time)
            self._authorize_event(request.client_id, "consent_page", ok=True, sub=sub)
            return _html(_pages.consent_page(request, user, self.authorize_path, ticket))
        code = self.provider.issue_code(user, request, now, auth_time)
        self._authorize_event(request.client_id, "code", ok=True, sub=sub)
        return _redirect(authorization_response_uri(request, code, self.issuer))

    def _sign_in(
        self, request: AuthorizeRequest, *, message: str | None = None, username: str = ""
    ) -> Response:
        page = _pages.sign_in_page(
            request, self.config.users, self.authorize_path, message=message, username=username
        )
        return _html(page)

    def _error_redirect(
        self, client_id: str, redirect_uri: str, error: OAuthError, state: str | None
    ) -> Response:
        self._authorize_event(client_id, "error_redirect", ok=False, error=error.error)
        return _redirect(authorization_error_uri(redirect_uri, error, state, self.issuer))

    def _authorize_event(
        self,
        client_id: str | None,
        result: str,
        *,
        ok: bool,
        error: str | None = None,
        **extra: str,
    ) -> None:
        self.log.record(
            {
                "event": "authorize",
                "time": self.clock(),
                "client_id": client_id,
                "ok": ok,
                "error": error,
                "result": result,
                **extra,
            }
        )

    # -- token endpoint (RFC 6749 3.2, 4.1.3, 6) --------------------------

    async def token(self, request: Request) -> Response:
        authorization = request.headers.get("authorization")
        params: dict[str, list[str]] = {}
        try:
            params = await _form(request)
            response = self.provider.token(authorization, params, self.clock())
        except OAuthError as exc:
            self._token_event(authorization, params, exc.error)
            headers = dict(_NO_STORE)
            if exc.status_hint == 401:
                headers["WWW-Authenticate"] = _BASIC_CHALLENGE
            return _json_error(exc, headers)
        except Exception:
            logger.exception("dev-idp: token request failed")
            self._token_event(authorization, params, ServerError.error)
            return _json_error(ServerError("internal error while issuing tokens"), _NO_STORE)
        self._token_event(authorization, params, None)
        return JSONResponse(response, headers=_NO_STORE)

    def _token_event(self, authorization: str | None, params: Params, error: str | None) -> None:
        grant_type = _lenient(params, "grant_type")
        event: dict[str, Any] = {
            "event": "token",
            "time": self.clock(),
            "grant_type": grant_type,
            "client_id": _claimed_client_id(authorization, params),
            "ok": error is None,
            "error": error,
        }
        if grant_type == "refresh_token":
            presented = _lenient(params, "refresh_token")
            event["refresh_token_sha256"] = sha256_hex(presented) if presented else None
        self.log.record(event)

    # -- userinfo (OIDC Core 5.3) -----------------------------------------

    async def userinfo(self, request: Request) -> Response:
        try:
            info = self.provider.userinfo(request.headers.get("authorization"), self.clock())
        except OAuthError as exc:
            self._record("userinfo", ok=False, error=exc.error)
            return _json_error(exc, {"WWW-Authenticate": 'Bearer error="invalid_token"'})
        self._record(
            "userinfo", ok=True, error=None, client_id=info.client_id, sub=info.claims["sub"]
        )
        return JSONResponse(info.claims, headers=_NO_STORE)

    # -- revocation (RFC 7009) --------------------------------------------

    async def revoke(self, request: Request) -> Response:
        authorization = request.headers.get("authorization")
        params: dict[str, list[str]] = {}
        try:
            params = await _form(request)
            revoked = self.provider.revoke(authorization, params)
        except OAuthError as exc:
            self._record("revoke", ok=False, error=exc.error)
            headers = {"WWW-Authenticate": _BASIC_CHALLENGE} if exc.status_hint == 401 else None
            return _json_error(exc, headers)
        token = _lenient(params, "token") or ""
        self._record(
            "revoke",
            ok=True,
            error=None,
            client_id=_claimed_client_id(authorization, params),
            token_sha256=sha256_hex(token),
            revoked=revoked,
        )
        return Response(status_code=200, headers=_NO_STORE)

    def _record(self, name: str, *, ok: bool, error: str | None, **fields: Any) -> None:
        self.log.record({"event": name, "time": self.clock(), "ok": ok, "error": error, **fields})


def _lenient(params: Params, name: str) -> str | None:
    """A parameter for the event log: the first value, whatever else is wrong."""
    values = params.get(name)
    return values[0] if values else None


def _claimed_client_id(authorization: str | None, params: Params) -> str | None:
    """The client a request says it comes from, for the event log."""
    try:
        credentials = client_credentials(authorization, params)
    except OAuthError:
        return _lenient(params, "client_id")
    return credentials.client_id if credentials is not None else None
