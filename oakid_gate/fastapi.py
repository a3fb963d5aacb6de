"""FastAPI dependencies: the signed-in user, the session, and a route's own rules.

::

    from typing import Annotated
    from fastapi import Depends, FastAPI
    from oakid_gate import OakIDMiddleware, OakIDUser
    from oakid_gate.fastapi import CurrentSession, CurrentUser, OptionalUser, requires

    api = FastAPI()

    @api.get("/me")
    async def me(user: CurrentUser): ...                 # 401 when nobody is signed in

    @api.get("/")
    async def home(user: OptionalUser): ...              # None on a public path

    @api.get("/reports")
    async def reports(session: CurrentSession): ...      # session.access_token, fresh

    @api.get("/admin", dependencies=[Depends(requires(groups=["admins"]))])
    async def admin(): ...                               # 403 unless in a group

    Admin = Annotated[OakIDUser, Depends(requires(groups="admins", scopes="reports:read"))]

    app = OakIDMiddleware(api, public_paths=["/", "/docs", "/openapi.json"])

The gate already turned away whoever may not pass at all; these judge a route
on public paths (nobody signed in: 401) and a route's own rules (403): any of
``groups`` (the gate's ``groups_claim``), every ``claims`` entry (matched as
``required_claims`` is), every ``scopes`` entry granted to the session, checked
by the gate's own :class:`~oakid_gate.gate.authorization.Rules`. Refusals are
``HTTPException``\\ s whose ``detail`` is the gate's own JSON answer (``error``,
``login_url`` or ``missing``), with the gate's headers (``WWW-Authenticate``,
``no-store``); the 403 is an audit event like the gate's.

Routes that need a sign-in carry the :data:`oakid_session` security scheme, so
``/openapi.json`` (and ``/docs``) mark them: an API key in the session cookie
(``oakid_session``, ``__Host-oakid_session`` on https), which a browser signed
in at ``/oauth2/start`` sends by itself.

This module needs FastAPI (``pip install 'oakid-gate[fastapi]'``).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Annotated, Any

try:
    from fastapi import Depends, HTTPException
    from fastapi.openapi.models import APIKey, APIKeyIn
    from fastapi.security.base import SecurityBase
except ImportError as exc:  # pragma: no cover - exercised without FastAPI installed
    raise ImportError(
        "oakid_gate.fastapi needs FastAPI, which is not installed: pip install fastapi "
        "(or pip install 'oakid-gate[fastapi]')"
    ) from exc
from starlette.requests import HTTPConnection

from .gate.authorization import RouteRules
from .gate.replies import Reply
from .starlette import gate_of, route_reply
from .user import OakIDUser, SessionView

__all__ = [
    "CurrentSession",
    "CurrentUser",
    "OakIDSessionCookie",
    "OptionalUser",
    "current_session",
    "current_user",
    "oakid_session",
    "optional_user",
    "requires",
]

#: the ``cookie_name`` setting's default
_COOKIE = "oakid_session"


class OakIDSessionCookie(SecurityBase):
    """The OpenAPI security scheme of the gate's session cookie. As a dependency it
    reads nothing (the gate has judged the cookie already): it only marks the route."""

    def __init__(self, cookie_name: str = _COOKIE, scheme_name: str = "oakid") -> None:
        self.model = APIKey(
            **{"in": APIKeyIn.cookie},  # type: ignore[arg-type]  # as FastAPI's APIKeyCookie
            name=cookie_name,
            description=(
                f"The oakid-gate session cookie ({cookie_name}; __Host-{cookie_name} on "
                "https), which a browser signed in at /oauth2/start sends by itself."
            ),
        )
        self.scheme_name = scheme_name

    async def __call__(self) -> None:
        return None


#: the security scheme that the dependencies needing a sign-in carry
oakid_session = OakIDSessionCookie()


def _refuse(reply: Reply) -> HTTPException:
    """The gate's JSON answer as an ``HTTPException`` (its body as the ``detail``)."""
    headers = {k: v for k, v in reply.headers if k != "content-type"}
    return HTTPException(reply.status, detail=json.loads(reply.body), headers=headers)


async def optional_user(conn: HTTPConnection) -> OakIDUser | None:
    """The signed-in user, or ``None`` (a public path without a session)."""
    gate_of(conn)
    user = conn.scope.get("user")
    return user if isinstance(user, OakIDUser) else None


async def current_user(
    conn: HTTPConnection, _: Annotated[None, Depends(oakid_session)]
) -> OakIDUser:
    """The signed-in user; 401 (the gate's JSON, ``WWW-Authenticate``) when nobody is."""
    user = await optional_user(conn)
    if user is None:
        gate = gate_of(conn)
        raise _refuse(gate.gate.parts.replies.unauthenticated(gate.gate_request(conn.scope)))
    return user


async def current_session(
    conn: HTTPConnection, _: Annotated[OakIDUser, Depends(current_user)]
) -> SessionView:
    """The session: a fresh ``access_token`` to call APIs with, ``claims``, ``scopes``."""
    view = conn.scope.get("oakid")
    if not isinstance(view, SessionView):
        raise RuntimeError("the gate's user without its session view")
    return view


def requires(
    *,
    groups: str | Iterable[str] = (),
    claims: Mapping[str, Any] | Iterable[str] = (),
    scopes: str | Iterable[str] = (),
) -> Callable[..., Awaitable[OakIDUser]]:
    """A dependency: the signed-in user (401 when nobody is) who meets these rules
    (403 naming what is missing when not). See the module's docs."""
    rules = RouteRules(groups=groups, claims=claims, scopes=scopes)

    async def allowed_user(
        conn: HTTPConnection, user: Annotated[OakIDUser, Depends(current_user)]
    ) -> OakIDUser:
        reply = route_reply(conn, rules, api=True)
        if reply is not None:
            raise _refuse(reply)
        return user

    return allowed_user


#: the signed-in user (401 when nobody is)
CurrentUser = Annotated[OakIDUser, Depends(current_user)]
#: the signed-in user, or ``None``
OptionalUser = Annotated[OakIDUser | None, Depends(optional_user)]
#: the signed-in user's session, with a fresh access token (401 when nobody is signed in)
CurrentSession = Annotated[SessionView, Depends(current_session)]
