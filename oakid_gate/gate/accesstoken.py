"""JWT access tokens (RFC 9068) checked against the provider's keys, with joserfc.

Values in, claims out, as :mod:`.idtoken` does for ID tokens. A JWT access
token is accepted only when:

- its header says ``typ: at+jwt`` (or ``application/at+jwt``): an ID token, or
  any other JWT the provider signs, is never taken for an access token;
- it is signed with an asymmetric algorithm the gate supports, by a key of the
  provider's JWKS (never HMAC, never ``none``; header ``jwk``/``jku`` ignored);
- ``iss`` is the issuer, ``aud`` names ``client_id`` or one of
  ``bearer_audiences``, ``exp`` is in the future, ``iat``/``nbf`` not, and it
  names a ``sub``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import InvalidToken
from .idtoken import json_number

if TYPE_CHECKING:
    from joserfc.jwk import KeySet

__all__ = [
    "ACCESS_TOKEN_ALGS",
    "AccessTokenExpectations",
    "UnknownKey",
    "audience_matches",
    "is_jwt_access_token",
    "validate_access_token",
]

#: asymmetric algorithms only: an access token keyed with the client secret proves nothing
ACCESS_TOKEN_ALGS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384")
_TYPES = ("at+jwt", "application/at+jwt")


class UnknownKey(InvalidToken):
    """The token's ``kid`` is not in the key set: the caller may refetch the JWKS once."""


@dataclass(frozen=True, slots=True)
class AccessTokenExpectations:
    issuer: str
    audiences: frozenset[str]
    now: float
    leeway: int


def _header(token: str) -> dict[str, Any] | None:
    if token.count(".") != 2:
        return None
    from joserfc.util import urlsafe_b64decode

    try:
        header = json.loads(urlsafe_b64decode(token.split(".", 1)[0].encode("ascii")))
    except (ValueError, UnicodeError):
        return None
    return header if isinstance(header, dict) else None


def is_jwt_access_token(token: str) -> bool:
    """Whether ``token`` says it is a JWT access token (``typ: at+jwt``), unverified."""
    header = _header(token)
    return header is not None and str(header.get("typ", "")).lower() in _TYPES


def validate_access_token(
    token: str, jwks: KeySet | None, expect: AccessTokenExpectations
) -> dict[str, Any]:
    """The claims of a valid JWT access token; :class:`InvalidToken` otherwise."""
    from joserfc import jwt
    from joserfc.errors import JoseError
    from joserfc.jwk import KeySet

    header = _header(token)
    if header is None or str(header.get("typ", "")).lower() not in _TYPES:
        raise InvalidToken("the token is not a JWT access token")
    alg = header.get("alg")
    if alg not in ACCESS_TOKEN_ALGS:
        raise InvalidToken("the token is signed with an algorithm that is not allowed")
    if "crit" in header:
        raise InvalidToken("the token uses critical header extensions")
    if jwks is None:
        raise InvalidToken("the provider publishes no keys to check the token")
    keys = [k for k in jwks.keys if k.key_type in ("RSA", "EC")]
    kid = header.get("kid")
    if kid is not None:
        keys = [k for k in keys if k.kid == kid]
    if not keys:
        raise UnknownKey("the token is signed with a key the provider does not list")
    try:
        decoded = jwt.decode(token, KeySet(keys), algorithms=[alg])
    except (JoseError, ValueError, TypeError):
        raise InvalidToken("the token's signature is not valid") from None
    return _check(decoded.claims, expect)


def _check(claims: Mapping[str, Any], expect: AccessTokenExpectations) -> dict[str, Any]:
    if claims.get("iss") != expect.issuer:
        raise InvalidToken("the token was issued by another issuer")
    if not audience_matches(claims.get("aud"), claims.get("client_id"), expect.audiences):
        raise InvalidToken("the token was issued for another audience")
    exp = json_number(claims.get("exp"))
    if exp is None or exp + expect.leeway < expect.now:
        raise InvalidToken("the token has expired")
    iat = json_number(claims.get("iat"))
    if "iat" in claims and (iat is None or iat - expect.leeway > expect.now):
        raise InvalidToken("the token was issued in the future")
    nbf = json_number(claims.get("nbf"))
    if "nbf" in claims and (nbf is None or nbf - expect.leeway > expect.now):
        raise InvalidToken("the token is not valid yet")
    if not isinstance(claims.get("sub"), str) or not claims["sub"]:
        raise InvalidToken("the token names no subject")
    return dict(claims)


def audience_matches(aud: Any, client_id: Any, audiences: frozenset[str]) -> bool:
    """Whether a token was issued for this gate: its ``aud`` (a string or a list) or its
    ``client_id`` is one of ``audiences`` (``client_id`` and ``bearer_audiences``)."""
    named = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
    if any(isinstance(a, str) and a in audiences for a in named):
        return True
    return isinstance(client_id, str) and client_id in audiences
