"""What the app receives: the user and the session view.

:class:`OakIDUser` has the shape of Starlette's ``BaseUser``
(``is_authenticated``, ``display_name``, ``identity``), so ``request.user``
works unchanged in Starlette and FastAPI, without this module importing them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["OakIDUser", "SessionView"]


class OakIDUser:
    """A signed-in user: userinfo claims over ID token claims."""

    __slots__ = ("_identity", "claims", "email", "name", "sub")

    is_authenticated = True

    def __init__(self, claims: Mapping[str, Any], user_claim: str = "sub") -> None:
        self.claims: Mapping[str, Any] = claims
        self.sub: str = str(claims["sub"])
        email = claims.get("email")
        self.email: str | None = email if isinstance(email, str) else None
        name = claims.get("name")
        self.name: str | None = name if isinstance(name, str) else None
        ident = claims.get(user_claim)
        self._identity = ident if isinstance(ident, str) and ident else self.sub

    @property
    def display_name(self) -> str:
        for key in ("name", "preferred_username", "email"):
            value = self.claims.get(key)
            if isinstance(value, str) and value:
                return value
        return self.sub

    @property
    def identity(self) -> str:
        """The ``user_claim`` (``sub`` by default): what ``REMOTE_USER`` holds."""
        return self._identity

    @property
    def groups(self) -> tuple[str, ...]:
        value = self.claims.get("groups")
        if isinstance(value, list):
            return tuple(str(v) for v in value)
        if isinstance(value, str):
            return (value,)
        return ()

    def __repr__(self) -> str:
        return f"OakIDUser(sub={self.sub!r})"


@dataclass(frozen=True, slots=True)
class SessionView:
    """The session as the app sees it: a fresh access token and the claims."""

    access_token: str
    expires_at: float | None
    claims: Mapping[str, Any]
    scopes: tuple[str, ...]

    def __repr__(self) -> str:
        return f"SessionView(expires_at={self.expires_at!r}, scopes={self.scopes!r})"
