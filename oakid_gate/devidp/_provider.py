"""The dev-idp's protocol core: authorization requests, codes, tokens, consent.

Sans-I/O: plain values in, plain values out. No Starlette, no clock and no
randomness in here: ``now`` is an argument and new tokens come from the
``token_factory`` given to :class:`DevProvider`. All state lives in memory.
Tokens, codes and login tickets are stored under their SHA-256 digest, never
in the clear.
"""

from __future__ import annotations

import base64
import binascii
import copy
import hashlib
import hmac
import itertools
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import unquote_plus, urlencode, urlsplit, urlunsplit

from joserfc import jwt
from joserfc.jwk import OctKey

from ._errors import (
    InvalidClient,
    InvalidGrant,
    InvalidRequest,
    InvalidScope,
    InvalidToken,
    OAuthError,
    UnsupportedGrantType,
    UnsupportedResponseType,
    UntrustedRedirect,
)
from .config import DevClient, DevIdPConfig, DevUser

__all__ = [
    "CLAIMS_SUPPORTED",
    "GRANT_TYPES",
    "SCOPES",
    "AuthorizeRequest",
    "ClientCredentials",
    "DevProvider",
    "Params",
    "UserInfo",
    "authorization_error_uri",
    "authorization_response_uri",
    "bearer_token",
    "client_credentials",
    "lenient_param",
    "lenient_state",
    "optional_param",
    "parse_authorize_request",
    "redirect_uri_allowed",
    "released_claims",
    "sha256_hex",
    "sign_id_token",
    "verify_pkce",
    "verify_redirect_target",
]

#: A parsed query string or form: every value a parameter was given.
Params = Mapping[str, Sequence[str]]

SCOPES = ("openid", "profile", "email")
DEFAULT_SCOPE = SCOPES  # OakID's default scopes: openid profile email
GRANT_TYPES = ("authorization_code", "refresh_token")

#: Which user claims each scope releases (OpenID Connect Core 5.4), plus
#: ``groups`` with ``profile``.
SCOPE_CLAIMS: Mapping[str, tuple[str, ...]] = {
    "openid": ("sub",),
    "profile": (
        "name",
        "family_name",
        "given_name",
        "middle_name",
        "nickname",
        "preferred_username",
        "profile",
        "picture",
        "website",
        "gender",
        "birthdate",
        "zoneinfo",
        "locale",
        "updated_at",
        "groups",
    ),
    "email": ("email", "email_verified"),
}
CLAIMS_SUPPORTED = (
    "iss",
    "aud",
    "exp",
    "iat",
    "auth_time",
    "nonce",
    *(claim for scope in SCOPES for claim in SCOPE_CLAIMS[scope]),
)

LOGIN_TICKET_TTL = 600  # seconds between a correct password and the consent answer

# RFC 7636 section 4.1: code-verifier = 43*128unreserved
_CODE_VERIFIER = re.compile(r"[A-Za-z0-9\-._~]{43,128}")
# RFC 7636 section 4.2: an S256 challenge is BASE64URL(SHA256(...)), 43 characters
_S256_CHALLENGE = re.compile(r"[A-Za-z0-9\-_]{43}")
_LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


# ---------------------------------------------------------------------------
# Parameters (RFC 6749 section 3.1: sent at most once; empty means omitted)


def optional_param(params: Params, name: str) -> str | None:
    """The parameter's value; ``None`` when absent or empty.

    Raises InvalidRequest when it is given more than once.
    """
    values = [value for value in params.get(name, ()) if value != ""]
    if len(values) > 1:
        raise InvalidRequest(f"parameter {name} must not be repeated")
    return values[0] if values else None


def _required_param(params: Params, name: str) -> str:
    value = optional_param(params, name)
    if value is None:
        raise InvalidRequest(f"missing parameter: {name}")
    return value


def sha256_hex(value: str) -> str:
    """The SHA-256 digest of a token, as hex: how tokens are stored and logged."""
    return hashlib.sha256(value.encode()).hexdigest()


def _equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


# ---------------------------------------------------------------------------
# Authorization request (RFC 6749 4.1.1, RFC 7636 4.3, OIDC Core 3.1.2.1)


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


def lenient_param(params: Params, name: str) -> str | None:
    """A parameter's value if it was given exactly once and not empty."""
    values = [value for value in params.get(name, ()) if value != ""]
    return values[0] if len(values) == 1 else None


def lenient_state(params: Params) -> str | None:
    """The ``state`` to echo in an error redirect, if there is exactly one."""
    return lenient_param(params, "state")


def _parse_scope(value: str | None) -> tuple[str, ...]:
    if value is None:
        return DEFAULT_SCOPE
    scope = tuple(dict.fromkeys(value.split()))
    unknown = [item for item in scope if item not in SCOPES]
    if unknown:
        raise InvalidScope(f"unsupported scope {' '.join(unknown)}; supported: {' '.join(SCOPES)}")
    if "openid" not in scope:
        raise InvalidScope("the openid scope is required")
    return scope


def parse_authorize_request(
    params: Params, client: DevClient, redirect_uri: str
) -> AuthorizeRequest:
    """Check the rest of an authorization request whose target is verified.

    Raises an OAuthError, to be sent to ``redirect_uri``.
    """
    response_type = _required_param(params, "response_type")
    if response_type != "code":
        raise UnsupportedResponseType("only response_type=code is supported")
    challenge = optional_param(params, "code_challenge")
    method = optional_param(params, "code_challenge_method")
    if challenge is None:
        raise InvalidRequest("code_challenge required (PKCE, RFC 7636)")
    if method != "S256":
        raise InvalidRequest("code_challenge_method must be S256; plain is not supported")
    if not _S256_CHALLENGE.fullmatch(challenge):
        raise InvalidRequest("code_challenge must be 43 base64url characters (RFC 7636 4.2)")
    return AuthorizeRequest(
        client_id=client.client_id,
        redirect_uri=redirect_uri,
        scope=_parse_scope(optional_param(params, "scope")),
        code_challenge=challenge,
        state=optional_param(params, "state"),
        nonce=optional_param(params, "nonce"),
    )


def _with_query(uri: str, params: list[tuple[str, str]]) -> str:
    """Add parameters to a URI, keeping its own query (RFC 6749 3.1.2)."""
    parts = urlsplit(uri)
    query = "&".join(part for part in (parts.query, urlencode(params)) if part)
    return urlunsplit(parts._replace(query=query))


def authorization_response_uri(request: AuthorizeRequest, code: str, issuer: str) -> str:
    """The success redirect (RFC 6749 4.1.2, ``iss`` from RFC 9207)."""
    params = [("code", code)]
    if request.state is not None:
        params.append(("state", request.state))
    params.append(("iss", issuer))
    return _with_query(request.redirect_uri, params)


def authorization_error_uri(
    redirect_uri: str, error: OAuthError, state: str | None, issuer: str
) -> str:
    """The error redirect (RFC 6749 4.1.2.1, ``iss`` from RFC 9207)."""
    params = [("error", error.error), ("error_description", error.description)]
    if state is not None:
        params.append(("state", state))
    params.append(("iss", issuer))
    return _with_query(redirect_uri, params)


# ---------------------------------------------------------------------------
# Client and bearer authentication (RFC 6749 2.3.1, RFC 6750 2.1)


@dataclass(frozen=True)
class ClientCredentials:
    """What a request claims about its client; not yet checked."""

    client_id: str
    client_secret: str | None = None
    method: Literal["client_secret_basic", "client_secret_post"] = "client_secret_post"


def _decode_basic(value: str) -> tuple[str, str]:
    """RFC 6749 2.3.1: form-urlencoded id and secret inside HTTP Basic."""
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise InvalidClient("malformed HTTP Basic credentials") from None
    client_id, colon, secret = decoded.partition(":")
    if not colon:
        raise InvalidClient("malformed HTTP Basic credentials")
    return unquote_plus(client_id), unquote_plus(secret)


def client_credentials(authorization: str | None, params: Params) -> ClientCredentials | None:
    """The client credentials a request carries, from HTTP Basic or the body.

    Raises InvalidRequest when both ways are used (RFC 6749 2.3), InvalidClient
    when the Basic header is malformed.
    """
    body_id = optional_param(params, "client_id")
    body_secret = optional_param(params, "client_secret")
    scheme, _, value = (authorization or "").partition(" ")
    if scheme.lower() == "basic":
        if body_secret is not None:
            raise InvalidRequest("use one client authentication method: HTTP Basic or the body")
        client_id, secret = _decode_basic(value)
        if body_id is not None and body_id != client_id:
            raise InvalidRequest("client_id in the body differs from the HTTP Basic one")
        return ClientCredentials(client_id, secret, "client_secret_basic")
    if body_id is None:
        if body_secret is not None:
            raise InvalidRequest("client_secret without client_id")
        return None
    return ClientCredentials(body_id, body_secret, "client_secret_post")


def bearer_token(authorization: str | None) -> str:
    """The token of an ``Authorization: Bearer`` header (RFC 6750 2.1)."""
    scheme, _, token = (authorization or "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise InvalidToken("missing bearer access token")
    return token


# ---------------------------------------------------------------------------
# PKCE and ID tokens


def verify_pkce(verifier: str, challenge: str) -> bool:
    """RFC 7636 4.6: BASE64URL(SHA256(code_verifier)) == code_challenge."""
    if not _CODE_VERIFIER.fullmatch(verifier):
        return False
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    computed = base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
    return _equal(computed, challenge)


def released_claims(user: DevUser, scope: Sequence[str]) -> dict[str, Any]:
    """The user's claims the granted scopes allow; ``sub`` always."""
    names = [name for item in scope for name in SCOPE_CLAIMS.get(item, ())]
    claims = {name: copy.deepcopy(user.claims[name]) for name in names if name in user.claims}
    claims["sub"] = user.claims["sub"]
    return claims


def sign_id_token(claims: Mapping[str, Any], client_secret: str) -> str:
    """An HS256 JWT keyed with the client secret (OIDC Core 10.1)."""
    key = OctKey.import_key(client_secret.encode())
    return jwt.encode({"alg": "HS256"}, dict(claims), key, algorithms=["HS256"])


# ---------------------------------------------------------------------------
# State


@dataclass(frozen=True)
class _Code:
    request: AuthorizeRequest
    sub: str
    auth_time: int
    expires_at: float


@dataclass(frozen=True)
class _Ticket:
    request: AuthorizeRequest
    sub: str
    auth_time: int
    expires_at: float


@dataclass
class _Grant:
    """What one code exchange started; refreshes continue it."""

    client_id: str
    sub: str
    scope: tuple[str, ...]
    auth_time: int
    revoked: bool = False


@dataclass
class _AccessToken:
    grant_id: int
    scope: tuple[str, ...]
    expires_at: float
    revoked: bool = False


@dataclass
class _RefreshToken:
    grant_id: int
    state: Literal["current", "rotated", "revoked"] = "current"


@dataclass(frozen=True)
class UserInfo:
    """A userinfo answer and whose token it was."""

    client_id: str
    claims: dict[str, Any]


class DevProvider:
    """All of the dev-idp's state and the rules that change it."""

    def __init__(self, config: DevIdPConfig, token_factory: Callable[[], str]) -> None:
        self.config = config
        self.clients: dict[str, DevClient] = {c.client_id: c for c in config.clients}
        self._new_token = token_factory
        self._users = {user.username: user for user in config.users}
        self._users_by_sub = {str(user.claims["sub"]): user for user in config.users}
        self._consents: dict[tuple[str, str], frozenset[str]] = {}
        self._tickets: dict[str, _Ticket] = {}
        self._codes: dict[str, _Code] = {}
        self._used_codes: dict[str, int | None] = {}  # digest -> grant it started
        self._grant_ids = itertools.count(1)
        self._grants: dict[int, _Grant] = {}
        self._access_tokens: dict[str, _AccessToken] = {}
        self._refresh_tokens: dict[str, _RefreshToken] = {}

    # -- users and consent ------------------------------------------------

    def verify_user(self, username: str, password: str) -> DevUser | None:
        """The user with these credentials, or None."""
        user = self._users.get(username)
        if user is None or not _equal(password, user.password):
            return None
        return user

    def consent_needed(self, user: DevUser, request: AuthorizeRequest) -> bool:
        """True unless the user already approved these scopes for this client."""
        remembered = self._consents.get((_sub(user), request.client_id), frozenset())
        return not set(request.scope) <= remembered

    def remember_consent(self, user: DevUser, request: AuthorizeRequest) -> None:
        """Store the approval per (user_id, client_id), as OakID does."""
        key = (_sub(user), request.client_id)
        self._consents[key] = self._consents.get(key, frozenset()) | set(request.scope)

    def issue_login_ticket(
        self, user: DevUser, request: AuthorizeRequest, now: float, auth_time: int
    ) -> str:
        """A single-use proof of sign-in that carries the user to the consent answer."""
        ticket = self._new_token()
        self._tickets[sha256_hex(ticket)] = _Ticket(
            request, _sub(user), auth_time, now + LOGIN_TICKET_TTL
        )
        return ticket

    def redeem_login_ticket(
        self, ticket: str, request: AuthorizeRequest, now: float
    ) -> tuple[DevUser, int] | None:
        """The user and sign-in time, if the ticket is current and for this request."""
        found = self._tickets.pop(sha256_hex(ticket), None)
        if found is None or now >= found.expires_at or found.request != request:
            return None
        return self._users_by_sub[found.sub], found.auth_time

    # -- authorization codes ----------------------------------------------

    def issue_code(
        self, user: DevUser, request: AuthorizeRequest, now: float, auth_time: int
    ) -> str:
        """A single-use authorization code for this request."""
        self._forget_expired(now)
        code = self._new_token()
        self._codes[sha256_hex(code)] = _Code(
            request, _sub(user), auth_time, now + self.config.code_ttl
        )
        return code

    def _forget_expired(self, now: float) -> None:
        for digest in [d for d, code in self._codes.items() if now >= code.expires_at]:
            del self._codes[digest]
        for digest in [d for d, ticket in self._tickets.items() if now >= ticket.expires_at]:
            del self._tickets[digest]

    # -- token endpoint (RFC 6749 section 4.1.3, 6) -----------------------

    def authenticate_client(self, credentials: ClientCredentials) -> DevClient:
        """The client, if its secret is right; else InvalidClient."""
        client = self.clients.get(credentials.client_id)
        secret = credentials.client_secret
        if client is None or secret is None or not _equal(secret, client.client_secret):
            raise InvalidClient("client authentication failed")
        return client

    def token(self, authorization: str | None, params: Params, now: float) -> dict[str, Any]:
        """Answer a token request; raises an OAuthError to send as JSON."""
        grant_type = _required_param(params, "grant_type")
        if grant_type not in GRANT_TYPES:
            raise UnsupportedGrantType(
                f"grant_type {grant_type} is not supported; use authorization_code or refresh_token"
            )
        credentials = client_credentials(authorization, params)
        if credentials is None:
            raise InvalidClient("client authentication required: HTTP Basic or client_secret_post")
        client = self.authenticate_client(credentials)
        if grant_type == "authorization_code":
            return self._authorization_code_grant(client, params, now)
        return self._refresh_token_grant(client, params, now)

    def _authorization_code_grant(
        self, client: DevClient, params: Params, now: float
    ) -> dict[str, Any]:
        code = _required_param(params, "code")
        redirect_uri = _required_param(params, "redirect_uri")
        verifier = _required_param(params, "code_verifier")
        digest = sha256_hex(code)
        if digest in self._used_codes:
            # RFC 6749 4.1.2: a replayed code revokes what it was exchanged for.
            grant_id = self._used_codes[digest]
            if grant_id is not None:
                self._grants[grant_id].revoked = True
            raise InvalidGrant("authorization code already used")
        found = self._codes.get(digest)
        if found is None:
            raise InvalidGrant("unknown authorization code")
        if found.request.client_id != client.client_id:
            raise InvalidGrant("authorization code was issued to another client")
        # The first presentation by its own client uses the code up, whatever the outcome.
        del self._codes[digest]
        self._used_codes[digest] = None
        if now >= found.expires_at:
            raise InvalidGrant("authorization code expired")
        if redirect_uri != found.request.redirect_uri:
            raise InvalidGrant("redirect_uri does not match the authorization request")
        if not _CODE_VERIFIER.fullmatch(verifier):
            raise InvalidGrant(
                "PKCE verification failed: code_verifier must be 43-128 characters "
                "of A-Z a-z 0-9 - . _ ~"
            )
        if not verify_pkce(verifier, found.request.code_challenge):
            raise InvalidGrant("PKCE verification failed")
        grant_id = next(self._grant_ids)
        self._grants[grant_id] = _Grant(
            client.client_id, found.sub, found.request.scope, found.auth_time
        )
        self._used_codes[digest] = grant_id
        return self._issue_tokens(grant_id, found.request.scope, now, found.request.nonce)

    def _refresh_token_grant(self, client: DevClient, params: Params, now: float) -> dict[str, Any]:
        token = _required_param(params, "refresh_token")
        requested_scope = optional_param(params, "scope")
        found = self._refresh_tokens.get(sha256_hex(token))
        if found is None:
            raise InvalidGrant("unknown refresh token")
        grant = self._grants[found.grant_id]
        if grant.client_id != client.client_id:
            raise InvalidGrant("refresh token was issued to another client")
        if found.state == "rotated":
            raise InvalidGrant("refresh token already used; refresh tokens rotate on every use")
        if found.state == "revoked" or grant.revoked:
            raise InvalidGrant("refresh token revoked")
        scope = grant.scope
        if requested_scope is not None:
            # RFC 6749 section 6: a refresh may narrow the scope, never widen it.
            scope = tuple(dict.fromkeys(requested_scope.split()))
            if not set(scope) <= set(grant.scope) or "openid" not in scope:
                raise InvalidScope("scope must be within the originally granted scope")
        found.state = "rotated"
        return self._issue_tokens(found.grant_id, scope, now, nonce=None)

    def _issue_tokens(
        self, grant_id: int, scope: tuple[str, ...], now: float, nonce: str | None
    ) -> dict[str, Any]:
        grant = self._grants[grant_id]
        client = self.clients[grant.client_id]
        ttl = self.config.access_token_ttl
        access_token, refresh_token = self._new_token(), self._new_token()
        self._access_tokens[sha256_hex(access_token)] = _AccessToken(grant_id, scope, now + ttl)
        self._refresh_tokens[sha256_hex(refresh_token)] = _RefreshToken(grant_id)
        return {
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": ttl,
            "refresh_token": refresh_token,
            "id_token": sign_id_token(
                self._id_token_claims(grant, scope, now, nonce), client.client_secret
            ),
            "scope": " ".join(scope),
        }

    def _id_token_claims(
        self, grant: _Grant, scope: tuple[str, ...], now: float, nonce: str | None
    ) -> dict[str, Any]:
        """OIDC Core 2 and 12.2 (no nonce in an ID token from a refresh)."""
        iat = int(now)
        claims = released_claims(self._users_by_sub[grant.sub], scope)
        claims.update(
            iss=self.config.issuer,
            aud=grant.client_id,
            iat=iat,
            exp=iat + self.config.access_token_ttl,
            auth_time=grant.auth_time,
        )
        if nonce is not None:
            claims["nonce"] = nonce
        return claims

    # -- userinfo (OIDC Core 5.3) and revocation (RFC 7009) ---------------

    def userinfo(self, authorization: str | None, now: float) -> UserInfo:
        """The claims an access token may see; raises InvalidToken."""
        found = self._access_tokens.get(sha256_hex(bearer_token(authorization)))
        if found is None:
            raise InvalidToken("unknown access token")
        grant = self._grants[found.grant_id]
        if found.revoked or grant.revoked:
            raise InvalidToken("access token revoked")
        if now >= found.expires_at:
            raise InvalidToken("access token expired")
        claims = released_claims(self._users_by_sub[grant.sub], found.scope)
        return UserInfo(grant.client_id, claims)

    def revoke(self, authorization: str | None, params: Params) -> str | None:
        """Revoke a token; the kind revoked, or None for an unknown token.

        Credentials are optional, but checked when given. Revoking a refresh
        token revokes its whole grant: every access and refresh token that
        came from the same code (RFC 7009 2.1).
        """
        credentials = client_credentials(authorization, params)
        if credentials is not None:
            self.authenticate_client(credentials)
        digest = sha256_hex(_required_param(params, "token"))
        refresh = self._refresh_tokens.get(digest)
        if refresh is not None:
            refresh.state = "revoked"
            self._grants[refresh.grant_id].revoked = True
            return "refresh_token"
        access = self._access_tokens.get(digest)
        if access is not None:
            access.revoked = True
            return "access_token"
        return None


def _sub(user: DevUser) -> str:
    return str(user.claims["sub"])
