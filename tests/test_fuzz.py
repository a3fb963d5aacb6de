"""Property-based fuzzing of the whole request path (issue 9 item 15).

Hypothesis builds requests no test author would write: any method, raw paths
with encodings and dot segments, queries with repeated parameters, headers
(identity headers in every spelling among them), cookies and bodies, with and
without a valid session, under a mount prefix or not. Each goes through the
ASGI and the WSGI middleware, and through the proxy's header rules. Whatever
it is:

- the gate never answers 5xx and never lets an exception escape;
- an app is only ever called for a signed-in request, or for a public path the
  app itself will route on, under the configured mount prefix;
- an app (or an upstream) only ever sees identity the gate set itself.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from oakid_gate import OakIDMiddleware, OakIDWSGIMiddleware
from oakid_gate.asgi import route_path
from oakid_gate.gate.identity import identity_headers, normalized_name
from oakid_gate.gate.metadata import parse_metadata
from oakid_gate.gate.provider import ProviderState
from oakid_gate.gate.records import Session
from oakid_gate.proxy import upstream_headers
from oakid_gate.user import OakIDUser

ISSUER = "https://id.example"
PUBLIC = ["/health", "/static/*"]
SID = "a-valid-session-id-of-some-length"
COOKIE = "oakid_session"
DOC = {
    "issuer": ISSUER,
    "authorization_endpoint": f"{ISSUER}/authorize",
    "token_endpoint": f"{ISSUER}/token",
    "userinfo_endpoint": f"{ISSUER}/userinfo",
    "id_token_signing_alg_values_supported": ["HS256"],
}
FUZZ = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# ---------------------------------------------------------------- strategies

SEGMENTS = st.sampled_from(
    ["health", "static", "admin", "", ".", "..", "%2e", "%2E%2e", "..;", "..%5c", "%00",
     "\\", ";x", "%2f", "%c0%ae", "oauth2", "start", "callback", "auth", "ping", "ready",
     "sign_out", "userinfo", "é", "%e9", "\x00", "public", "app.js", "x" * 40]
)
METHODS = st.sampled_from(["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE", "GeT"])
IDENTITY_NAMES = st.sampled_from(
    ["X-Forwarded-User", "x_forwarded_user", "X-FORWARDED-EMAIL", "Remote-User", "REMOTE_USER",
     "X-Auth-Request-User", "x-auth-request-role", "X-Forwarded-Groups", "X-Remote-User",
     "X-Forwarded-Access-Token", "X_Auth_Request_Email"]
)
OTHER_NAMES = st.sampled_from(
    ["accept", "accept-language", "sec-fetch-mode", "sec-fetch-site", "origin", "x-requested-with",
     "x-forwarded-proto", "x-forwarded-host", "content-type", "authorization", "connection", "host"]
)
VALUES = st.sampled_from(
    ["text/html", "application/json", "navigate", "cors", "same-origin", "cross-site", "null",
     "https://evil.example", "XMLHttpRequest", "Bearer abc", "mallory", "https", "evil.example",
     "close, x-forwarded-user", "*/*", ""]
)


@st.composite
def paths(draw: st.DrawFn) -> str:
    parts = draw(st.lists(SEGMENTS, min_size=0, max_size=5))
    return "/" + "/".join(parts)


@st.composite
def queries(draw: st.DrawFn) -> str:
    names = st.sampled_from(["rd", "state", "code", "iss", "error", "csrf", "x", "%72d", ""])
    values = st.sampled_from(["/", "//evil.example", "/x?y=1", "abc", "", "%00", "a%2Cb", "é"])
    pairs = draw(st.lists(st.tuples(names, values), max_size=5))
    return "&".join(f"{n}={v}" for n, v in pairs)


@st.composite
def requests(draw: st.DrawFn) -> dict[str, Any]:
    headers = draw(st.lists(st.tuples(st.one_of(IDENTITY_NAMES, OTHER_NAMES), VALUES), max_size=8))
    cookies = []
    if draw(st.booleans()):
        cookies.append(f"{COOKIE}={SID}")
    if draw(st.booleans()):
        odd = [f"{COOKIE}=forged", f"{COOKIE}_login_0123456789abcdef=x", "other=1",
               f"{COOKIE}=", 'x="y']
        cookies.append(draw(st.sampled_from(odd)))
    root = draw(st.sampled_from(["", "", "", "/public", "/static", "/app"]))
    return {
        "method": draw(METHODS),
        "path": draw(paths()),
        "root": root,
        "query": draw(queries()),
        "headers": headers,
        "cookie": "; ".join(cookies),
        "body": draw(st.sampled_from([b"", b"csrf=a&csrf=b", b"\x00\xff", b"rd=/x", b"a" * 20000])),
    }


# ---------------------------------------------------------------- the gates under test


def _session() -> Session:
    now = time.time()
    return Session(
        claims={"sub": "u-1", "email": "u1@example.test", "groups": ["staff"]},
        access_token="access-token-value", refresh_token="refresh-token-value",
        expires_at=now + 3600, refresh_at=now + 3000, scopes=("openid",),
        created_at=now, last_seen=now, claims_at=now,
    )


def _prepared(gate: Any) -> Any:
    """Provider metadata loaded (no provider is called), one session in the store."""
    meta = parse_metadata(DOC, issuer=ISSUER, kind="openid")
    gate.gate.parts.provider.state = ProviderState(meta, None, time.time(), time.time())
    gate.store.put_session(gate.gate.parts.session_key(SID), _session(), 3600)
    return gate


def _refusing(request: httpx.Request) -> httpx.Response:
    return httpx.Response(503)


SETTINGS = {"client_id": "c", "client_secret": "cs", "secret": "s" * 32, "issuer": ISSUER,
            "public_paths": PUBLIC}


def _public(root: str, routed: str) -> bool:
    if root:
        return False  # the configured mount prefix is empty
    from oakid_gate.gate.access import PublicPaths

    return routed in PublicPaths(tuple(PUBLIC))


#: the spec's identity headers (SPEC: "in any spelling: case, _ for -"), written out here
#: so the oracle is not the rule under test
SPEC_IDENTITY = {
    "remote-user", "x-remote-user", "x-forwarded-user", "x-forwarded-email",
    "x-forwarded-preferred-username", "x-forwarded-groups", "x-forwarded-access-token",
}


def _forged(name: str) -> bool:
    norm = name.lower().replace("_", "-")
    return norm in SPEC_IDENTITY or norm.startswith("x-auth-request-")


@FUZZ
@given(req=requests())
def test_asgi_never_fails_open(req: dict[str, Any]) -> None:
    """Whatever the request: no 5xx, no exception, the app only for a session or a public
    path, and no identity header the gate did not set."""
    seen: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"app"})

    gate = _prepared(OakIDMiddleware(app, http=httpx.AsyncClient(transport=httpx.MockTransport(_refusing)), **SETTINGS))
    full = req["root"] + req["path"]
    headers = [(n.lower().encode(), v.encode()) for n, v in req["headers"]]
    if req["cookie"]:
        headers.append((b"cookie", req["cookie"].encode("latin-1")))
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
        "method": req["method"], "scheme": "http", "path": full, "root_path": req["root"],
        "raw_path": quote(full).encode(), "query_string": req["query"].encode(),
        "headers": headers, "client": ("192.0.2.1", 5000), "server": ("127.0.0.1", 80),
    }
    sent: list[dict[str, Any]] = []
    body = req["body"]

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(gate(scope, receive, send))
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    assert status < 500, (status, req)
    signed_in = f"{COOKIE}={SID}" in req["cookie"].split("; ")
    for s in seen:
        assert not any(_forged(n.decode("latin-1")) for n, _ in s["headers"])
        if s["user"].is_authenticated:
            assert signed_in
        else:
            assert _public(req["root"], route_path(s)), req


@FUZZ
@given(req=requests())
def test_wsgi_never_fails_open(req: dict[str, Any]) -> None:
    """The same properties through the WSGI middleware."""
    seen: list[dict[str, Any]] = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        seen.append(dict(environ))
        start_response("200 OK", [("content-type", "text/plain")])
        return [b"app"]

    gate = _prepared(OakIDWSGIMiddleware(app, http=httpx.Client(transport=httpx.MockTransport(_refusing)), **SETTINGS))
    environ: dict[str, Any] = {
        "REQUEST_METHOD": req["method"], "SCRIPT_NAME": req["root"],
        "PATH_INFO": req["path"].encode("utf-8", "surrogateescape").decode("latin-1"),
        "QUERY_STRING": req["query"], "SERVER_NAME": "t", "SERVER_PORT": "80",
        "REMOTE_ADDR": "192.0.2.1", "wsgi.url_scheme": "http", "CONTENT_LENGTH": str(len(req["body"])),
        "wsgi.input": __import__("io").BytesIO(req["body"]), "REMOTE_USER": "mallory",
    }
    for name, value in req["headers"]:
        key = "HTTP_" + name.upper().replace("-", "_")
        environ[key] = value
    if req["cookie"]:
        environ["HTTP_COOKIE"] = req["cookie"]
    statuses: list[str] = []
    list(gate(environ, lambda status, headers, *exc: statuses.append(status)))
    assert int(statuses[0].split()[0]) < 500, (statuses, req)
    signed_in = f"{COOKIE}={SID}" in req["cookie"].split("; ")
    for env in seen:
        forged = [k for k in env if k.startswith("HTTP_") and _forged(k[5:].replace("_", "-"))]
        assert not forged, forged
        if env["oakid.user"].is_authenticated:
            assert signed_in and env["REMOTE_USER"] == "u-1"
        else:
            assert "REMOTE_USER" not in env
            assert _public(req["root"], env["PATH_INFO"]), req


@FUZZ
@given(
    headers=st.lists(st.tuples(st.one_of(IDENTITY_NAMES, OTHER_NAMES), VALUES), max_size=12),
    trusted=st.booleans(),
    signed_in=st.booleans(),
)
def test_the_proxy_forwards_only_the_identity_the_gate_set(
    headers: list[tuple[str, str]], trusted: bool, signed_in: bool
) -> None:
    """Whatever the client sent, the upstream sees the gate's identity headers and no others."""
    user = OakIDUser({"sub": "u-1", "email": "u1@example.test"}) if signed_in else None
    identity = identity_headers(user, b"x-forwarded-")
    raw = [(n.lower().encode(), v.encode()) for n, v in headers]
    out = upstream_headers(raw, client="192.0.2.1", scheme="http", trusted=trusted, identity=identity)
    seen = [(normalized_name(n), v) for n, v in out if _forged(n.decode("latin-1"))]
    assert seen == [(n, v) for n, v in identity]


@pytest.mark.parametrize("root", ["", "/app"])
def test_the_fuzzed_public_rule_is_the_gates(root: str) -> None:
    """The fuzz tests' own idea of public agrees with the gate's on known cases."""
    assert _public(root, "/health") is (root == "")
    assert not _public("", "/admin")


# ---------------------------------------------------------------- the whole proxy

#: what a canonical encoding of a path leaves as it is
CANONICAL = re.compile(r"[A-Za-z0-9/:@!$&'()*+,=._~%-]*")


@pytest.fixture(scope="module")
def echo_upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real upstream (uvicorn) that answers every request with what it received."""
    from apps.upstream import start_upstream

    with start_upstream(tmp_path_factory.mktemp("fuzz-upstream")) as server:
        yield server.url


@pytest.mark.e2e
@settings(FUZZ, max_examples=150)
@given(req=requests())
def test_the_proxy_never_fails_open(echo_upstream: str, req: dict[str, Any]) -> None:
    """Through ``OakIDMiddleware(ProxyApp)`` to a real upstream: no 5xx, no exception; the
    upstream is reached only signed in or on a public path, sees no identity the gate did
    not set, and gets a canonical path whose decoding is the path the gate judged."""
    from oakid_gate.proxy import ProxyApp
    from oakid_gate.settings import Settings

    settings_ = Settings.load(env={}, upstream=echo_upstream, **SETTINGS)
    full = req["root"] + req["path"]
    headers = [(n.lower().encode(), v.encode()) for n, v in req["headers"] if n.lower() != "host"]
    headers.append((b"host", b"gate.test"))
    if req["cookie"]:
        headers.append((b"cookie", req["cookie"].encode("latin-1")))
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
        "method": req["method"], "scheme": "http", "path": full, "root_path": req["root"],
        "raw_path": quote(full).encode(), "query_string": quote(req["query"], safe="=&%").encode(),
        "headers": headers, "client": ("192.0.2.1", 5000), "server": ("127.0.0.1", 80),
    }
    sent: list[dict[str, Any]] = []
    body = [req["body"]]

    async def receive() -> dict[str, Any]:
        if body:  # the body once; then the client stays until the answer is sent
            return {"type": "http.request", "body": body.pop(), "more_body": False}
        await asyncio.Event().wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def go() -> None:
        proxy = ProxyApp(settings_)
        gate = _prepared(OakIDMiddleware(proxy, settings_, http=httpx.AsyncClient(transport=httpx.MockTransport(_refusing))))
        try:
            await gate(scope, receive, send)
        finally:
            await proxy.aclose()
            await gate.aclose()

    asyncio.run(go())
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    assert status < 500, (status, req)
    content = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    if req["method"].upper() == "HEAD" or b'"raw_path"' not in content:
        event("the gate answered")
        return  # the gate answered (or nothing to read): the upstream's answer is not here
    event("the upstream answered")
    seen = json.loads(content)
    signed_in = f"{COOKIE}={SID}" in req["cookie"].split("; ")
    assert CANONICAL.fullmatch(seen["raw_path"]), seen["raw_path"]
    assert seen["path"] == full
    forwarded = [(n.lower(), v) for n, v in seen["headers"] if _forged(n)]
    if forwarded:  # the gate's identity, whole, and only for the signed-in cookie
        assert signed_in, req
        assert dict(forwarded) == {"x-forwarded-user": "u-1", "x-forwarded-email": "u1@example.test",
                                   "x-forwarded-groups": "staff"}, forwarded
    else:  # anonymous: only a public path reaches the upstream
        assert _public(req["root"], route_path(scope)), req
