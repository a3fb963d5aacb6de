"""The :class:`Gate`: the core's parts composed, and what every adapter calls.

An adapter (ASGI, WSGI) does this for each request:

1. remove client-sent identity headers (:mod:`~oakid_gate.gate.identity`);
2. the hot path, for anything outside the gate's own endpoints (every path
   outside :attr:`Gate.prefix`; under it, :meth:`Gate.hot_target` says): parse
   the cookies, take the store key with :meth:`Gate.hot_key`, read the session
   (one store read) and ask :meth:`Gate.hot_outcome` (the ASGI adapter keeps
   :meth:`Gate.admission`'s answer beside each ``Cookie`` header and asks again
   for another session object); if it passes, call the app;
3. otherwise build a :class:`~oakid_gate.gate.request.GateRequest` with
   :meth:`Gate.request` and drive :meth:`Gate.handle` with a driver
   (:mod:`oakid_gate.drivers`): its :data:`~oakid_gate.gate.replies.Outcome` says
   to call the app (with a session, or anonymously) or to answer directly.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Mapping
from typing import Literal, TypeGuard, TypeVar

from ..errors import BadRequest, ProviderUnavailable, StoreUnavailable
from ..settings import Settings
from ..user import OakIDUser
from .authorization import RouteRules
from .bearer import Bearer
from .effects import Program, Random
from .endpoints import PING_REPLY, Endpoints, auth_reply
from .parts import Parts
from .provider import ProviderState
from .records import Session, session_key
from .replies import Forward, Outcome, Reply
from .request import GateRequest, is_navigation, pick_request_id
from .sessions import Sessions
from .signin import SignIn

__all__ = [
    "ADMISSIONS",
    "AUTH_REPLIES",
    "PING_REPLY",
    "Admission",
    "Gate",
    "HotTarget",
    "prefix_end",
]

#: what an adapter's public-path check reads (its request, in its own form)
R = TypeVar("R")
#: what the hot path answers: the app, /oauth2/auth (nginx auth_request), /oauth2/ping
HotTarget = Literal["app", "auth", "ping"]
#: how many /oauth2/auth answers are kept, one per session object
AUTH_REPLIES = 4096
#: how many admissions are kept, one per session object (the hot path's memo)
ADMISSIONS = 4096
#: a session, until when it passes as it is, and its Forward (:meth:`Gate.admission`)
Admission = tuple[Session, float, Forward]
#: the app, called with nobody signed in (a public path)
ANONYMOUS_FORWARD = Forward(None)


def prefix_end(prefix: str) -> str:
    """The least string above every string that starts with ``prefix`` (not empty, not
    all U+10FFFF): ``prefix <= path < prefix_end(prefix)`` is ``path.startswith(prefix)``,
    without a method call (on Python 3.11 ``str.startswith`` is a generic call, the
    hot path's dearest test of every request; a property test keeps the two equal)."""
    stem = prefix.rstrip("\U0010ffff")  # a path starting with it has only these after
    return stem[:-1] + chr(ord(stem[-1]) + 1)


def _nobody(request: object) -> bool:
    """``is_public`` for :meth:`Gate.admit`, which asks about a session only."""
    return False


class Gate:
    """The decisions of one gate, configured once."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.parts = Parts.build(settings)
        self.sessions = Sessions(self.parts)
        self.signin = SignIn(self.parts)
        self.bearer = Bearer(self.parts)
        self.endpoints = Endpoints(self.parts, self.sessions, self.signin, self.bearer)
        #: every path outside it is the app's (:meth:`hot_target`'s first test)
        self.prefix = settings.prefix
        #: ``prefix <= path < prefix_end``: the path starts with the prefix
        self.prefix_end = prefix_end(settings.prefix)
        self._prefix_slash = settings.prefix + "/"
        # What the hot path needs, looked up once.
        self._passes_until = self.parts.lifecycle.passes_until
        self._rules = self.parts.rules
        self._session_names = self.parts.cookies.session_names_by_scheme()
        self._proxied = bool(self.parts.proxies)
        self._app = self.parts.app
        self._auth_path = settings.prefix + "/auth"
        self._ping_path = settings.prefix + "/ping"
        #: /oauth2/auth's 202, built once per session object (bounded)
        self._auth_replies: dict[int, tuple[Session, Reply]] = {}
        #: until when each session object read passes as it is (bounded; :meth:`admit`)
        self._admissions: dict[int, Admission] = {}

    # ------------------------------------------------------------ the hot path

    def is_gate_path(self, path: str) -> bool:
        return path == self.prefix or path.startswith(self._prefix_slash)

    def hot_target(self, path: str, method: str) -> HotTarget | None:
        """What the hot path may answer for this request: the app (``"app"``), the
        ``auth`` endpoint for nginx (``"auth"``), ``ping`` (``"ping"``: no session
        needed, :data:`PING_REPLY`), or nothing (``None``: only the full path may
        answer the gate's other endpoints)."""
        if not (self.prefix <= path < self.prefix_end) or not self.is_gate_path(path):
            return "app"  # the first test alone decides nearly every request
        if path == self._auth_path and method in ("GET", "HEAD"):
            return "auth"
        if path == self._ping_path and method:
            return "ping"
        return None

    def passes_anonymously(self, root_path: str, routed_path: str, method: str) -> bool:
        """Whether a request with no session reaches the app: a public path under the
        configured mount prefix (the hot path's shortcut for what :meth:`handle`
        would decide; :class:`~.access.PublicPaths`)."""
        return self.parts.public_paths.admits(root_path, routed_path, method)

    def auth_reply(self, session: Session, query_string: str = "") -> Reply | None:
        """``/oauth2/auth``'s 202 for an admitted session, from the hot path; ``None`` when
        the rules in its query (``allowed_groups``, ...) refuse the user or cannot be
        read: the full path answers that (403, 400) and logs it with the request."""
        if query_string:
            try:
                missing = self.parts.auth_queries.rules(query_string).refusal(session.user)
            except BadRequest:
                return None
            if missing is not None:
                return None
        cached = self._auth_replies.get(id(session))
        if cached is not None and cached[0] is session:
            return cached[1]
        reply = auth_reply(session)
        if len(self._auth_replies) >= AUTH_REPLIES:
            self._auth_replies.clear()
        self._auth_replies[id(session)] = (session, reply)
        return reply

    def hot_key(self, cookies: Mapping[str, str], scheme: str) -> str | None:
        """The store key of the session cookie, for the hot path; ``None`` means take the full path.

        With ``trusted_proxies`` the scheme (and so the cookie's name) depends on
        forwarded headers, so the full path, which reads them, decides instead.
        """
        if self._proxied:
            return None
        sid = cookies.get(self._session_names[scheme])
        return session_key(self._app, sid) if sid else None

    def hot_outcome(
        self,
        target: HotTarget,
        session: Session | None,
        now: float,
        query: str,
        is_public: Callable[[R], bool],
        request: R,
    ) -> Outcome | None:
        """The hot path's decision on the session just read (every adapter's):
        ``Forward(session)`` to the app, the ``auth`` endpoint's reply, ``Forward(None)``
        for nobody signed in on a public path (``is_public(request)`` is asked only
        then), or ``None``: the full path decides. A session that is there but not
        admitted as it is never passes as anonymous. ``query`` is read for ``auth`` only."""
        if session is not None:
            kept = self.admission(session)
            if now < kept[1]:
                if target == "app":
                    return kept[2]
                reply = self.auth_reply(session, query)
                if reply is not None:  # else refused by the query: the full path says so
                    return reply
        elif target == "app" and is_public(request):
            return ANONYMOUS_FORWARD
        return None

    def admit(self, session: Session | None, now: float) -> TypeGuard[Session]:
        """Whether a session just read from the store passes as it is.

        True means nothing more is needed (the lifecycle says pass, the
        allow-lists admit). False means: run :meth:`handle`, which reads the
        session again and does what is needed.

        Both rules are pure functions of the session (a record is never changed:
        a refresh or a touch writes a new one), so :meth:`hot_outcome` decides them
        once per session object and keeps "passes until" with its ``Forward``
        (bounded by :data:`ADMISSIONS`; the object is held, so its ``id`` is never
        another's).
        """
        return (
            session is not None
            and self.hot_outcome("app", session, now, "", _nobody, None) is not None
        )

    def admission(self, session: Session) -> Admission:
        """``(session, passes_until, Forward(session))``: until when ``session`` passes as it
        is (``-inf``: refused by the allow-lists; the lifecycle's time otherwise), decided
        once per session object (see :meth:`admit`). An adapter may keep the answer
        beside the cookie it read the session under, and ask again when the store
        gives it another object."""
        kept = self._admissions.get(id(session))
        if kept is None or kept[0] is not session:
            kept = self._admission(session)
        return kept

    def _admission(self, session: Session) -> Admission:
        rules = self._rules
        refused = rules.restricted and rules.refusal(session.user) is not None
        kept = (session, -math.inf if refused else self._passes_until(session), Forward(session))
        if len(self._admissions) >= ADMISSIONS:
            self._admissions.clear()
        self._admissions[id(session)] = kept
        return kept

    # ------------------------------------------------------------ the full path

    def request(
        self,
        *,
        method: str,
        scheme: str,
        path: str,
        query_string: str,
        headers: dict[str, str],
        cookies: Mapping[str, str],
        client: str | None,
        root_path: str = "",
        app_path: str | None = None,
        generated_id: str = "",
    ) -> GateRequest:
        """A :class:`GateRequest`; with a trusted proxy as ``client``, its forwarded
        scheme and host count (``headers`` is updated)."""
        return GateRequest(
            method=method,
            scheme=self.parts.proxies.apply(client, scheme, headers),
            path=path,
            query_string=query_string,
            headers=headers,
            cookies=cookies,
            client=client,
            root_path=root_path,
            app_path=app_path,
            request_id=pick_request_id(headers.get("x-request-id"), generated_id),
        )

    def handle(self, req: GateRequest, now: float, random: Random) -> Program[Outcome]:
        """Decide what to do with one request."""
        if self.is_gate_path(req.path):
            name = req.path[len(self._prefix_slash) :]
            return self.endpoints.handle(req, name, now, random)
        return self._protected(req, now, random)

    def _protected(self, req: GateRequest, now: float, random: Random) -> Program[Outcome]:
        try:
            session = yield from self.sessions.current(req, now, random)
        except StoreUnavailable as exc:
            return self.store_failed(req, exc)
        except ProviderUnavailable as exc:
            return self.parts.replies.error(req, exc, "The identity provider is not answering")
        if session is not None:
            missing = self._rules.refusal(session.user)
            if missing is not None:
                key = self.sessions.key(req)
                return self.parts.replies.not_allowed(
                    req, missing, session.user.sub, key, session.user.display_name
                )
            return Forward(session)
        if self.is_public(req) or self._preflight(req):
            return Forward(None)
        try:
            bearer = yield from self.bearer.session(req, now)
        except ProviderUnavailable as exc:
            return self.parts.replies.error(req, exc, "The identity provider is not answering")
        if isinstance(bearer, Reply):
            return bearer
        if bearer is not None:
            missing = self._rules.refusal(bearer.user)
            if missing is not None:
                return self.parts.replies.not_allowed_json(req, missing, bearer.user.sub)
            return Forward(bearer)
        if is_navigation(req):
            return (yield from self.signin.begin(req, req.url_path, now, random))
        return self.parts.replies.unauthenticated(req)

    def is_public(self, req: GateRequest) -> bool:
        """Whether ``req`` may pass without a session (:meth:`passes_anonymously`)."""
        return self.passes_anonymously(req.root_path, req.routed_path, req.method)

    def _preflight(self, req: GateRequest) -> bool:
        """A CORS preflight (``OPTIONS`` with ``Origin`` and ``Access-Control-Request-Method``)
        passes anonymously with ``skip_preflight``: browsers send it without cookies."""
        return (
            self.settings.skip_preflight
            and req.method == "OPTIONS"
            and "origin" in req.headers
            and "access-control-request-method" in req.headers
        )

    def store_failed(self, req: GateRequest, exc: StoreUnavailable) -> Outcome:
        """The answer when the store fails: a 503, never anonymous, except on public paths."""
        if self.is_public(req):
            return Forward(None)  # a public path does not need the store
        return self.parts.replies.error(req, exc, "The session store is not answering")

    def websocket_allowed(self, req: GateRequest) -> bool:
        """Whether a WebSocket handshake may reach the app: its ``Origin`` is the site's
        own or one of ``allowed_origins`` (:class:`~oakid_gate.gate.access.WebSocketOrigins`)."""
        own = self.parts.origin.of(req)
        return self.parts.websocket_origins.allows(req.headers.get("origin"), own)

    def route_reply(
        self,
        req: GateRequest,
        user: object,
        scopes: Collection[str],
        rules: RouteRules,
        *,
        api: bool = False,
    ) -> Reply | None:
        """What a route of the app guarded by ``rules`` (the framework helpers) answers:
        ``None`` to call it; with nobody signed in, a navigation goes into the sign-in
        (not with ``api``) and anything else gets the 401; a user ``rules`` refuse gets
        the 403 naming what is missing (a page or JSON as the gate's own; JSON with
        ``api``). ``user`` is the request's: the gate's, or (under Starlette's
        ``AuthenticationMiddleware``) another backend's, which no group, claim or scope
        rule admits; ``scopes`` are those its session was granted."""
        replies = self.parts.replies
        if getattr(user, "is_authenticated", False) is not True:
            return (
                replies.sign_in(req)
                if not api and is_navigation(req)
                else replies.unauthenticated(req)
            )
        if isinstance(user, OakIDUser):
            missing = rules.rules(self.settings).refusal(user, scopes)
            sub: str | None = user.sub
        else:
            missing = "a sign-in with this site's identity provider" if rules.restricted else None
            sub = None
        if missing is None:
            return None
        if api:
            return replies.not_allowed_json(req, missing, sub, self.sessions.key(req))
        return replies.not_allowed(req, missing, sub, self.sessions.key(req))

    def load_provider(self, now: float) -> Program[ProviderState]:
        """Fetch discovery and keys now (start-up, ``check``, readiness)."""
        return self.parts.provider.load(now)
