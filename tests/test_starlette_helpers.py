"""oakid_gate.starlette: ``requires`` for a route's own rules, and ``OakIDBackend`` under
Starlette's ``AuthenticationMiddleware`` (issue 12 item 3), in process, signed in with
oakid_gate.testing."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.authentication import AuthCredentials, AuthenticationBackend, BaseUser, SimpleUser
from starlette.authentication import requires as starlette_requires
from starlette.endpoints import HTTPEndpoint
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route, WebSocketRoute
from starlette.testclient import TestClient
from starlette.websockets import WebSocket, WebSocketDisconnect
from support.route_rules import ALICE, BROWSER, FORGED, JSON, RULE_CASES, SETTINGS

from oakid_gate import OakIDMiddleware
from oakid_gate.errors import ConfigurationError
from oakid_gate.starlette import OakIDBackend, requires
from oakid_gate.testing import session_cookie
from oakid_gate.user import ANONYMOUS, OakIDUser

READ_SCOPES = ["openid", "reports:read"]


def _who(request: HTTPConnection) -> dict[str, Any]:
    user = request.user
    return {
        "type": type(user).__name__,
        "authenticated": user.is_authenticated,
        "sub": getattr(user, "sub", None),
        "groups": list(getattr(user, "groups", ())),
        "scopes": request.auth.scopes,
    }


def _app(rules: dict[str, Any] | None = None, *, middleware: list[Middleware] | None = None, **settings: Any) -> OakIDMiddleware:
    rules = rules or {}

    @requires(**rules)
    async def guarded(request: Request) -> JSONResponse:
        return JSONResponse(_who(request))

    @requires(**rules)
    def guarded_sync(request: Request) -> JSONResponse:
        return JSONResponse(_who(request))

    class Guarded(HTTPEndpoint):
        @requires(**rules)
        async def get(self, request: Request) -> JSONResponse:
            return JSONResponse(_who(request))

    @requires(**rules)
    async def socket(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_json(_who(websocket))
        await websocket.close()

    async def open_(request: Request) -> JSONResponse:
        return JSONResponse(_who(request))

    @starlette_requires("authenticated")
    async def starlette_guarded(request: Request) -> PlainTextResponse:
        return PlainTextResponse(request.user.display_name)

    routes = [
        Route("/guarded", guarded),
        Route("/public/guarded", guarded),
        Route("/public/sync", guarded_sync),
        Route("/public/endpoint", Guarded),
        WebSocketRoute("/public/socket", socket),
        Route("/public/open", open_),
        Route("/public/starlette", starlette_guarded),
    ]
    return OakIDMiddleware(Starlette(routes=routes, middleware=middleware), **{**SETTINGS, **settings})


def _client(app: OakIDMiddleware, claims: dict[str, Any] | None = None, scopes: Any = None) -> TestClient:
    client = TestClient(app, follow_redirects=False)
    if claims is not None:
        client.cookies.set(*session_cookie(app, claims, scopes=scopes))
    return client


# ---------------------------------------------------------------- requires: every rule kind


@pytest.mark.parametrize(("rules", "claims", "scopes", "allowed"), RULE_CASES)
@pytest.mark.parametrize("path", ["/guarded", "/public/guarded", "/public/sync", "/public/endpoint"])
def test_requires_judges_each_rule_kind(rules: dict[str, Any], claims: dict[str, Any], scopes: Any, allowed: bool, path: str) -> None:
    """Met: the endpoint answers with the user; not met: the gate's 403 JSON naming what is missing."""
    with _client(_app(rules), claims, scopes) as client:
        response = client.get(path, headers=JSON)
    if allowed:
        assert response.status_code == 200, response.text
        assert response.json()["sub"] == "u-alice"
        assert response.json()["type"] == "OakIDUser"
    else:
        assert response.status_code == 403, response.text
        body = response.json()
        assert body["error"] == "access_denied" and body["missing"]
        assert response.headers["cache-control"] == "no-store"


@pytest.mark.parametrize(("rules", "claims", "scopes", "allowed"), RULE_CASES)
def test_requires_judges_websockets_too(rules: dict[str, Any], claims: dict[str, Any], scopes: Any, allowed: bool) -> None:
    """A refused WebSocket is closed before it is accepted (the server answers 403)."""
    with _client(_app(rules), claims, scopes) as client:
        if allowed:
            with client.websocket_connect("/public/socket") as ws:
                assert ws.receive_json()["sub"] == "u-alice"
        else:
            with pytest.raises(WebSocketDisconnect) as closed, client.websocket_connect("/public/socket"):
                pass
            assert closed.value.code == 1008


def test_the_403_is_a_page_for_a_browser_and_an_audit_event(caplog: pytest.LogCaptureFixture) -> None:
    """As the gate's own refusal: HTML naming the group and offering sign-out, logged once."""
    app = _app({"groups": ["admins"]})
    with caplog.at_level(logging.INFO, "oakid_gate"), _client(app, {**ALICE, "groups": ["users"]}) as client:
        response = client.get("/public/guarded", headers=BROWSER)
    assert response.status_code == 403
    assert response.headers["content-type"].startswith("text/html")
    assert "admins" in response.text and "/oauth2/sign_out" in response.text
    events = [r.oakid for r in caplog.records if hasattr(r, "oakid")]  # type: ignore[attr-defined]
    assert [(e["event"], e["outcome"], e["sub"]) for e in events] == [("authorization", "refused", "u-alice")]


def test_the_gates_own_groups_claim_counts() -> None:
    """With ``groups_claim=roles`` a route's groups are read from ``roles`` too."""
    app = _app({"groups": ["admins"]}, groups_claim="roles")
    with _client(app, {**ALICE, "roles": ["admins"], "groups": ["users"]}) as client:
        assert client.get("/public/guarded", headers=JSON).status_code == 200
    with _client(app, {**ALICE, "roles": ["users"], "groups": ["admins"]}) as client:
        assert client.get("/public/guarded", headers=JSON).status_code == 403


# ---------------------------------------------------------------- nobody signed in


@pytest.mark.parametrize("path", ["/public/guarded", "/public/sync", "/public/endpoint"])
def test_nobody_signed_in_gets_the_401_or_the_sign_in(path: str) -> None:
    """On a public path: the gate's 401 JSON for an API client, the sign-in for a browser."""
    with _client(_app()) as client:
        api = client.get(path + "?x=1", headers=JSON)
        browser = client.get(path + "?x=1", headers=BROWSER)
    assert api.status_code == 401
    assert api.json()["error"] == "unauthenticated"
    assert api.headers["www-authenticate"] == 'Bearer realm="oakid-gate"'
    assert browser.status_code == 302
    assert browser.headers["location"] == "/oauth2/start?rd=" + (path + "?x=1").replace("/", "%2F").replace("?", "%3F").replace("=", "%3D")


def test_nobody_signed_in_is_refused_a_websocket() -> None:
    with _client(_app()) as client, pytest.raises(WebSocketDisconnect) as closed, client.websocket_connect("/public/socket"):
        pass
    assert closed.value.code == 1008


def test_forged_identity_headers_sign_nobody_in() -> None:
    """``X-Forwarded-User``, ``-Groups``, ``Remote-User``...: removed by the gate, so no rule
    is met by them, anonymous or signed in."""
    app = _app({"groups": ["admins"]})
    with _client(app) as client:
        assert client.get("/public/guarded", headers={**JSON, **FORGED}).status_code == 401
        assert client.get("/public/open", headers=FORGED).json()["authenticated"] is False
    with _client(app, {**ALICE, "groups": ["users"]}) as client:
        response = client.get("/public/guarded", headers={**JSON, **FORGED})
    assert response.status_code == 403


def test_a_route_under_the_gates_protection_never_sees_anonymous() -> None:
    """Outside ``public_paths`` the gate itself answers first (its 401), as before."""
    with _client(_app()) as client:
        assert client.get("/guarded", headers=JSON).json()["error"] == "unauthenticated"


# ---------------------------------------------------------------- the user on public paths


def test_public_paths_give_the_anonymous_user() -> None:
    """One user type: ``ANONYMOUS``, not Starlette's ``UnauthenticatedUser``."""
    with _client(_app()) as client:
        body = client.get("/public/open").json()
    assert body == {"type": "OakIDAnonymousUser", "authenticated": False, "sub": None, "groups": [], "scopes": []}


def test_starlettes_own_requires_works_for_both_users() -> None:
    """``@requires("authenticated")`` reads ``scope["auth"]``: 403 anonymous, 200 signed in."""
    app = _app()
    with _client(app) as client:
        assert client.get("/public/starlette").status_code == 403
    with _client(app, ALICE) as client:
        assert client.get("/public/starlette").text == "Alice"


@pytest.mark.parametrize(
    "rules",
    [
        {"claims": ["department"]},
        {"claims": {"department": ["eng", "ops"]}},
        {"claims": {"department": ""}},
        {"claims": {"": "eng"}},
        {"groups": [""]},
        {"groups": ["admins "]},
        {"scopes": "read write"},
        {"scopes": [None]},
    ],
)
def test_requires_checks_its_arguments_when_the_module_is_read(rules: dict[str, Any]) -> None:
    """A mistake is a ConfigurationError when the route is written, never a 500 later."""
    with pytest.raises(ConfigurationError, match=next(iter(rules))):
        requires(**rules)


def test_requires_without_the_gate_is_an_error_not_anonymous() -> None:
    """A missing gate is never mistaken for nobody signed in."""

    @requires()
    async def guarded(request: Request) -> PlainTextResponse:
        return PlainTextResponse("never")

    with TestClient(Starlette(routes=[Route("/", guarded)])) as client, pytest.raises(RuntimeError, match="no oakid-gate"):
        client.get("/")


# ---------------------------------------------------------------- OakIDBackend


class ApiKeyBackend(AuthenticationBackend):
    """Another authentication the app combines with the gate's."""

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, SimpleUser] | None:
        if conn.headers.get("x-api-key") == "k-123":
            return AuthCredentials(["authenticated", "api"]), SimpleUser("robot")
        return None


def _combined(rules: dict[str, Any] | None = None) -> OakIDMiddleware:
    backend = OakIDBackend(ApiKeyBackend())
    return _app(rules, middleware=[Middleware(AuthenticationMiddleware, backend=backend)])


def test_the_backend_gives_the_gates_user_first() -> None:
    app = _combined()
    with _client(app, ALICE, scopes=READ_SCOPES) as client:
        body = client.get("/public/open", headers={"x-api-key": "k-123"}).json()
    assert body["type"] == "OakIDUser" and body["sub"] == "u-alice"
    assert body["scopes"] == ["authenticated", *READ_SCOPES]


def test_the_backend_asks_the_others_when_nobody_is_signed_in() -> None:
    app = _combined()
    with _client(app) as client:
        robot = client.get("/public/open", headers={"x-api-key": "k-123"}).json()
        nobody = client.get("/public/open").json()
        assert client.get("/public/starlette", headers={"x-api-key": "k-123"}).text == "robot"
    assert robot["type"] == "SimpleUser" and robot["scopes"] == ["authenticated", "api"]
    assert nobody["type"] == "OakIDAnonymousUser" and nobody["scopes"] == []


def test_another_backends_user_meets_no_group_claim_or_scope_rule() -> None:
    """``requires()`` admits any signed-in user; a rule of groups, claims or scopes is about
    the gate's users only, so another backend's user gets a 403, never a 500."""
    with _client(_combined()) as client:
        assert client.get("/public/guarded", headers={**JSON, "x-api-key": "k-123"}).status_code == 200
    with _client(_combined({"groups": ["admins"]})) as client:
        response = client.get("/public/guarded", headers={**JSON, "x-api-key": "k-123"})
    assert response.status_code == 403
    assert response.json()["missing"] == "a sign-in with this site's identity provider"


def test_the_backend_without_the_gate_is_an_error() -> None:
    app = Starlette(
        routes=[Route("/", lambda request: PlainTextResponse("never"))],
        middleware=[Middleware(AuthenticationMiddleware, backend=OakIDBackend())],
    )
    with TestClient(app) as client, pytest.raises(RuntimeError, match="no oakid-gate"):
        client.get("/")


def test_the_users_are_starlette_users() -> None:
    """Real ``BaseUser`` subclasses, as ``AuthenticationMiddleware`` types them."""
    assert isinstance(ANONYMOUS, BaseUser)
    assert isinstance(OakIDUser(ALICE), BaseUser)

