"""Configuration of the dev-idp: its issuer, registered clients and users.

Everything is checked when a :class:`DevIdPConfig` is built, so a bad setting
is a ``ValueError`` naming it at start-up, never a failure at the first
request.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

__all__ = ["DEMO_USERS", "DevClient", "DevIdPConfig", "DevUser"]

#: HS256 keys shorter than 112 bits are weak (NIST SP 800-131A); joserfc warns
#: about them, so a client secret (the ID token signing key) must be longer.
MIN_CLIENT_SECRET_BYTES = 14


@dataclass(frozen=True)
class DevClient:
    """A registered OAuth client (a "Developer Portal app").

    ``redirect_uris`` empty means any loopback URI is accepted:
    ``http://127.0.0.1[:port]/...``, ``http://localhost[:port]/...`` or
    ``http://[::1][:port]/...`` (RFC 8252 section 7.3, a dev convenience).
    Otherwise the redirect URI must equal one of them exactly.
    """

    client_id: str
    client_secret: str = field(repr=False)
    redirect_uris: tuple[str, ...] = ()


@dataclass(frozen=True)
class DevUser:
    """A user who can sign in; ``claims`` must hold a string ``sub``.

    Released claims: ``sub`` always; ``name``, ``preferred_username``,
    ``groups`` and the other OIDC profile claims with the ``profile`` scope;
    ``email`` and ``email_verified`` with the ``email`` scope.
    """

    username: str
    password: str = field(repr=False)
    claims: Mapping[str, Any] = field(default_factory=dict)


def _demo_user(username: str, name: str, groups: list[str]) -> DevUser:
    return DevUser(
        username=username,
        password=username,
        claims={
            "sub": f"u-{username}",
            "name": name,
            "preferred_username": username,
            "email": f"{username}@example.test",
            "email_verified": True,
            "groups": groups,
        },
    )


#: The default users; each one's password is its username.
DEMO_USERS: tuple[DevUser, ...] = (
    _demo_user("alice", "Alice Admin", ["admins", "staff"]),
    _demo_user("bob", "Bob Staff", ["staff"]),
    _demo_user("carol", "Carol Guest", []),
)


@dataclass(frozen=True)
class DevIdPConfig:
    """Settings of one dev-idp instance.

    ``issuer`` is the external origin (optionally with a path) the provider is
    reached at, without a trailing slash; every endpoint URL is built from it.
    ``access_token_ttl`` is also the ID token lifetime; ``code_ttl`` is the
    authorization code lifetime (0 makes every code expire at once, for
    tests). ``log_path`` names an optional JSON-lines event log (appended to,
    one flushed line per event).
    """

    issuer: str
    clients: tuple[DevClient, ...]
    users: tuple[DevUser, ...] = DEMO_USERS
    access_token_ttl: int = 3600
    code_ttl: int = 120
    log_path: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "clients", tuple(self.clients))
        object.__setattr__(self, "users", tuple(self.users))
        _check_issuer(self.issuer)
        _check_clients(self.clients)
        _check_users(self.users)
        if self.access_token_ttl < 1:
            raise ValueError(
                f"access_token_ttl must be at least 1 second, not {self.access_token_ttl}"
            )
        if self.code_ttl < 0:
            raise ValueError(f"code_ttl must not be negative, not {self.code_ttl}")


def _check_issuer(issuer: str) -> None:
    parts = urlsplit(issuer)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"issuer must be an http(s) URL, not {issuer!r}")
    if parts.query or parts.fragment or issuer.endswith("/"):
        raise ValueError(f"issuer must have no query, fragment or trailing slash: {issuer!r}")


def _check_clients(clients: tuple[DevClient, ...]) -> None:
    if not clients:
        raise ValueError("clients: register at least one DevClient")
    seen: set[str] = set()
    for client in clients:
        if not client.client_id or client.client_id in seen:
            raise ValueError(f"clients: client_id {client.client_id!r} is empty or repeated")
        seen.add(client.client_id)
        if len(client.client_secret.encode()) < MIN_CLIENT_SECRET_BYTES:
            raise ValueError(
                f"client_secret of client {client.client_id!r} must be at least "
                f"{MIN_CLIENT_SECRET_BYTES} bytes: it is the HS256 ID token key"
            )
        for uri in client.redirect_uris:
            parts = urlsplit(uri)
            if parts.scheme not in ("http", "https") or not parts.hostname or parts.fragment:
                raise ValueError(
                    f"redirect_uris of client {client.client_id!r}: {uri!r} must be an "
                    "absolute http(s) URI without a fragment (RFC 6749 section 3.1.2)"
                )


def _check_users(users: tuple[DevUser, ...]) -> None:
    usernames: set[str] = set()
    subjects: set[str] = set()
    for user in users:
        sub = user.claims.get("sub")
        if not user.username or user.username in usernames:
            raise ValueError(f"users: username {user.username!r} is empty or repeated")
        if not isinstance(sub, str) or not sub or sub in subjects:
            raise ValueError(
                f"users: {user.username!r} needs a unique, non-empty string claim 'sub'"
            )
        usernames.add(user.username)
        subjects.add(sub)
