"""The gate's decisions, stepped effect by effect: no server, no store, no network."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import httpx
import pytest

from oakid_gate.drivers import run_sync
from oakid_gate.gate import Forward, Gate, GateRequest, Reply
from oakid_gate.gate.effects import (
    AcquireLock,
    DeleteSession,
    GetSession,
    PutSession,
    Sleep,
    StoreOp,
    UpdateSession,
)
from oakid_gate.gate.metadata import parse_metadata
from oakid_gate.gate.provider import ProviderState
from oakid_gate.gate.records import Session, app_name, session_key
from oakid_gate.settings import Settings

ISSUER = "https://id.oakwall.mom"
NOW = 1_800_000_000.0
SID = "session-id-from-the-cookie"
KEY = session_key(app_name(ISSUER, "oak_c"), SID)

DOC = {
    "issuer": ISSUER,
    "authorization_endpoint": f"{ISSUER}/oauth/authorize",
    "token_endpoint": f"{ISSUER}/oauth/token",
    "userinfo_endpoint": f"{ISSUER}/oauth/userinfo",
    "revocation_endpoint": f"{ISSUER}/oauth/revoke",
    "id_token_signing_alg_values_supported": ["HS256"],
}


def make_gate(**settings: Any) -> Gate:
    s = Settings.load(
        env={}, client_id="oak_c", client_secret="cs", secret="s" * 32,
        **settings,
    )
    gate = Gate(s)
    meta = parse_metadata(DOC, issuer=ISSUER, kind="openid")
    gate.parts.provider.state = ProviderState(meta, None, NOW, NOW)
    return gate


def request(path: str = "/app", *, method: str = "GET", cookie: bool = True, **headers: str) -> GateRequest:
    return GateRequest(
        method=method,
        scheme="http",
        path=path,
        query_string="",
        headers={"host": "app.test", **{k.replace("_", "-"): v for k, v in headers.items()}},
        cookies={"oakid_session": SID} if cookie else {},
    )


def session(**changes: Any) -> Session:
    base = Session(
        claims={"sub": "u1", "email": "u1@example.test"},
        access_token="AT1",
        refresh_token="RT1",
        expires_at=NOW + 3600,
        refresh_at=NOW + 3570,
        scopes=("openid",),
        created_at=NOW - 10,
        last_seen=NOW - 1,
        claims_at=NOW - 10,
    )
    return replace(base, **changes)


Handler = Callable[[Any], Any]


def step(program: Any, handler: Handler) -> tuple[Any, list[Any]]:
    """Run a program through the drivers' own loop, answering each effect with
    ``handler``; return its result and the effects it yielded."""
    effects: list[Any] = []

    def perform(effect: Any) -> Any:
        effects.append(effect)
        return handler(effect)

    return run_sync(program, perform), effects


def store_only(sessions: dict[str, Session]) -> Handler:
    def handler(effect: Any) -> Any:
        assert isinstance(effect, StoreOp), effect
        if isinstance(effect, GetSession):
            return sessions.get(effect.key)
        if isinstance(effect, PutSession):
            sessions[effect.key] = effect.session
            return None
        if isinstance(effect, UpdateSession):
            current = sessions.get(effect.key)
            if current is None or current.version != effect.expected:
                return False
            sessions[effect.key] = effect.session
            return True
        if isinstance(effect, DeleteSession):
            sessions.pop(effect.key, None)
            return None
        if isinstance(effect, AcquireLock):
            return True
        return None
    return handler


def tokens(n: int, expires_in: int = 3600) -> httpx.Response:
    return httpx.Response(200, json={"access_token": f"AT{n}", "token_type": "Bearer",
                                     "expires_in": expires_in, "refresh_token": f"RT{n}"})


def test_hot_path_is_one_store_read() -> None:
    """A signed-in request with a fresh token costs exactly one store read."""
    gate = make_gate()
    s = session()
    outcome, effects = step(gate.handle(request(), NOW, lambda: "r"), store_only({KEY: s}))
    assert effects == [GetSession(KEY)]
    assert isinstance(outcome, Forward) and outcome.session is s


def test_store_key_is_a_hash_of_the_cookie() -> None:
    """The store never sees the cookie value itself."""
    assert KEY != SID and len(KEY) == 64 and SID not in KEY


def pending_sign_ins(gate: Gate, outcome: Reply) -> list[Any]:
    """The sign-ins sealed into an answer's cookies, opened as the callback would."""
    from urllib.parse import parse_qs, urlsplit

    from oakid_gate.gate.pending import open_pending

    location = dict(outcome.headers).get("location", "")
    state = parse_qs(urlsplit(location).query).get("state", [""])[0]
    values = [v.partition("=")[2].partition(";")[0] for k, v in outcome.headers if k == "set-cookie"]
    return [p for v in values if (p := open_pending(gate.parts.pending, state, v)) is not None]


@pytest.mark.parametrize(
    ("req", "status"),
    [
        pytest.param(request(cookie=False, accept="text/html"), 302, id="navigation-redirects"),
        pytest.param(request(cookie=False, method="HEAD", accept="text/html"), 302, id="head-navigation"),
        pytest.param(request(cookie=False, accept="application/json"), 401, id="api-401"),
        pytest.param(request(cookie=False, accept="text/html", sec_fetch_mode="cors"), 401, id="fetch-401"),
        pytest.param(request(cookie=False, accept="text/html", x_requested_with="XMLHttpRequest"), 401, id="xhr-401"),
        pytest.param(request(cookie=False, method="POST", accept="text/html"), 401, id="post-401"),
        pytest.param(request(cookie=False, accept="*/*", sec_fetch_mode="navigate"), 302, id="sec-fetch-navigate"),
    ],
)
def test_requests_without_a_session(req: GateRequest, status: int) -> None:
    """Browser navigations go to sign in; everything else gets 401 JSON, never a redirect."""
    gate = make_gate()
    outcome, effects = step(gate.handle(req, NOW, lambda: "rnd"), lambda effect: None)
    assert effects == []  # starting a sign-in keeps nothing on the server
    assert isinstance(outcome, Reply) and outcome.status == status
    headers = dict(outcome.headers)
    if status == 401:
        assert headers["www-authenticate"].startswith("Bearer")
        assert b'"login_url"' in outcome.body and b'"unauthenticated"' in outcome.body
        assert not pending_sign_ins(gate, outcome)
    else:
        assert headers["location"].startswith(f"{ISSUER}/oauth/authorize?")
        assert "code_challenge_method=S256" in headers["location"]
        logins = pending_sign_ins(gate, outcome)
        assert len(logins) == 1 and logins[0].return_to == "/app"


def test_login_start_is_fresh_each_time() -> None:
    """Every sign-in gets its own state, nonce, verifier and cookie."""
    gate = make_gate()
    counter = iter(range(100))
    started = [
        step(
            gate.handle(request(cookie=False, accept="text/html"), NOW, lambda: f"r{next(counter)}"),
            lambda e: None,
        )[0]
        for _ in range(2)
    ]
    a, b = (pending_sign_ins(gate, reply)[0] for reply in started)
    assert dict(started[0].headers)["location"] != dict(started[1].headers)["location"]
    assert a.nonce != b.nonce
    assert a.code_verifier != b.code_verifier


@pytest.mark.parametrize(
    ("changes", "why"),
    [
        pytest.param({"created_at": NOW - 12 * 3600 - 1}, "lifetime", id="absolute-timeout"),
        pytest.param({"last_seen": NOW - 2 * 3600 - 1}, "idle", id="idle-timeout"),
    ],
)
def test_session_timeouts(changes: dict[str, Any], why: str) -> None:
    """A session past its lifetime or idle timeout is deleted and the user signs in again."""
    gate = make_gate()
    sessions = {KEY: session(**changes)}
    outcome, _ = step(gate.handle(request(accept="application/json"), NOW, lambda: "r"), store_only(sessions))
    assert isinstance(outcome, Reply) and outcome.status == 401
    assert KEY not in sessions


def provider_and_store(sessions: dict[str, Session], responses: list[Any]) -> Handler:
    store = store_only(sessions)
    sent: list[httpx.Request] = []

    def handler(effect: Any) -> Any:
        if isinstance(effect, httpx.Request):
            sent.append(effect)
            answer = responses.pop(0)
            if isinstance(answer, Exception):
                raise answer
            return answer
        return store(effect)

    handler.sent = sent  # type: ignore[attr-defined]
    return handler


def test_refresh_rotates_and_persists() -> None:
    """Near expiry, one refresh runs; the new refresh token is stored before use."""
    gate = make_gate()
    sessions = {KEY: session(refresh_at=NOW - 1)}
    handler = provider_and_store(sessions, [tokens(2)])
    outcome, effects = step(gate.handle(request(), NOW, lambda: "owner"), handler)
    assert isinstance(outcome, Forward)
    assert outcome.session is not None and outcome.session.access_token == "AT2"
    assert sessions[KEY].refresh_token == "RT2" and sessions[KEY].version == 2
    kinds = [type(e).__name__ if isinstance(e, StoreOp) else "http" for e in effects]
    assert kinds == ["GetSession", "AcquireLock", "GetSession", "http", "UpdateSession", "ReleaseLock"]
    assert b"RT1" in handler.sent[0].content  # type: ignore[attr-defined]


STORES = [
    pytest.param("memory", id="memory"),
    pytest.param("sqlite", id="sqlite"),
    pytest.param("redis", id="redis", marks=pytest.mark.e2e),
]


@pytest.fixture(params=STORES)
def real_store(request: pytest.FixtureRequest, tmp_path: Any) -> Any:
    from oakid_gate.stores import open_store

    url = {"memory": "memory://", "sqlite": f"sqlite:///{tmp_path / 's.db'}"}.get(request.param)
    if url is None:
        url = request.getfixturevalue("redis_url")
    store = open_store(url, ("s" * 32,))
    yield store
    store.close()


def with_provider_answering(store: Any, answer: Callable[[httpx.Request], httpx.Response]) -> Handler:
    """Store effects on the real ``store``; each provider request answered by ``answer``."""

    def handler(effect: Any) -> Any:
        if isinstance(effect, Sleep):
            return NOW + 0.05
        if isinstance(effect, StoreOp):
            return effect.on(store)
        return answer(effect)

    return handler


def test_sign_out_racing_a_refresh_is_not_undone(real_store: Any) -> None:
    """Resurrection: while a refresh waits for the token endpoint, the user signs out in
    another process; the refresh's write finds the session gone and writes nothing, and
    the request is not signed in."""
    gate = make_gate()
    real_store.put_session(KEY, session(refresh_at=NOW - 1), 600)

    def token_endpoint(sent: httpx.Request) -> httpx.Response:
        real_store.delete_session(KEY)  # the sign-out, elsewhere, meanwhile
        return tokens(2)

    outcome, _ = step(gate.handle(request(), NOW, lambda: "owner"), with_provider_answering(real_store, token_endpoint))
    assert not (isinstance(outcome, Forward) and outcome.session is not None)
    assert real_store.get_session(KEY) is None
    assert real_store.peek_session(KEY) is None


def test_a_touch_never_writes_back_tokens_a_refresh_replaced(real_store: Any) -> None:
    """A request that read the session before another process refreshed it, and only
    needs to record that it was seen, does not overwrite the new tokens with the old."""
    gate = make_gate(idle_timeout=600)
    seen = session(last_seen=NOW - 400)  # due for a touch, not for a refresh
    real_store.put_session(KEY, seen, 600)
    refreshed = session(access_token="AT2", refresh_token="RT2", version=2, last_seen=NOW - 400)
    reads = 0

    class Refreshing:
        """The store, refreshed by another process right after this request's read."""

        def __getattr__(self, name: str) -> Any:
            return getattr(real_store, name)

        def get_session(self, key: str) -> Any:
            nonlocal reads
            got = real_store.get_session(key)
            reads += 1
            if reads == 1:
                assert real_store.update_session(KEY, refreshed, 600, 1)
            return got

    def no_provider(sent: httpx.Request) -> httpx.Response:
        raise AssertionError("no provider call is due")

    outcome, effects = step(gate.handle(request(), NOW, lambda: "r"), with_provider_answering(Refreshing(), no_provider))
    assert any(isinstance(e, UpdateSession) for e in effects)
    stored = real_store.get_session(KEY)
    assert stored is not None and stored.refresh_token == "RT2" and stored.version == 2
    assert isinstance(outcome, Forward) and outcome.session is not None
    assert outcome.session.refresh_token == "RT2"


def test_the_refresh_lock_outlives_the_slowest_refresh() -> None:
    """Discovery, token endpoint, keys and userinfo may each take ``http_timeout``: the
    lock lives longer than all four, so no second refresh can start meanwhile."""
    gate = make_gate(http_timeout=7)
    sessions = {KEY: session(refresh_at=NOW - 1)}
    _, effects = step(gate.handle(request(), NOW, lambda: "o"), provider_and_store(sessions, [tokens(2)]))
    lock = next(e for e in effects if isinstance(e, AcquireLock))
    assert lock.ttl > 4 * 7


def test_refresh_waits_for_another_holder() -> None:
    """When another process holds the lock, the request waits and uses its result."""
    gate = make_gate()
    old = session(refresh_at=NOW - 1)
    newer = session(access_token="AT9", refresh_token="RT9", version=2, refresh_at=NOW + 3000)
    reads = iter([old, newer])

    def handler(effect: Any) -> Any:
        if isinstance(effect, Sleep):
            return NOW + 0.05
        assert isinstance(effect, StoreOp), "no provider call may be made"
        if isinstance(effect, AcquireLock):
            return False
        if isinstance(effect, GetSession):
            return next(reads)
        return None

    outcome, effects = step(gate.handle(request(), NOW, lambda: "owner"), handler)
    assert isinstance(outcome, Forward) and outcome.session is newer
    assert not any(isinstance(e, httpx.Request) for e in effects)


def test_superseded_refresh_token_is_never_sent() -> None:
    """Under the lock the session is read again; if it was refreshed meanwhile, nothing is sent."""
    gate = make_gate()
    stale = session(refresh_at=NOW - 1)
    fresh = session(refresh_token="RT2", version=2, refresh_at=NOW + 3000)
    reads = iter([stale, fresh])

    def handler(effect: Any) -> Any:
        assert not isinstance(effect, httpx.Request)
        if isinstance(effect, GetSession):
            return next(reads)
        return isinstance(effect, AcquireLock) or None

    outcome, _ = step(gate.handle(request(), NOW, lambda: "owner"), handler)
    assert isinstance(outcome, Forward) and outcome.session is fresh


@pytest.mark.parametrize(
    ("answer", "expires_at", "accept", "status"),
    [
        pytest.param(httpx.Response(400, json={"error": "invalid_grant"}), NOW + 10, "text/html", 302, id="invalid-grant-browser"),
        pytest.param(httpx.Response(400, json={"error": "invalid_grant"}), NOW + 10, "application/json", 401, id="invalid-grant-api"),
        pytest.param(httpx.Response(401, json={"error": "invalid_client"}), NOW + 10, "application/json", 401, id="invalid-client"),
        pytest.param(httpx.Response(503), NOW + 10, "application/json", None, id="5xx-token-still-valid"),
        pytest.param(httpx.Response(503), NOW - 1, "application/json", 503, id="5xx-token-expired"),
        pytest.param(httpx.ConnectTimeout("t"), NOW - 1, "text/html", 503, id="timeout-token-expired"),
    ],
)
def test_refresh_failures(answer: Any, expires_at: float, accept: str, status: int | None) -> None:
    """invalid_grant ends the session; transient failures serve while the token lasts, else 503."""
    gate = make_gate()
    sessions = {KEY: session(refresh_at=NOW - 1, expires_at=expires_at)}
    handler = provider_and_store(sessions, [answer])
    outcome, _ = step(gate.handle(request(accept=accept), NOW, lambda: "r"), handler)
    if status is None:
        assert isinstance(outcome, Forward) and outcome.session is not None
        assert outcome.session.access_token == "AT1"
        assert KEY in sessions
        return
    assert isinstance(outcome, Reply) and outcome.status == status
    if isinstance(answer, httpx.Response) and answer.status_code < 500:
        assert KEY not in sessions
    else:
        assert KEY in sessions  # a transient failure never loses the session


@pytest.mark.parametrize(
    ("path", "public"),
    [
        pytest.param("/health", True, id="exact"),
        pytest.param("/health/", False, id="exact-no-trailing"),
        pytest.param("/healthz", False, id="exact-prefix-only"),
        pytest.param("/static/", True, id="wildcard-dir"),
        pytest.param("/static/app.js", True, id="wildcard-below"),
        pytest.param("/static", False, id="wildcard-bare"),
        pytest.param("/staticx/a", False, id="wildcard-sibling"),
        pytest.param("/static/../admin", False, id="dotdot-out"),
        pytest.param("/admin/../static/x", False, id="dotdot-in"),
        pytest.param("/static//x", False, id="double-slash"),
        pytest.param("/static/./x", False, id="dot-segment"),
        pytest.param("/static/a b.css", True, id="a-space-is-plain-text"),
        pytest.param("/static/..;/admin", False, id="tomcat-path-parameter"),
        pytest.param("/static;x/app.js", False, id="path-parameter-anywhere"),
        pytest.param("/static/..\\admin", False, id="iis-backslash"),
        pytest.param("/static/..\x00/admin", False, id="nul"),
        pytest.param("/static/..\t/admin", False, id="control-character"),
        pytest.param("/static/%2e%2e/admin", False, id="percent-left-after-decoding"),
        pytest.param("/static/\ufffd\ufffd/admin", False, id="overlong-utf8-dots-decoded"),
        pytest.param("/static/\u2024\u2024/admin", False, id="look-alike-dots"),
        pytest.param("/static/caf\u00e9.css", False, id="any-non-ascii"),
    ],
)
def test_public_paths(path: str, public: bool) -> None:
    """public_paths match the normalized path exactly or below a '/*' entry; odd paths never."""
    gate = make_gate(public_paths=["/health", "/static/*"])
    assert (path in gate.parts.public_paths) is public


def test_public_path_passes_anonymously() -> None:
    """A public path without a session reaches the app with no user."""
    gate = make_gate(public_paths=["/health"])
    outcome, _ = step(gate.handle(request("/health", cookie=False), NOW, lambda: "r"), store_only({}))
    assert outcome == Forward(None)


@pytest.mark.parametrize(
    ("claims", "allowed"),
    [
        pytest.param({"sub": "a", "email": "ann@corp.test", "email_verified": True}, True, id="domain"),
        pytest.param({"sub": "a", "email": "ANN@CORP.TEST"}, True, id="case"),
        pytest.param({"sub": "a", "email": "bob@x.test"}, True, id="listed-email"),
        pytest.param({"sub": "a", "email": "ann@corp.test", "email_verified": False}, False, id="unverified"),
        pytest.param({"sub": "a", "email": "eve@evil.test"}, False, id="other"),
        pytest.param({"sub": "a", "email": "eve@corp.test.evil.test"}, False, id="suffix-trick"),
        pytest.param({"sub": "a"}, False, id="no-email"),
    ],
)
def test_allow_lists(claims: dict[str, Any], allowed: bool) -> None:
    """allowed_emails and allowed_domains admit verified emails that match exactly."""
    gate = make_gate(allowed_domains=["corp.test"], allowed_emails=["bob@x.test"])
    sessions = {KEY: session(claims=claims)}
    outcome, _ = step(gate.handle(request(accept="application/json"), NOW, lambda: "r"), store_only(sessions))
    assert isinstance(outcome, Forward) is allowed
    if not allowed:
        assert isinstance(outcome, Reply) and outcome.status == 403


def test_store_down_is_503_not_anonymous() -> None:
    """When the store fails, a protected request gets 503, never passes anonymously."""
    from oakid_gate.errors import StoreUnavailable

    gate = make_gate(public_paths=["/health"])

    def handler(effect: Any) -> Any:
        raise StoreUnavailable("down")

    outcome, _ = step(gate.handle(request(accept="application/json"), NOW, lambda: "r"), handler)
    assert isinstance(outcome, Reply) and outcome.status == 503
    html, _ = step(gate.handle(request(accept="text/html"), NOW, lambda: "r"), handler)
    assert isinstance(html, Reply) and html.status == 503 and b"session store" in html.body
    public, _ = step(gate.handle(request("/health"), NOW, lambda: "r"), handler)
    assert public == Forward(None)  # a public path does not need the store


def test_https_cookie_is_host_prefixed() -> None:
    """On https the session cookie is __Host- prefixed, Secure, HttpOnly, Path=/."""
    gate = make_gate(base_url="https://tools.example.com")
    req = replace(request(cookie=False), scheme="https")
    assert gate.parts.cookies.session_name(req) == "__Host-oakid_session"
    _, cookie = gate.parts.cookies.set_session(req, "v")
    for part in ("Secure", "HttpOnly", "Path=/", "SameSite=Lax"):
        assert part in cookie
    assert "Domain" not in cookie


@pytest.mark.parametrize(
    ("answer", "outcome_status", "kept"),
    [
        pytest.param(httpx.Response(200, json={"sub": "u1", "email": "new@example.test"}), None, True, id="updated"),
        pytest.param(httpx.Response(401), 401, False, id="token-refused"),
        pytest.param(httpx.Response(200, json={"sub": "someone-else"}), 401, False, id="swapped-sub"),
        pytest.param(httpx.Response(502), None, True, id="transient"),
    ],
)
def test_claims_reread_on_interval(answer: httpx.Response, outcome_status: int | None, kept: bool) -> None:
    """Stale claims are re-read from userinfo; a refused token or another sub ends the session."""
    gate = make_gate(claims_refresh_interval=300)
    sessions = {KEY: session(claims_at=NOW - 301)}
    handler = provider_and_store(sessions, [answer])
    outcome, _effects = step(gate.handle(request(accept="application/json"), NOW, lambda: "r"), handler)
    sent = handler.sent  # type: ignore[attr-defined]
    assert len(sent) == 1 and sent[0].url.path == "/oauth/userinfo"
    assert sent[0].headers["authorization"] == "Bearer AT1"  # no token refresh was due
    if outcome_status is None:
        assert isinstance(outcome, Forward) and outcome.session is not None
        assert sessions[KEY].claims_at == NOW
        expected = "new@example.test" if answer.status_code == 200 else "u1@example.test"
        assert outcome.session.claims["email"] == expected
    else:
        assert isinstance(outcome, Reply) and outcome.status == outcome_status
    assert (KEY in sessions) is kept


def test_admit_is_false_when_anything_is_due() -> None:
    """The hot path passes a session only when no refresh, re-read or touch is due."""
    gate = make_gate(claims_refresh_interval=300)
    assert gate.admit(session(), NOW)
    assert not gate.admit(None, NOW)
    assert not gate.admit(session(refresh_at=NOW), NOW)
    assert not gate.admit(session(claims_at=NOW - 300), NOW)
    assert not gate.admit(session(last_seen=NOW - 61), NOW)
    assert not gate.admit(session(created_at=NOW - 12 * 3600), NOW)


def test_closing_a_program_mid_refresh_is_clean() -> None:
    """A request cancelled while refreshing closes its program without an error."""
    gate = make_gate()
    sessions = {KEY: session(refresh_at=NOW - 1)}
    program = gate.handle(request(), NOW, lambda: "owner")
    store = store_only(sessions)
    effect = next(program)
    while not isinstance(effect, httpx.Request):  # run up to the refresh call
        effect = program.send(store(effect))
    program.close()  # no RuntimeError("generator ignored GeneratorExit")


@pytest.mark.parametrize(
    ("path", "method", "allow"),
    [
        pytest.param("/oauth2/start", "POST", "GET, HEAD", id="start"),
        pytest.param("/oauth2/callback", "POST", "GET, HEAD", id="callback"),
        pytest.param("/oauth2/auth", "DELETE", "GET, HEAD", id="auth"),
        pytest.param("/oauth2/sign_out", "PUT", "GET, HEAD, POST", id="sign-out"),
    ],
)
def test_wrong_method_is_405_with_the_right_allow(path: str, method: str, allow: str) -> None:
    """A wrong method on a gate endpoint answers 405 naming the methods it takes."""
    outcome, _ = step(make_gate().handle(request(path, method=method), NOW, lambda: "r"), store_only({}))
    assert isinstance(outcome, Reply) and outcome.status == 405
    assert dict(outcome.headers)["allow"] == allow


@pytest.mark.parametrize(
    ("path", "method", "query", "body"),
    [
        pytest.param("/oauth2/start", "GET", "rd=/a&rd=//evil.example", b"", id="start-rd-twice"),
        pytest.param("/oauth2/sign_out", "POST", "rd=/a&rd=/b", b"", id="sign-out-rd-twice"),
        pytest.param("/oauth2/sign_out", "POST", "", b"csrf=a&csrf=b", id="sign-out-csrf-twice"),
        pytest.param("/oauth2/start", "GET", "&".join(f"p{i}=1" for i in range(100)), b"", id="too-many-parameters"),
    ],
)
def test_a_repeated_parameter_is_refused(path: str, method: str, query: str, body: bytes) -> None:
    """Every parameter the gate reads appears once (RFC 6749 3.1): 400, nothing stored."""
    from oakid_gate.gate.effects import ReadBody

    gate = make_gate()
    sessions = {KEY: session()}
    store = store_only(sessions)
    req = replace(
        request(path, method=method, accept="text/html", sec_fetch_site="same-origin"),
        query_string=query,
    )

    def handler(effect: Any) -> Any:
        if isinstance(effect, ReadBody):
            return body
        assert not isinstance(effect, (PutSession, DeleteSession)), "nothing may be stored or ended"
        return store(effect)

    outcome, _ = step(gate.handle(req, NOW, lambda: "r"), handler)
    assert isinstance(outcome, Reply) and outcome.status == 400
    assert KEY in sessions


@pytest.mark.parametrize("cached", [True, False], ids=["metadata-cached", "metadata-not-loaded"])
def test_sign_out_with_the_provider_down_still_signs_out_here(
    cached: bool, caplog: pytest.LogCaptureFixture
) -> None:
    """The session is deleted and the cookie cleared before the provider is asked; a
    provider that cannot revoke (down, metadata never loaded) is logged, not answered."""
    import logging

    from oakid_gate.gate.effects import ReadBody

    gate = make_gate()
    if not cached:
        gate.parts.provider.state = None
    sessions = {KEY: session()}
    store = store_only(sessions)

    def handler(effect: Any) -> Any:
        if isinstance(effect, ReadBody):
            return b""
        if isinstance(effect, httpx.Request):
            raise httpx.ConnectError("provider down")
        return store(effect)

    req = request("/oauth2/sign_out", method="POST", accept="text/html", sec_fetch_site="same-origin")
    with caplog.at_level(logging.INFO, logger="oakid_gate"):
        outcome, _ = step(gate.handle(req, NOW, lambda: "r"), handler)
    assert isinstance(outcome, Reply) and outcome.status == 200
    assert KEY not in sessions
    cookie = dict(outcome.headers)["set-cookie"]
    assert cookie.startswith("oakid_session=") and "Max-Age=0" in cookie
    assert "could not be revoked" in caplog.text or "revocation failed" in caplog.text


def test_sign_out_with_the_store_down_still_clears_the_cookie() -> None:
    """With the store down the session cannot be deleted: 503, and this browser's cookie goes."""
    from oakid_gate.errors import StoreUnavailable
    from oakid_gate.gate.effects import ReadBody

    def handler(effect: Any) -> Any:
        if isinstance(effect, ReadBody):
            return b""
        raise StoreUnavailable("down")

    req = request("/oauth2/sign_out", method="POST", accept="text/html", sec_fetch_site="same-origin")
    outcome, _ = step(make_gate().handle(req, NOW, lambda: "r"), handler)
    assert isinstance(outcome, Reply) and outcome.status == 503
    assert "Max-Age=0" in dict(outcome.headers)["set-cookie"]


@pytest.mark.parametrize(
    ("reread", "email", "verified"),
    [
        pytest.param({"sub": "u1", "email": "new@example.test"}, "new@example.test", None, id="changed-no-verdict"),
        pytest.param({"sub": "u1", "email": "new@example.test", "email_verified": False}, None, False, id="changed-unverified"),
        pytest.param({"sub": "u1", "email": "u1@example.test"}, None, False, id="same-email-keeps-flag"),
    ],
)
def test_an_email_changed_at_a_reread_loses_the_old_verdict(
    reread: dict[str, Any], email: str | None, verified: Any
) -> None:
    """A userinfo re-read that changes the email without its own ``email_verified`` drops the
    old flag (it spoke of the old address); an unverified one is never ``user.email``."""
    gate = make_gate(claims_refresh_interval=300)
    old = session(claims={"sub": "u1", "email": "u1@example.test", "email_verified": False}, claims_at=NOW - 301)
    sessions = {KEY: old}
    handler = provider_and_store(sessions, [httpx.Response(200, json=reread)])
    outcome, _ = step(gate.handle(request(accept="application/json"), NOW, lambda: "r"), handler)
    assert isinstance(outcome, Forward) and outcome.session is not None
    assert outcome.session.claims.get("email_verified") == verified
    assert outcome.session.user.email == email


def test_an_email_identity_that_becomes_unverified_ends_the_session() -> None:
    """With ``user_claim=email``, a re-read that makes the email unverified ends the session."""
    gate = make_gate(claims_refresh_interval=300, user_claim="email")
    sessions = {KEY: session(claims_at=NOW - 301, user_claim="email")}
    reread = {"sub": "u1", "email": "u1@example.test", "email_verified": False}
    handler = provider_and_store(sessions, [httpx.Response(200, json=reread)])
    outcome, _ = step(gate.handle(request(accept="application/json"), NOW, lambda: "r"), handler)
    assert isinstance(outcome, Reply) and outcome.status == 401
    assert KEY not in sessions


@pytest.mark.parametrize(
    ("target", "stored", "public", "expected"),
    [
        pytest.param("app", "fresh", False, "forward-user", id="admitted-to-the-app"),
        pytest.param("app", None, True, "forward-anonymous", id="nobody-on-a-public-path"),
        pytest.param("app", None, False, None, id="nobody-on-a-protected-path"),
        pytest.param("app", "due", True, None, id="a-session-due-is-never-anonymous-even-public"),
        pytest.param("auth", "fresh", False, "reply", id="auth-endpoint-answers"),
        pytest.param("auth", None, True, None, id="auth-endpoint-without-session"),
    ],
)
def test_hot_outcome_is_every_adapters_hot_path_decision(
    target: Any, stored: str | None, public: bool, expected: str | None
) -> None:
    """The one decision the ASGI, WSGI and Django hot paths share: an admitted session
    goes on, nobody on a public path goes on anonymous, everything else takes the full path;
    a session that is there but due for the provider never passes as anonymous."""
    gate = make_gate(issuer=ISSUER)
    current = {"fresh": session(), "due": session(refresh_at=NOW - 1)}.get(stored or "")
    asked: list[bool] = []

    def is_public(request: str) -> bool:
        assert request == "the adapter's request"
        asked.append(True)
        return public

    outcome = gate.hot_outcome(target, current, NOW, "", is_public, "the adapter's request")
    kinds = {
        None: None,
        "forward-user": Forward(current),
        "forward-anonymous": Forward(None),
    }
    if expected == "reply":
        assert isinstance(outcome, Reply) and outcome.status == 202
    else:
        assert outcome == kinds[expected]
    assert (not asked) or current is None  # the public check only for nobody


# ------------------------------------------------------ the admission kept per session


def _admitted_directly(gate: Gate, current: Session, now: float) -> bool:
    """The admission written out from the rules, as the hot path decided it before it
    was kept per session object."""
    life = gate.parts.lifecycle
    rules = gate.parts.rules
    timely = (
        now < current.last_seen + life.touch_interval
        and now < current.created_at + life.lifetime
        and (current.refresh_at is None or now < current.refresh_at)
        and now < current.claims_at + life.claims_interval
    )
    return timely and (not rules.restricted or rules.refusal(current.user) is None)


@pytest.mark.parametrize("allowed", [None, ["u1@example.test"], ["other@example.test"]])
def test_a_kept_admission_is_always_the_rules_own_answer(allowed: list[str] | None) -> None:
    """``Gate.admit`` keeps "passes until" per session object; asked again and again at
    later moments, about sessions past each of their limits, refused by an allow-list,
    or with no refresh time, it answers what the rules answer, every time."""
    gate = make_gate(issuer=ISSUER, **({"allowed_emails": allowed} if allowed else {}))
    cases = [
        session(),
        session(refresh_at=None),
        session(refresh_at=NOW + 5),
        session(last_seen=NOW - 59),
        session(claims_at=NOW - 3590),
        session(created_at=NOW - 86_390),
        session(claims={"sub": "u2", "email": "other@example.test"}),
    ]
    answers = set()
    for moment in (NOW - 1, NOW, NOW + 0.5, NOW + 4.999, NOW + 5, NOW + 30, NOW + 120, NOW + 4000):
        for current in cases:
            expected = _admitted_directly(gate, current, moment)
            assert gate.admit(current, moment) is expected, (current, moment)
            answers.add(expected)
    assert answers == {True, False}  # both answers were asked for
    assert gate.admit(None, NOW) is False


def test_a_kept_admission_is_never_another_sessions() -> None:
    """Kept by ``id`` but held with the object: an entry whose id is reused by a new
    session (the old one gone) is not taken for it."""
    gate = make_gate(issuer=ISSUER)
    refused = session(last_seen=NOW - 3600)  # idle: never passes
    fresh = session()
    assert gate.admit(fresh, NOW)
    # What a reused id would look like: the new object's id, another session's entry.
    gate._admissions[id(refused)] = (fresh, NOW + 3600, Forward(fresh))
    assert not gate.admit(refused, NOW)


def test_kept_admissions_are_bounded() -> None:
    """At most ``ADMISSIONS`` sessions are kept (a flood of sessions costs memory once)."""
    from oakid_gate.gate.gate import ADMISSIONS

    gate = make_gate(issuer=ISSUER)
    sessions = [session(claims={"sub": f"u{i}"}) for i in range(ADMISSIONS + 10)]
    for current in sessions:
        gate.admit(current, NOW)
        assert len(gate._admissions) <= ADMISSIONS
    assert all(gate.admit(current, NOW) for current in sessions[-20:])
