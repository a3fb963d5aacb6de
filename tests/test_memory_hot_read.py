"""The memory store's hot read: the session as last written, in one C call.

``MemoryStore.hot_reader()`` checks neither the entry's expiry nor moves it in
the LRU order; the ASGI hot path serves what it reads only while the gate's
admission lets it pass. These tests hold the rule that makes that safe: every
session the gate writes stops passing before the expiry it is written with,
in the real flows (sign-in, touch, the claims re-read at the provider) and for
any settings and session times (token refresh times included); the store's full reads still never return an
expired session; and a session whose admission has lapsed goes through the
full path, which drops an expired one.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from oakid_gate import OakIDMiddleware
from oakid_gate.gate import Gate
from oakid_gate.gate.records import Session
from oakid_gate.settings import Settings
from oakid_gate.stores import MemoryStore
from oakid_gate.testing import FakeProvider

HOUR = 3600.0


async def whoami(request: Request) -> JSONResponse:
    return JSONResponse({"sub": request.user.sub})


@dataclass(frozen=True)
class Write:
    at: float  # the wall clock when the gate wrote
    session: Session
    ttl: float


class RecordingStore(MemoryStore):
    """A memory store on the wall clock that keeps every session written to it."""

    def __init__(self) -> None:
        super().__init__(clock=time.time)
        self.writes: list[Write] = []

    def put_session(self, key: str, session: Session, ttl: float) -> None:
        self.writes.append(Write(time.time(), session, ttl))
        super().put_session(key, session, ttl)

    def update_session(self, key: str, session: Session, ttl: float, expected: int) -> bool:
        self.writes.append(Write(time.time(), session, ttl))
        return super().update_session(key, session, ttl, expected)


def _session(now: float, **changes: Any) -> Session:
    base = Session(
        claims={"sub": "s1", "email": "ann@example.test", "email_verified": True},
        access_token="at", refresh_token="rt", expires_at=now + HOUR,
        refresh_at=now + HOUR - 30, scopes=("openid",), created_at=now, last_seen=now,
        claims_at=now,
    )
    return replace(base, **changes)


async def test_every_session_the_gate_writes_stops_passing_before_its_store_expiry(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Signed in for real (FakeProvider), then touched, then re-read at the provider: each
    session written passes (``Gate.admission``) only until before the moment the store
    would expire it, so the unchecked hot read can never serve an expired one."""
    provider = FakeProvider()
    store = RecordingStore()
    app = Starlette(routes=[Route("/", whoami)])
    gate = OakIDMiddleware(
        app, **provider.settings(idle_timeout=100, claims_refresh_interval=30),
        store=store, http=provider.async_client(),
    )
    real, shift = time.time, [0.0]
    monkeypatch.setattr(time, "time", lambda: real() + shift[0])
    transport = httpx.ASGITransport(app=gate)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        assert (await provider.asign_in(client, "alice")).status_code == 200
        for ahead in (11.0, 31.0, 45.0):  # past the touch interval, past the claims' age
            shift[0] = ahead
            assert (await client.get("/")).status_code == 200
    kinds = [w.session.version for w in store.writes]
    assert len(store.writes) >= 3 and len(set(kinds)) >= 2, kinds
    for write in store.writes:
        passes_until = gate.gate.admission(write.session)[1]
        assert passes_until < write.at + write.ttl


@settings(max_examples=300, deadline=None)
@given(
    lifetime=st.integers(1, 30 * 24 * 3600),
    idle=st.integers(1, 30 * 24 * 3600),
    claims=st.integers(1, 7 * 24 * 3600),
    margin=st.integers(0, 3600),
    age=st.floats(0, 40 * 24 * 3600),
    claims_age=st.floats(0, 10 * 24 * 3600),
    expires_in=st.none() | st.integers(1, 24 * 3600),
)
def test_no_session_written_now_passes_beyond_the_ttl_it_is_written_with(
    lifetime: int, idle: int, claims: int, margin: int, age: float, claims_age: float,
    expires_in: int | None,
) -> None:
    """For any settings and any session the gate writes at ``now`` (its ``last_seen``),
    the admission ends no later than ``now + Lifecycle.ttl(session, now)``."""
    gate = Gate(Settings.load(
        env={}, client_id="c", client_secret="cs", secret="s" * 32,
        issuer="https://id.example", session_lifetime=lifetime, idle_timeout=idle,
        claims_refresh_interval=claims, refresh_margin=margin,
    ))
    lifecycle = gate.parts.lifecycle
    now = 1_800_000_000.0
    expires_at, refresh_at = lifecycle.token_times(expires_in, now)
    session = _session(
        now, created_at=now - age, claims_at=now - claims_age,
        expires_at=expires_at, refresh_at=refresh_at,
    )
    assert gate.admission(session)[1] <= now + lifecycle.ttl(session, now)


def test_full_reads_never_return_an_expired_session_the_hot_reader_reads_as_written() -> None:
    """``get_session`` and ``peek_session`` check the expiry; ``hot_reader()`` returns what
    was last written (its caller's admission bounds it) and sees a deletion or a
    replacement at once."""
    clock = [1000.0]
    store = MemoryStore(clock=lambda: clock[0])
    read = store.hot_reader()
    first, second = _session(time.time()), _session(time.time(), access_token="at2")
    store.put_session("k", first, 60)
    assert read("k") is first
    clock[0] += 60
    assert store.peek_session("k") is None
    assert read("k") is first  # expired, left for a full read or a sweep to drop
    assert store.get_session("k") is None and read("k") is None  # dropped
    store.put_session("k", first, 60)
    store.update_session("k", second, 60, first.version)
    assert read("k") is second
    store.delete_session("k")
    assert read("k") is None


def test_a_hot_read_leaves_the_lru_order_to_writes_and_full_reads() -> None:
    """Only writes and full reads move a session in the LRU order (a session in use is
    written at least every touch interval): at the bound, the one least recently
    written or fully read goes."""
    store = MemoryStore(max_sessions=2)
    now = time.time()
    store.put_session("a", _session(now), 60)
    store.put_session("b", _session(now), 60)
    store.hot_reader()("a")
    store.put_session("c", _session(now), 60)
    assert store.peek_session("a") is None and store.peek_session("b") is not None
    store.get_session("b")
    store.put_session("d", _session(now), 60)
    assert store.peek_session("b") is not None and store.peek_session("c") is None


@pytest.mark.parametrize("target", ["app", "auth", "websocket"])
async def test_a_memory_session_past_its_admission_and_expiry_is_not_served(target: str) -> None:
    """A session whose admission has lapsed and whose store entry has expired (still in
    the map, unswept) reaches the full path, which drops it: the app, nginx's
    ``/oauth2/auth`` and a WebSocket handshake are all refused, and nothing is let through."""
    clock = [1000.0]
    store = MemoryStore(clock=lambda: clock[0])
    seen: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["user"].sub)
        await JSONResponse({})(scope, receive, send)

    gate = OakIDMiddleware(
        app, client_id="c", client_secret="cs", secret="s" * 32,
        issuer="http://127.0.0.1:9", store=store,
    )
    sid = "a-session-id-of-forty-three-characters-0123"
    key = gate.gate.hot_key({"oakid_session": sid}, "http")
    assert key is not None
    old = time.time() - 3 * HOUR  # idle for longer than idle_timeout
    store.put_session(key, _session(old), 60)
    clock[0] += 61
    assert store.hot_reader()(key) is not None
    if target == "websocket":
        sent: list[Any] = []

        async def send(message: Any) -> None:
            sent.append(message)

        scope = {
            "type": "websocket", "path": "/ws", "scheme": "ws", "query_string": b"",
            "headers": [(b"host", b"t"), (b"origin", b"http://t"),
                        (b"cookie", f"oakid_session={sid}".encode())],
        }
        await gate(scope, None, send)  # type: ignore[arg-type]
        assert sent == [{"type": "websocket.close", "code": 1008}]
    else:
        transport = httpx.ASGITransport(app=gate)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            client.cookies.set("oakid_session", sid)
            path = "/oauth2/auth" if target == "auth" else "/"
            response = await client.get(path, headers={"accept": "application/json"})
        assert response.status_code == 401
    assert seen == []
    assert store.hot_reader()(key) is None
