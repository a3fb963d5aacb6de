"""What the dev-idp remembers, in memory, and the records it keeps.

Secrets (login tickets, codes, access and refresh tokens) are kept in a
:class:`Vault`, under their SHA-256 digest: never in the clear. A
:class:`Grant` is what one code exchange started; every access and refresh
token belongs to one, and revoking the grant ends them all.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, Literal, TypeVar

from ._params import sha256_hex
from ._request import AuthorizeRequest

__all__ = ["AccessToken", "Grant", "RefreshToken", "SignIn", "Store", "Vault"]

T = TypeVar("T")


class Vault(Generic[T]):
    """Values kept under the SHA-256 digest of a secret, never the secret itself."""

    def __init__(self) -> None:
        self._items: dict[str, T] = {}

    def __contains__(self, secret: str) -> bool:
        return sha256_hex(secret) in self._items

    def put(self, secret: str, value: T) -> None:
        self._items[sha256_hex(secret)] = value

    def get(self, secret: str) -> T | None:
        return self._items.get(sha256_hex(secret))

    def pop(self, secret: str) -> T | None:
        return self._items.pop(sha256_hex(secret), None)

    def discard_if(self, stale: Callable[[T], bool]) -> None:
        """Forget every value for which ``stale`` is true."""
        for digest in [digest for digest, value in self._items.items() if stale(value)]:
            del self._items[digest]


@dataclass(frozen=True)
class SignIn:
    """A user signed in for one request: what a login ticket or a code stands for."""

    request: AuthorizeRequest
    sub: str
    auth_time: int
    expires_at: float


@dataclass
class Grant:
    """What one code exchange started; refreshes continue it."""

    client_id: str
    sub: str
    scope: tuple[str, ...]
    auth_time: int
    revoked: bool = False


@dataclass
class RefreshToken:
    """A refresh token: spent on its first use, when a new one replaces it."""

    grant_id: int
    state: Literal["current", "rotated", "revoked"] = "current"


@dataclass
class AccessToken:
    """An access token, for userinfo; its scope may be narrower than its grant's."""

    grant_id: int
    scope: tuple[str, ...]
    expires_at: float
    revoked: bool = False


class Store:
    """All of the dev-idp's state."""

    def __init__(self) -> None:
        #: (sub, client_id) -> the scopes the user approved for the client
        self.consents: dict[tuple[str, str], frozenset[str]] = {}
        self.tickets: Vault[SignIn] = Vault()
        self.codes: Vault[SignIn] = Vault()
        #: every code presented by its client -> the grant it started, if any
        self.used_codes: Vault[int | None] = Vault()
        self.grants: dict[int, Grant] = {}
        self.access_tokens: Vault[AccessToken] = Vault()
        self.refresh_tokens: Vault[RefreshToken] = Vault()
        self._grant_ids = itertools.count(1)

    def start_grant(self, grant: Grant) -> int:
        """Keep a new grant; its id."""
        grant_id = next(self._grant_ids)
        self.grants[grant_id] = grant
        return grant_id

    def forget_expired(self, now: float) -> None:
        """Drop the codes and login tickets that can no longer be redeemed."""
        self.codes.discard_if(lambda signin: now >= signin.expires_at)
        self.tickets.discard_if(lambda signin: now >= signin.expires_at)
