"""The ASGI hot path's memo per ``Cookie`` header (:class:`oakid_gate.adapter.HotEntry`).

Each entry keeps the store key of its cookie and the gate's last admission of a
session read under it; the admission is used only for the very session object
the store gives back on this request. These tests attack that memo in every
store: a session signed out, replaced, refused by the rules or grown old since
the memo was written is never let through as it was.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from support.spies import full_path_calls

from oakid_gate import OakIDMiddleware
from oakid_gate.adapter import HotKeys
from oakid_gate.gate.records import Session

STORES = [
    pytest.param("memory", id="memory"),
    pytest.param("sqlite", id="sqlite"),
    pytest.param("redis", id="redis", marks=pytest.mark.e2e),
]
SID = "a-session-id-of-forty-three-characters-0123"
JSON = {"accept": "application/json"}


async def whoami(request: Request) -> JSONResponse:
    return JSONResponse({"email": request.user.email})


def _session(**changes: Any) -> Session:
    now = time.time()
    base = Session(
        claims={"sub": "s1", "email": "ann@example.test", "email_verified": True},
        access_token="at", refresh_token="rt", expires_at=now + 3600, refresh_at=now + 3000,
        scopes=("openid",), created_at=now, last_seen=now, claims_at=now,
    )
    return replace(base, **changes)


@pytest.fixture(params=STORES)
async def gated(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[OakIDMiddleware]:
    """The gate in front of ``/whoami`` on each store, allowing ann only."""
    name = request.param
    url = {"memory": "memory://", "sqlite": f"sqlite:///{tmp_path / 's.db'}"}.get(name)
    if url is None:
        url = request.getfixturevalue("redis_url")
    app = Starlette(routes=[Route("/whoami", whoami)])
    gate = OakIDMiddleware(
        app, client_id="c", client_secret="cs", secret="s" * 32, issuer="http://127.0.0.1:9",
        session_store=url, allowed_emails=["ann@example.test"],
    )
    yield gate
    await gate.aclose()


def _key(gate: OakIDMiddleware) -> str:
    return gate.gate.parts.session_key(SID)


def _client(gate: OakIDMiddleware) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=gate), base_url="http://t", cookies={"oakid_session": SID}
    )


async def test_a_session_signed_out_after_its_cookie_was_admitted_is_refused(
    gated: OakIDMiddleware,
) -> None:
    """Signed out (deleted from the store) after requests that filled the memo: the very
    next request is refused, as if nothing had been kept."""
    await gated.store.aput_session(_key(gated), _session(), 600)
    async with _client(gated) as c:
        assert (await c.get("/whoami", headers=JSON)).json() == {"email": "ann@example.test"}
        assert (await c.get("/whoami", headers=JSON)).status_code == 200
        await gated.store.adelete_session(_key(gated))
        assert (await c.get("/whoami", headers=JSON)).status_code == 401


@pytest.mark.parametrize("change", ["signed-out", "refused-user"])
async def test_nginx_auth_after_its_cookie_was_admitted_is_refused_once_the_session_changed(
    gated: OakIDMiddleware, change: str
) -> None:
    """``/oauth2/auth`` (nginx ``auth_request``) reads the same hot path: signed out, or
    replaced by a user the allow-list refuses, after answers that filled the memo, the
    next answer is 401 or 403, never the 202 it gave before."""
    await gated.store.aput_session(_key(gated), _session(), 600)
    async with _client(gated) as c:
        for _ in range(2):
            admitted = await c.get("/oauth2/auth")
            assert admitted.status_code == 202
            assert admitted.headers["x-auth-request-email"] == "ann@example.test"
        if change == "signed-out":
            await gated.store.adelete_session(_key(gated))
        else:
            mallory = _session(claims={"sub": "s2", "email": "mallory@evil.test", "email_verified": True})
            await gated.store.aput_session(_key(gated), mallory, 600)
        refused = await c.get("/oauth2/auth")
        assert refused.status_code in (401, 403)
        assert "x-auth-request-email" not in refused.headers


async def test_a_session_replaced_by_one_the_rules_refuse_is_refused(
    gated: OakIDMiddleware,
) -> None:
    """The store now holds, under the same cookie, a session of a user the allow-list
    refuses: the memo kept for the old session object is not taken for the new one."""
    await gated.store.aput_session(_key(gated), _session(), 600)
    async with _client(gated) as c:
        assert (await c.get("/whoami", headers=JSON)).status_code == 200
        mallory = _session(claims={"sub": "s2", "email": "mallory@evil.test", "email_verified": True})
        await gated.store.aput_session(_key(gated), mallory, 600)
        refused = await c.get("/whoami", headers=JSON)
    assert refused.status_code == 403
    assert b"mallory" not in refused.content


async def test_a_replaced_session_reaches_the_app_as_the_new_record(
    gated: OakIDMiddleware,
) -> None:
    """A refresh or a touch writes a new record: the app sees the new one at once."""
    await gated.store.aput_session(_key(gated), _session(), 600)
    async with _client(gated) as c:
        assert (await c.get("/whoami", headers=JSON)).status_code == 200
        renamed = _session(claims={"sub": "s1", "email": "ann@example.test", "name": "Ann B"})
        await gated.store.aput_session(_key(gated), renamed, 600)
        seen: list[Any] = []

        async def spy(scope: Any, receive: Any, send: Any) -> None:
            seen.append(scope["user"].name)
            await JSONResponse({})(scope, receive, send)

        gated.app = spy
        assert (await c.get("/whoami", headers=JSON)).status_code == 200
    assert seen == ["Ann B"]


async def test_an_admission_kept_for_a_cookie_lapses_with_time(
    gated: OakIDMiddleware, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Kept "passes until" the session needs something (here a touch): past that moment
    the same session object goes to the full path, which touches it."""
    await gated.store.aput_session(_key(gated), _session(), 600)
    calls = full_path_calls(gated, monkeypatch)
    async with _client(gated) as c:
        assert (await c.get("/whoami", headers=JSON)).status_code == 200
        assert calls == []
        later = time.time() + gated.gate.parts.lifecycle.touch_interval + 1
        monkeypatch.setattr(time, "time", lambda: later)
        assert (await c.get("/whoami", headers=JSON)).status_code == 200
    assert calls == ["/whoami"]


async def test_a_session_cookie_of_another_scheme_is_not_taken_from_the_memo(
    gated: OakIDMiddleware,
) -> None:
    """The memo is per scheme: on https the session cookie is ``__Host-oakid_session``, so
    the http cookie admitted a moment ago is no session there."""
    await gated.store.aput_session(_key(gated), _session(), 600)
    async with _client(gated) as c:
        assert (await c.get("/whoami", headers=JSON)).status_code == 200
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=gated), base_url="https://t",
        headers={"cookie": f"oakid_session={SID}", **JSON},
    ) as c:
        assert (await c.get("/whoami")).status_code == 401


#: scope type, its "scheme" (None: not in the scope), and whether that is https for the gate
SCHEMES = [
    pytest.param("http", "http", False, id="http"),
    pytest.param("http", "https", True, id="https"),
    pytest.param("http", None, False, id="no-scheme"),
    pytest.param("http", "HTTPS", False, id="a-scheme-asgi-does-not-name"),
    pytest.param("websocket", "ws", False, id="ws"),
    pytest.param("websocket", "wss", True, id="wss"),
    pytest.param("websocket", None, False, id="ws-no-scheme"),
]


async def _passes(
    gate: OakIDMiddleware, kind: str, scheme: str | None, cookie: str, origin: bytes
) -> bool:
    """Whether one request of ``kind`` with ``cookie`` reaches the app as ann."""
    scope: dict[str, Any] = {
        "type": kind, "path": "/whoami", "query_string": b"", "method": "GET",
        "headers": [(b"host", b"t"), (b"origin", origin), (b"accept", b"application/json"),
                    (b"cookie", cookie.encode())],
    }  # fmt: skip
    if scheme is not None:
        scope["scheme"] = scheme
    seen, sent = await _call(gate, scope)
    assert bool(seen) != bool(sent), (seen, sent)  # the app, or the gate's answer
    return seen == ["ann@example.test"]


async def _call(gate: OakIDMiddleware, scope: dict[str, Any]) -> tuple[list[str], list[dict[str, Any]]]:
    """``scope`` through the gate in front of an app that records its user: the users the
    app saw, and what the gate sent (for a WebSocket, a close before accepting is the
    server's 403)."""
    seen: list[str] = []
    sent: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["user"].email)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    gate.app = app
    await gate(scope, None, send)  # type: ignore[arg-type]
    return seen, sent


@pytest.mark.parametrize(("kind", "scheme", "https"), SCHEMES)
async def test_each_scheme_reads_the_session_cookie_of_its_own_name(
    gated: OakIDMiddleware, kind: str, scheme: str | None, https: bool
) -> None:
    """Whatever the scope says of its scheme (http, https, ws, wss, nothing, a spelling
    ASGI does not use), the memo serves the session only under the cookie name of the
    scheme the gate takes it for (``__Host-oakid_session`` on https and wss), on the
    first request and on the ones the memo answers; the other name, just admitted on
    the other scheme with the very same ``Cookie`` header, is no session here."""
    await gated.store.aput_session(_key(gated), _session(), 600)
    own, other = ("__Host-oakid_session", "oakid_session")[:: 1 if https else -1]
    origin, across = (b"https://t", b"http://t")[:: 1 if https else -1]  # its own origin
    opposite = {("http", True): "http", ("http", False): "https",
                ("websocket", True): "ws", ("websocket", False): "wss"}[kind, https]  # fmt: skip
    for _ in range(3):
        assert await _passes(gated, kind, opposite, f"{other}={SID}", across)
        assert not await _passes(gated, kind, scheme, f"{other}={SID}", origin)
        assert await _passes(gated, kind, scheme, f"{own}={SID}", origin)


async def _websocket(gate: OakIDMiddleware) -> tuple[list[str], list[dict[str, Any]]]:
    """One WebSocket handshake with the session cookie (:func:`_call`)."""
    return await _call(gate, {
        "type": "websocket", "path": "/ws", "scheme": "ws", "query_string": b"",
        "headers": [(b"host", b"t"), (b"origin", b"http://t"),
                    (b"cookie", f"oakid_session={SID}".encode())],
    })  # fmt: skip


@pytest.mark.parametrize("change", ["signed-out", "refused-user"])
async def test_a_websocket_after_its_cookie_was_admitted_is_refused_once_the_session_changed(
    gated: OakIDMiddleware, change: str
) -> None:
    """The memo serves WebSocket handshakes too: signed out, or replaced by a user the
    allow-list refuses, the next handshake is closed before it is accepted."""
    await gated.store.aput_session(_key(gated), _session(), 600)
    assert await _websocket(gated) == (["ann@example.test"], [])
    assert await _websocket(gated) == (["ann@example.test"], [])
    if change == "signed-out":
        await gated.store.adelete_session(_key(gated))
    else:
        mallory = _session(claims={"sub": "s2", "email": "mallory@evil.test", "email_verified": True})
        await gated.store.aput_session(_key(gated), mallory, 600)
    assert await _websocket(gated) == ([], [{"type": "websocket.close", "code": 1008}])


def test_the_memo_is_bounded() -> None:
    """A flood of distinct Cookie headers costs at most ``MAX_ENTRIES`` entries, and a
    header over ``MAX_HEADER`` bytes is never kept."""
    gate = OakIDMiddleware(
        Starlette(), client_id="c", client_secret="cs", secret="s" * 32,
        issuer="http://127.0.0.1:9",
    )
    keys: HotKeys = gate._hot_keys
    for i in range(HotKeys.MAX_ENTRIES * 2 + 5):
        keys.entry(f"oakid_session=flood-{i}".encode(), "http")
        assert len(keys.by_scheme["http"]) <= HotKeys.MAX_ENTRIES
    huge = b"oakid_session=x; pad=" + b"p" * HotKeys.MAX_HEADER
    assert keys.entry(huge, "http").key is not None
    assert huge not in keys.by_scheme["http"]


async def test_each_store_hot_reader_reads_what_peek_session_reads(
    gated: OakIDMiddleware,
) -> None:
    """``hot_reader()`` is ``peek_session`` without its call: the same answer for a
    session there, replaced and deleted, in every store."""
    store = gated.store
    read = store.hot_reader()
    first, second = _session(), _session(access_token="at2")
    assert read("k") is None and store.peek_session("k") is None
    await store.aput_session("k", first, 60)
    assert read("k") == store.peek_session("k") == first
    await store.aput_session("k", second, 60)
    assert read("k") == store.peek_session("k") == second
    await store.adelete_session("k")
    assert read("k") is None and store.peek_session("k") is None
