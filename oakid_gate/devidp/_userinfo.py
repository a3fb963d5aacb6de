"""The userinfo endpoint (OpenID Connect Core 5.3).

A current access token, sent as ``Authorization: Bearer`` (RFC 6750 2.1), sees
the claims its scope releases, the same ones as in the ID token. A missing,
unknown, revoked or expired token is InvalidToken.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ._clientauth import bearer_token
from ._errors import InvalidToken
from ._scopes import released_claims
from ._store import Store
from .config import DevUser

__all__ = ["UserInfo", "userinfo"]


@dataclass(frozen=True)
class UserInfo:
    """A userinfo answer and whose token it was."""

    client_id: str
    claims: dict[str, Any]


def userinfo(
    store: Store, users_by_sub: Mapping[str, DevUser], authorization: str | None, now: float
) -> UserInfo:
    """The claims an access token may see; raises InvalidToken."""
    found = store.access_tokens.get(bearer_token(authorization))
    if found is None:
        raise InvalidToken("unknown access token")
    grant = store.grants[found.grant_id]
    if found.revoked or grant.revoked:
        raise InvalidToken("access token revoked")
    if now >= found.expires_at:
        raise InvalidToken("access token expired")
    claims = released_claims(users_by_sub[grant.sub], found.scope)
    return UserInfo(grant.client_id, claims)
