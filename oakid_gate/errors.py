"""The one error tree of oakid-gate.

Every error carries an OAuth-style ``error`` code and an HTTP status hint, so the
adapters turn any of them into a page or a JSON answer without guessing::

    OakIDGateError                      server_error        500
    ├── ConfigurationError              (start-up only: names the setting)
    ├── ProviderError                   server_error        502
    │   ├── ProviderUnavailable         temporarily_unavailable 503
    │   ├── MetadataError               server_error        502
    │   └── TokenEndpointError          <provider's code>   502
    ├── AuthenticationError             invalid_request     400
    │   ├── StateError                  invalid_request     400
    │   ├── CodeRefused                 invalid_grant       400
    │   ├── AuthorizationDenied         access_denied       403
    │   ├── IDTokenError                invalid_token       401
    │   └── UserInfoError               invalid_token       401
    ├── AccessDenied                    access_denied       403
    ├── InvalidToken                    invalid_token       401 (a bearer token)
    ├── BadRequest                      invalid_request     400
    ├── ForbiddenRequest                invalid_request     403
    ├── BodyTooLarge                    invalid_request     413
    └── StoreUnavailable                temporarily_unavailable 503

Messages are written for the person who reads the error page: they say what is
wrong and never hold a token, a code, a cookie or a secret.
"""

from __future__ import annotations

__all__ = [
    "AccessDenied",
    "AuthenticationError",
    "AuthorizationDenied",
    "BadRequest",
    "BodyTooLarge",
    "CodeRefused",
    "ConfigurationError",
    "ForbiddenRequest",
    "IDTokenError",
    "InvalidToken",
    "MetadataError",
    "OakIDGateError",
    "ProviderError",
    "ProviderUnavailable",
    "StateError",
    "StoreUnavailable",
    "TokenEndpointError",
    "UserInfoError",
    "oauth_error_code",
]


class OakIDGateError(Exception):
    """Base class of every error raised by oakid-gate.

    A subclass names its OAuth ``error`` code and HTTP status hint on its class
    line (``class X(Base, error="...", status_hint=...)``); either may be left
    out to inherit it.
    """

    error = "server_error"
    status_hint = 500

    def __init_subclass__(cls, *, error: str | None = None, status_hint: int | None = None) -> None:
        super().__init_subclass__()
        if error is not None:
            cls.error = error
        if status_hint is not None:
            cls.status_hint = status_hint

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigurationError(OakIDGateError, ValueError):
    """A setting is missing or invalid; raised at start-up and names the setting."""

    def __init__(self, setting: str, problem: str) -> None:
        super().__init__(f"setting {setting!r}: {problem}")
        self.setting = setting


class ProviderError(OakIDGateError, status_hint=502):
    """The provider answered something we cannot use."""


class ProviderUnavailable(ProviderError, error="temporarily_unavailable", status_hint=503):
    """The provider could not be reached, timed out, or answered 5xx."""


class MetadataError(ProviderError):
    """The discovery document or the key set is invalid."""


class TokenEndpointError(ProviderError):
    """The token endpoint answered with an OAuth error (RFC 6749 section 5.2)."""

    def __init__(self, error: str, message: str) -> None:
        super().__init__(message)
        self.error = error


class AuthenticationError(OakIDGateError, error="invalid_request", status_hint=400):
    """The sign-in could not be completed."""


class StateError(AuthenticationError):
    """The callback's ``state`` is missing, unknown, used, expired or from another browser."""


class CodeRefused(AuthenticationError, error="invalid_grant", status_hint=400):
    """The token endpoint refused the authorization code (used, expired, not ours):
    the sign-in must start again; the provider is not at fault."""


class AuthorizationDenied(AuthenticationError, error="access_denied", status_hint=403):
    """The provider answered the authorization request with an error."""


class IDTokenError(AuthenticationError, error="invalid_token", status_hint=401):
    """The ID token failed a check of OpenID Connect Core section 3.1.3.7."""


class UserInfoError(AuthenticationError, error="invalid_token", status_hint=401):
    """The userinfo answer is unusable or names another subject."""


class AccessDenied(OakIDGateError, error="access_denied", status_hint=403):
    """Signed in, but not one of the allowed users."""


class InvalidToken(OakIDGateError, error="invalid_token", status_hint=401):
    """A bearer token that is not valid for this gate (RFC 6750 ``invalid_token``)."""


class BadRequest(OakIDGateError, error="invalid_request", status_hint=400):
    """A request to the gate it cannot take as it is (a parameter twice, a malformed form)."""


class ForbiddenRequest(OakIDGateError, error="invalid_request", status_hint=403):
    """A request that must not be honoured (for example a cross-site sign-out)."""


class BodyTooLarge(OakIDGateError, error="invalid_request", status_hint=413):
    """A request body the gate reads itself (the sign-out form) is larger than it takes."""


class StoreUnavailable(OakIDGateError, error="temporarily_unavailable", status_hint=503):
    """The session store does not answer."""


def oauth_error_code(value: object) -> str:
    """A provider's ``error`` value if it has the shape of an OAuth error code, else ``"error"``.

    Provider answers are untrusted: only ``[a-z_]`` codes are repeated on pages and in logs.
    """
    if (
        isinstance(value, str)
        and 0 < len(value) <= 64
        and all("a" <= c <= "z" or c == "_" for c in value)
    ):
        return value
    return "error"
