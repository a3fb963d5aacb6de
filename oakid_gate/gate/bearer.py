"""Requests with ``Authorization: Bearer <access token>``: scripts, CLIs, services, SPAs.

A request that has no cookie session and carries a bearer token is admitted when
the token was issued for this gate and the provider vouches for it, checked in
this order (``bearer_tokens=on``, the default):

1. a JWT access token (RFC 9068, ``typ: at+jwt``) is checked against the
   provider's JWKS, with no provider call (:mod:`.accesstoken`);
2. any other token goes to the provider's introspection endpoint (RFC 7662)
   where it has one: ``active`` must be true, and ``aud`` or ``client_id``
   this gate's;
3. only with ``bearer_tokens=userinfo``: a token the userinfo endpoint accepts
   (userinfo cannot say whom a token was issued to: any token the provider
   issued for any client passes, which is why it is an opt-in).

"Issued for this gate": its audience or client is ``client_id`` or one of
``bearer_audiences``. The user is then injected exactly as for a cookie session
(a :class:`~.records.Session` that is never stored: the token's claims, its
scopes), the authorization rules apply, and no cookie is ever set. A request
with both a session cookie and a token uses the cookie. Public paths do not
look at tokens.

Answers are cached under the token's SHA-256 (bounded): a valid token for
:data:`CACHE_TTL` seconds at most and never past its expiry, an invalid one
for :data:`NEGATIVE_TTL`, so a cached token costs no provider call (a revoked
token is refused at most :data:`CACHE_TTL` seconds later). A token that is not
valid gets 401 with ``WWW-Authenticate: Bearer error="invalid_token"`` (RFC
6750), never a redirect; a provider that cannot answer gets 503.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any, Final

from ..errors import InvalidToken, ProviderError, UserInfoError
from . import flows
from .accesstoken import (
    AccessTokenExpectations,
    UnknownKey,
    audience_matches,
    is_jwt_access_token,
    validate_access_token,
)
from .audit import note
from .effects import Program
from .parts import Parts
from .provider import METADATA_RETRY, ProviderState
from .records import Session
from .replies import Reply, json_reply
from .request import GateRequest

__all__ = ["CACHE_SIZE", "CACHE_TTL", "NEGATIVE_TTL", "Bearer"]

#: seconds a valid token's answer is kept at most (never past the token's expiry)
CACHE_TTL: Final = 60.0
#: seconds an invalid token's answer is kept
NEGATIVE_TTL: Final = 10.0
#: tokens remembered at most (all forgotten at once when full)
CACHE_SIZE: Final = 10_000
#: the longest token taken (RFC 6750 ``b64token``)
MAX_TOKEN: Final = 8192
_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
#: what an introspection answer says about the token, not about the user
_TOKEN_FIELDS = frozenset({"active", "token_type"})


class Bearer:
    """Checking bearer tokens, with a bounded cache of the answers."""

    def __init__(self, parts: Parts) -> None:
        settings = parts.settings
        self._p = parts
        self._mode = settings.bearer_tokens
        self._audiences = frozenset((settings.client_id, *settings.bearer_audiences))
        self._leeway = settings.clock_skew
        self._user_claim = settings.user_claim
        self._trust_unverified = settings.allow_unverified_email
        #: SHA-256 of the token -> (its session or None, until when, why not). A plain
        #: dict, emptied when full: each read and write is atomic under the GIL, so WSGI
        #: threads share it without a lock (the core takes no locks of its own)
        self._cache: dict[str, tuple[Session | None, float, str]] = {}

    def session(self, req: GateRequest, now: float) -> Program[Session | Reply | None]:
        """The session a bearer token stands for; ``None`` without one (or with
        ``bearer_tokens=off``); a 401 or 503 :class:`Reply` when it cannot be used."""
        if self._mode == "off":
            return None
        header = req.headers.get("authorization")
        if header is None:
            return None
        scheme, _, token = header.strip().partition(" ")
        if scheme.lower() != "bearer":
            return None  # another scheme (Basic, ...) is not the gate's to judge
        token = token.strip()
        if not token or len(token) > MAX_TOKEN or not _B64TOKEN.fullmatch(token):
            note("bearer", "invalid", "malformed")
            return self._invalid("the bearer token is malformed")
        key = hashlib.sha256(token.encode()).hexdigest()
        cached = self._cache.get(key)
        if cached is not None and now < cached[1]:
            note("bearer", "valid" if cached[0] is not None else "invalid", "cached")
            return cached[0] if cached[0] is not None else self._invalid(cached[2])
        try:
            session = yield from self._verify(token, now)
        except InvalidToken as exc:
            self._keep(key, None, now + NEGATIVE_TTL, exc.message)
            note("bearer", "invalid", "checked")
            return self._invalid(exc.message)
        except ProviderError as exc:
            status = 503 if exc.status_hint == 503 else 502
            body = {"error": exc.error, "error_description": exc.message}
            note("bearer", "failed", "provider")
            return json_reply(status, body)
        until = now + CACHE_TTL
        if session.expires_at is not None:
            until = min(until, session.expires_at)
        self._keep(key, session, until, "")
        note("bearer", "valid", "checked")
        return session

    def _keep(self, key: str, session: Session | None, until: float, message: str) -> None:
        if len(self._cache) >= CACHE_SIZE:
            self._cache.clear()
        self._cache[key] = (session, until, message)

    def _invalid(self, message: str) -> Reply:
        challenge = (
            f'Bearer realm="oakid-gate", error="invalid_token", error_description="{message}"'
        )
        body = {"error": "invalid_token", "error_description": message}
        return json_reply(401, body, (("www-authenticate", challenge),))

    # ------------------------------------------------------------ checking

    def _verify(self, token: str, now: float) -> Program[Session]:
        state = yield from self._p.provider.current(now)
        meta = state.metadata
        if is_jwt_access_token(token) and meta.jwks_uri is not None:
            claims = yield from self._jwt(token, state, now)
            return self._session(token, claims, claims.get("exp"), now)
        if meta.introspection_endpoint is not None:
            client = self._p.provider.client(meta)
            answer = yield from flows.introspect(meta, client, token=token)
            if answer is None:
                raise InvalidToken("the provider says the token is not active")
            if not audience_matches(answer.get("aud"), answer.get("client_id"), self._audiences):
                raise InvalidToken("the token was issued for another client")
            exp = answer.get("exp")
            if _expired(exp, now, self._leeway):
                raise InvalidToken("the token has expired")
            claims = {k: v for k, v in answer.items() if k not in _TOKEN_FIELDS}
            return self._session(token, claims, exp, now)
        if self._mode == "userinfo" and meta.userinfo_endpoint is not None:
            try:
                info = yield from flows.fetch_userinfo(meta, token)
            except UserInfoError:
                raise InvalidToken("the provider does not accept the token") from None
            return self._session(token, info, None, now)
        raise InvalidToken(
            "the provider offers no way to check this token here "
            "(no introspection, not a JWT access token; see bearer_tokens)"
        )

    def _jwt(self, token: str, state: ProviderState, now: float) -> Program[dict[str, Any]]:
        expect = AccessTokenExpectations(state.metadata.issuer, self._audiences, now, self._leeway)
        jwks = yield from self._p.provider.keys(state, now, force=False)
        try:
            return validate_access_token(token, jwks, expect)
        except UnknownKey:
            if now - state.jwks_at < METADATA_RETRY:
                raise
            jwks = yield from self._p.provider.keys(state, now, force=True)  # keys rotated
            return validate_access_token(token, jwks, expect)

    def _session(self, token: str, claims: dict[str, Any], exp: Any, now: float) -> Session:
        """A session that is never stored: who the token names, with its scopes."""
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub or len(sub) > 255:
            raise InvalidToken("the token names no user (sub)")
        scope = claims.get("scope")
        scopes = tuple(scope.split()) if isinstance(scope, str) else ()
        expires = (
            float(exp) if isinstance(exp, (int, float)) and not isinstance(exp, bool) else None
        )
        session = Session(
            claims=claims,
            access_token=token,
            refresh_token=None,
            expires_at=expires,
            refresh_at=expires,
            scopes=scopes,
            created_at=now,
            last_seen=now,
            claims_at=now,
            user_claim=self._user_claim,
            trust_unverified_email=self._trust_unverified,
        )
        if not session.user.has_identity:
            raise InvalidToken(f"the token does not name the user by {self._user_claim!r}")
        return session


def _expired(exp: Any, now: float, leeway: int) -> bool:
    if exp is None:
        return False  # introspection need not say; active is the provider's word
    if not isinstance(exp, (int, float)) or isinstance(exp, bool):
        return True
    return float(exp) + leeway < now
