"""What the app receives: the user and the session view.

One user type everywhere: a signed-in :class:`OakIDUser`, or, on a public path
without a session, :data:`ANONYMOUS` (an :class:`OakIDAnonymousUser`, with the
same attributes, empty), in ASGI's ``scope["user"]``, WSGI's
``environ["oakid.user"]`` and Flask's ``current_user`` alike, so code reads
``user.email`` or ``user.groups`` without checking the user's type first.

Both are Starlette ``BaseUser`` subclasses (``is_authenticated``,
``display_name``, ``identity``: ``request.user`` in Starlette and FastAPI,
Starlette's ``AuthenticationMiddleware``) and follow Flask-Login's user protocol
(``is_active``, ``is_anonymous``, ``get_id()``). Starlette is a dependency of
oakid-gate; only its ``BaseUser`` (a class of three properties) is imported here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final, NoReturn, SupportsIndex

from starlette.authentication import AuthCredentials, BaseUser

__all__ = [
    "ANONYMOUS",
    "GRANTED_KEPT",
    "NO_SCOPES",
    "GrantedScopes",
    "OakIDAnonymousUser",
    "OakIDUser",
    "ReadOnlyScopes",
    "SessionView",
    "granted",
    "header_safe",
    "verified_email",
]


def header_safe(text: str) -> bool:
    """Whether ``text`` can travel in an HTTP header exactly as it is: not empty, no
    control or format characters (CR, LF, NUL, zero-width and bidi marks, lone
    surrogates), no space at either end. Non-ASCII letters are fine (sent as UTF-8).

    Identity values that are not are never altered to fit: an identity is sent as
    it is or not at all, so the app and an upstream always see the same one.
    """
    return bool(text) and text.isprintable() and text == text.strip()


def verified_email(claims: Mapping[str, Any], *, trust_unverified: bool = False) -> str | None:
    """The user's email, unless the provider says it is not verified.

    A provider that sends ``email_verified`` must send true (or ``"true"``, as
    some do); one that never sends it is taken at its word (Auth Agent's
    userinfo holds the email alone). ``trust_unverified`` (the
    ``allow_unverified_email`` setting) takes the email either way.
    """
    email = claims.get("email")
    if not isinstance(email, str) or not email:
        return None
    if trust_unverified or "email_verified" not in claims:
        return email
    return email if claims["email_verified"] in (True, "true") else None


class OakIDUser(BaseUser):
    """A signed-in user: userinfo claims over ID token claims.

    ``email`` is the verified email only (:func:`verified_email`): an email the
    provider marks unverified is in ``claims``, never in ``email``, ``identity``
    or an identity header. ``email`` and ``groups`` hold only values that can
    travel in a header as they are (:func:`header_safe`; a group holding the
    ``,`` that separates groups in ``X-Forwarded-Groups`` is left out), so the
    app and an upstream always see the same user; a left-out group can only take
    access away.
    """

    __slots__ = ("_identity", "claims", "email", "name", "sub")

    is_authenticated = True
    #: Flask-Login's protocol: a signed-in user is active, not anonymous
    is_active = True
    is_anonymous = False

    def __init__(
        self,
        claims: Mapping[str, Any],
        user_claim: str = "sub",
        *,
        trust_unverified_email: bool = False,
    ) -> None:
        self.claims: Mapping[str, Any] = claims
        self.sub: str = str(claims["sub"])
        email = verified_email(claims, trust_unverified=trust_unverified_email)
        self.email = email if email is not None and header_safe(email) else None
        name = claims.get("name")
        self.name: str | None = name if isinstance(name, str) else None
        ident = self.email if user_claim == "email" else claims.get(user_claim)
        self._identity = ident if isinstance(ident, str) and header_safe(ident) else None

    @property
    def display_name(self) -> str:
        for key in ("name", "preferred_username"):
            value = self.claims.get(key)
            if isinstance(value, str) and value:
                return value
        return self.email or self.sub

    @property
    def identity(self) -> str:
        """The ``user_claim`` (``sub`` by default): what ``REMOTE_USER`` holds."""
        return self._identity or self.sub

    @property
    def has_identity(self) -> bool:
        """Whether the ``user_claim`` is there, usable as it is (verified, for ``email``;
        :func:`header_safe`). The gate signs no one in without it."""
        return self._identity is not None

    @property
    def groups(self) -> tuple[str, ...]:
        value = self.claims.get("groups")
        names = [str(v) for v in value] if isinstance(value, list) else [value]
        return tuple(g for g in names if isinstance(g, str) and header_safe(g) and "," not in g)

    def get_id(self) -> str:
        """Flask-Login's user id: the :attr:`identity`, as ``REMOTE_USER`` holds it."""
        return self.identity

    def __repr__(self) -> str:
        return f"OakIDUser(sub={self.sub!r})"


class OakIDAnonymousUser(BaseUser):
    """Nobody signed in (a public path without a session): :class:`OakIDUser`'s
    attributes, empty. :data:`ANONYMOUS` is the one the gate hands out."""

    __slots__ = ()

    is_authenticated = False
    is_active = False
    is_anonymous = True
    sub: None = None
    email: None = None
    name: None = None
    groups: tuple[str, ...] = ()
    claims: Mapping[str, Any] = MappingProxyType({})
    display_name = ""
    identity = ""
    has_identity = False

    def get_id(self) -> None:
        """Flask-Login's user id: none."""
        return None

    def __repr__(self) -> str:
        return "OakIDAnonymousUser()"


#: the user of every request without a session on a public path
ANONYMOUS: Final = OakIDAnonymousUser()


class ReadOnlyScopes(list[str]):
    """A list of scopes that cannot be changed (``scope["auth"].scopes``): it compares,
    iterates and serializes as the list it is; every change raises ``TypeError``; a
    copy (``copy``, ``pickle``) is a plain list."""

    __slots__ = ()

    def append(self, value: str) -> NoReturn:
        raise _read_only()

    def extend(self, values: Iterable[str]) -> NoReturn:
        raise _read_only()

    def insert(self, index: SupportsIndex, value: str) -> NoReturn:
        raise _read_only()

    def remove(self, value: str) -> NoReturn:
        raise _read_only()

    def pop(self, index: SupportsIndex = -1) -> NoReturn:
        raise _read_only()

    def clear(self) -> NoReturn:
        raise _read_only()

    def sort(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise _read_only()

    def reverse(self) -> NoReturn:
        raise _read_only()

    def __setitem__(self, index: Any, value: Any) -> NoReturn:
        raise _read_only()

    def __delitem__(self, index: SupportsIndex | slice) -> NoReturn:
        raise _read_only()

    def __iadd__(self, values: Iterable[str]) -> NoReturn:  # type: ignore[misc,override]
        raise _read_only()

    def __imul__(self, times: SupportsIndex) -> NoReturn:
        raise _read_only()

    def __reduce__(self) -> tuple[type[list[str]], tuple[list[str]]]:
        return list, (list(self),)


def _read_only() -> TypeError:
    return TypeError("scope['auth'] is read-only: the gate's record of what was granted")


class GrantedScopes(AuthCredentials):
    """ASGI's ``scope["auth"]``: Starlette's ``AuthCredentials``, read-only.

    ``scopes`` is a :class:`ReadOnlyScopes` list (``"authenticated"`` and the
    scopes the provider granted) and no attribute can be set: one is made per
    session and handed to every request of it
    (:attr:`~oakid_gate.gate.records.Session.credentials`; :data:`NO_SCOPES` for
    every anonymous request), so no request can change what the next one is
    granted. Starlette's ``@requires`` and ``has_required_scope`` read it as ever.
    """

    __slots__ = ()

    def __init__(self, scopes: Iterable[str] = ()) -> None:
        object.__setattr__(self, "scopes", ReadOnlyScopes(scopes))

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"scope['auth'] is read-only (the gate's record): cannot set {name}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(
            f"scope['auth'] is read-only (the gate's record): cannot delete {name}"
        )

    def __repr__(self) -> str:
        return f"GrantedScopes({list(self.scopes)!r})"


#: the ``scope["auth"]`` of every request without a session on a public path
NO_SCOPES: Final = GrantedScopes()

#: how many distinct sets of scopes :func:`granted` keeps (emptied when full)
GRANTED_KEPT = 1024
_granted: dict[tuple[str, ...], GrantedScopes] = {}


def granted(scopes: tuple[str, ...]) -> GrantedScopes:
    """The ``scope["auth"]`` of a session granted ``scopes``: read-only, so one object
    per distinct set of scopes serves every session granted it (nearly every
    session of an app is granted the same few: no memory per session)."""
    credentials = _granted.get(scopes)
    if credentials is None:
        if len(_granted) >= GRANTED_KEPT:
            _granted.clear()
        credentials = _granted[scopes] = GrantedScopes(("authenticated", *scopes))
    return credentials


@dataclass(frozen=True, slots=True)
class SessionView:
    """The session as the app sees it: a fresh access token and the claims."""

    access_token: str
    expires_at: float | None
    claims: Mapping[str, Any]
    scopes: tuple[str, ...]

    def __repr__(self) -> str:
        return f"SessionView(expires_at={self.expires_at!r}, scopes={self.scopes!r})"
