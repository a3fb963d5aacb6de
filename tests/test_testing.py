"""oakid_gate.testing: a real session for given claims, through the real gate."""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi import Request as FastAPIRequest
from flask import Flask, jsonify
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from oakid_gate import OakIDMiddleware, OakIDWSGIMiddleware
from oakid_gate.flask import OakID, current_user
from oakid_gate.testing import (
    TEST_ACCESS_TOKEN,
    claims_for,
    find_gate,
    offline_settings,
    session_cookie,
    sign_in,
    sign_out,
    signed_in,
)
from oakid_gate.user import OakIDUser

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


# ---------------------------------------------------------------- sign_in on every client
def _view(user: Any) -> dict[str, Any]:
    return {"sub": user.sub, "email": user.email, "groups": list(user.groups)}


async def whoami_json(request: Request) -> JSONResponse:
    return JSONResponse(_view(request.user))


def _starlette() -> Starlette:
    return Starlette(routes=[Route("/", whoami_json)])


def _flask() -> Flask:
    app = Flask(__name__)
    app.get("/")(lambda: jsonify(_view(current_user)))
    return app


def _fastapi(**settings: Any) -> FastAPI:
    app = FastAPI()

    @app.get("/")
    async def home(request: FastAPIRequest) -> dict[str, Any]:
        return _view(request.user)

    app.add_middleware(OakIDMiddleware, **offline_settings(**settings))
    return app


def _starlette_stack(**settings: Any) -> Starlette:
    app = _starlette()
    app.add_middleware(OakIDMiddleware, **offline_settings(**settings))
    return app


def _flask_oakid(**settings: Any) -> Flask:
    app = _flask()
    OakID(app, **offline_settings(**settings))
    return app


def _flask_wrapped(**settings: Any) -> Flask:
    app = _flask()
    app.wsgi_app = OakIDWSGIMiddleware(app.wsgi_app, **offline_settings(**settings))  # type: ignore[method-assign]
    return app


#: a test client of each kind on an app behind the gate, made with extra settings
CLIENTS = [
    pytest.param(
        lambda **s: TestClient(OakIDMiddleware(_starlette(), **offline_settings(**s))),
        id="starlette-testclient-wrapped",
    ),
    pytest.param(lambda **s: TestClient(_starlette_stack(**s)), id="starlette-add-middleware"),
    pytest.param(lambda **s: TestClient(_fastapi(**s)), id="fastapi-testclient"),
    pytest.param(
        lambda **s: httpx.AsyncClient(
            transport=httpx.ASGITransport(app=_starlette_stack(**s)), base_url="http://app.test"
        ),
        id="httpx-asgitransport",
    ),
    pytest.param(
        lambda **s: httpx.Client(
            transport=httpx.WSGITransport(app=_flask_wrapped(**s)), base_url="http://app.test"
        ),
        id="httpx-wsgitransport",
    ),
    pytest.param(lambda **s: _flask_oakid(**s).test_client(), id="flask-oakid-test-client"),
    pytest.param(lambda **s: _flask_wrapped(**s).test_client(), id="flask-wsgi-app-test-client"),
]


async def _get(client: Any, path: str = "/") -> tuple[int, Any]:
    """GET as an API client would: the status, and the JSON body when there is one."""
    response = client.get(path)
    if inspect.isawaitable(response):
        response = await response
    get_data = getattr(response, "get_data", None)  # werkzeug's test response
    text = get_data(as_text=True) if get_data is not None else response.text
    try:
        body = json.loads(text)
    except ValueError:
        body = None
    return response.status_code, body


async def _close(client: Any) -> None:
    if isinstance(client, httpx.AsyncClient):
        await client.aclose()
    elif hasattr(client, "close"):
        client.close()


@pytest.mark.parametrize("make_client", CLIENTS)
async def test_sign_in_and_out_on_every_kind_of_client(make_client: Callable[..., Any]) -> None:
    """Each client kind is signed in through its app's gate, the app sees the claims, and
    sign_out leaves it signed out."""
    client = make_client()
    try:
        assert (await _get(client))[0] == 401
        user = sign_in(client, sub="ann", email="ann@example.com", groups=["staff"])
        assert isinstance(user, OakIDUser)
        assert await _get(client) == (
            200,
            {"sub": "ann", "email": "ann@example.com", "groups": ["staff"]},
        )
        sign_out(client)
        assert (await _get(client))[0] == 401
    finally:
        await _close(client)


@pytest.mark.parametrize("make_client", CLIENTS)
async def test_sign_in_is_judged_by_the_allow_list(make_client: Callable[..., Any]) -> None:
    """A test user outside ``allowed_groups`` gets the gate's 403; one inside passes."""
    client = make_client(allowed_groups=["admins"])
    try:
        sign_in(client, groups=["staff"])
        assert (await _get(client))[0] == 403
        sign_in(client, groups=["admins"])
        assert (await _get(client))[0] == 200
    finally:
        await _close(client)


# ---------------------------------------------------------------- sessions and stores


def _store_url(name: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if name == "sqlite":
        return f"sqlite:///{tmp_path / 'sessions.db'}"
    if name == "redis":
        url: str = request.getfixturevalue("redis_url")  # skips (or fails under CI) without it
        return url
    return "memory://"


STORES = [
    pytest.param("memory", id="memory"),
    pytest.param("sqlite", id="sqlite"),
    pytest.param("redis", id="redis", marks=pytest.mark.e2e),
]


@pytest.mark.parametrize("store", STORES)
@pytest.mark.parametrize(
    "make_client",
    [
        pytest.param(
            lambda **s: httpx.AsyncClient(
                transport=httpx.ASGITransport(app=_starlette_stack(**s)), base_url="http://t"
            ),
            id="asgi",
        ),
        pytest.param(lambda **s: _flask_oakid(**s).test_client(), id="wsgi"),
    ],
)
async def test_sign_in_writes_to_the_configured_store(
    store: str,
    make_client: Callable[..., Any],
    request: pytest.FixtureRequest,
    tmp_path: Path,
) -> None:
    """The session goes into the store the gate really uses, ASGI and WSGI alike, and
    sign_out deletes it there."""
    client = make_client(session_store=_store_url(store, request, tmp_path))
    try:
        gate = find_gate(client)
        sign_in(client, sub="ann")
        assert (await _get(client)) == (
            200,
            {"sub": "ann", "email": "ann@example.test", "groups": []},
        )
        sid = _session_cookies(client)[gate.gate.parts.cookies.session_name_for("http")]
        assert gate.store.get_session(gate.gate.parts.session_key(sid)) is not None
        sign_out(client)
        assert gate.store.get_session(gate.gate.parts.session_key(sid)) is None
    finally:
        await _close(client)
        gate = find_gate(client)
        await gate.aclose() if isinstance(gate, OakIDMiddleware) else gate.close()


def _session_cookies(client: Any) -> dict[str, str]:
    if isinstance(client, httpx.AsyncClient):
        return {c.name: c.value for c in client.cookies.jar if c.value is not None}
    cookie = client.get_cookie("oakid_session")
    return {} if cookie is None else {"oakid_session": cookie.value}


def test_sign_out_ends_the_session_not_only_the_cookie() -> None:
    """A copy of the cookie taken before sign_out no longer signs anyone in."""
    with TestClient(_starlette_stack()) as client:
        sign_in(client)
        copy = dict(client.cookies)
        sign_out(client)
        assert not client.cookies
        client.cookies.update(copy)
        assert client.get("/").status_code == 401


def test_signing_in_again_replaces_the_session() -> None:
    """A second sign_in on a client ends the first session and leaves one cookie."""
    with TestClient(_starlette_stack()) as client:
        sign_in(client, sub="first")
        first = dict(client.cookies)
        sign_in(client, sub="second")
        assert client.get("/").json()["sub"] == "second"
        assert len(client.cookies.jar) == 1
        client.cookies.clear()
        client.cookies.update(first)
        assert client.get("/").status_code == 401


def test_https_client_gets_the_host_prefixed_cookie() -> None:
    """On an https base URL the cookie is the gate's ``__Host-`` one, and it signs in."""
    with TestClient(_starlette_stack(), base_url="https://testserver") as client:
        sign_in(client, sub="ann")
        assert [c.name for c in client.cookies.jar] == ["__Host-oakid_session"]
        assert client.get("/").json()["sub"] == "ann"


def test_flask_server_name_is_the_cookie_host() -> None:
    """With ``SERVER_NAME`` set, the Flask test client's cookie is for that host."""
    app = _flask_oakid()
    app.config["SERVER_NAME"] = "tools.example:8080"
    client = app.test_client()
    sign_in(client, sub="ann")
    assert client.get_cookie("oakid_session", domain="tools.example") is not None
    assert client.get("/").get_json()["sub"] == "ann"


def test_signed_in_signs_out_after_the_block() -> None:
    """``with signed_in(...)`` yields the user and signs the client out at the end."""
    with TestClient(_starlette_stack()) as client:
        with signed_in(client, {"sub": "ann"}, groups=["admins"]) as user:
            assert (user.sub, user.groups) == ("ann", ("admins",))
            assert client.get("/").status_code == 200
        assert client.get("/").status_code == 401


def test_claims_for_fills_defaults_and_drops_none() -> None:
    """Defaults come from ``sub``; given claims win; a claim given as None is left out."""
    claims = claims_for("ann", email=None, department="ops")
    assert claims == {
        "sub": "ann",
        "name": "Test User",
        "preferred_username": "ann",
        "email_verified": True,
        "groups": [],
        "department": "ops",
    }
    assert claims_for()["email"] == "test-user@example.test"


# ---------------------------------------------------------------- finding the gate


class _Opaque:
    """An ASGI wrapper that hides what it wraps (no ``app`` attribute)."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self._inner(scope, receive, send)


def test_no_gate_is_a_clear_error() -> None:
    """A client whose app has no gate gets a LookupError that says what to do."""
    with pytest.raises(LookupError, match=r"OakIDMiddleware.*gate="):
        sign_in(TestClient(_starlette()))


def test_a_hidden_gate_is_passed_explicitly() -> None:
    """``gate=`` reaches a gate that the search cannot see."""
    gate = OakIDMiddleware(_starlette(), **offline_settings())
    with TestClient(_Opaque(gate)) as client:
        sign_in(client, sub="ann", gate=gate)
        assert client.get("/").json()["sub"] == "ann"
        sign_out(client, gate=gate)
        assert client.get("/").status_code == 401


def test_a_client_of_unknown_kind_is_refused() -> None:
    """Something that is not a test client is a TypeError naming the supported ones."""
    gate = OakIDMiddleware(_starlette(), **offline_settings())
    with pytest.raises(TypeError, match="TestClient"):
        sign_in(object(), gate=gate)


def test_the_found_gate_is_the_one_that_serves() -> None:
    """Finding the gate in a Starlette stack before the first request keeps that stack,
    so the session written is the one the app later reads (memory store)."""
    app = _starlette_stack()
    gate = find_gate(app)
    assert find_gate(app) is gate
    with TestClient(app) as client:
        sign_in(client)
        assert client.get("/").status_code == 200


def test_a_test_session_is_linked_as_a_real_one_for_back_channel_logout() -> None:
    """The test session is written as a sign-in writes one, links included: a
    back-channel logout of its ``sub`` ends it."""
    from oakid_gate.gate.backchannel import index_key

    app = _app()
    name, value = session_cookie(app, {"sub": "alice"})
    with TestClient(app, follow_redirects=False) as client:
        client.cookies.set(name, value)
        assert client.get("/").status_code == 200
        assert app.store.end_linked(index_key(app.gate.parts.app, "sub", "alice")) == 1
        assert client.get("/", headers={"accept": "application/json"}).status_code == 401
