"""Per-route rules (issue 10 item 3): ``public_paths`` with methods and patterns, and CORS
preflights with ``skip_preflight``, through the ASGI middleware, the WSGI middleware
and the proxy (``OakIDMiddleware`` + ``ProxyApp`` to a real upstream)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from oakid_gate import OakIDMiddleware, OakIDWSGIMiddleware
from oakid_gate.errors import ConfigurationError
from oakid_gate.gate.access import PublicPaths
from oakid_gate.settings import Settings
from oakid_gate.settings.paths import MAX_PATH, join_entries

BASE = {"client_id": "c", "client_secret": "cs", "secret": "s" * 32, "issuer": "http://127.0.0.1:9"}
RULES = ["GET,HEAD /api/status", "^/hooks/[a-z]+$", "^/v[0-9]{1,3}/docs$", "/health", "POST /ingest/*"]
PREFLIGHT = {"origin": "https://app.example", "access-control-request-method": "POST"}

#: (method, path, headers, anonymous request reaches the app) with RULES and skip_preflight
CASES = [
    pytest.param("GET", "/api/status", {}, True, id="listed-method"),
    pytest.param("HEAD", "/api/status", {}, True, id="second-listed-method"),
    pytest.param("POST", "/api/status", {}, False, id="method-not-listed"),
    pytest.param("DELETE", "/health", {}, True, id="no-methods-is-any-method"),
    pytest.param("GET", "/hooks/github", {}, True, id="pattern"),
    pytest.param("GET", "/hooks/GitHub", {}, False, id="pattern-case"),
    pytest.param("GET", "/hooks/github/x", {}, False, id="pattern-is-anchored-at-the-end"),
    pytest.param("GET", "/x/hooks/github", {}, False, id="pattern-is-anchored-at-the-start"),
    pytest.param("GET", "/hooks/a%2F..%2Fadmin", {}, False, id="pattern-never-sees-dot-segments"),
    pytest.param("GET", "/hooks/a;x", {}, False, id="pattern-never-sees-ambiguous-paths"),
    pytest.param("GET", "/v12/docs", {}, True, id="pattern-with-a-comma"),
    pytest.param("GET", "/v1234/docs", {}, False, id="pattern-bound"),
    pytest.param("POST", "/ingest/a", {}, True, id="method-and-wildcard"),
    pytest.param("GET", "/ingest/a", {}, False, id="wildcard-other-method"),
    pytest.param("OPTIONS", "/private", PREFLIGHT, True, id="preflight"),
    pytest.param("OPTIONS", "/private", {"origin": "https://app.example"}, False, id="options-without-request-method"),
    pytest.param("OPTIONS", "/private", {"access-control-request-method": "POST"}, False, id="options-without-origin"),
    pytest.param("POST", "/private", PREFLIGHT, False, id="preflight-headers-on-a-post"),
    pytest.param("GET", "/private", {}, False, id="protected"),
]


def reached(status: int, body: bytes, method: str = "GET") -> bool:
    if method == "HEAD":
        return status == 200  # no body to tell the app's answer by
    return status == 200 and body.startswith(b"app")


# ---------------------------------------------------------------- the syntax


def test_entries_split_at_commas_are_read_back_whole() -> None:
    """Method lists and patterns may hold commas, as the environment splits entries at them."""
    pieces = ("GET", "HEAD /api/status", "^/v[0-9]{1", "3}/docs$", "/health")
    assert join_entries(pieces) == ("GET,HEAD /api/status", "^/v[0-9]{1,3}/docs$", "/health")
    settings = Settings.load(env={"OAKID_PUBLIC_PATHS": ",".join(RULES)}, **BASE)
    assert settings.public_paths == tuple(RULES)
    assert Settings.load(env={}, public_paths=RULES, **BASE).public_paths == tuple(RULES)


@pytest.mark.parametrize(
    "pattern",
    [
        pytest.param("^/(a+)+$", id="nested-repeat"),
        pytest.param("^/(a*)*b$", id="nested-star"),
        pytest.param("^/(a|aa)+$", id="repeated-choice"),
        pytest.param("^/(x+x+)+y$", id="repeated-repeats"),
        pytest.param("^/([a-z]+/?)*$", id="path-segments-repeated"),
        pytest.param("^/(a)\\1$", id="back-reference"),
        pytest.param("^/(?=admin)x$", id="look-ahead"),
        pytest.param("^/(?<!a)b$", id="look-behind"),
        pytest.param("^/hooks", id="not-anchored-at-the-end"),
        pytest.param("^/" + "a" * 300 + "$", id="too-long"),
        pytest.param("^/(unclosed$", id="not-a-regex"),
    ],
)
def test_a_pattern_that_could_backtrack_catastrophically_is_refused_at_start_up(pattern: str) -> None:
    """ReDoS: a pattern that some path could make backtrack for ever (or that is not
    anchored, or too long) is a start-up error naming ``public_paths``."""
    with pytest.raises(ConfigurationError) as info:
        Settings.load(env={}, public_paths=[pattern], **BASE)
    assert info.value.setting == "public_paths"


@pytest.mark.parametrize(
    "entry",
    ["get /x", "GET x", "GET /oauth2/start", "/a*/b", "GET,  /x"],
)
def test_a_malformed_entry_names_the_setting(entry: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        Settings.load(env={}, public_paths=[entry], **BASE)
    assert info.value.setting == "public_paths"


def test_a_pattern_is_never_tried_on_an_overlong_path() -> None:
    """Paths longer than MAX_PATH are never public by a pattern (bounded work per request)."""
    paths = PublicPaths(("^/[a-z/]+$",))
    assert paths.matches("/" + "a" * 100, "GET")
    assert not paths.matches("/" + "a" * MAX_PATH, "GET")


# ---------------------------------------------------------------- through every mode


async def _app(scope: Any, receive: Any, send: Any) -> None:
    body = b"app " + scope["method"].encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": body})


def _wsgi_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("200 OK", [("content-type", "text/plain")])
    return [b"app " + environ["REQUEST_METHOD"].encode()]


@pytest.mark.parametrize(("method", "path", "headers", "public"), CASES)
async def test_route_rules_through_asgi(method: str, path: str, headers: dict[str, str], public: bool) -> None:
    app = OakIDMiddleware(_app, public_paths=RULES, skip_preflight=True, **BASE)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.request(method, path, headers={"accept": "application/json", **headers})
    assert reached(response.status_code, response.content, method) is public, response.text
    if not public:
        assert response.status_code == 401


@pytest.mark.parametrize(("method", "path", "headers", "public"), CASES)
def test_route_rules_through_wsgi(method: str, path: str, headers: dict[str, str], public: bool) -> None:
    app = OakIDWSGIMiddleware(_wsgi_app, public_paths=RULES, skip_preflight=True, **BASE)
    with httpx.Client(transport=httpx.WSGITransport(app=app), base_url="http://t") as client:
        response = client.request(method, path, headers={"accept": "application/json", **headers})
    assert reached(response.status_code, response.content, method) is public, response.text
    if not public:
        assert response.status_code == 401


@pytest.mark.parametrize("skip", [False, True])
async def test_preflight_needs_skip_preflight(skip: bool) -> None:
    """Without ``skip_preflight`` a preflight is a request like any other: 401."""
    app = OakIDMiddleware(_app, skip_preflight=skip, **BASE)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        response = await client.options("/private", headers=PREFLIGHT)
    assert reached(response.status_code, response.content) is skip


@pytest.fixture(scope="module")
def echo_upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from apps.upstream import start_upstream

    with start_upstream(tmp_path_factory.mktemp("rules-upstream")) as server:
        yield server.url


@pytest.mark.e2e
@pytest.mark.parametrize(("method", "path", "headers", "public"), CASES)
def test_route_rules_through_the_proxy(
    echo_upstream: str, method: str, path: str, headers: dict[str, str], public: bool
) -> None:
    """The proxy's gate applies the same rules; what passes reaches the real upstream."""
    from oakid_gate.proxy import ProxyApp

    settings = Settings.load(env={}, upstream=echo_upstream, public_paths=RULES, skip_preflight=True, **BASE)

    async def go() -> httpx.Response:
        proxy = ProxyApp(settings)
        gate = OakIDMiddleware(proxy, settings)
        try:
            transport = httpx.ASGITransport(app=gate)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                return await client.request(method, path, headers={"accept": "application/json", **headers})
        finally:
            await proxy.aclose()
            await gate.aclose()

    response = asyncio.run(go())
    upstream_answered = response.status_code == 200 and b'"raw_path"' in response.content
    if method == "HEAD":
        upstream_answered = response.status_code == 200
    assert upstream_answered is public, (response.status_code, response.text)
    if public and method != "HEAD":
        assert json.loads(response.content)["method"] == method

