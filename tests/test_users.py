"""One user type everywhere (issue 12 item 1): the anonymous user has every attribute of
``OakIDUser``, empty; both are Starlette users; the ASGI and WSGI middleware hand it out on
public paths, and only the gate's own user, session and middleware reach the app."""

from __future__ import annotations

import copy
import inspect
import json
import pickle
from collections.abc import Iterable
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.authentication import BaseUser
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient
from starlette.types import ASGIApp, Receive, Scope, Send
from support.route_rules import ALICE, FORGED, SETTINGS

import oakid_gate
import oakid_gate.user
from oakid_gate import OakIDMiddleware, OakIDWSGIMiddleware
from oakid_gate.testing import session_cookie
from oakid_gate.user import (
    ANONYMOUS,
    GRANTED_KEPT,
    NO_SCOPES,
    GrantedScopes,
    OakIDAnonymousUser,
    OakIDUser,
    granted,
)

#: what both user types answer, and what the anonymous user answers for each
ANONYMOUS_VALUES: dict[str, Any] = {
    "is_authenticated": False,
    "is_active": False,
    "is_anonymous": True,
    "sub": None,
    "email": None,
    "name": None,
    "groups": (),
    "claims": {},
    "display_name": "",
    "identity": "",
    "has_identity": False,
}


def _public_names(cls: type) -> set[str]:
    return {n for n, _ in inspect.getmembers(cls) if not n.startswith("_")} | {
        n for n in getattr(cls, "__slots__", ()) if not n.startswith("_")
    }


def test_the_anonymous_user_has_every_attribute_of_the_user() -> None:
    assert _public_names(OakIDUser) == _public_names(OakIDAnonymousUser) == {*ANONYMOUS_VALUES, "get_id"}
    assert {name: getattr(ANONYMOUS, name) for name in ANONYMOUS_VALUES} == ANONYMOUS_VALUES
    assert ANONYMOUS.get_id() is None
    assert oakid_gate.OakIDAnonymousUser is OakIDAnonymousUser


def test_the_anonymous_users_claims_cannot_be_changed() -> None:
    with pytest.raises(TypeError):
        ANONYMOUS.claims["sub"] = "admin"  # type: ignore[index]


def test_the_signed_in_user_answers_the_same_names() -> None:
    user = OakIDUser({**ALICE, "groups": ["admins"]})
    assert (user.is_authenticated, user.is_active, user.is_anonymous) == (True, True, False)
    assert (user.sub, user.email, user.name, user.groups) == ("u-alice", "alice@example.test", "Alice", ("admins",))
    assert (user.display_name, user.identity, user.get_id()) == ("Alice", "u-alice", "u-alice")
    assert OakIDUser(ALICE, "email").get_id() == "alice@example.test"  # the user_claim


@pytest.mark.parametrize("user", [ANONYMOUS, OakIDUser(ALICE)], ids=["anonymous", "signed-in"])
def test_both_are_starlette_users(user: BaseUser) -> None:
    assert isinstance(user, BaseUser)
    assert isinstance(user.is_authenticated, bool) and isinstance(user.display_name, str) and isinstance(user.identity, str)


# ---------------------------------------------------------------- ASGI


def _seen(request: Request) -> JSONResponse:
    scope = request.scope
    return JSONResponse(
        {
            "user_is_anonymous": scope["user"] is ANONYMOUS,
            "sub": scope["user"].sub,
            "auth": list(scope["auth"].scopes),
            "view": "oakid" in scope,
            "gate_is_the_middleware": isinstance(scope.get("oakid.gate"), OakIDMiddleware),
        }
    )


class Forger:
    """An outer layer (a buggy middleware, a test harness) that puts its own values in the
    scope's ``oakid`` keys before the gate."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope.update({"oakid": "forged", "oakid.gate": "forged", "user": "forged"})
        await self.app(scope, receive, send)


def test_asgi_public_paths_give_the_anonymous_user_and_nothing_forged() -> None:
    gate = OakIDMiddleware(Starlette(routes=[Route("/public/x", _seen), Route("/private", _seen)]), **SETTINGS)
    with TestClient(Forger(gate)) as client:
        anonymous = client.get("/public/x", headers=FORGED).json()
        client.cookies.set(*session_cookie(gate, ALICE))
        signed_in = client.get("/private", headers=FORGED).json()
    assert anonymous == {"user_is_anonymous": True, "sub": None, "auth": [], "view": False, "gate_is_the_middleware": True}
    assert signed_in == {
        "user_is_anonymous": False,
        "sub": "u-alice",
        "auth": ["authenticated", "openid", "profile", "email"],
        "view": True,
        "gate_is_the_middleware": True,
    }


def _grants_itself_admin(request: Request) -> JSONResponse:
    """An app (or a middleware after the gate) that tries to widen what it was granted."""
    auth = request.scope["auth"]
    refused = []
    for attempt in (
        lambda: auth.scopes.append("admin"),
        lambda: auth.scopes.extend(["admin"]),
        lambda: auth.scopes.insert(0, "admin"),
        lambda: auth.scopes.__setitem__(slice(None), ["admin"]),
        lambda: auth.scopes.__iadd__(["admin"]),
        lambda: auth.scopes.clear(),
        lambda: setattr(auth, "scopes", ["authenticated", "admin"]),
        lambda: delattr(auth, "scopes"),
    ):
        try:
            attempt()
        except (AttributeError, TypeError):
            refused.append(True)
    return JSONResponse({"refused": refused, "scopes": list(auth.scopes)})


def test_an_app_cannot_grant_scopes_to_the_requests_after_it() -> None:
    """``scope["auth"]`` is one read-only object per session (and one for every anonymous
    request): a request that tries to change it fails, and the next request, of the
    same session or of anyone anonymous, is granted what the provider granted."""
    routes = [Route("/public/x", _grants_itself_admin), Route("/private", _grants_itself_admin)]
    gate = OakIDMiddleware(Starlette(routes=routes), **SETTINGS)
    granted = ["authenticated", "openid", "profile", "email"]
    with TestClient(gate) as client:
        for _ in range(2):
            assert client.get("/public/x").json() == {"refused": [True] * 8, "scopes": []}
        client.cookies.set(*session_cookie(gate, ALICE))
        for _ in range(2):
            assert client.get("/private").json() == {"refused": [True] * 8, "scopes": granted}


def test_scope_auth_is_starlettes_credentials_and_starlettes_rules_read_it() -> None:
    from starlette.authentication import AuthCredentials, has_required_scope

    credentials = GrantedScopes(("authenticated", "email"))
    assert isinstance(credentials, AuthCredentials) and credentials.scopes == ["authenticated", "email"]
    assert isinstance(credentials.scopes, list) and json.dumps(credentials.scopes) == '["authenticated", "email"]'
    for copied in (copy.copy(credentials.scopes), copy.deepcopy(credentials.scopes), pickle.loads(pickle.dumps(credentials.scopes))):
        assert type(copied) is list and copied == ["authenticated", "email"]
    copy.deepcopy({"auth": credentials})  # a scope copied whole (a test harness) copies
    conn = Request({"type": "http", "auth": credentials, "headers": []})
    assert has_required_scope(conn, ["authenticated", "email"]) and not has_required_scope(conn, ["admin"])
    assert NO_SCOPES.scopes == [] and repr(NO_SCOPES) == "GrantedScopes([])"


def test_sessions_granted_the_same_scopes_share_one_read_only_credentials() -> None:
    """No memory per session for ``scope["auth"]``: one object per distinct set of scopes,
    bounded (emptied when it holds GRANTED_KEPT), and always the scopes asked for."""
    assert granted(("openid", "email")) is granted(("openid", "email"))
    assert granted(("openid", "email")).scopes == ["authenticated", "openid", "email"]
    assert granted(("openid",)) is not granted(("openid", "email"))
    for n in range(GRANTED_KEPT + 5):
        assert granted((f"scope-{n}",)).scopes == ["authenticated", f"scope-{n}"]
    assert len(oakid_gate.user._granted) <= GRANTED_KEPT


# ---------------------------------------------------------------- WSGI


class Recorder:
    def __init__(self) -> None:
        self.environ: dict[str, Any] = {}

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        self.environ = environ
        start_response("200 OK", [("content-type", "text/plain")])
        return [b"app"]


def test_wsgi_public_paths_give_the_anonymous_user_and_nothing_forged() -> None:
    recorder = Recorder()
    gate = OakIDWSGIMiddleware(recorder, **SETTINGS)

    def server(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        environ.update({"REMOTE_USER": "admin", "oakid.user": "forged", "oakid": "forged", "oakid.gate": "forged"})
        return gate(environ, start_response)

    with httpx.Client(transport=httpx.WSGITransport(app=server), base_url="http://testserver") as client:
        assert client.get("/public/x", headers=FORGED).text == "app"
        environ = recorder.environ
        assert environ["oakid.user"] is ANONYMOUS and environ["oakid.gate"] is gate
        assert "oakid" not in environ and "REMOTE_USER" not in environ
        client.cookies.set(*session_cookie(gate, ALICE))
        assert client.get("/private", headers=FORGED).text == "app"
    environ = recorder.environ
    assert environ["oakid.user"].sub == "u-alice" and environ["REMOTE_USER"] == "u-alice"
    assert environ["oakid.gate"] is gate and environ["oakid"].access_token
