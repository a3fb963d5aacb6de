"""A new session: what a completed sign-in starts and writes.

:func:`new_session` builds it from the tokens and claims, :func:`store_session`
writes it with its back-channel links. The sign-in (:mod:`.signin`) uses both;
so does :mod:`oakid_gate.testing`, so a test session is the one a sign-in makes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .backchannel import link_keys
from .effects import LinkSession, Program, PutSession, perform
from .parts import Parts
from .records import Session

__all__ = ["new_session", "store_session"]


def new_session(
    parts: Parts,
    claims: Mapping[str, Any],
    *,
    access_token: str,
    refresh_token: str | None,
    expires_in: int | None,
    scopes: tuple[str, ...] | None,
    now: float,
    id_token: str | None = None,
) -> Session:
    """The session started at ``now`` (``scopes``: the granted ones, else the ``scopes``
    setting; the ID token only as the hint of a logout at the provider)."""
    expires_at, refresh_at = parts.lifecycle.token_times(expires_in, now)
    return Session(
        claims=claims,
        access_token=access_token,
        refresh_token=refresh_token,
        expires_at=expires_at,
        refresh_at=refresh_at,
        scopes=scopes if scopes is not None else parts.settings.scopes,
        created_at=now,
        last_seen=now,
        claims_at=now,
        user_claim=parts.settings.user_claim,
        trust_unverified_email=parts.settings.allow_unverified_email,
        id_token=id_token,
    )


def store_session(parts: Parts, session: Session, sid: str, now: float) -> Program[None]:
    """Write ``session`` under the cookie value ``sid``, linked by its ``sid`` and ``sub``
    claims for a back-channel logout (:mod:`.backchannel`)."""
    key = parts.session_key(sid)
    yield from perform(PutSession(key, session, parts.lifecycle.ttl(session, now)))
    for index in link_keys(parts.app, session.claims):
        yield from perform(LinkSession(index, key, parts.settings.session_lifetime))
