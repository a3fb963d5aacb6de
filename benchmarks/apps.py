"""The hello app and its variants, as uvicorn and ``oakid-gate run`` serve them.

Served from this directory (``uvicorn apps:hello``, ``uvicorn --factory
apps:gated_app``, ``oakid-gate run apps:hello``). Every variant answers ``/``
(and ``/public``) with the same 13-byte body, :data:`BODY`.

``hello``
    Starlette, one route: the baseline of every comparison.
``floor_app()``
    ``hello`` behind the least a cookie session can cost: the ``Cookie``
    header parsed into a dict and a user put into the scope.
``null_app()``, ``keys_app()``, ``two_keys_app()``
    ``hello`` behind a middleware that only calls it, behind one that only
    puts the gate's four scope keys in, and behind one that puts only ``user``
    and ``auth`` in (diagnostics: what being a middleware, those keys, and the
    scope's resize that the third key causes, cost).
``sessions_app()``
    ``hello`` behind Starlette's ``SessionMiddleware`` and a small auth
    middleware reading the user from the session (the hand-rolled Authlib
    path); ``/login`` signs in (sets the session) for the benchmark.
``gated_app()``
    ``hello`` behind ``OakIDMiddleware``, every setting from ``OAKID_*``.
``seeded_app()``
    ``gated_app()`` with one session written into its store at start-up under
    :data:`SEEDED_SID` (no provider: :mod:`instructions` counts the hot path).

Only Starlette is imported at module level: ``uvicorn apps:hello`` must not
pay for importing oakid_gate (start-up times are compared).
"""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request, cookie_parser
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = [
    "BODY",
    "SEEDED_SID",
    "floor_app",
    "gated_app",
    "hello",
    "hello_app",
    "keys_app",
    "null_app",
    "seed",
    "seeded_app",
    "sessions_app",
    "two_keys_app",
]

BODY = b"Hello, world!"
#: the key SessionMiddleware signs its cookie with (a fixed one: it is a benchmark)
SESSION_KEY = "bench-session-middleware-key-0123456789"


async def _hello(request: Request) -> PlainTextResponse:
    return PlainTextResponse(BODY)


def hello_app() -> Starlette:
    """The bare hello app."""
    return Starlette(routes=[Route("/", _hello), Route("/public", _hello)])


hello = hello_app()


class CookieFloor:
    """The floor: ``Cookie`` -> dict -> ``scope["user"]``, nothing else."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            for name, value in scope["headers"]:
                if name == b"cookie":
                    cookies = cookie_parser(value.decode("latin-1"))
                    scope["user"] = {"sid": cookies.get("oakid_session")}
                    break
        await self.app(scope, receive, send)


def floor_app() -> CookieFloor:
    return CookieFloor(hello_app())


class PassThrough:
    """A middleware that only calls the app."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


class ScopeKeys(PassThrough):
    """A middleware that only puts the gate's four keys into the scope (Starlette's scope
    then holds 23: past what a 32-slot dict holds, so it is resized on each request)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["oakid.gate"], scope["user"], scope["auth"], scope["oakid"] = self, 1, 2, 3
        await self.app(scope, receive, send)


class TwoScopeKeys(PassThrough):
    """A middleware that puts only ``user`` and ``auth`` into the scope: 21 keys, what a
    32-slot dict holds, so no resize (:class:`ScopeKeys` less the resize)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["user"], scope["auth"] = 1, 2
        await self.app(scope, receive, send)


def null_app() -> PassThrough:
    return PassThrough(hello_app())


def keys_app() -> ScopeKeys:
    return ScopeKeys(hello_app())


def two_keys_app() -> TwoScopeKeys:
    return TwoScopeKeys(hello_app())


class SessionUser:
    """Behind ``SessionMiddleware``: a 401 without ``session["user"]``, else the user
    in ``scope["user"]``; ``/login`` puts a user in the session."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        session: dict[str, Any] = scope["session"]
        if scope["path"] == "/login":
            session["user"] = {"sub": "alice", "email": "alice@example.test", "name": "Alice"}
            await PlainTextResponse("signed in")(scope, receive, send)
            return
        user = session.get("user")
        if user is None:
            await Response(status_code=401)(scope, receive, send)
            return
        scope["user"] = user
        await self.app(scope, receive, send)


def sessions_app() -> SessionMiddleware:
    return SessionMiddleware(SessionUser(hello_app()), secret_key=SESSION_KEY)


def gated_app() -> ASGIApp:
    """``hello`` behind ``OakIDMiddleware``, configured by the ``OAKID_*`` variables."""
    from oakid_gate import OakIDMiddleware

    return OakIDMiddleware(hello_app())


#: the session id of :func:`seeded_app`'s one session (a benchmark's, not a secret)
SEEDED_SID = "bench-seeded-session-0123456789abcdefghijklm"


def seeded_app() -> ASGIApp:
    """:func:`gated_app` with one signed-in session already in its store (:func:`seed`)."""
    from oakid_gate import OakIDMiddleware

    gate = OakIDMiddleware(hello_app())
    seed(gate)
    return gate


def seed(gate: Any) -> None:
    """Write into ``gate``'s store, under :data:`SEEDED_SID`, one session as a sign-in at
    OakID writes it (claims, tokens, scopes), due for nothing for ten hours."""
    import time

    from oakid_gate.gate.records import Session

    now = time.time()
    session = Session(
        claims={
            "sub": "u-4f1c2a",
            "email": "alice@example.test",
            "email_verified": True,
            "name": "Alice Example",
            "groups": ["staff", "dashboards"],
        },
        access_token="a" * 600,
        refresh_token="r" * 64,
        expires_at=now + 36_000,
        refresh_at=now + 35_700,
        scopes=("openid", "profile", "email"),
        created_at=now,
        last_seen=now,
        claims_at=now,
    )
    gate.store.put_session(gate.gate.parts.session_key(SEEDED_SID), session, 36_000)
