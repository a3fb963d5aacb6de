"""The authorization endpoint's steps (RFC 6749 4.1.1, OIDC Core 3.1.2).

Sans-I/O, in the manner of h11's events: each step takes the request's
parameters and returns an :class:`Answer`, what to show (a page or a redirect)
and the event to log. The app renders it.

A GET shows the sign-in page. A POST signs in with a password (or a login
ticket from the consent page), then denies, asks for consent, or redirects
with a code. Until the client and redirect URI are verified, errors are shown
on a page and never sent to the URI (RFC 6749 4.1.2.1). A sign-in POST from
another site is refused (login CSRF): see :func:`cross_origin`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from ._errors import AccessDenied, InvalidRequest, LoginRequired, OAuthError, UntrustedRedirect
from ._params import Params, lenient_param, optional_param
from ._provider import DevProvider, subject
from ._request import (
    AuthorizeRequest,
    authorization_error_uri,
    authorization_response_uri,
    parse_authorize_request,
    verify_redirect_target,
)
from .config import DevUser

__all__ = [
    "Answer",
    "AuthorizeEvent",
    "ConsentPage",
    "ErrorPage",
    "Redirect",
    "SignInPage",
    "authorize_get",
    "authorize_post",
    "cross_origin",
    "cross_origin_refused",
    "form_refused",
]


@dataclass(frozen=True)
class AuthorizeEvent:
    """What the event log says about one authorization request."""

    client_id: str | None
    result: str
    ok: bool
    error: str | None = None
    extra: Mapping[str, str] = field(default_factory=dict)  # ``sub`` or ``username``


@dataclass(frozen=True)
class ErrorPage:
    """A request that cannot be answered with a redirect."""

    message: str
    status: int = 400


@dataclass(frozen=True)
class SignInPage:
    """Ask for a username and password."""

    request: AuthorizeRequest
    message: str | None = None
    username: str = ""


@dataclass(frozen=True)
class ConsentPage:
    """Ask the signed-in user to approve the requested scopes."""

    request: AuthorizeRequest
    user: DevUser
    ticket: str


@dataclass(frozen=True)
class Redirect:
    """Send the browser back to the client, with a code or an error."""

    location: str


@dataclass(frozen=True)
class Answer:
    """What the authorization endpoint shows, and the event it logs (if any)."""

    show: ErrorPage | SignInPage | ConsentPage | Redirect
    event: AuthorizeEvent | None = None


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def cross_origin(origin: str | None, request_url: str, issuer: str) -> bool:
    """A browser POST from another site (login CSRF); scripts send no Origin."""
    if origin is None:
        return False
    return origin.lower() not in (_origin(request_url), _origin(issuer))


def cross_origin_refused() -> Answer:
    """The answer to a sign-in POST from another site."""
    event = AuthorizeEvent(None, "cross_origin_refused", ok=False)
    return Answer(ErrorPage("Cross-site sign-in form refused.", 403), event)


def form_refused(error: InvalidRequest) -> Answer:
    """The answer to a POST whose body is not a readable form."""
    return Answer(ErrorPage(error.description), _error_page_event(None, error.error))


def authorize_get(provider: DevProvider, params: Params) -> Answer:
    """A GET: the sign-in page, or an error (``prompt=none`` is login_required)."""
    checked = _verified_request(provider, params)
    if isinstance(checked, Answer):
        return checked
    prompt = lenient_param(params, "prompt") or ""
    if "none" in prompt.split():
        # OIDC Core 3.1.2.6: there is never a session to use without UI.
        error = LoginRequired("the dev-idp has no sessions; sign in interactively")
        return _error_redirect(provider, checked, error)
    page = SignInPage(checked, username=lenient_param(params, "login_hint") or "")
    return Answer(page, AuthorizeEvent(checked.client_id, "sign_in_page", ok=True))


def authorize_post(provider: DevProvider, params: Params, now: float) -> Answer:
    """A POST: sign in, then deny, ask for consent, or redirect with a code."""
    checked = _verified_request(provider, params)
    if isinstance(checked, Answer):
        return checked
    try:
        consent = optional_param(params, "consent")
    except InvalidRequest as exc:
        return Answer(SignInPage(checked, message=exc.description))
    if consent not in (None, "approve", "deny"):
        event = _error_page_event(checked.client_id, "invalid_request")
        return Answer(ErrorPage("consent must be approve or deny."), event)
    signed_in = _signed_in_user(provider, checked, params, now)
    if isinstance(signed_in, Answer):
        return signed_in
    user, auth_time = signed_in
    return _consent_then_code(provider, checked, user, auth_time, consent, now)


def _verified_request(provider: DevProvider, params: Params) -> AuthorizeRequest | Answer:
    """The checked request, or the error page or error redirect to answer."""
    try:
        client, redirect_uri = verify_redirect_target(params, provider.clients)
    except UntrustedRedirect as exc:
        return Answer(ErrorPage(str(exc)), _error_page_event(None, "invalid_request"))
    try:
        return parse_authorize_request(params, client, redirect_uri)
    except OAuthError as exc:
        state = lenient_param(params, "state")
        location = authorization_error_uri(redirect_uri, exc, state, provider.issuer)
        return _redirect_with_error(client.client_id, location, exc)


def _signed_in_user(
    provider: DevProvider, request: AuthorizeRequest, params: Params, now: float
) -> tuple[DevUser, int] | Answer:
    """The user and sign-in time from a consent ticket or a password, or a page."""
    try:
        ticket = optional_param(params, "login_ticket")
        username = optional_param(params, "username")
        password = optional_param(params, "password")
    except InvalidRequest as exc:
        return Answer(SignInPage(request, message=exc.description))
    if ticket is not None:
        signed_in = provider.redeem_login_ticket(ticket, request, now)
        if signed_in is None:
            page = SignInPage(request, message="Your sign-in expired; sign in again.")
            return Answer(page, AuthorizeEvent(request.client_id, "ticket_rejected", ok=False))
        return signed_in
    if username is None or password is None:
        return Answer(SignInPage(request, message="Enter a username and a password."))
    user = provider.verify_user(username, password)
    if user is None:
        page = SignInPage(request, message="Wrong username or password.", username=username)
        extra = {"username": username}
        event = AuthorizeEvent(request.client_id, "bad_credentials", ok=False, extra=extra)
        return Answer(page, event)
    return user, int(now)


def _consent_then_code(
    provider: DevProvider,
    request: AuthorizeRequest,
    user: DevUser,
    auth_time: int,
    consent: str | None,
    now: float,
) -> Answer:
    """Deny, ask for consent, or redirect with a code (RFC 6749 4.1.2)."""
    if consent == "deny":
        return _error_redirect(provider, request, AccessDenied("the user denied the request"))
    extra = {"sub": subject(user)}
    if consent == "approve":
        provider.remember_consent(user, request)
    elif provider.consent_needed(user, request):
        ticket = provider.issue_login_ticket(user, request, now, auth_time)
        event = AuthorizeEvent(request.client_id, "consent_page", ok=True, extra=extra)
        return Answer(ConsentPage(request, user, ticket), event)
    code = provider.issue_code(user, request, now, auth_time)
    location = authorization_response_uri(request, code, provider.issuer)
    event = AuthorizeEvent(request.client_id, "code", ok=True, extra=extra)
    return Answer(Redirect(location), event)


def _error_redirect(provider: DevProvider, request: AuthorizeRequest, error: OAuthError) -> Answer:
    location = authorization_error_uri(request.redirect_uri, error, request.state, provider.issuer)
    return _redirect_with_error(request.client_id, location, error)


def _redirect_with_error(client_id: str, location: str, error: OAuthError) -> Answer:
    event = AuthorizeEvent(client_id, "error_redirect", ok=False, error=error.error)
    return Answer(Redirect(location), event)


def _error_page_event(client_id: str | None, error: str) -> AuthorizeEvent:
    return AuthorizeEvent(client_id, "error_page", ok=False, error=error)
