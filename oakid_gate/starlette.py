"""Starlette helpers: a route's own rules, and the gate as an ``AuthenticationBackend``.

::

    from oakid_gate.starlette import requires

    @requires(groups=["admins"])                    # signed in, in one of the groups
    async def admin(request): ...

    @requires(claims={"department": "eng"}, scopes=["reports:read"])
    async def reports(request): ...

:func:`requires` guards an endpoint (a function or an ``HTTPEndpoint`` method,
sync or async, HTTP or WebSocket) with rules of its own, on top of the gate's:
any of ``groups`` (the gate's ``groups_claim``), every ``claims`` entry (matched
as ``required_claims`` is), every ``scopes`` entry granted to the session. It
answers as the gate does: nobody signed in (a public path) is sent into the
sign-in when the request is a browser navigation and gets the 401 JSON
otherwise; a user the rules refuse gets the 403 page, or its JSON for API
clients, naming what is missing. A refused WebSocket is closed before it is
accepted (the server answers 403). The rules are checked by the gate's own
:class:`~oakid_gate.gate.authorization.Rules`.

:class:`OakIDBackend` is the gate as a Starlette ``AuthenticationBackend``, for
apps that put ``AuthenticationMiddleware`` inside the gate to combine it with
other authentication (API keys, say)::

    app = Starlette(routes=routes, middleware=[
        Middleware(AuthenticationMiddleware, backend=OakIDBackend(ApiKeyBackend())),
    ])
    app = OakIDMiddleware(app, public_paths=["/api/*"])

It gives the gate's signed-in user first, then asks the other backends in turn,
and gives the anonymous user when none of them knows the request (never
Starlette's ``UnauthenticatedUser``). Starlette's own ``@requires("authenticated")``
works with or without it.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from starlette.authentication import AuthCredentials, AuthenticationBackend, BaseUser
from starlette.requests import HTTPConnection
from starlette.responses import Response
from starlette.websockets import WebSocket

from .asgi import OakIDMiddleware
from .gate.authorization import RouteRules
from .gate.replies import Reply
from .user import ANONYMOUS, OakIDUser, SessionView

__all__ = ["OakIDBackend", "gate_of", "requires", "route_reply"]

F = TypeVar("F", bound=Callable[..., Any])


def gate_of(conn: HTTPConnection) -> OakIDMiddleware:
    """The gate in front of this request; ``RuntimeError`` when there is none, so a
    missing gate is never mistaken for a signed-out user."""
    gate = conn.scope.get("oakid.gate")
    if not isinstance(gate, OakIDMiddleware):
        raise RuntimeError(
            "no oakid-gate in front of this app: wrap it, app = OakIDMiddleware(app, ...), "
            "or app.add_middleware(OakIDMiddleware, ...)"
        )
    return gate


def _granted(conn: HTTPConnection) -> tuple[str, ...]:
    view = conn.scope.get("oakid")
    return view.scopes if isinstance(view, SessionView) else ()


def route_reply(conn: HTTPConnection, rules: RouteRules, *, api: bool = False) -> Reply | None:
    """The gate's answer for ``conn`` on a route guarded by ``rules``: ``None`` to go
    on (:meth:`~oakid_gate.gate.Gate.route_reply`)."""
    gate = gate_of(conn)
    user = conn.scope.get("user")
    return gate.gate.route_reply(
        gate.gate_request(conn.scope), user, _granted(conn), rules, api=api
    )


def _response(reply: Reply) -> Response:
    return Response(reply.body, reply.status, headers=dict(reply.headers))


def requires(
    *,
    groups: str | Iterable[str] = (),
    claims: Mapping[str, Any] | Iterable[str] = (),
    scopes: str | Iterable[str] = (),
) -> Callable[[F], F]:
    """Guard an endpoint: signed in, and these rules of its own (see the module's docs).
    With no rule, a sign-in alone is required (for endpoints on public paths)."""
    rules = RouteRules(groups=groups, claims=claims, scopes=scopes)

    def decorate(endpoint: F) -> F:
        if inspect.iscoroutinefunction(endpoint):

            @functools.wraps(endpoint)
            async def guarded(*args: Any, **kwargs: Any) -> Any:
                conn = _connection(endpoint, args, kwargs)
                reply = route_reply(conn, rules)
                if reply is None:
                    return await endpoint(*args, **kwargs)
                if isinstance(conn, WebSocket):
                    await conn.close(code=1008)  # before accepting: the server answers 403
                    return None
                return _response(reply)

            return guarded  # type: ignore[return-value]

        @functools.wraps(endpoint)
        def guarded_sync(*args: Any, **kwargs: Any) -> Any:
            reply = route_reply(_connection(endpoint, args, kwargs), rules)
            return endpoint(*args, **kwargs) if reply is None else _response(reply)

        return guarded_sync  # type: ignore[return-value]

    return decorate


def _connection(endpoint: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> HTTPConnection:
    """The request (or WebSocket) among an endpoint's arguments."""
    for value in (*args, *kwargs.values()):
        if isinstance(value, HTTPConnection):
            return value
    raise TypeError(f"{endpoint!r} was not given a request or WebSocket to guard")


class OakIDBackend(AuthenticationBackend):
    """The gate's user as a Starlette authentication backend (see the module's docs);
    ``others`` are asked in turn when nobody is signed in at the gate."""

    def __init__(self, *others: AuthenticationBackend) -> None:
        self.others = others

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, BaseUser]:
        gate_of(conn)  # only the gate's own scope["user"] counts
        user = conn.scope.get("user")
        if isinstance(user, OakIDUser):
            return AuthCredentials(["authenticated", *_granted(conn)]), user
        for backend in self.others:
            result = await backend.authenticate(conn)
            if result is not None:
                return result
        return AuthCredentials(), ANONYMOUS
