"""The dev-idp's protocol core: its state, and the tokens it mints.

Sans-I/O: plain values in, plain values out. No Starlette, no clock and no
randomness in here: ``now`` is an argument and new tokens come from the
``token_factory`` given to :class:`DevProvider`. All state lives in memory,
in a :class:`~._store.Store`. Each rule the provider applies lives in a module
of its own (see the layout in the package docstring).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from ._clientauth import revocation_client, token_client
from ._grants import (
    Issue,
    authorization_code_grant,
    refresh_token_grant,
    requested_grant_type,
)
from ._idtoken import id_token_claims, sign_id_token
from ._params import Params, equal, required_param
from ._request import AuthorizeRequest
from ._revocation import revoke_token
from ._store import AccessToken, RefreshToken, SignIn, Store, Vault
from ._userinfo import UserInfo, userinfo
from .config import DevClient, DevIdPConfig, DevUser

__all__ = ["LOGIN_TICKET_TTL", "DevProvider", "subject"]

T = TypeVar("T")

LOGIN_TICKET_TTL = 600  # seconds between a correct password and the consent answer


class DevProvider:
    """All of the dev-idp's state, and one method for each change an endpoint makes."""

    def __init__(self, config: DevIdPConfig, token_factory: Callable[[], str]) -> None:
        self.config = config
        self.issuer = config.issuer
        self.clients: dict[str, DevClient] = {c.client_id: c for c in config.clients}
        self.store = Store()
        self._new_token = token_factory
        self._users = {user.username: user for user in config.users}
        self._users_by_sub = {subject(user): user for user in config.users}

    # -- users, consent, login tickets and codes (the authorization endpoint)

    def verify_user(self, username: str, password: str) -> DevUser | None:
        """The user with these credentials, or None."""
        user = self._users.get(username)
        if user is None or not equal(password, user.password):
            return None
        return user

    def consent_needed(self, user: DevUser, request: AuthorizeRequest) -> bool:
        """True unless the user already approved these scopes for this client."""
        remembered = self.store.consents.get((subject(user), request.client_id), frozenset())
        return not set(request.scope) <= remembered

    def remember_consent(self, user: DevUser, request: AuthorizeRequest) -> None:
        """Store the approval per (user_id, client_id), as OakID does."""
        key = (subject(user), request.client_id)
        self.store.consents[key] = self.store.consents.get(key, frozenset()) | set(request.scope)

    def issue_login_ticket(
        self, user: DevUser, request: AuthorizeRequest, now: float, auth_time: int
    ) -> str:
        """A single-use proof of sign-in that carries the user to the consent answer."""
        signin = SignIn(request, subject(user), auth_time, now + LOGIN_TICKET_TTL)
        return self._keep_new_secret(self.store.tickets, signin)

    def redeem_login_ticket(
        self, ticket: str, request: AuthorizeRequest, now: float
    ) -> tuple[DevUser, int] | None:
        """The user and sign-in time, if the ticket is current and for this request."""
        found = self.store.tickets.pop(ticket)
        if found is None or now >= found.expires_at or found.request != request:
            return None
        return self._users_by_sub[found.sub], found.auth_time

    def issue_code(
        self, user: DevUser, request: AuthorizeRequest, now: float, auth_time: int
    ) -> str:
        """A single-use authorization code for this request."""
        self.store.forget_expired(now)
        signin = SignIn(request, subject(user), auth_time, now + self.config.code_ttl)
        return self._keep_new_secret(self.store.codes, signin)

    # -- token endpoint (RFC 6749 3.2, 4.1.3, 5.1, 6) ---------------------

    def token(self, authorization: str | None, params: Params, now: float) -> dict[str, Any]:
        """Answer a token request; raises an OAuthError to send as JSON."""
        grant_type = requested_grant_type(params)
        client = token_client(self.clients, authorization, params)
        if grant_type == "authorization_code":
            issue = authorization_code_grant(self.store, client, params, now)
        else:
            issue = refresh_token_grant(self.store, client, params)
        return self._mint(issue, now)

    def _mint(self, issue: Issue, now: float) -> dict[str, Any]:
        """New access, refresh and ID tokens: the token response (RFC 6749 5.1)."""
        grant = self.store.grants[issue.grant_id]
        ttl = self.config.access_token_ttl
        access = AccessToken(issue.grant_id, issue.scope, now + ttl)
        access_token = self._keep_new_secret(self.store.access_tokens, access)
        refresh_token = self._keep_new_secret(
            self.store.refresh_tokens, RefreshToken(issue.grant_id)
        )
        claims = id_token_claims(
            issuer=self.issuer,
            grant=grant,
            user=self._users_by_sub[grant.sub],
            scope=issue.scope,
            now=now,
            ttl=ttl,
            nonce=issue.nonce,
        )
        return {
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": ttl,
            "refresh_token": refresh_token,
            "id_token": sign_id_token(claims, self.clients[grant.client_id].client_secret),
            "scope": " ".join(issue.scope),
        }

    # -- userinfo (OIDC Core 5.3) and revocation (RFC 7009) ---------------

    def userinfo(self, authorization: str | None, now: float) -> UserInfo:
        """The claims an access token may see; raises InvalidToken."""
        return userinfo(self.store, self._users_by_sub, authorization, now)

    def revoke(self, authorization: str | None, params: Params) -> str | None:
        """Revoke a token; the kind revoked, or None for an unknown token.

        Credentials are optional, but checked when given (RFC 7009 2.1).
        """
        revocation_client(self.clients, authorization, params)
        return revoke_token(self.store, required_param(params, "token"))

    def _keep_new_secret(self, vault: Vault[T], value: T) -> str:
        """A new secret (token, code or ticket), kept in ``vault`` with its value."""
        secret = self._new_token()
        vault.put(secret, value)
        return secret


def subject(user: DevUser) -> str:
    """The user's ``sub`` claim: how the store, consents and tokens name a user."""
    return str(user.claims["sub"])
