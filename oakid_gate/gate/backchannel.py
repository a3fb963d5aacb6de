"""Back-channel logout (OpenID Connect Back-Channel Logout 1.0): the provider ends
sessions here directly.

``POST {prefix}/backchannel_logout`` takes the provider's ``logout_token``, a JWT
validated like an ID token (the provider's keys, an allowed algorithm) and by the
rules of section 2.6: ``iss`` the issuer, ``aud`` naming ``client_id``, ``iat``
present and recent, ``exp`` (when present) not past, a ``jti`` never seen before
(kept as a lock in the shared store until the token could expire, so no worker or
host takes a replay), the back-channel logout event in ``events``, ``sub`` and/or
``sid``, and no ``nonce``.

Then every session of that provider session (``sid``), or of that user (``sub``
alone), is deleted from the store, which every worker and host shares: each sees
the logout at its next request (within the near cache's bound: 50 ms for sqlite,
on redis's invalidation for redis). Sign-in links each session to its ``sid`` and
``sub`` for this (:func:`link_keys`). The answer is 200 with ``Cache-Control:
no-store``; an invalid token is 400 ``invalid_request``, logged at info.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any, Final

from ..errors import IDTokenError
from .idtoken import json_number

__all__ = ["BACKCHANNEL_EVENT", "LogoutToken", "check_logout_claims", "index_key", "link_keys"]

BACKCHANNEL_EVENT: Final = "http://schemas.openid.net/event/backchannel-logout"
#: the oldest a logout token may be (its ``iat``), and how long its ``jti`` is kept
MAX_AGE: Final = 600


class LogoutToken:
    """What a valid logout token says: whose sessions end, and its ``jti``."""

    __slots__ = ("jti", "sid", "sub", "until")

    def __init__(self, sub: str | None, sid: str | None, jti: str, until: float) -> None:
        self.sub, self.sid, self.jti, self.until = sub, sid, jti, until


def check_logout_claims(
    claims: Mapping[str, Any], *, issuer: str, client_id: str, now: float, leeway: int
) -> LogoutToken:
    """Section 2.6, steps 3 to 7 (the signature was checked before)."""
    if claims.get("iss") != issuer:
        raise IDTokenError("the logout token was issued by another issuer")
    aud = claims.get("aud")
    audiences = [aud] if isinstance(aud, str) else aud
    if not isinstance(audiences, list) or client_id not in audiences:
        raise IDTokenError("the logout token is not meant for this client (aud)")
    iat = json_number(claims.get("iat"))
    if iat is None or iat - leeway > now or iat + MAX_AGE < now:
        raise IDTokenError("the logout token's issue time (iat) is missing or not recent")
    if "exp" in claims:
        exp = json_number(claims.get("exp"))
        if exp is None or exp + leeway < now:
            raise IDTokenError("the logout token has expired")
    events = claims.get("events")
    if not isinstance(events, Mapping) or not isinstance(events.get(BACKCHANNEL_EVENT), Mapping):
        raise IDTokenError("the logout token holds no back-channel logout event")
    if "nonce" in claims:
        raise IDTokenError("a logout token must not hold a nonce")
    sub, sid = claims.get("sub"), claims.get("sid")
    sub = sub if isinstance(sub, str) and sub else None
    sid = sid if isinstance(sid, str) and sid else None
    if sub is None and sid is None:
        raise IDTokenError("the logout token names neither a user (sub) nor a session (sid)")
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti:
        raise IDTokenError("the logout token has no jti")
    return LogoutToken(sub, sid, jti, iat + MAX_AGE + leeway)


def link_keys(app: str, claims: Mapping[str, Any]) -> list[str]:
    """The store's link indexes of a session with these claims: its provider ``sid``
    (when the ID token names one) and its ``sub``."""
    keys = []
    for kind in ("sid", "sub"):
        value = claims.get(kind)
        if isinstance(value, str) and value:
            keys.append(index_key(app, kind, value))
    return keys


def index_key(app: str, kind: str, value: str) -> str:
    """A link index: a hash of the app, the kind and the value (no claim in clear)."""
    return hashlib.sha256(f"{app}\n{kind}\n{value}".encode()).hexdigest()
