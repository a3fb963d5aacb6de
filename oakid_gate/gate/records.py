"""The records of the gate: sessions (in the store) and sign-ins under way (in their cookie).

Plain values. A persistent store turns them into dicts (:meth:`Session.to_dict`)
and encrypts them; the memory store keeps the objects themselves, so the
signed-in hot path decodes nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..user import GrantedScopes, OakIDUser, SessionView, granted

__all__ = ["PendingLogin", "Session", "app_name", "hash_key", "session_key"]


def hash_key(value: str) -> str:
    """SHA-256 of ``value``, in hex: what a copy of anything holds instead of a ``state``."""
    return hashlib.sha256(value.encode()).hexdigest()


def app_name(issuer: str, client_id: str) -> str:
    """Which app a session belongs to: its provider and its client registration."""
    return f"{issuer}\x00{client_id}"


def session_key(app: str, sid: str) -> str:
    """The store key of a session cookie's value, for one app (:func:`app_name`).

    SHA-256 over the app and the session id: a copy of the store yields no usable
    cookie, and two apps that share a store (and a secret) never read each other's
    sessions: one's cookie is, for the other, a key that does not exist.
    """
    return hashlib.sha256(f"{app}\x00{sid}".encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Session:
    """A signed-in session. ``user``, ``view`` and ``credentials`` (ASGI's
    ``scope["auth"]``, shared by the sessions granted the same scopes) are derived
    once per record, not stored."""

    claims: Mapping[str, Any]
    access_token: str
    refresh_token: str | None
    expires_at: float | None  # access token expiry
    refresh_at: float | None  # when to refresh (expiry minus the margin)
    scopes: tuple[str, ...]
    created_at: float
    last_seen: float
    claims_at: float  # when userinfo was last read
    version: int = 1
    user_claim: str = "sub"
    trust_unverified_email: bool = False  # the allow_unverified_email setting at sign-in
    #: the ID token, kept only as the hint of a logout at the provider (:mod:`.logout`)
    id_token: str | None = None
    user: OakIDUser = field(init=False, compare=False, repr=False)
    view: SessionView = field(init=False, compare=False, repr=False)
    credentials: GrantedScopes = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        user = OakIDUser(
            self.claims, self.user_claim, trust_unverified_email=self.trust_unverified_email
        )
        object.__setattr__(self, "user", user)
        object.__setattr__(
            self,
            "view",
            SessionView(self.access_token, self.expires_at, self.claims, self.scopes),
        )
        object.__setattr__(self, "credentials", granted(self.scopes))

    def __repr__(self) -> str:
        return f"Session(sub={self.claims.get('sub')!r}, version={self.version})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "claims": dict(self.claims),
            "access_token": self.access_token,
            "refresh_token": self.refresh_token,
            "expires_at": self.expires_at,
            "refresh_at": self.refresh_at,
            "scopes": list(self.scopes),
            "created_at": self.created_at,
            "last_seen": self.last_seen,
            "claims_at": self.claims_at,
            "version": self.version,
            "user_claim": self.user_claim,
            "trust_unverified_email": self.trust_unverified_email,
            **({"id_token": self.id_token} if self.id_token is not None else {}),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Session:
        return cls(
            claims=data["claims"],
            access_token=data["access_token"],
            refresh_token=data["refresh_token"],
            expires_at=data["expires_at"],
            refresh_at=data["refresh_at"],
            scopes=tuple(data["scopes"]),
            created_at=data["created_at"],
            last_seen=data["last_seen"],
            claims_at=data["claims_at"],
            version=data["version"],
            user_claim=data.get("user_claim", "sub"),
            trust_unverified_email=data.get("trust_unverified_email", False),
            id_token=data.get("id_token"),
        )


@dataclass(frozen=True, slots=True)
class PendingLogin:
    """A sign-in under way: what its callback needs, sealed into its cookie (:mod:`.pending`)."""

    nonce: str
    code_verifier: str
    return_to: str
    redirect_uri: str
    expires_at: float

    def __repr__(self) -> str:
        return f"PendingLogin(return_to={self.return_to!r}, expires_at={self.expires_at!r})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "nonce": self.nonce,
            "code_verifier": self.code_verifier,
            "return_to": self.return_to,
            "redirect_uri": self.redirect_uri,
            "expires_at": self.expires_at,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PendingLogin:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__})
