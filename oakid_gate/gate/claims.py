"""What the gate believes about the user: the claims it keeps, and their checks.

- The user's claims are userinfo's over the ID token's, less the claims that
  only served the ID token's validation (``nonce``, ``exp``, ``aud``, ...).
- Userinfo must name the same subject as the ID token (OpenID Connect Core
  5.3.2), at sign-in and at every re-read; otherwise the sign-in fails or the
  session ends.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from typing import Any

from ..errors import UserInfoError

__all__ = ["PROTOCOL_CLAIMS", "check_same_subject", "merge_userinfo", "user_claims"]

#: ID token claims that only served its validation; the app's claims leave them out
PROTOCOL_CLAIMS = frozenset(
    {"nonce", "at_hash", "c_hash", "s_hash", "exp", "iat", "nbf", "jti", "aud", "azp"}
)


def user_claims(id_token_claims: Mapping[str, Any]) -> dict[str, Any]:
    """The ID token's claims that describe the user."""
    return {k: v for k, v in id_token_claims.items() if k not in PROTOCOL_CLAIMS}


def merge_userinfo(claims: Mapping[str, Any], info: Mapping[str, Any]) -> dict[str, Any]:
    """Userinfo's claims over ``claims``. An email that changes without a verdict of its
    own loses the old ``email_verified``: that flag spoke of the old address."""
    merged = {**claims, **info}
    if "email" in info and info["email"] != claims.get("email") and "email_verified" not in info:
        merged.pop("email_verified", None)
    return merged


def check_same_subject(claims: Mapping[str, Any], info: Mapping[str, Any]) -> None:
    """Raise :class:`UserInfoError` when userinfo names another subject than ``claims``."""
    if not info:
        return
    sub = info.get("sub")
    if not isinstance(sub, str) or not hmac.compare_digest(
        sub.encode(), str(claims.get("sub", "")).encode()
    ):
        raise UserInfoError("The provider's userinfo names another user than the ID token.")
