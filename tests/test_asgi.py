"""The ASGI adapter itself: what reaches the app, and what never does."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from support.spies import full_path_calls

from oakid_gate import OakIDMiddleware
from oakid_gate.gate.identity import IDENTITY_HEADERS, PLAIN_LOOKALIKES, is_identity_header

FORGED = [
    ("X-Forwarded-User", "mallory"),
    ("x-forwarded-email", "mallory@evil.test"),
    ("X_Forwarded_User", "mallory"),
    ("x-forwarded_groups", "admins"),
    ("Remote-User", "mallory"),
    ("X-Auth-Request-User", "mallory"),
    ("x-auth-request-anything", "mallory"),
]


async def echo(request: Request) -> JSONResponse:
    return JSONResponse({"headers": [k.decode() for k, _ in request.scope["headers"]]})


def gate(**settings: Any) -> OakIDMiddleware:
    app = Starlette(routes=[Route("/health", echo)])
    return OakIDMiddleware(
        app, client_id="c", client_secret="cs", secret="s" * 32,
        issuer="http://127.0.0.1:9", **settings,
    )


@pytest.mark.parametrize(("name", "value"), [pytest.param(n, v, id=n) for n, v in FORGED])
async def test_forged_identity_headers_never_reach_the_app(name: str, value: str) -> None:
    """Client-sent identity headers, in any spelling, are removed before the app runs."""
    app = gate(public_paths=["/health"])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        response = await c.get("/health", headers={name: value, "X-Other": "kept"})
    seen = [h.encode() for h in response.json()["headers"]]
    assert b"x-other" in seen
    forged = name.lower().replace("_", "-").encode()
    assert forged not in {h.replace(b"_", b"-") for h in seen}


#: what Chrome sends with a navigation, besides the host and the cookie
BROWSER_HEADERS = {
    "sec-ch-ua": '"Chromium";v="156"',
    "sec-ch-ua-mobile": "?0",
    "upgrade-insecure-requests": "1",
    "user-agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/156.0",
    "accept": "text/html,*/*;q=0.8",
    "sec-fetch-site": "same-origin",
    "sec-fetch-mode": "navigate",
    "sec-fetch-dest": "document",
    "accept-language": "en-GB,en;q=0.9",
}


@pytest.mark.parametrize(("name", "value"), [pytest.param(n, v, id=n) for n, v in FORGED])
async def test_forged_identity_headers_hidden_among_look_alikes_never_reach_the_app(
    name: str, value: str
) -> None:
    """The hot path's header scan looks closely only at names that start like an identity
    header and are not a known plain one (``referer``, ``x-forwarded-for``, ...): a forged
    header among a browser's headers and every plain look-alike is still removed, and
    the look-alikes reach the app."""
    app = gate(public_paths=["/health"])
    plain = {n.decode(): "plain" for n in PLAIN_LOOKALIKES}
    sent = {**BROWSER_HEADERS, **plain, name: value}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        response = await c.get("/health", headers=sent)
    seen = {h.encode() for h in response.json()["headers"]}
    assert {n.encode() for n in plain} <= seen
    forged = name.lower().replace("_", "-").encode()
    assert forged not in {h.replace(b"_", b"-") for h in seen}


def test_no_plain_look_alike_is_an_identity_header() -> None:
    """Each name the scan lets pass on sight is no identity header in any reading."""
    assert not [n for n in PLAIN_LOOKALIKES if is_identity_header(n)]
    assert PLAIN_LOOKALIKES.isdisjoint(IDENTITY_HEADERS)


async def test_lifespan_passes_through() -> None:
    """Non-HTTP scopes go straight to the app."""
    seen: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["type"])

    await OakIDMiddleware(app, client_id="c", client_secret="cs", secret="s" * 32)(
        {"type": "lifespan"}, None, None  # type: ignore[arg-type]
    )
    assert seen == ["lifespan"]


async def test_websocket_without_session_is_refused() -> None:
    """A WebSocket without a session is closed before it is accepted."""
    sent: list[dict[str, Any]] = []
    called: list[bool] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        called.append(True)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "websocket", "path": "/ws", "headers": [], "scheme": "ws", "query_string": b""}
    await gate()(scope, None, send)  # type: ignore[arg-type]
    assert sent == [{"type": "websocket.close", "code": 1008}]
    assert not called


# ---------------------------------------------------------------- /oauth2/auth on the hot path


def _session(**changes: Any) -> Any:
    import time
    from dataclasses import replace

    from oakid_gate.gate.records import Session

    now = time.time()
    base = Session(
        claims={"sub": "s1", "email": "ann@example.test", "preferred_username": "ann",
                "groups": ["staff", "ops"]},
        access_token="at", refresh_token="rt", expires_at=now + 3600, refresh_at=now + 3000,
        scopes=("openid",), created_at=now, last_seen=now, claims_at=now,
    )
    return replace(base, **changes)


@pytest.mark.parametrize(
    ("last_seen_ago", "full_path"),
    [
        pytest.param(0, False, id="fresh-session-hot-path"),
        pytest.param(120, True, id="touch-due-full-path"),
    ],
)
@pytest.mark.parametrize("method", ["GET", "HEAD"])
async def test_auth_endpoint_answers_alike_on_the_hot_and_the_full_path(
    monkeypatch: pytest.MonkeyPatch, last_seen_ago: float, full_path: bool, method: str
) -> None:
    """nginx's auth_request with a session that needs nothing costs one store read and no
    program; the answer is the one the full path gives a session that needs a touch."""
    import time

    app = gate()
    app.store.put_session(app.gate.parts.session_key("SID"), _session(last_seen=time.time() - last_seen_ago), 600)
    calls = full_path_calls(app, monkeypatch)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t", cookies={"oakid_session": "SID"}
    ) as c:
        response = await c.request(method, "/oauth2/auth")
    assert response.status_code == 202
    assert response.headers["x-auth-request-user"] == "s1"
    assert response.headers["x-auth-request-email"] == "ann@example.test"
    assert response.headers["x-auth-request-preferred-username"] == "ann"
    assert response.headers["x-auth-request-groups"] == "staff,ops"
    assert response.headers["cache-control"] == "no-store"
    assert response.content == b""
    assert calls == (["/oauth2/auth"] if full_path else [])


@pytest.mark.parametrize("method", ["GET", "HEAD", "POST"])
async def test_ping_answers_without_a_program(monkeypatch: pytest.MonkeyPatch, method: str) -> None:
    """``/oauth2/ping`` is the cheapest answer there is: 200 OK, no store, no program."""
    app = gate()
    calls = full_path_calls(app, monkeypatch)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        response = await c.request(method, "/oauth2/ping")
    assert response.status_code == 200
    assert response.content == (b"" if method == "HEAD" else b"OK")
    assert response.headers["cache-control"] == "no-store"
    assert calls == []



@pytest.mark.parametrize(
    ("origin", "allowed_origins", "reaches_app"),
    [
        pytest.param(None, (), True, id="no-origin-not-a-browser"),
        pytest.param("http://t", (), True, id="own-origin"),
        pytest.param("http://evil.example", (), False, id="another-site"),
        pytest.param("http://t:8443", (), False, id="another-port"),
        pytest.param("http://sub.t", (), False, id="another-subdomain"),
        pytest.param("https://app.example", ("https://app.example",), True, id="allowed-origin"),
    ],
)
async def test_websocket_origin_is_checked_before_the_app(
    origin: str | None, allowed_origins: tuple[str, ...], reaches_app: bool
) -> None:
    """A WebSocket from another origin is closed before it is accepted, signed in or not."""
    import time

    called: list[bool] = []
    sent: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        called.append(True)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    middleware = OakIDMiddleware(
        app, client_id="c", client_secret="cs", secret="s" * 32,
        issuer="http://127.0.0.1:9", allowed_origins=list(allowed_origins),
    )
    middleware.store.put_session(middleware.gate.parts.session_key("SID"), _session(last_seen=time.time()), 600)
    headers = [(b"host", b"t"), (b"cookie", b"oakid_session=SID")]
    if origin is not None:
        headers.append((b"origin", origin.encode()))
    scope = {"type": "websocket", "path": "/ws", "headers": headers, "scheme": "ws",
             "query_string": b""}
    await middleware(scope, None, send)  # type: ignore[arg-type]
    assert bool(called) is reaches_app
    if not reaches_app:
        assert sent == [{"type": "websocket.close", "code": 1008}]


@pytest.mark.parametrize(
    ("root_path", "path"),
    [
        pytest.param("", "/admin", id="no-root"),
        pytest.param("/app", "/app/admin", id="under-root"),
        pytest.param("/app", "/app", id="the-root-itself"),
        pytest.param("/app", "/application", id="a-longer-segment"),
        pytest.param("/app", "/other", id="outside-the-root"),
        pytest.param("/public", "/public/admin", id="a-moved-split"),
    ],
)
def test_route_path_is_the_path_starlette_routes_on(root_path: str, path: str) -> None:
    """Public paths are judged on what the app routes on: Starlette's own rule."""
    from starlette._utils import get_route_path

    from oakid_gate.asgi import route_path

    scope = {"type": "http", "root_path": root_path, "path": path}
    assert route_path(scope) == get_route_path(scope)


async def test_a_public_path_without_a_session_runs_no_program(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nobody signed in on a public path: the app runs with the anonymous user, decided on
    the hot path (no program), as the full path would have decided."""
    app = gate(public_paths=["/health"])
    calls = full_path_calls(app, monkeypatch)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        public = await c.get("/health")
        protected = await c.get("/other", headers={"accept": "application/json"})
    assert public.status_code == 200
    assert protected.status_code == 401
    assert calls == ["/other"]
