"""What the app receives: the user and the session view.

:class:`OakIDUser` has the shape of Starlette's ``BaseUser``
(``is_authenticated``, ``display_name``, ``identity``), so ``request.user``
works unchanged in Starlette and FastAPI, without this module importing them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "IDENTITY_HEADERS",
    "OakIDUser",
    "SessionView",
    "has_identity_header",
    "header_value",
    "identity_fields",
    "is_identity_header",
]


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


def header_value(text: str) -> bytes:
    """A claim as a header value: no control or format characters, UTF-8 bytes.

    CR and LF cannot split the header; non-Latin-1 characters are kept and sent
    as UTF-8 (as oauth2-proxy does), so no identity is lost or mangled into
    another one.
    """
    cleaned = "".join(c for c in text if c == " " or c.isprintable())
    return cleaned.strip().encode("utf-8")


def identity_fields(user: OakIDUser) -> list[tuple[str, bytes]]:
    """The user's identity as (name suffix, header value) pairs: ``user``, ``email``,
    ``preferred-username``, ``groups``; the proxy prefixes ``x-forwarded-`` and
    ``/oauth2/auth`` prefixes ``x-auth-request-``. Empty values are left out."""
    fields = [("user", user.identity), ("email", user.email or "")]
    username = user.claims.get("preferred_username")
    if isinstance(username, str):
        fields.append(("preferred-username", username))
    fields.append(("groups", ",".join(user.groups)))
    return [(name, value) for name, text in fields if (value := header_value(text))]


#: headers that claim an identity: only the gate may set them, a client never
IDENTITY_HEADERS = frozenset(
    {
        b"remote-user",
        b"x-remote-user",
        b"x-forwarded-user",
        b"x-forwarded-email",
        b"x-forwarded-preferred-username",
        b"x-forwarded-groups",
        b"x-forwarded-access-token",
        b"x-auth-request-user",
        b"x-auth-request-email",
        b"x-auth-request-preferred-username",
        b"x-auth-request-groups",
        b"x-auth-request-access-token",
    }
)


#: the first bytes of every name in IDENTITY_HEADERS: a cheap pre-filter for hot paths
IDENTITY_FIRST_BYTES = frozenset(b"xXrR")


def has_identity_header(headers: list[tuple[bytes, bytes]]) -> bool:
    """Whether any of ``headers`` claims an identity (one byte and one set look-up a header)."""
    first = IDENTITY_FIRST_BYTES
    for name, _ in headers:  # noqa: SIM110 - a plain loop: faster than any() on the hot path
        if name and name[0] in first and is_identity_header(name):
            return True
    return False


def is_identity_header(name: bytes) -> bool:
    """Whether a header name claims an identity, in any spelling (case, ``_`` for ``-``)."""
    norm = name.lower()
    if b"_" in norm:
        norm = norm.replace(b"_", b"-")
    return norm in IDENTITY_HEADERS or norm.startswith(b"x-auth-request-")
