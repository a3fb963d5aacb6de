"""The gate's own endpoints under ``prefix`` (``/oauth2`` by default).

==============  =========  =================================================
endpoint        methods    answer
==============  =========  =================================================
``ping``        any        200 while the process is up
``ready``       any        200 when provider metadata and the store answer, else 503
``start``       GET, HEAD  302 into the sign-in; ``rd`` is where to come back
``callback``    GET, HEAD  the redirect URI: completes a sign-in
``sign_out``    GET, HEAD  the confirmation form
                POST       signs out (same origin only)
``userinfo``    GET, HEAD  the signed-in user's claims as JSON, else 401
``auth``        GET, HEAD  202 with ``X-Auth-Request-*`` (nginx ``auth_request``), else 401
==============  =========  =================================================

A wrong method is 405 with ``Allow``; any other name is 404. These paths are
never forwarded to the app.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable

from ..errors import (
    BadRequest,
    BodyTooLarge,
    IDTokenError,
    OakIDGateError,
    ProviderError,
    ProviderUnavailable,
    StoreUnavailable,
)
from .audit import audit
from .backchannel import index_key
from .bearer import Bearer
from .effects import AcquireLock, EndLinked, PingStore, Program, Random, perform, read_body
from .identity import identity_headers
from .parts import Parts
from .records import Session
from .replies import NO_STORE, Outcome, Reply, json_reply, method_not_allowed, text_reply
from .request import GateRequest, single_params
from .sessions import Sessions
from .signin import SignIn
from .signout import SignOut

log = logging.getLogger("oakid_gate")

__all__ = ["PING_REPLY", "Endpoints", "auth_reply"]

Handler = Callable[[GateRequest, float, Random], Program[Outcome]]

_GET = ("GET", "HEAD")


#: ``/oauth2/ping``: the process is up
PING_REPLY = text_reply(200, "OK")


def auth_reply(session: Session) -> Reply:
    """``/oauth2/auth``'s answer for an allowed session: 202 with ``X-Auth-Request-*``."""
    headers = tuple(
        (name.decode(), value.decode("latin-1"))  # the adapters write latin-1: UTF-8 bytes
        for name, value in identity_headers(session.user, b"x-auth-request-")
    )
    return Reply(202, headers + NO_STORE)


class Endpoints:
    """Routing and answering ``{prefix}/<name>``."""

    def __init__(self, parts: Parts, sessions: Sessions, signin: SignIn, bearer: Bearer) -> None:
        self._p = parts
        self._sessions = sessions
        self._bearer = bearer
        self._signin = signin
        self._signout = SignOut(parts)
        self._failing: tuple[str, ...] = ()  # what /ready last found failing
        #: name -> (methods, or None for any; handler)
        self._routes: dict[str, tuple[tuple[str, ...] | None, Handler]] = {
            "ping": (None, self._ping),
            "ready": (None, self._ready),
            "start": (_GET, self._start),
            "callback": (_GET, self._signin.callback),
            "sign_out": ((*_GET, "POST"), self._sign_out),
            "signed_out": (_GET, self._signed_out),
            "backchannel_logout": (("POST",), self._backchannel_logout),
            "userinfo": (_GET, self._userinfo),
            "auth": (_GET, self._auth),
        }

    def handle(self, req: GateRequest, name: str, now: float, random: Random) -> Program[Outcome]:
        route = self._routes.get(name)
        if route is None:
            return self._p.replies.not_found(req)
        methods, handler = route
        if methods is not None and req.method not in methods:
            return method_not_allowed(", ".join(methods))
        try:
            return (yield from handler(req, now, random))
        except (BadRequest, BodyTooLarge) as exc:
            # A parameter twice, a form too large or malformed: the client's fault,
            # answered with a 4xx and a log line at info, never a traceback.
            return self._p.replies.error(req, exc, "The request could not be read")

    def _ping(self, req: GateRequest, now: float, random: Random) -> Program[Outcome]:
        return PING_REPLY
        yield  # a program like every other endpoint

    def _ready(self, req: GateRequest, now: float, random: Random) -> Program[Outcome]:
        """Ready or not, and nothing more: anyone may ask, so what is wrong goes to the
        log (once per change), never into the answer."""
        problems = []
        try:
            yield from self._p.provider.load(now)
        except OakIDGateError as exc:
            problems.append(f"provider: {exc.message}")
        try:
            yield from perform(PingStore())
        except StoreUnavailable as exc:
            problems.append(f"session store: {exc.message}")
        failing = tuple(p.partition(":")[0] for p in problems)
        if failing != self._failing:  # logged when what fails changes, not every probe
            self._failing = failing
            if problems:
                log.warning("not ready: %s", "; ".join(problems))
            else:
                log.info("ready")
        return text_reply(503, "not ready") if problems else text_reply(200, "OK")

    def _start(self, req: GateRequest, now: float, random: Random) -> Program[Outcome]:
        return_to = req.params().get("rd", "/")
        return (yield from self._signin.begin(req, return_to, now, random))

    def _sign_out(self, req: GateRequest, now: float, random: Random) -> Program[Outcome]:
        if req.method != "POST":
            return (yield from self._signout.form(req))
        return (yield from self._signout.sign_out(req, now, random))

    def _backchannel_logout(self, req: GateRequest, now: float, random: Random) -> Program[Outcome]:
        """The provider ends sessions here (:mod:`.backchannel`): 200, or 400 for a
        token that is not valid, replayed or missing."""
        form = single_params((yield from read_body()).decode("latin-1"))
        token = form.get("logout_token")
        try:
            if not token:
                raise IDTokenError("the request holds no logout_token")
            logout = yield from self._p.provider.logout_token(token, now)
        except IDTokenError as exc:
            log.info("back-channel logout refused: %s", exc.message)
            return json_reply(400, {"error": "invalid_request", "error_description": exc.message})
        except ProviderError as exc:
            return json_reply(503, {"error": exc.error, "error_description": exc.message})
        jti = "logout-jti:" + hashlib.sha256(logout.jti.encode()).hexdigest()
        if not (yield from perform(AcquireLock(jti, "used", max(1.0, logout.until - now)))):
            log.info("back-channel logout refused: the logout token was used before")
            refused = "the logout token was used before"
            return json_reply(400, {"error": "invalid_request", "error_description": refused})
        ended = 0
        if logout.sid is not None:
            ended = yield from perform(EndLinked(index_key(self._p.app, "sid", logout.sid)))
        if ended == 0 and logout.sub is not None:
            ended = yield from perform(EndLinked(index_key(self._p.app, "sub", logout.sub)))
        audit("sign_out", "success", req, reason=f"backchannel ({ended} ended)", sub=logout.sub)
        return Reply(200, NO_STORE)

    def _signed_out(self, req: GateRequest, now: float, random: Random) -> Program[Outcome]:
        return self._signout.signed_out(req)
        yield  # a program like every other endpoint

    def _userinfo(self, req: GateRequest, now: float, random: Random) -> Program[Outcome]:
        session = yield from self._signed_in(req, now, random)
        if isinstance(session, Reply):
            return session
        return json_reply(200, dict(session.claims))

    def _auth(self, req: GateRequest, now: float, random: Random) -> Program[Outcome]:
        """nginx ``auth_request``: 202 with the user, 401 (sign in), 403 (not allowed by
        the gate's rules or those of the query: ``allowed_groups``, ``allowed_emails``,
        ``allowed_domains``, one location's own)."""
        try:
            rules = self._p.auth_queries.rules(req.query_string)  # a bad query: 400, first
        except BadRequest as exc:
            return self._p.replies.error_json(exc)
        session = yield from self._signed_in(req, now, random)
        if isinstance(session, Reply):
            return session
        missing = rules.refusal(session.user)
        if missing is not None:
            key = self._sessions.key(req)
            return self._p.replies.not_allowed_json(req, missing, session.user.sub, key)
        return auth_reply(session)

    def _signed_in(self, req: GateRequest, now: float, random: Random) -> Program[Session | Reply]:
        """The request's allowed session, or the 401/503 that answers it instead."""
        try:
            session = yield from self._sessions.current(req, now, random)
        except (StoreUnavailable, ProviderUnavailable) as exc:
            return json_reply(503, {"error": exc.error, "error_description": exc.message})
        if session is None:
            try:
                bearer = yield from self._bearer.session(req, now)
            except (ProviderUnavailable, StoreUnavailable) as exc:
                return json_reply(503, {"error": exc.error, "error_description": exc.message})
            if bearer is None:
                return self._p.replies.unauthenticated(req)
            if isinstance(bearer, Reply):
                return bearer
            session = bearer
        missing = self._p.rules.refusal(session.user)
        if missing is not None:
            key = self._sessions.key(req)
            return self._p.replies.not_allowed(
                req, missing, session.user.sub, key, session.user.display_name
            )
        return session
