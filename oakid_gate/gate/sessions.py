"""The signed-in session of a request, kept fresh: touch, refresh, re-read, end.

:meth:`Sessions.current` reads the session behind the cookie and does what
:mod:`~oakid_gate.gate.lifecycle` says it needs. A refresh is single flight per
session across every task, thread, process and host sharing the store:

1. take the session's lock in the store (``AcquireLock``, with a time to live,
   so a crashed holder cannot keep it);
2. whoever does not get it polls the store until the holder has written a new
   version, and uses that (after ``REFRESH_WAIT``, the current token while it is
   still valid, else 503; never anonymous);
3. the holder reads the session again under the lock: if someone refreshed it
   meanwhile, nothing is sent, so a superseded refresh token never is; the new
   refresh token (rotation) is written before the lock is released.

``invalid_grant`` or a refused userinfo ends the session; a provider that is
down or slow leaves it as it is.

Every change to a stored session is a compare-and-set on its ``version``
(``UpdateSession``): a refresh writes ``version + 1`` only over the version it
read under the lock, a touch writes the same version only over itself. A
write that finds the session deleted (signed out meanwhile, in any process)
or changed writes nothing, and the request goes on with what the store holds
now: no sign-out is undone, and no touch writes superseded tokens back.

The lock lives ``4 * http_timeout + 5`` seconds, longer than the worst refresh
(discovery, token endpoint, keys, userinfo, each within ``http_timeout``), so
it cannot expire while its holder still works.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from ..errors import ProviderError, TokenEndpointError, UserInfoError
from . import flows
from .audit import audit, note
from .claims import check_same_subject, merge_userinfo
from .effects import (
    AcquireLock,
    DeleteSession,
    GetSession,
    Program,
    Random,
    ReleaseLock,
    UpdateSession,
    perform,
    sleep,
)
from .lifecycle import Stage
from .parts import Parts
from .records import Session
from .request import GateRequest

__all__ = ["REFRESH_POLL", "REFRESH_WAIT", "Sessions"]

log = logging.getLogger("oakid_gate")

REFRESH_WAIT = 5.0  # how long a request waits for another's refresh
REFRESH_POLL = 0.05


class Sessions:
    """Reading, touching, refreshing and ending sessions."""

    def __init__(self, parts: Parts) -> None:
        self._p = parts
        self._scope = " ".join(parts.settings.scopes)
        #: longer than the worst refresh: discovery, token, keys and userinfo requests
        self._lock_ttl = parts.settings.http_timeout * 4 + 5

    def key(self, req: GateRequest) -> str | None:
        """The store key of the request's session cookie, if it has one."""
        sid = req.cookies.get(self._p.cookies.session_name(req))
        return self._p.session_key(sid) if sid else None

    def current(self, req: GateRequest, now: float, random: Random) -> Program[Session | None]:
        """The request's session, brought up to date; ``None`` when there is none (any more)."""
        key = self.key(req)
        if key is None:
            return None
        session = yield from perform(GetSession(key))
        if session is None:
            return None
        stage = self._p.lifecycle.stage(session, now)
        if stage is Stage.PASS:
            return session
        if stage is Stage.EXPIRED:
            yield from perform(DeleteSession(key))
            return None
        if stage is Stage.DUE:
            return (yield from self._refresh(key, session, now, random))
        touched = replace(session, last_seen=now)
        ttl = self._p.lifecycle.ttl(touched, now)
        if (yield from perform(UpdateSession(key, touched, ttl, session.version))):
            return touched
        # Signed out or refreshed meanwhile: what the store holds now is the answer.
        return (yield from perform(GetSession(key)))

    def _refresh(
        self, key: str, seen: Session, now: float, random: Random
    ) -> Program[Session | None]:
        """Refresh once per session, whoever else is trying at the same time."""
        owner = random()
        deadline = now + REFRESH_WAIT
        while not (yield from perform(AcquireLock(key, owner, self._lock_ttl))):
            # Another task, thread, process or host is refreshing: wait for it.
            now = yield from sleep(REFRESH_POLL)
            current = yield from perform(GetSession(key))
            if current is None:
                return None
            if current.version != seen.version or not self._p.lifecycle.due(current, now):
                return current
            if now >= deadline:
                return self._p.lifecycle.stale_or_fail(current, now)
        try:
            result = yield from self._refresh_locked(key, now)
        except GeneratorExit:
            raise  # the program was closed (a cancelled request): the lock expires by itself
        except BaseException:
            yield from perform(ReleaseLock(key, owner))
            raise
        yield from perform(ReleaseLock(key, owner))
        return result

    def _refresh_locked(self, key: str, now: float) -> Program[Session | None]:
        # Re-read under the lock: someone may have refreshed already, and only
        # the newest refresh token may be sent (a superseded one never is).
        session = yield from perform(GetSession(key))
        if session is None or not self._p.lifecycle.due(session, now):
            return session
        new: Session | None = session
        if self._p.lifecycle.refresh_due(session, now):
            try:
                new = yield from self._new_tokens(session, now)
            except ProviderError:
                return self._p.lifecycle.stale_or_fail(session, now)
        if new is not None and self._p.lifecycle.claims_due(new, now):
            new = yield from self._reread_claims(new, now)
        if new is None:
            yield from perform(DeleteSession(key))
            return None
        new = replace(new, last_seen=now, version=session.version + 1)
        ttl = self._p.lifecycle.ttl(new, now)
        if (yield from perform(UpdateSession(key, new, ttl, session.version))):
            note("refresh", "success")
            return new
        # Deleted meanwhile (a sign-out, in any process): it stays deleted.
        log.info("a session ended while it was refreshed; the refresh is dropped")
        return (yield from perform(GetSession(key)))

    def _new_tokens(self, session: Session, now: float) -> Program[Session | None]:
        """The session with a refreshed access token; ``None`` when it must end."""
        if session.refresh_token is None:
            # Nothing to refresh with: the session ends with its access token.
            if session.expires_at is None or now >= session.expires_at:
                return None
            return replace(session, refresh_at=session.expires_at)
        state = yield from self._p.provider.current(now)
        try:
            tokens = yield from flows.refresh_tokens(
                state.metadata,
                self._p.provider.client(state.metadata),
                refresh_token=session.refresh_token,
                scopes=" ".join(session.scopes) or self._scope,
            )
        except TokenEndpointError as exc:
            audit("refresh", "failed", None, reason=exc.error, sub=session.user.sub)
            return None
        expires_at, refresh_at = self._p.lifecycle.token_times(tokens.expires_in, now)
        return replace(
            session,
            access_token=tokens.access_token,
            # Rotation: keep the new refresh token; the old only if none came.
            refresh_token=tokens.refresh_token or session.refresh_token,
            expires_at=expires_at,
            refresh_at=refresh_at,
            scopes=tuple(tokens.scope.split()) if tokens.scope else session.scopes,
        )

    def _reread_claims(self, session: Session, now: float) -> Program[Session | None]:
        """The session with userinfo read again; ``None`` when the provider refuses it."""
        try:
            state = yield from self._p.provider.current(now)
            info = yield from flows.fetch_userinfo(state.metadata, session.access_token)
            if info:
                check_same_subject(session.claims, info)
                session = replace(session, claims=merge_userinfo(session.claims, info))
                if not session.user.has_identity:
                    raise UserInfoError("the user's identity claim is gone or unusable")
        except UserInfoError as exc:
            # The provider no longer honours the token, or names someone else.
            log.info("userinfo re-read failed (%s); session ended", exc.message)
            audit("refresh", "failed", None, reason="userinfo_refused", sub=session.user.sub)
            return None
        except ProviderError as exc:
            log.warning("userinfo re-read failed, claims kept: %s", exc.message)
        return replace(session, claims_at=now)  # next attempt after a full interval
