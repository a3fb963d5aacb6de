"""oakid_gate.testing: a real session for given claims, through the real gate."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from oakid_gate import OakIDMiddleware
from oakid_gate.testing import TEST_ACCESS_TOKEN, session_cookie

SETTINGS: dict[str, Any] = {
    "issuer": "http://127.0.0.1:9",  # never called
    "client_id": "app",
    "client_secret": "cs",
    "secret": "s" * 32,
}


async def whoami(request: Request) -> JSONResponse:
    view = request.scope.get("oakid")
    return JSONResponse({"sub": request.user.sub, "token": view.access_token if view else None})


def _app(**settings: Any) -> OakIDMiddleware:
    return OakIDMiddleware(Starlette(routes=[Route("/", whoami)]), **SETTINGS, **settings)


def test_session_cookie_signs_a_client_in_through_the_gate() -> None:
    """The cookie names a session the gate admits: the app sees the user and token."""
    app = _app()
    name, value = session_cookie(app, {"sub": "alice"})
    with TestClient(app, follow_redirects=False) as client:
        client.cookies.set(name, value)
        response = client.get("/")
    assert response.status_code == 200
    assert response.json() == {"sub": "alice", "token": TEST_ACCESS_TOKEN}


def test_session_cookie_is_still_judged_by_the_allow_list() -> None:
    """A test user outside ``allowed_emails`` is refused as a real one would be."""
    app = _app(allowed_emails=["bob@example.com"])
    name, value = session_cookie(app, {"sub": "alice", "email": "alice@example.com"})
    with TestClient(app, follow_redirects=False) as client:
        client.cookies.set(name, value)
        assert client.get("/").status_code == 403


def test_session_cookie_needs_a_subject() -> None:
    """Claims without ``sub`` are refused before anything is written."""
    with pytest.raises(ValueError, match="sub"):
        session_cookie(_app(), {"email": "a@example.com"})
