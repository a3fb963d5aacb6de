"""Scopes and the user claims they release (OpenID Connect Core 5.4).

Which scopes exist, which one an authorization request gets by default, how a
refresh may narrow it (RFC 6749 section 6), and which claims each scope lets
a client see, in the ID token and at userinfo alike.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from ._errors import InvalidScope
from .config import DevUser

__all__ = [
    "CLAIMS_SUPPORTED",
    "SCOPES",
    "SCOPE_CLAIMS",
    "narrow_scope",
    "parse_scope",
    "released_claims",
]

SCOPES = ("openid", "profile", "email")
DEFAULT_SCOPE = SCOPES  # OakID's default scopes: openid profile email

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


def _scope_items(value: str) -> tuple[str, ...]:
    """A space-separated scope as a tuple, first occurrence first, no repeats."""
    return tuple(dict.fromkeys(value.split()))


def parse_scope(value: str | None) -> tuple[str, ...]:
    """The scope of an authorization request: known scopes only, ``openid`` among them."""
    if value is None:
        return DEFAULT_SCOPE
    scope = _scope_items(value)
    unknown = [item for item in scope if item not in SCOPES]
    if unknown:
        raise InvalidScope(f"unsupported scope {' '.join(unknown)}; supported: {' '.join(SCOPES)}")
    if "openid" not in scope:
        raise InvalidScope("the openid scope is required")
    return scope


def narrow_scope(requested: str | None, granted: tuple[str, ...]) -> tuple[str, ...]:
    """The scope of a refresh: it may narrow the grant's scope, never widen it (RFC 6749 6)."""
    if requested is None:
        return granted
    scope = _scope_items(requested)
    if not set(scope) <= set(granted) or "openid" not in scope:
        raise InvalidScope("scope must be within the originally granted scope")
    return scope


def released_claims(user: DevUser, scope: Sequence[str]) -> dict[str, Any]:
    """The user's claims the granted scopes allow; ``sub`` always."""
    names = [name for item in scope for name in SCOPE_CLAIMS.get(item, ())]
    claims = {name: copy.deepcopy(user.claims[name]) for name in names if name in user.claims}
    claims["sub"] = user.claims["sub"]
    return claims
