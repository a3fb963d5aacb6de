"""Signing out, and why a cross-site page cannot do it for the user.

A GET shows a confirmation form; only a POST signs out, and only when it comes
from this site: ``Sec-Fetch-Site`` is ``same-origin`` (or ``none``), or
``Origin`` is this site's origin, or (old browsers, scripts: neither header)
the form carries the CSRF token of this session, an HMAC of the session id
under ``secret`` (every configured secret is accepted, for rotation).

Signing out deletes the session and clears the cookie first, whatever the
provider's state: the user is signed out here even when the provider is down.
Then the refresh token is revoked at the provider (RFC 7009), best effort (a
failure is logged), and the browser goes to ``rd`` (a same-origin path only)
or sees the signed-out page.
"""

from __future__ import annotations

import hashlib
import hmac
import logging

from ..errors import ForbiddenRequest, ProviderError, StoreUnavailable
from .audit import audit
from .effects import DeleteSession, GetSession, Program, Random, perform, read_body
from .logout import end_session_url, open_logout, seal_logout
from .metadata import ProviderMetadata
from .parts import Parts
from .provider import ProviderState
from .records import Session
from .redirects import safe_return_to
from .replies import NO_STORE, Outcome, Reply, html_reply
from .request import GateRequest, single_params

__all__ = ["SignOut"]

log = logging.getLogger("oakid_gate")


class SignOut:
    """``/oauth2/sign_out``: the confirmation form (GET) and the sign-out itself (POST)."""

    def __init__(self, parts: Parts) -> None:
        self._p = parts
        self._action = parts.settings.prefix + "/sign_out"
        self._secrets = tuple(s.reveal().encode() for s in parts.settings.secret)

    def form(self, req: GateRequest) -> Program[Reply]:
        """The confirmation page, with this session's CSRF token in the form, the
        signed-in user's name, and a way back (``rd``, a same-origin path, else ``/``)."""
        sid = req.cookies.get(self._p.cookies.session_name(req))
        action = self._action + ("?" + req.query_string if req.query_string else "")
        token = self.csrf_token(sid) if sid else None
        user = None
        if sid:
            try:
                session = yield from perform(GetSession(self._p.session_key(sid)))
            except StoreUnavailable:
                session = None  # the form works without the name
            user = session.user.display_name if session is not None else None
        rd = req.params().get("rd")
        page = self._p.replies.pages.sign_out(
            self._p.replies.host(req),
            action=action,
            csrf_token=token,
            user=user,
            cancel_url=safe_return_to(rd) if rd else "/",
        )
        return html_reply(200, page, (("x-frame-options", "DENY"),))

    def sign_out(self, req: GateRequest, now: float, random: Random) -> Program[Outcome]:
        """End the session (a same-origin POST only), clear the cookie, then revoke."""
        sid = req.cookies.get(self._p.cookies.session_name(req))
        rd = req.params().get("rd")  # every parameter read before anything is done
        body = yield from read_body()
        form = single_params(body.decode("latin-1"))
        if not self._same_origin_post(req, sid, form.get("csrf", "")):
            refused = ForbiddenRequest("a sign-out must come from this site")
            return self._p.replies.error(req, refused, "Sign-out refused")
        clear = self._p.cookies.clear_session(req)
        session = None
        if sid:
            key = self._p.session_key(sid)
            try:
                session = yield from perform(GetSession(key))
                yield from perform(DeleteSession(key))
            except StoreUnavailable as exc:
                # The cookie goes anyway: this browser is signed out; the record
                # expires by itself.
                reply = self._p.replies.error(req, exc, "Sign-out could not be completed")
                return reply.with_headers(clear)
            audit(
                "sign_out",
                "success",
                req,
                sub=session.user.sub if session is not None else None,
                session=key,
            )
        if session is not None:
            state = yield from self._revoke(session, now)
            if state is not None and self._p.settings.provider_logout:
                away = self._at_provider(req, state.metadata, session, rd, random)
                if away is not None:
                    return away.with_headers(clear)
        if rd is not None:
            target = self._p.origin.of(req) + safe_return_to(rd)
            return Reply(303, (("location", target), clear, *NO_STORE))
        return html_reply(200, self._signed_out_page(req), (clear,))

    def _at_provider(
        self,
        req: GateRequest,
        meta: ProviderMetadata,
        session: Session,
        rd: str | None,
        random: Random,
    ) -> Reply | None:
        """The redirect that ends the browser's session at the provider too, with the
        cookie that brings ``rd`` back (:mod:`.logout`); ``None`` when it offers none."""
        state = random()
        back = self._p.origin.of(req) + self._p.settings.prefix + "/signed_out"
        url = end_session_url(meta, session, self._p.settings.client_id, back, state)
        if url is None:
            return None
        kept = safe_return_to(rd) if rd is not None else None
        cookie = self._p.cookies.set_logout(req, seal_logout(self._p.logout, state, kept, random()))
        return Reply(303, (("location", url), cookie, *NO_STORE))

    def signed_out(self, req: GateRequest) -> Reply:
        """``{prefix}/signed_out``: back from the provider's logout; to ``rd`` when the
        provider returned this browser's ``state``, else the signed-out page."""
        params = req.params()
        ok, rd = open_logout(
            self._p.logout, params.get("state"), req.cookies.get(self._p.cookies.logout_name(req))
        )
        clear = self._p.cookies.clear_logout(req)
        if ok and rd is not None:
            return Reply(303, (("location", self._p.origin.of(req) + rd), clear, *NO_STORE))
        return html_reply(200, self._signed_out_page(req), (clear,))

    def _signed_out_page(self, req: GateRequest) -> bytes:
        return self._p.replies.pages.signed_out(self._p.replies.host(req))

    def _revoke(self, session: Session, now: float) -> Program[ProviderState | None]:
        """Revoke the ended session's refresh token (else its access token), best effort:
        the session is gone already, so a provider that cannot be reached is only logged.
        The provider's state, for a logout there; ``None`` when it cannot be reached."""
        try:
            state = yield from self._p.provider.current(now)
        except ProviderError as exc:
            log.warning("sign-out: the token could not be revoked (%s)", exc.message)
            return None
        token, hint = (
            (session.refresh_token, "refresh_token")
            if session.refresh_token
            else (session.access_token, "access_token")
        )
        yield from self._p.provider.revoke(state.metadata, token, hint)
        return state

    def _same_origin_post(self, req: GateRequest, sid: str | None, csrf: str) -> bool:
        site = req.headers.get("sec-fetch-site")
        if site is not None and site not in ("same-origin", "none"):
            return False
        origin = req.headers.get("origin")
        ours = self._p.origin.of(req)
        if origin is not None and origin != "null" and origin != ours:
            return False
        if site == "same-origin" or (origin is not None and origin == ours):
            return True
        # Neither header (old browsers, scripts): the form's token must match.
        return bool(sid) and any(
            hmac.compare_digest(csrf.encode(), self.csrf_token(sid or "", key).encode())
            for key in self._secrets
        )

    def csrf_token(self, sid: str, key: bytes | None = None) -> str:
        """The sign-out form's token for session id ``sid``."""
        mac = hmac.new(key or self._secrets[0], b"sign-out:" + sid.encode(), hashlib.sha256)
        return mac.hexdigest()
