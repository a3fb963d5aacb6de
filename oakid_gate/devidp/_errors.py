"""The dev-idp's error tree: one class per OAuth ``error`` code.

::

    OAuthError                  error                       HTTP status hint
    ├── InvalidRequest          invalid_request             400  (RFC 6749 5.2)
    ├── InvalidClient           invalid_client              401  (RFC 6749 5.2)
    ├── InvalidGrant            invalid_grant               400  (RFC 6749 5.2)
    ├── UnsupportedGrantType    unsupported_grant_type      400  (RFC 6749 5.2)
    ├── InvalidScope            invalid_scope               400  (RFC 6749 4.1.2.1, 5.2)
    ├── UnsupportedResponseType unsupported_response_type   302  (RFC 6749 4.1.2.1)
    ├── AccessDenied            access_denied               302  (RFC 6749 4.1.2.1)
    ├── LoginRequired           login_required              302  (OIDC Core 3.1.2.6)
    ├── InvalidToken            invalid_token               401  (RFC 6750 3.1)
    └── ServerError             server_error                500  (RFC 6749 5.2)

    UntrustedRedirect: the authorization request cannot be answered with a
    redirect (unknown client, unregistered redirect URI); an error page is
    shown instead (RFC 6749 4.1.2.1, first paragraph).

At the authorization endpoint an ``OAuthError`` becomes a redirect to the
client (so the status hint is 302); at the other endpoints it is the JSON body
``{"error": ..., "error_description": ...}`` with the status hint.
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "AccessDenied",
    "InvalidClient",
    "InvalidGrant",
    "InvalidRequest",
    "InvalidScope",
    "InvalidToken",
    "LoginRequired",
    "OAuthError",
    "ServerError",
    "UnsupportedGrantType",
    "UnsupportedResponseType",
    "UntrustedRedirect",
]


class OAuthError(Exception):
    """An OAuth 2.0 error response; the message is its ``error_description``.

    A subclass names its ``error`` code and status hint in its class line.
    """

    error: ClassVar[str] = "server_error"
    status_hint: ClassVar[int] = 500

    def __init_subclass__(cls, *, error: str, status_hint: int, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.error = error
        cls.status_hint = status_hint

    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.description = description

    def as_json(self) -> dict[str, str]:
        """The RFC 6749 section 5.2 error body."""
        return {"error": self.error, "error_description": self.description}


class InvalidRequest(OAuthError, error="invalid_request", status_hint=400):
    """A parameter is missing, repeated or malformed, or the body is not a form."""


class InvalidClient(OAuthError, error="invalid_client", status_hint=401):
    """Client authentication failed or was malformed."""


class InvalidGrant(OAuthError, error="invalid_grant", status_hint=400):
    """The code or refresh token is unknown, expired, used up, revoked or not the client's."""


class UnsupportedGrantType(OAuthError, error="unsupported_grant_type", status_hint=400):
    """A grant type other than ``authorization_code`` and ``refresh_token``."""


class InvalidScope(OAuthError, error="invalid_scope", status_hint=400):
    """A scope outside ``openid profile email``, no ``openid``, or a widening refresh."""


class UnsupportedResponseType(OAuthError, error="unsupported_response_type", status_hint=302):
    """A ``response_type`` other than ``code``."""


class AccessDenied(OAuthError, error="access_denied", status_hint=302):
    """The user denied consent."""


class LoginRequired(OAuthError, error="login_required", status_hint=302):
    """``prompt=none``: the dev-idp keeps no session to sign in without a page."""


class InvalidToken(OAuthError, error="invalid_token", status_hint=401):
    """A missing, unknown, expired or revoked access token."""


class ServerError(OAuthError, error="server_error", status_hint=500):
    """An internal failure; its details go to the log, never to the client."""


class UntrustedRedirect(Exception):
    """The client or its redirect URI is not verified: show a page, never redirect."""
