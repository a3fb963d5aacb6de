"""A real session for given claims, written straight into the gate's store.

The sign-in helpers of :mod:`oakid_gate.testing` are built on
:func:`session_cookie`: it writes the :class:`~oakid_gate.gate.records.Session`
that a completed sign-in would write (in the store the middleware really uses:
memory, sqlite or redis) and returns the session cookie that names it. A test
client that sends that cookie goes through the real gate as that user: the
same admission (``allowed_emails``, ``allowed_groups``, route rules, the
``user_claim``), the same ``scope["user"]``, ``REMOTE_USER`` and identity
headers, the same sign-out.

No provider is called: the session holds the access token given here and no
refresh token, and its claims count as read now (no userinfo re-read within
``claims_refresh_interval``).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

from ..adapter import GateAdapter
from ..drivers import random_token, run_sync
from ..gate.records import Session
from ..gate.starts import new_session, store_session

__all__ = ["TEST_ACCESS_TOKEN", "session_cookie", "write_session"]

#: the access token of a test session unless one is given
TEST_ACCESS_TOKEN = "oakid-gate-test-access-token"  # noqa: S105 - not a secret


def session_cookie(
    gate: GateAdapter[Any, Any],
    claims: Mapping[str, Any],
    *,
    scheme: str = "http",
    access_token: str = TEST_ACCESS_TOKEN,
    expires_in: int | None = 3600,
    scopes: Iterable[str] | None = None,
) -> tuple[str, str]:
    """Write a session for ``claims`` into ``gate``'s store; return ``(name, value)``
    of the cookie that carries it on a request of ``scheme``.

    ``claims`` must hold ``sub``. ``scopes`` default to the ``scopes`` setting;
    ``expires_in`` is the access token's lifetime in seconds (``None``: no expiry).
    """
    sid, _ = write_session(
        gate, claims, access_token=access_token, expires_in=expires_in, scopes=scopes
    )
    return gate.gate.parts.cookies.session_name_for(scheme), sid


def write_session(
    gate: GateAdapter[Any, Any],
    claims: Mapping[str, Any],
    *,
    access_token: str = TEST_ACCESS_TOKEN,
    expires_in: int | None = 3600,
    scopes: Iterable[str] | None = None,
) -> tuple[str, Session]:
    """Write a session for ``claims`` into ``gate``'s store; return the session
    cookie's value and the session (``session.user`` is what the app will see).

    The arguments are those of :func:`session_cookie`.
    """
    if not isinstance(claims.get("sub"), str) or not claims["sub"]:
        raise ValueError("a test session's claims need a non-empty string 'sub'")
    parts, now = gate.gate.parts, time.time()
    session = new_session(
        parts,
        dict(claims),
        access_token=access_token,
        refresh_token=None,  # the session ends with its access token
        expires_in=expires_in,
        scopes=tuple(scopes) if scopes is not None else None,
        now=now,
    )
    sid = random_token()
    # The sign-in's own write (session, back-channel links), on the gate's store.
    run_sync(store_session(parts, session, sid, now), lambda effect: effect.on(gate.store))
    return sid, session
