"""oakid_gate.fastapi: the user, the optional user, the session and a route's own rules as
dependencies, and the security scheme in ``/openapi.json`` (issue 12 item 2), in process,
signed in with oakid_gate.testing, through Starlette's TestClient and httpx's ASGITransport.

No ``from __future__ import annotations`` here: FastAPI reads the routes' annotations,
and some name dependencies made inside :func:`_api`."""

import logging
from typing import Annotated, Any

import httpx
import pytest
from fastapi import Depends, FastAPI
from starlette.testclient import TestClient
from support.route_rules import ALICE, BROWSER, FORGED, JSON, RULE_CASES, SETTINGS

from oakid_gate import OakIDMiddleware, OakIDUser
from oakid_gate.fastapi import (
    CurrentSession,
    CurrentUser,
    OptionalUser,
    oakid_session,
    requires,
)
from oakid_gate.testing import TEST_ACCESS_TOKEN, session_cookie

PUBLIC = ["/public/*", "/openapi.json", "/docs"]


def _api(rules: dict[str, Any] | None = None) -> FastAPI:
    api = FastAPI()
    Allowed = Annotated[OakIDUser, Depends(requires(**(rules or {})))]

    @api.get("/public/me")
    async def me(user: CurrentUser) -> dict[str, Any]:
        return {"sub": user.sub, "email": user.email}

    @api.get("/public/maybe")
    async def maybe(user: OptionalUser) -> dict[str, Any]:
        return {"sub": user.sub if user is not None else None}

    @api.get("/public/token")
    async def token(session: CurrentSession) -> dict[str, Any]:
        return {"access_token": session.access_token, "scopes": list(session.scopes)}

    @api.get("/public/guarded")
    async def guarded(user: Allowed) -> dict[str, Any]:
        return {"sub": user.sub}

    @api.get("/public/listed", dependencies=[Depends(requires(**(rules or {})))])
    def listed() -> dict[str, Any]:  # a sync route: the dependencies stay async
        return {"ok": True}

    @api.get("/public/open")
    async def open_() -> dict[str, Any]:
        return {"ok": True}

    return api


def _app(rules: dict[str, Any] | None = None, **settings: Any) -> OakIDMiddleware:
    return OakIDMiddleware(_api(rules), **{**SETTINGS, "public_paths": PUBLIC, **settings})


def _client(app: OakIDMiddleware, claims: dict[str, Any] | None = None, scopes: Any = None) -> TestClient:
    client = TestClient(app, follow_redirects=False)
    if claims is not None:
        client.cookies.set(*session_cookie(app, claims, scopes=scopes))
    return client


# ---------------------------------------------------------------- the dependencies


def test_signed_in_the_dependencies_give_the_user_and_the_session() -> None:
    app = _app()
    with _client(app, ALICE, scopes=["openid", "email"]) as client:
        assert client.get("/public/me").json() == {"sub": "u-alice", "email": "alice@example.test"}
        assert client.get("/public/maybe").json() == {"sub": "u-alice"}
        assert client.get("/public/token").json() == {
            "access_token": TEST_ACCESS_TOKEN,
            "scopes": ["openid", "email"],
        }


@pytest.mark.parametrize("path", ["/public/me", "/public/token", "/public/guarded", "/public/listed"])
@pytest.mark.parametrize("headers", [JSON, BROWSER, FORGED], ids=["api", "browser", "forged-identity"])
def test_nobody_signed_in_gets_401_json(path: str, headers: dict[str, str]) -> None:
    """An HTTPException whose detail is the gate's 401 JSON, with its headers; a browser
    too (an API's answer), and identity headers sent by the client count for nothing."""
    with _client(_app({"groups": ["admins"]})) as client:
        response = client.get(path, headers=headers)
    assert response.status_code == 401
    assert response.json() == {"detail": {"error": "unauthenticated", "login_url": "/oauth2/start?rd=" + path.replace("/", "%2F")}}
    assert response.headers["www-authenticate"] == 'Bearer realm="oakid-gate"'
    assert response.headers["cache-control"] == "no-store"


def test_the_optional_user_is_none_on_a_public_path() -> None:
    with _client(_app()) as client:
        assert client.get("/public/maybe", headers=FORGED).json() == {"sub": None}


@pytest.mark.parametrize(("rules", "claims", "scopes", "allowed"), RULE_CASES)
@pytest.mark.parametrize("path", ["/public/guarded", "/public/listed"])
def test_requires_judges_each_rule_kind(rules: dict[str, Any], claims: dict[str, Any], scopes: Any, allowed: bool, path: str) -> None:
    with _client(_app(rules), claims, scopes) as client:
        response = client.get(path, headers={**BROWSER, **FORGED})
    if allowed:
        assert response.status_code == 200, response.text
    else:
        assert response.status_code == 403, response.text
        detail = response.json()["detail"]
        assert detail["error"] == "access_denied"
        assert detail["error_description"] == f"You are signed in, but this site requires {detail['missing']}."


def test_the_403_names_what_is_missing_and_is_an_audit_event(caplog: pytest.LogCaptureFixture) -> None:
    app = _app({"groups": ["admins"]})
    with caplog.at_level(logging.INFO, "oakid_gate"), _client(app, {**ALICE, "groups": ["users"]}) as client:
        response = client.get("/public/guarded", headers={**JSON, "X-Forwarded-Groups": "admins"})
    assert response.status_code == 403
    assert response.json()["detail"]["missing"] == "membership of one of the groups admins"
    events = [r.oakid for r in caplog.records if hasattr(r, "oakid")]  # type: ignore[attr-defined]
    assert [(e["event"], e["outcome"], e["sub"]) for e in events] == [("authorization", "refused", "u-alice")]


async def test_the_dependencies_through_httpx_asgi_transport() -> None:
    """The same through ``httpx.ASGITransport`` (no lifespan, no thread)."""
    app = _app({"scopes": ["reports:read"]})
    name, value = session_cookie(app, ALICE, scopes=["openid", "reports:read"])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        assert (await client.get("/public/guarded")).status_code == 401
        client.cookies.set(name, value)
        assert (await client.get("/public/guarded")).json() == {"sub": "u-alice"}


def test_the_dependencies_without_the_gate_are_an_error() -> None:
    with TestClient(_api()) as client, pytest.raises(RuntimeError, match="no oakid-gate"):
        client.get("/public/maybe")


# ---------------------------------------------------------------- OpenAPI


def test_openapi_marks_the_routes_that_need_a_sign_in() -> None:
    """The session cookie as an ``apiKey`` scheme, on exactly the routes whose
    dependencies need a signed-in user (``/docs`` shows their padlocks)."""
    with _client(_app()) as client:
        schema = client.get("/openapi.json").json()
        docs = client.get("/docs")
    assert schema["components"]["securitySchemes"] == {
        "oakid": {
            "type": "apiKey",
            "in": "cookie",
            "name": "oakid_session",
            "description": oakid_session.model.description,
        }
    }
    secured = {path for path, item in schema["paths"].items() if item["get"].get("security") == [{"oakid": []}]}
    assert secured == {"/public/me", "/public/token", "/public/guarded", "/public/listed"}
    assert {"/public/maybe", "/public/open"}.isdisjoint(p for p, i in schema["paths"].items() if "security" in i["get"])
    assert docs.status_code == 200 and "/openapi.json" in docs.text


def test_the_scheme_names_the_settings_default_cookie() -> None:
    from oakid_gate.settings import Settings

    assert oakid_session.model.name == Settings.load(**SETTINGS).cookie_name  # type: ignore[attr-defined]
