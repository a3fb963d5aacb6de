"""Signing in: the authorization request, and the callback in its security order.

Starting (:meth:`SignIn.begin`): a fresh ``state``, ``nonce`` and PKCE S256
verifier per sign-in. With the return target (a same-origin path only,
:mod:`~oakid_gate.gate.redirects`) they are sealed into a cookie of the
sign-in's own (:mod:`~oakid_gate.gate.pending`), so the server keeps nothing
until the callback, and parallel sign-ins in several tabs each succeed.

The callback (:meth:`SignIn.callback`), step by step; any failure is an error
page and no session:

1. the sign-in's cookie is opened for its ``state`` and cleared: a browser
   without it (another browser, a replay after the callback cleared it), or a
   cookie that does not open for this ``state``, or an expired one, fails;
2. the answer is checked: RFC 9207 ``iss`` (required when the provider
   advertises it), the provider's ``error``, a ``code``;
3. the code is exchanged with the stored PKCE verifier;
4. the user is identified: the ID token validated (signature, ``iss``,
   ``aud``, ``azp``, times, ``nonce``), userinfo read and its ``sub`` checked
   against the ID token's; OAuth 2.0 servers without ID tokens name the user
   by userinfo's ``sub``, introspection's, or the email;
5. the identity is checked: a user without a usable ``user_claim`` (or, with
   ``user_claim=email``, without a verified email) cannot sign in, and their
   tokens are revoked;
6. a new session, under a new random id; the browser's old session is deleted;
7. the authorization rules (:mod:`.authorization`): a user they refuse keeps
   the session (so the 403 page can offer sign-out, to switch accounts) and
   gets that page at once, never a redirect into a sign-in loop.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import (
    AccessDenied,
    AuthenticationError,
    AuthorizationDenied,
    CodeRefused,
    IDTokenError,
    OakIDGateError,
    ProviderError,
    ProviderUnavailable,
    StateError,
    StoreUnavailable,
    TokenEndpointError,
    UserInfoError,
    oauth_error_code,
)
from ..user import OakIDUser
from . import flows
from .audit import audit
from .claims import check_same_subject, merge_userinfo, user_claims
from .effects import DeleteSession, Program, Random, perform
from .metadata import ProviderMetadata
from .parts import Parts
from .pending import open_pending, seal_pending
from .records import PendingLogin
from .redirects import safe_return_to
from .replies import NO_STORE, Outcome, Reply
from .request import GateRequest
from .starts import new_session, store_session

__all__ = ["MAX_PENDING", "SignIn", "authorization_url"]

log = logging.getLogger("oakid_gate")

#: sign-ins under way one browser may have before the oldest are cleared
MAX_PENDING = 4


def authorization_url(
    metadata: ProviderMetadata,
    *,
    client_id: str,
    redirect_uri: str,
    scope: str,
    state: str,
    nonce: str,
    code_verifier: str,
) -> str:
    """The authorization request (RFC 6749 4.1.1, RFC 7636 4.3, OpenID Connect Core 3.1.2.1)."""
    # Loaded at first use, not at start-up (issue 8: start-up within 1.3 x bare uvicorn).
    from authlib.common.urls import add_params_to_uri
    from authlib.oauth2.rfc7636 import create_s256_code_challenge

    url: str = add_params_to_uri(
        metadata.authorization_endpoint,
        [
            ("response_type", "code"),
            ("client_id", client_id),
            ("redirect_uri", redirect_uri),
            ("scope", scope),
            ("state", state),
            ("nonce", nonce),
            ("code_challenge", create_s256_code_challenge(code_verifier)),
            ("code_challenge_method", "S256"),
        ],
    )
    return url


@dataclass(frozen=True, slots=True)
class _Taken:
    """Step 1's result: the sign-in this callback completes."""

    login: PendingLogin
    state: str


class SignIn:
    """Starting sign-ins and completing them at the callback."""

    def __init__(self, parts: Parts) -> None:
        self._p = parts
        self._scope = " ".join(parts.settings.scopes)

    # ------------------------------------------------------------ starting

    def begin(
        self, req: GateRequest, return_to: str, now: float, random: Random
    ) -> Program[Outcome]:
        """Send the browser to the provider, remembering where it wanted to go."""
        try:
            state_ = yield from self._p.provider.current(now)
        except ProviderError as exc:
            return self._p.replies.error(req, exc, "The identity provider is not answering")
        state, nonce, verifier = random(), random(), random() + random()
        login = PendingLogin(
            nonce=nonce,
            code_verifier=verifier,
            return_to=safe_return_to(return_to),
            redirect_uri=self._p.origin.of(req) + self._p.settings.redirect_path,
            expires_at=now + self._p.settings.login_timeout,
        )
        url = authorization_url(
            state_.metadata,
            client_id=self._p.settings.client_id,
            redirect_uri=login.redirect_uri,
            scope=self._scope,
            state=state,
            nonce=nonce,
            code_verifier=verifier,
        )
        sealed = seal_pending(self._p.pending, state, login, random)
        cookies = (*self._clear_abandoned(req), self._p.cookies.set_login(req, state, sealed))
        return Reply(302, (("location", url), *cookies, *NO_STORE))

    def _clear_abandoned(self, req: GateRequest) -> tuple[tuple[str, str], ...]:
        """A browser with :data:`MAX_PENDING` sign-ins under way already (tabs left at the
        provider) has them cleared: their cookies go with every request (``Path=/``)
        until they expire, so they are kept few."""
        names = self._p.cookies.pending_logins(req)
        if len(names) < MAX_PENDING:
            return ()
        return tuple(self._p.cookies.clear_named(req, name) for name in names)

    # ------------------------------------------------------------ the callback

    def callback(self, req: GateRequest, now: float, random: Random) -> Program[Outcome]:
        """Complete a sign-in: steps 1 to 6 of the module's docstring."""
        clear_login: tuple[tuple[str, str], ...] = ()
        try:
            params = req.params()
            state = params.get("state")
            if state:
                clear_login = (self._p.cookies.clear_login(req, state),)
            taken = self._take(req, state, now)
            state_ = yield from self._p.provider.current(now)
            meta = state_.metadata
            code = _checked_code(params, meta)
            tokens = yield from self._exchange(meta, code, taken.login)
            claims = yield from self._identify(meta, tokens, taken.login.nonce, now)
            user = self._user(claims)
            yield from self._check_identity(meta, tokens, user)
            keep_id_token = self._p.settings.provider_logout and meta.end_session_endpoint
            id_token = tokens.id_token if keep_id_token else None
            sid = yield from self._start_session(req, tokens, claims, now, random, id_token)
        except OakIDGateError as exc:
            outcome = "failed" if exc.status_hint >= 500 else "refused"
            audit("sign_in", outcome, req, reason=exc.error)
            return self._p.replies.error(req, exc, _title(exc), retry=True).with_headers(
                *clear_login
            )
        session_cookie = self._p.cookies.set_session(req, sid)
        key = self._p.session_key(sid)
        audit("sign_in", "success", req, sub=user.sub, session=key)
        missing = self._p.rules.refusal(user)
        if missing is not None:
            refused = self._p.replies.not_allowed(req, missing, user.sub, key, user.display_name)
            return refused.with_headers(session_cookie, *clear_login)
        location = self._p.origin.of(req) + taken.login.return_to
        return Reply(302, (("location", location), session_cookie, *clear_login, *NO_STORE))

    def _take(self, req: GateRequest, state: str | None, now: float) -> _Taken:
        """Step 1: the sign-in of ``state``, from the cookie of this browser only."""
        if not state:
            raise StateError("The sign-in answer has no state. Start the sign-in from this site.")
        sealed = req.cookies.get(self._p.cookies.login_name(req, state))
        login = open_pending(self._p.pending, state, sealed) if sealed else None
        if login is None:
            raise StateError(
                "This sign-in is not known in this browser: it was started in another one, "
                "or is already complete. Start the sign-in again here."
            )
        if now >= login.expires_at:
            raise StateError("This sign-in has expired. Start the sign-in again.")
        return _Taken(login, state)

    def _exchange(
        self, meta: ProviderMetadata, code: str, login: PendingLogin
    ) -> Program[flows.TokenResponse]:
        """Step 3: the code for tokens, with the stored PKCE verifier. ``invalid_grant``
        (the code used, expired, not issued for this sign-in) is the client's to fix by
        starting again; any other refusal says the provider or the gate is wrong."""
        try:
            return (
                yield from flows.exchange_code(
                    meta,
                    self._p.provider.client(meta),
                    code=code,
                    redirect_uri=login.redirect_uri,
                    code_verifier=login.code_verifier,
                )
            )
        except TokenEndpointError as exc:
            if exc.error != "invalid_grant":
                raise
            raise CodeRefused(
                "The identity provider did not accept this sign-in (it may have been used "
                "already, or taken too long). Start the sign-in again."
            ) from None

    def _identify(
        self, meta: ProviderMetadata, tokens: flows.TokenResponse, nonce: str, now: float
    ) -> Program[dict[str, Any]]:
        """Step 4: who signed in, from the ID token and userinfo."""
        claims: dict[str, Any] = {}
        if tokens.id_token is not None:
            validated = yield from self._p.provider.id_token_claims(tokens.id_token, nonce, now)
            claims = user_claims(validated)
        elif meta.kind == "openid":
            raise IDTokenError(
                "The provider answered without an ID token (does `scopes` include openid?)."
            )
        info = yield from flows.fetch_userinfo(meta, tokens.access_token)
        if claims:
            check_same_subject(claims, info)
        else:
            sub = yield from self._oauth_subject(meta, tokens.access_token, info)
            if sub is not None:
                info = {**info, "sub": sub}
        claims = merge_userinfo(claims, info)
        if not isinstance(claims.get("sub"), str) or not claims["sub"]:
            raise UserInfoError("The provider did not say who signed in (no sub).")
        return claims

    def _oauth_subject(
        self, meta: ProviderMetadata, access_token: str, info: Mapping[str, Any]
    ) -> Program[str | None]:
        """Who signed in at an OAuth 2.0 server that issues no ID token (RFC 8414 servers).

        Userinfo's ``sub``, else introspection's ``sub`` (RFC 7662), else the
        email that userinfo gives (Auth Agent's userinfo holds only that).
        """
        sub = info.get("sub")
        if isinstance(sub, str) and sub:
            return sub
        active = yield from flows.introspect(
            meta, self._p.provider.client(meta), token=access_token
        )
        if active is not None and isinstance(active.get("sub"), str) and active["sub"]:
            return str(active["sub"])
        email = info.get("email")
        return email if isinstance(email, str) and "@" in email else None

    def _user(self, claims: Mapping[str, Any]) -> OakIDUser:
        settings = self._p.settings
        return OakIDUser(
            claims, settings.user_claim, trust_unverified_email=settings.allow_unverified_email
        )

    def _check_identity(
        self, meta: ProviderMetadata, tokens: flows.TokenResponse, user: OakIDUser
    ) -> Program[None]:
        """Step 5: an identity that can be used as it is, and a verified email when it
        is the identity; a refused user's tokens are revoked at once."""
        refusal = self._refusal(user)
        if refusal is None:
            return
        token, hint = (
            (tokens.refresh_token, "refresh_token")
            if tokens.refresh_token
            else (tokens.access_token, "access_token")
        )
        yield from self._p.provider.revoke(meta, token, hint)
        raise AccessDenied(refusal)

    def _refusal(self, user: OakIDUser) -> str | None:
        """Why this user cannot have a session at all, or ``None``."""
        settings = self._p.settings
        if settings.user_claim == "email" and user.email is None:
            return (
                "This site knows its users by their email address, and the identity "
                "provider has not verified it (or sent one that cannot be used)."
            )
        if not user.has_identity:
            return (
                f"This site knows its users by their {settings.user_claim!r}, and the "
                "identity provider sent none that can be used as it is."
            )
        return None

    def _start_session(
        self,
        req: GateRequest,
        tokens: flows.TokenResponse,
        claims: dict[str, Any],
        now: float,
        random: Random,
        id_token: str | None = None,
    ) -> Program[str]:
        """Step 6: a new session under a new id; the one the browser had goes. The ID
        token is kept only as the hint of a logout at the provider (:mod:`.logout`)."""
        session = new_session(
            self._p,
            claims,
            access_token=tokens.access_token,
            refresh_token=tokens.refresh_token,
            expires_in=tokens.expires_in,
            scopes=tuple(tokens.scope.split()) if tokens.scope else None,
            now=now,
            id_token=id_token,
        )
        old = req.cookies.get(self._p.cookies.session_name(req))
        if old:
            yield from perform(DeleteSession(self._p.session_key(old)))
        sid = random()
        yield from store_session(self._p, session, sid, now)
        return sid


def _checked_code(params: Mapping[str, str], meta: ProviderMetadata) -> str:
    """Step 2: the authorization response names our issuer, carries no error, has a code."""
    iss = params.get("iss")  # RFC 9207
    if iss is not None and iss != meta.issuer:
        raise AuthenticationError("The sign-in answer came from another issuer.")
    if iss is None and meta.iss_parameter_supported:
        raise AuthenticationError("The sign-in answer does not name its issuer.")
    if "error" in params:
        raise AuthorizationDenied(_provider_error_message(params))
    code = params.get("code")
    if not code:
        raise AuthenticationError("The sign-in answer has no authorization code.")
    return code


def _provider_error_message(params: Mapping[str, str]) -> str:
    code = oauth_error_code(params.get("error"))
    if code == "access_denied":
        return "The sign-in was cancelled or refused at the identity provider."
    return f"The identity provider refused the sign-in ({code})."


def _title(exc: OakIDGateError) -> str:
    if isinstance(exc, AccessDenied):
        return "Not allowed"
    if isinstance(exc, (ProviderUnavailable, StoreUnavailable)):
        return "Sign-in is unavailable right now"
    return "Sign-in failed"
