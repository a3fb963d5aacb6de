"""When a session passes, needs a touch, needs the provider, or is over.

Rule 1, in the manner of h11's ``_state.py``: everything about a session's
timing lives here. :meth:`Lifecycle.stage` is the one decision, for the hot
path and the full path alike:

=============  ===============================================================
``EXPIRED``    past ``session_lifetime`` since sign-in, or ``idle_timeout`` since
               the last request: the session is deleted
``DUE``        the access token is due for a refresh (``refresh_margin`` before
               it expires, at most half its lifetime), or the claims are older
               than ``claims_refresh_interval``: the provider is asked
``TOUCH``      the last request was recorded over a minute ago (or a tenth of
               ``idle_timeout``): the store is written, nothing else
``PASS``       nothing to do: the hot path, one store read
=============  ===============================================================

When the provider cannot refresh, the session is served with its access token
while that is still valid (:meth:`Lifecycle.stale_or_fail`), never anonymously.
"""

from __future__ import annotations

import enum

from ..errors import ProviderUnavailable
from ..settings import Settings
from .records import Session

__all__ = ["Lifecycle", "Stage"]


class Stage(enum.Enum):
    PASS = enum.auto()
    TOUCH = enum.auto()
    DUE = enum.auto()
    EXPIRED = enum.auto()


class Lifecycle:
    """The timing rules of one gate's sessions."""

    def __init__(self, settings: Settings) -> None:
        self.lifetime = float(settings.session_lifetime)
        self.idle_timeout = float(settings.idle_timeout)
        #: how stale ``last_seen`` may be before the store is written again
        self.touch_interval = min(60.0, settings.idle_timeout / 10)
        self.claims_interval = float(settings.claims_refresh_interval)
        self.refresh_margin = float(settings.refresh_margin)

    def passes(self, session: Session, now: float) -> bool:
        """Whether ``session`` needs nothing at ``now`` (:attr:`Stage.PASS`): the hot path."""
        return now < self.passes_until(session)

    def passes_until(self, session: Session) -> float:
        """Until when ``session`` passes as it is (a pure function of the session, so the
        hot path may keep it): touched within ``touch_interval`` (so not idle: the
        interval is a tenth of ``idle_timeout`` at most), within its lifetime, nothing
        due."""
        until = min(
            session.last_seen + self.touch_interval,
            session.created_at + self.lifetime,
            session.claims_at + self.claims_interval,
        )
        refresh_at = session.refresh_at
        return until if refresh_at is None or until < refresh_at else refresh_at

    def stage(self, session: Session, now: float) -> Stage:
        """What ``session`` needs at ``now``."""
        if self.passes(session, now):
            return Stage.PASS
        if (
            now >= session.created_at + self.lifetime
            or now >= session.last_seen + self.idle_timeout
        ):
            return Stage.EXPIRED
        if self.due(session, now):
            return Stage.DUE
        return Stage.TOUCH

    def due(self, session: Session, now: float) -> bool:
        """Whether the session needs the provider: a refresh, or a re-read of userinfo."""
        refresh_at = session.refresh_at
        return (
            refresh_at is not None and now >= refresh_at
        ) or now >= session.claims_at + self.claims_interval

    def refresh_due(self, session: Session, now: float) -> bool:
        """The access token's part of :meth:`due`."""
        return session.refresh_at is not None and now >= session.refresh_at

    def claims_due(self, session: Session, now: float) -> bool:
        """The claims' part of :meth:`due`."""
        return now >= session.claims_at + self.claims_interval

    def ttl(self, session: Session, now: float) -> float:
        """How long the store keeps ``session`` written at ``now``: until it would expire."""
        end = min(session.created_at + self.lifetime, now + self.idle_timeout)
        return max(1.0, end - now)

    def token_times(self, expires_in: int | None, now: float) -> tuple[float | None, float | None]:
        """``(expires_at, refresh_at)`` for an access token issued at ``now``."""
        if expires_in is None:
            return None, None
        margin = min(self.refresh_margin, expires_in / 2)
        return now + expires_in, now + expires_in - margin

    def stale_or_fail(self, session: Session, now: float) -> Session:
        """Serve with the current access token while it is valid, else fail (never anonymous)."""
        if session.expires_at is None or now < session.expires_at:
            return session
        raise ProviderUnavailable(
            "the session could not be refreshed: the provider is not answering"
        )
