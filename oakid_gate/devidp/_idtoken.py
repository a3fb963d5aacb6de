"""The ID token (OpenID Connect Core 2, 10.1 and 12.2).

An HS256 JWT keyed with the client secret. ``exp`` is ``iat`` plus the access
token lifetime; ``nonce`` is the authorization request's, and absent from an
ID token issued on a refresh (OIDC Core 12.2).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from joserfc import jwt
from joserfc.jwk import OctKey

from ._scopes import released_claims
from ._store import Grant
from .config import DevUser

__all__ = ["id_token_claims", "sign_id_token"]


def id_token_claims(
    *,
    issuer: str,
    grant: Grant,
    user: DevUser,
    scope: Sequence[str],
    now: float,
    ttl: int,
    nonce: str | None,
) -> dict[str, Any]:
    """The claims of an ID token for ``grant``'s user, as ``scope`` allows."""
    iat = int(now)
    claims = released_claims(user, scope)
    claims.update(
        iss=issuer,
        aud=grant.client_id,
        iat=iat,
        exp=iat + ttl,
        auth_time=grant.auth_time,
    )
    if nonce is not None:
        claims["nonce"] = nonce
    return claims


def sign_id_token(claims: Mapping[str, Any], client_secret: str) -> str:
    """An HS256 JWT keyed with the client secret (OIDC Core 10.1)."""
    key = OctKey.import_key(client_secret.encode())
    return jwt.encode({"alg": "HS256"}, dict(claims), key, algorithms=["HS256"])
