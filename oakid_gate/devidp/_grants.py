"""The token endpoint's grants (RFC 6749 4.1.3 and 6).

Each grant checks its request against the store and says which tokens to mint
(an :class:`Issue`); minting them is the provider's job.

- ``authorization_code``: the first presentation of a code by its own client
  uses it up, whatever the outcome; presenting it again revokes every token it
  produced (RFC 6749 4.1.2). The ``redirect_uri`` must be the authorize one and
  the PKCE verifier must match (RFC 7636 4.6).
- ``refresh_token``: refresh tokens rotate on every use, so a spent one is
  refused; ``scope`` may narrow the grant, never widen it.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._errors import InvalidGrant, UnsupportedGrantType
from ._params import Params, optional_param, required_param
from ._pkce import check_verifier
from ._scopes import narrow_scope
from ._store import Grant, SignIn, Store
from .config import DevClient

__all__ = [
    "GRANT_TYPES",
    "Issue",
    "authorization_code_grant",
    "refresh_token_grant",
    "requested_grant_type",
]

GRANT_TYPES = ("authorization_code", "refresh_token")


@dataclass(frozen=True)
class Issue:
    """Tokens to mint: for which grant, with which scope, and the ID token's nonce."""

    grant_id: int
    scope: tuple[str, ...]
    nonce: str | None = None


def requested_grant_type(params: Params) -> str:
    """The ``grant_type`` of a token request, one the dev-idp supports."""
    grant_type = required_param(params, "grant_type")
    if grant_type not in GRANT_TYPES:
        raise UnsupportedGrantType(
            f"grant_type {grant_type} is not supported; use authorization_code or refresh_token"
        )
    return grant_type


def authorization_code_grant(store: Store, client: DevClient, params: Params, now: float) -> Issue:
    """Exchange a code for a new grant (RFC 6749 4.1.3, RFC 7636 4.5)."""
    code = required_param(params, "code")
    redirect_uri = required_param(params, "redirect_uri")
    verifier = required_param(params, "code_verifier")
    found = _use_up_code(store, client, code)
    if now >= found.expires_at:
        raise InvalidGrant("authorization code expired")
    if redirect_uri != found.request.redirect_uri:
        raise InvalidGrant("redirect_uri does not match the authorization request")
    check_verifier(verifier, found.request.code_challenge)
    grant = Grant(client.client_id, found.sub, found.request.scope, found.auth_time)
    grant_id = store.start_grant(grant)
    store.used_codes.put(code, grant_id)
    return Issue(grant_id, found.request.scope, found.request.nonce)


def _use_up_code(store: Store, client: DevClient, code: str) -> SignIn:
    """The sign-in a code stands for, now used up; InvalidGrant if it cannot be used."""
    if code in store.used_codes:
        # RFC 6749 4.1.2: a replayed code revokes what it was exchanged for.
        grant_id = store.used_codes.get(code)
        if grant_id is not None:
            store.grants[grant_id].revoked = True
        raise InvalidGrant("authorization code already used")
    found = store.codes.get(code)
    if found is None:
        raise InvalidGrant("unknown authorization code")
    if found.request.client_id != client.client_id:
        raise InvalidGrant("authorization code was issued to another client")
    # The first presentation by its own client uses the code up, whatever the outcome.
    store.codes.pop(code)
    store.used_codes.put(code, None)
    return found


def refresh_token_grant(store: Store, client: DevClient, params: Params) -> Issue:
    """Continue a grant with a refresh token, which is spent (RFC 6749 6)."""
    token = required_param(params, "refresh_token")
    requested_scope = optional_param(params, "scope")
    found = store.refresh_tokens.get(token)
    if found is None:
        raise InvalidGrant("unknown refresh token")
    grant = store.grants[found.grant_id]
    if grant.client_id != client.client_id:
        raise InvalidGrant("refresh token was issued to another client")
    if found.state == "rotated":
        raise InvalidGrant("refresh token already used; refresh tokens rotate on every use")
    if found.state == "revoked" or grant.revoked:
        raise InvalidGrant("refresh token revoked")
    scope = narrow_scope(requested_scope, grant.scope)
    found.state = "rotated"
    return Issue(found.grant_id, scope, nonce=None)
