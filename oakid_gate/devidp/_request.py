"""The authorization request and the redirects that answer it.

RFC 6749 4.1.1 with PKCE (RFC 7636 4.3) and OpenID Connect Core 3.1.2.1 for
the request; RFC 6749 4.1.2 and 4.1.2.1 with ``iss`` (RFC 9207) for the
answer. The client and redirect URI are verified first: until they are, an
error must be shown to the user and never sent to the URI.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit, urlunsplit

from ._errors import InvalidRequest, OAuthError, UnsupportedResponseType, UntrustedRedirect
from ._params import Params, optional_param, required_param
from ._pkce import required_challenge
from ._scopes import parse_scope
from .config import DevClient

__all__ = [
    "AuthorizeRequest",
    "authorization_error_uri",
    "authorization_response_uri",
    "parse_authorize_request",
    "redirect_uri_allowed",
    "verify_redirect_target",
]

_LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True)
class AuthorizeRequest:
    """A verified authorization request: the client and redirect URI are trusted."""

    client_id: str
    redirect_uri: str
    scope: tuple[str, ...]
    code_challenge: str
    state: str | None = None
    nonce: str | None = None

    def form_fields(self) -> list[tuple[str, str]]:
        """The request as authorize parameters, e.g. for hidden form fields."""
        fields = [
            ("response_type", "code"),
            ("client_id", self.client_id),
            ("redirect_uri", self.redirect_uri),
            ("scope", " ".join(self.scope)),
            ("code_challenge", self.code_challenge),
            ("code_challenge_method", "S256"),
        ]
        for name, value in (("state", self.state), ("nonce", self.nonce)):
            if value is not None:
                fields.append((name, value))
        return fields


def _loopback_redirect_uri(uri: str) -> bool:
    """RFC 8252 7.3: ``http://`` to a loopback host, any port, no credentials."""
    if any(ch.isspace() or ord(ch) < 0x20 or ch == "\\" for ch in uri):
        return False
    try:
        parts = urlsplit(uri)
        _ = parts.port  # raises ValueError on a malformed port
    except ValueError:
        return False
    return (
        parts.scheme == "http"
        and parts.hostname in _LOOPBACK_HOSTS
        and parts.username is None
        and parts.password is None
        and parts.path.startswith("/")
        and not parts.fragment
        and "#" not in uri
    )


def redirect_uri_allowed(client: DevClient, uri: str) -> bool:
    """Exact match against the registered URIs; any loopback URI if none are."""
    if client.redirect_uris:
        return uri in client.redirect_uris
    return _loopback_redirect_uri(uri)


def verify_redirect_target(
    params: Params, clients: Mapping[str, DevClient]
) -> tuple[DevClient, str]:
    """The client and redirect URI of an authorization request.

    Raises UntrustedRedirect when either cannot be verified: the error must then
    be shown to the user, never sent to the URI (RFC 6749 4.1.2.1).
    """
    try:
        client_id = optional_param(params, "client_id")
        redirect_uri = optional_param(params, "redirect_uri")
    except InvalidRequest as exc:
        raise UntrustedRedirect(exc.description) from None
    if client_id is None:
        raise UntrustedRedirect("The request has no client_id.")
    client = clients.get(client_id)
    if client is None:
        raise UntrustedRedirect(f"Unknown client_id {client_id!r}.")
    if redirect_uri is None:
        raise UntrustedRedirect("The request has no redirect_uri.")
    if not redirect_uri_allowed(client, redirect_uri):
        raise UntrustedRedirect(
            f"The redirect_uri {redirect_uri!r} is not registered for client {client_id!r}."
        )
    return client, redirect_uri


def parse_authorize_request(
    params: Params, client: DevClient, redirect_uri: str
) -> AuthorizeRequest:
    """Check the rest of an authorization request whose target is verified.

    Raises an OAuthError, to be sent to ``redirect_uri``.
    """
    response_type = required_param(params, "response_type")
    if response_type != "code":
        raise UnsupportedResponseType("only response_type=code is supported")
    challenge = required_challenge(params)
    return AuthorizeRequest(
        client_id=client.client_id,
        redirect_uri=redirect_uri,
        scope=parse_scope(optional_param(params, "scope")),
        code_challenge=challenge,
        state=optional_param(params, "state"),
        nonce=optional_param(params, "nonce"),
    )


def _with_query(uri: str, params: list[tuple[str, str]]) -> str:
    """Add parameters to a URI, keeping its own query (RFC 6749 3.1.2)."""
    parts = urlsplit(uri)
    query = "&".join(part for part in (parts.query, urlencode(params)) if part)
    return urlunsplit(parts._replace(query=query))


def _redirect_uri(
    redirect_uri: str, params: list[tuple[str, str]], state: str | None, issuer: str
) -> str:
    """``params``, then ``state`` if there is one, then ``iss`` (RFC 9207)."""
    if state is not None:
        params.append(("state", state))
    params.append(("iss", issuer))
    return _with_query(redirect_uri, params)


def authorization_response_uri(request: AuthorizeRequest, code: str, issuer: str) -> str:
    """The success redirect (RFC 6749 4.1.2, ``iss`` from RFC 9207)."""
    return _redirect_uri(request.redirect_uri, [("code", code)], request.state, issuer)


def authorization_error_uri(
    redirect_uri: str, error: OAuthError, state: str | None, issuer: str
) -> str:
    """The error redirect (RFC 6749 4.1.2.1, ``iss`` from RFC 9207)."""
    params = [("error", error.error), ("error_description", error.description)]
    return _redirect_uri(redirect_uri, params, state, issuer)
