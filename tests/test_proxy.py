"""``oakid-gate proxy``: the gate in front of an HTTP service.

Three layers: the pure header rules (tables), :class:`ProxyApp` in process
against the real test upstream (identities that no provider would issue,
trusted proxies, timeouts), and the ``oakid-gate proxy`` command as a process
between a client and the upstream (:mod:`apps.upstream`), signed in at the
dev-idp (a process) and at node ``oidc-provider``: the end-to-end scenarios,
streaming of 100 MB each way with the proxy's peak memory measured, WebSockets,
forged identity headers and an upstream that is down.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import socket
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx
import pytest
import websockets
from apps.upstream import CHUNK, GZIP_TEXT, pattern_chunks, pattern_sha256, start_upstream
from peers.gate import (
    NAVIGATION_HEADERS,
    DevIdP,
    GateProcess,
    dev_idp_sign_in,
    start_dev_idp,
    start_gate,
)
from peers.oidc_provider import OidcProvider, sign_in
from peers.ports import free_port, wait_for_port
from peers.process import Running, spawn, terminate
from websockets.asyncio.client import connect as ws_connect

from oakid_gate.gate.identity import (
    IDENTITY_FIRST_BYTES,
    IDENTITY_HEADERS,
    header_value,
    identity_headers,
)
from oakid_gate.proxy import (
    Limits,
    ProxyApp,
    downstream_headers,
    upstream_headers,
)
from oakid_gate.proxy.upstream import IDENTITY_CACHE_SIZE, Upstream
from oakid_gate.settings import Settings
from oakid_gate.user import OakIDUser, SessionView

MB = 1024 * 1024
BIG = 100 * MB
PEAK_GROWTH_LIMIT = 50 * MB

IDENTITY_NAMES = (
    "x-forwarded-user",
    "x-forwarded-email",
    "x-forwarded-preferred-username",
    "x-forwarded-groups",
    "x-forwarded-access-token",
)

#: every spelling of the identity headers a client might try, each with "forged"
FORGED = [
    ("x-forwarded-user", "forged"),
    ("X-FORWARDED-USER", "forged"),
    ("X_Forwarded_User", "forged"),
    ("x_forwarded_user", "forged"),
    ("X-Forwarded-User", "forged"),  # a repeated line
    ("X-Forwarded-Email", "forged@evil.test"),
    ("x_forwarded_email", "forged@evil.test"),
    ("X-Forwarded-Preferred-Username", "forged"),
    ("X-Forwarded-Groups", "admins"),
    ("x-forwarded_groups", "admins"),
    ("X-Forwarded-Access-Token", "forged"),
    ("X-Auth-Request-User", "forged"),
    ("x_auth_request_email", "forged@evil.test"),
    ("X-Auth-Request-Groups", "admins"),
]


def norm(name: str) -> str:
    return name.lower().replace("_", "-")


def identity_seen(headers: list[list[str]]) -> list[tuple[str, str]]:
    """The headers the upstream got that any server could read as an identity header."""
    return [
        (norm(k), v)
        for k, v in headers
        if norm(k) in IDENTITY_NAMES or norm(k).startswith("x-auth-request-")
    ]


def header(headers: list[list[str]], name: str) -> list[str]:
    return [v for k, v in headers if k == name]


# ---------------------------------------------------------------- header rules


def names(headers: list[tuple[bytes, bytes]]) -> list[bytes]:
    return [n for n, _ in headers]


def up(
    raw: list[tuple[bytes, bytes]], *, trusted: bool = False, **kw: Any
) -> list[tuple[bytes, bytes]]:
    return upstream_headers(
        raw, client="10.0.0.7", scheme="http", trusted=trusted, identity=[], **kw
    )


@pytest.mark.parametrize(
    "name",
    [pytest.param(n.lower().encode(), id=n) for n, _ in FORGED],
)
@pytest.mark.parametrize("trusted", [False, True], ids=["untrusted", "trusted"])
def test_client_identity_headers_are_removed_in_every_spelling(name: bytes, trusted: bool) -> None:
    """A client-sent identity header, in any case or with ``_`` for ``-``, never passes,
    not even from a trusted proxy."""
    out = up([(name, b"forged"), (b"accept", b"*/*")], trusted=trusted)
    assert all(v != b"forged" for _, v in out)
    assert (b"accept", b"*/*") in out


def test_every_identity_header_takes_the_careful_path() -> None:
    """The header rules pass most names on a glance at their first byte: every identity
    header name, in any spelling, must start with one of the bytes that get a closer look."""
    spellings = [
        n for name in IDENTITY_HEADERS for n in (name, name.upper(), name.replace(b"-", b"_"))
    ]
    assert all(n[0] in IDENTITY_FIRST_BYTES for n in [*spellings, b"x-auth-request-anything"])


def test_identity_headers_are_added_after_removing_the_clients() -> None:
    """The gate's identity headers replace the client's, once each."""
    identity = [(b"x-forwarded-user", b"u-alice")]
    out = upstream_headers(
        [(b"x-forwarded-user", b"forged"), (b"x_forwarded_user", b"forged")],
        client="10.0.0.7",
        scheme="https",
        trusted=False,
        identity=identity,
    )
    assert [v for n, v in out if norm(n.decode()) == "x-forwarded-user"] == [b"u-alice"]


@pytest.mark.parametrize(
    ("raw", "dropped"),
    [
        pytest.param([(b"connection", b"keep-alive")], b"connection", id="connection"),
        pytest.param([(b"keep-alive", b"timeout=5")], b"keep-alive", id="keep-alive"),
        pytest.param([(b"te", b"trailers")], b"te", id="te"),
        pytest.param([(b"trailer", b"x")], b"trailer", id="trailer"),
        pytest.param([(b"transfer-encoding", b"chunked")], b"transfer-encoding", id="te-chunked"),
        pytest.param([(b"upgrade", b"h2c")], b"upgrade", id="upgrade"),
        pytest.param(
            [(b"proxy-authorization", b"Basic x")], b"proxy-authorization", id="proxy-auth"
        ),
        pytest.param([(b"proxy-connection", b"keep-alive")], b"proxy-connection", id="proxy-conn"),
        pytest.param(
            [(b"connection", b"close, X-Secret"), (b"x-secret", b"1")], b"x-secret", id="named"
        ),
        pytest.param(
            [(b"connection", b"Accept-Language"), (b"accept-language", b"en")],
            b"accept-language",
            id="named-ordinary",
        ),
        pytest.param(
            [(b"transfer_encoding", b"chunked")], b"transfer_encoding", id="te-underscore"
        ),
        pytest.param(
            [(b"proxy_authorization", b"x")], b"proxy_authorization", id="proxy-underscore"
        ),
        pytest.param([(b"expect", b"100-continue")], b"expect", id="expect"),
        pytest.param([(b"host", b"public.example")], b"host", id="host"),
    ],
)
def test_hop_by_hop_request_headers_are_removed(
    raw: list[tuple[bytes, bytes]], dropped: bytes
) -> None:
    """Hop-by-hop headers, and those that Connection names, stay with the proxy."""
    assert dropped not in names(up([*raw, (b"accept", b"*/*")]))


@pytest.mark.parametrize(
    ("trusted", "xff", "proto", "host"),
    [
        pytest.param(False, b"10.0.0.7", b"http", b"app.example", id="untrusted-replaced"),
        pytest.param(
            True, b"203.0.113.9, 10.0.0.1, 10.0.0.7", b"https", b"public.example", id="trusted"
        ),
    ],
)
def test_forwarding_headers_believed_only_from_trusted_proxies(
    trusted: bool, xff: bytes, proto: bytes, host: bytes
) -> None:
    """X-Forwarded-For is replaced by the peer's address, or extended when the peer is
    a trusted proxy, whose X-Forwarded-Proto/-Host are believed too; Forwarded and
    X-Real-IP pass only from a trusted proxy."""
    raw = [
        (b"host", b"app.example"),
        (b"x-forwarded-for", b"203.0.113.9"),
        (b"x-forwarded-for", b"10.0.0.1"),
        (b"x-forwarded-proto", b"https"),
        (b"x-forwarded-host", b"public.example"),
        (b"x_forwarded_for", b"6.6.6.6"),
        (b"forwarded", b"for=6.6.6.6"),
        (b"x-real-ip", b"6.6.6.6"),
    ]
    out = dict(up(raw, trusted=trusted))
    assert out[b"x-forwarded-for"] == xff
    assert out[b"x-forwarded-proto"] == proto
    assert out[b"x-forwarded-host"] == host
    assert b"x_forwarded_for" not in out
    assert (b"forwarded" in out, b"x-real-ip" in out) == (trusted, trusted)


def test_gate_cookies_are_not_forwarded_others_are() -> None:
    """The session and sign-in cookies stay with the gate; other cookies pass untouched."""
    drop = (
        frozenset({b"oakid_session", b"__Host-oakid_session"}),
        (b"oakid_session_login_", b"__Secure-oakid_session_login_"),
    )
    raw = [
        (b"cookie", b"theme=dark; oakid_session=secret; a=b=c"),
        (b"cookie", b"__Host-oakid_session=secret;oakid_session_login_abc=x; lang=en"),
    ]
    out = dict(up(raw, drop_cookies=drop))
    assert out[b"cookie"] == b"theme=dark; a=b=c; lang=en"
    only_gate = dict(up([(b"cookie", b"oakid_session=secret")], drop_cookies=drop))
    assert b"cookie" not in only_gate


@pytest.mark.parametrize(
    ("claim", "expected"),
    [
        pytest.param("alice", b"alice", id="plain"),
        pytest.param("José", "José".encode(), id="latin-1"),
        pytest.param("山田", "山田".encode(), id="cjk-utf8"),
        pytest.param("Ann Lee", b"Ann Lee", id="inner-space"),
        # Issue 9: never altered to fit (adm\u200bin must not arrive as admin): not sent.
        pytest.param("alice\r\nX-Forwarded-User: root", None, id="crlf"),
        pytest.param("al\x00ice\x7f\x85", None, id="controls"),
        pytest.param("  alice  ", None, id="spaces"),
        pytest.param("adm\u200bin", None, id="zero-width"),
        pytest.param("admin\u202egnp.exe", None, id="bidi-override"),
        pytest.param("\ud800x", None, id="lone-surrogate"),
        pytest.param("", None, id="empty"),
    ],
)
def test_claim_values_travel_as_they_are_or_not_at_all(claim: str, expected: bytes | None) -> None:
    """A claim goes into a header exactly as it is (UTF-8), or not at all: never altered."""
    assert header_value(claim) == expected


@pytest.mark.parametrize(
    ("groups", "forwarded"),
    [
        pytest.param(["staff", "ops"], b"staff,ops", id="plain"),
        pytest.param(["staff", "a,admins"], b"staff", id="comma-would-split"),
        pytest.param(["staff", "adm\u200bins"], b"staff", id="format-character"),
        pytest.param("staff", b"staff", id="one-string"),
        pytest.param(["a,b"], None, id="only-unsafe"),
    ],
)
def test_a_group_that_cannot_travel_as_it_is_is_left_out_for_app_and_upstream(
    groups: Any, forwarded: bytes | None
) -> None:
    """A group holding the separator or an invisible character is dropped from
    ``user.groups`` and ``X-Forwarded-Groups`` alike: both see the same groups."""
    user = OakIDUser({"sub": "s1", "groups": groups})
    headers = dict(identity_headers(user, b"x-forwarded-"))
    assert headers.get(b"x-forwarded-groups") == forwarded
    assert ",".join(user.groups).encode() == (forwarded or b"")


def test_identity_headers_from_the_user_and_session() -> None:
    """User claim, email, preferred username, groups; the access token only when asked."""
    user = OakIDUser(
        {
            "sub": "s1",
            "email": "a@example.test",
            "preferred_username": "al",
            "groups": ["x", "y"],
        },
        "preferred_username",
    )
    view = SessionView("tok", None, user.claims, ())
    assert dict(identity_headers(user, b"x-forwarded-")) == {
        b"x-forwarded-user": b"al",
        b"x-forwarded-email": b"a@example.test",
        b"x-forwarded-preferred-username": b"al",
        b"x-forwarded-groups": b"x,y",
    }
    with_token = dict(identity_headers(user, b"x-forwarded-", access_token=view.access_token))
    assert with_token[b"x-forwarded-access-token"] == b"tok"
    assert identity_headers(None, b"x-forwarded-", access_token="tok") == []


@pytest.mark.parametrize(
    ("trust", "forwarded"),
    [pytest.param(False, False, id="default"), pytest.param(True, True, id="allow-unverified-email")],
)
def test_an_unverified_email_is_never_forwarded(trust: bool, forwarded: bool) -> None:
    """``X-Forwarded-Email`` carries a verified email only, unless the deployer allows otherwise."""
    user = OakIDUser(
        {"sub": "s1", "email": "a@example.test", "email_verified": False},
        trust_unverified_email=trust,
    )
    headers = dict(identity_headers(user, b"x-forwarded-"))
    assert (b"x-forwarded-email" in headers) is forwarded
    assert headers[b"x-forwarded-user"] == b"s1"


def scope_of(user: OakIDUser | None, token: str = "at-1") -> dict[str, Any]:
    scope: dict[str, Any] = {"headers": [], "client": ("10.0.0.7", 1), "scheme": "http"}
    if user is not None:
        scope.update(user=user, oakid=SessionView(token, None, user.claims, ()))
    return scope


def test_identity_headers_follow_the_user_and_token_of_each_request() -> None:
    """The identity headers, worked out once per user, are each request's own: another user
    gets theirs, a refreshed access token is sent anew, an anonymous request gets none, and
    the users remembered stay bounded."""
    upstream = Upstream(settings_for("http://127.0.0.1:1", pass_access_token=True))

    def identity(scope: dict[str, Any]) -> dict[bytes, bytes]:
        return {
            k: v
            for k, v in upstream.headers(scope)
            if k.startswith(b"x-forwarded-") and k not in (b"x-forwarded-for", b"x-forwarded-proto")
        }

    alice, bob = OakIDUser({"sub": "alice"}), OakIDUser({"sub": "bob", "email": "b@example.test"})
    assert identity(scope_of(alice)) == {
        b"x-forwarded-user": b"alice",
        b"x-forwarded-access-token": b"at-1",
    }
    assert identity(scope_of(alice, "at-2"))[b"x-forwarded-access-token"] == b"at-2"
    assert identity(scope_of(bob))[b"x-forwarded-email"] == b"b@example.test"
    assert identity(scope_of(alice))[b"x-forwarded-user"] == b"alice"
    assert identity(scope_of(None)) == {}
    for n in range(IDENTITY_CACHE_SIZE + 10):
        assert (
            identity(scope_of(OakIDUser({"sub": f"u{n}"})))[b"x-forwarded-user"] == f"u{n}".encode()
        )
    assert len(upstream._identities) <= IDENTITY_CACHE_SIZE


def test_response_headers_lose_hop_by_hop_keep_cookies_and_location() -> None:
    """Set-Cookie lines and Location pass as the upstream wrote them."""
    raw = [
        (b"connection", b"x-hop"),
        (b"x-hop", b"1"),
        (b"transfer-encoding", b"chunked"),
        (b"keep-alive", b"timeout=5"),
        (b"date", b"Mon, 01 Jan 2024 00:00:00 GMT"),
        (b"location", b"/next?a=1"),
        (b"set-cookie", b"a=1; Path=/"),
        (b"set-cookie", b"b=2; HttpOnly"),
    ]
    assert downstream_headers(raw) == [
        (b"location", b"/next?a=1"),
        (b"set-cookie", b"a=1; Path=/"),
        (b"set-cookie", b"b=2; HttpOnly"),
    ]


# ---------------------------------------------------------------- processes


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("proxy")


@pytest.fixture(scope="module")
def upstream(workdir: Path) -> Iterator[Running]:
    with start_upstream(workdir) as server:
        yield server


@pytest.fixture(scope="module")
def dev_idp(workdir: Path) -> Iterator[DevIdP]:
    with start_dev_idp(workdir) as idp:
        yield idp


# ---------------------------------------------------------------- in process


def settings_for(upstream_url: str, **extra: Any) -> Settings:
    return Settings.load(
        env={},
        client_id="oak_test",
        client_secret="client-secret",
        secret="s" * 32,
        upstream=upstream_url,
        **extra,
    )


def as_user(app: ProxyApp, claims: dict[str, Any] | None, token: str = "at-123") -> Any:
    """``app`` behind a stand-in for the gate that signs everyone in with ``claims``."""

    async def gated(scope: Any, receive: Any, send: Any) -> None:
        if claims is not None:
            scope["user"] = OakIDUser(claims)
            scope["oakid"] = SessionView(token, None, claims, ())
        await app(scope, receive, send)

    return gated


@pytest.fixture
async def in_process(upstream: Running) -> AsyncIterator[Callable[..., httpx.AsyncClient]]:
    apps: list[ProxyApp] = []
    clients: list[httpx.AsyncClient] = []

    def make(
        claims: dict[str, Any] | None = None,
        *,
        peer: str = "192.0.2.10",
        upstream_url: str | None = None,
        timeout: float = 10.0,
        **settings: Any,
    ) -> httpx.AsyncClient:
        app = ProxyApp(
            settings_for(upstream_url or upstream.url, **settings), limits=Limits(timeout=timeout)
        )
        apps.append(app)
        transport = httpx.ASGITransport(app=as_user(app, claims), client=(peer, 40000))
        client = httpx.AsyncClient(transport=transport, base_url="http://app.example")
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()
    for app in apps:
        await app.aclose()


@pytest.mark.e2e
async def test_claims_reach_the_upstream_unaltered_or_not_at_all(
    in_process: Callable[..., httpx.AsyncClient],
) -> None:
    """Non-Latin-1 text reaches the upstream as UTF-8, unaltered; a claim with CR/LF is not
    sent at all (it once arrived as yamada@example.testX-Injected: 1, and the group
    dev\nops as devops); the access token is passed with pass_access_token."""
    claims = {
        "sub": "s-1",
        "email": "yamada@example.test\r\nX-Injected: 1",
        "preferred_username": "山田",
        "groups": ["ops", "dev\nops"],
    }
    http = in_process(claims, pass_access_token=True)
    response = await http.get("/who", headers=FORGED)
    headers = response.json()["headers"]
    decoded = {k: v.encode("latin-1").decode("utf-8") for k, v in identity_seen(headers)}
    assert decoded == {
        "x-forwarded-user": "s-1",
        "x-forwarded-preferred-username": "山田",
        "x-forwarded-groups": "ops",
        "x-forwarded-access-token": "at-123",
    }
    assert len(identity_seen(headers)) == 4
    assert not header(headers, "x-injected")


@pytest.mark.e2e
async def test_trusted_proxy_chain_is_extended(
    in_process: Callable[..., httpx.AsyncClient], upstream: Running
) -> None:
    """Behind a trusted proxy, the client's X-Forwarded-For grows by the peer, and its
    X-Forwarded-Proto/-Host are passed on; Host is the upstream's."""
    http = in_process({"sub": "s-1"}, peer="10.9.8.7", trusted_proxies=["10.0.0.0/8"])
    response = await http.get(
        "/x",
        headers={
            "X-Forwarded-For": "198.51.100.4",
            "X-Forwarded-Proto": "https",
            "X-Forwarded-Host": "tools.example",
        },
    )
    headers = response.json()["headers"]
    assert header(headers, "x-forwarded-for") == ["198.51.100.4, 10.9.8.7"]
    assert header(headers, "x-forwarded-proto") == ["https"]
    assert header(headers, "x-forwarded-host") == ["tools.example"]
    assert header(headers, "host") == [f"127.0.0.1:{upstream.port}"]


@pytest.mark.e2e
async def test_upstream_path_prefix_and_the_judged_path_are_forwarded(
    in_process: Callable[..., httpx.AsyncClient], upstream: Running
) -> None:
    """An upstream URL with a path prefixes every request path; the path goes as the
    canonical encoding of the one the gate judged (``%2F`` was decoded before the gate
    saw it, so it goes as ``/``), the query as the client wrote it."""
    http = in_process({"sub": "s-1"}, upstream_url=upstream.url + "/base/")
    response = await http.get("/a%2Fb/c%20d;e?q=%41&x=1")
    body = response.json()
    assert body["raw_path"] == "/base/a/b/c%20d%3Be"
    assert body["path"] == "/base/a/b/c d;e"
    assert body["query"] == "q=%41&x=1"


@pytest.mark.e2e
async def test_upstream_timeout_is_a_502(in_process: Callable[..., httpx.AsyncClient]) -> None:
    """An upstream that does not answer in time gets the client a 502 in JSON, no trace."""
    http = in_process({"sub": "s-1"}, timeout=0.3)
    response = await http.get("/slow?seconds=3", headers={"Accept": "application/json"})
    assert response.status_code == 502
    assert response.json()["error"] == "bad_gateway"
    assert "in time" in response.json()["error_description"]


# ---------------------------------------------------------------- end to end


@dataclass
class Gated:
    """A proxy process behind one provider, and how to sign in there."""

    name: str
    proxy: GateProcess
    sign_in: Callable[[httpx.Client, str], httpx.Response]
    user: str
    email: str
    username: str
    groups: str

    @property
    def url(self) -> str:
        return self.proxy.url


@pytest.fixture(scope="module")
def dev_idp_proxy(workdir: Path, upstream: Running, dev_idp: DevIdP) -> Iterator[Gated]:
    settings = dev_idp.settings(upstream=upstream.url, public_paths="/public/*")
    with start_gate(workdir, ["proxy"], settings=settings) as proxy:
        yield Gated(
            "dev-idp",
            proxy,
            lambda http, url: dev_idp_sign_in(http, url, "alice"),
            "u-alice",
            "alice@example.test",
            "alice",
            "admins,staff",
        )


@pytest.fixture(scope="module")
def node_proxy(workdir: Path, upstream: Running, oidc_provider: OidcProvider) -> Iterator[Gated]:
    port = free_port()
    settings = oidc_provider.gate_settings(port)
    settings.update(upstream=upstream.url, public_paths="/public/*")
    with start_gate(workdir, ["proxy"], settings=settings, port=port) as proxy:
        yield Gated(
            "oidc-provider",
            proxy,
            lambda http, url: sign_in(http, url, login="alice"),
            "alice",
            "alice@example.test",
            "alice",
            "staff",
        )


@pytest.fixture(params=["dev-idp", "oidc-provider"])
def gated(request: pytest.FixtureRequest) -> Gated:
    """The proxy behind each provider in turn."""
    name = "dev_idp_proxy" if request.param == "dev-idp" else "node_proxy"
    value: Gated = request.getfixturevalue(name)
    return value


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    """A fresh cookie jar, as a new browser."""
    with httpx.Client(timeout=30, trust_env=False) as client:
        yield client


@pytest.mark.e2e
def test_browser_signs_in_and_upstream_sees_the_user(gated: Gated, http: httpx.Client) -> None:
    """A protected page goes to the provider and back to the same URL, and the upstream
    receives the user in X-Forwarded-*, Host its own, X-Forwarded-Host the proxy's."""
    response = gated.sign_in(http, f"{gated.url}/private/page?x=1&y=2")
    assert response.status_code == 200, response.text
    assert str(response.url).startswith(gated.url)
    body = response.json()
    assert (body["path"], body["query"]) == ("/private/page", "x=1&y=2")
    headers = body["headers"]
    assert sorted(identity_seen(headers)) == sorted(
        [
            ("x-forwarded-user", gated.user),
            ("x-forwarded-email", gated.email),
            ("x-forwarded-preferred-username", gated.username),
            ("x-forwarded-groups", gated.groups),
        ]
    )
    upstream_host = header(headers, "host")[0]
    assert upstream_host != gated.url.removeprefix("http://")
    assert header(headers, "x-forwarded-host") == [gated.url.removeprefix("http://")]
    assert header(headers, "x-forwarded-proto") == ["http"]
    assert header(headers, "x-forwarded-for") == ["127.0.0.1"]
    assert all("oakid_session" not in v for v in header(headers, "cookie"))


@pytest.mark.e2e
def test_api_request_without_session_is_401_and_not_forwarded(gated: Gated) -> None:
    """An API call without a session gets the gate's 401 JSON, never the upstream."""
    response = httpx.get(f"{gated.url}/api/items", headers={"Accept": "application/json"})
    assert response.status_code == 401
    assert response.json()["error"] == "unauthenticated"
    assert "headers" not in response.json()


@pytest.mark.e2e
def test_auth_endpoint_answers_202_with_the_user_or_401(gated: Gated, http: httpx.Client) -> None:
    """/oauth2/auth (nginx auth_request) is the gate's own: 401 signed out, 202 with
    X-Auth-Request-* signed in."""
    assert http.get(f"{gated.url}/oauth2/auth").status_code == 401
    gated.sign_in(http, f"{gated.url}/")
    response = http.get(f"{gated.url}/oauth2/auth")
    assert response.status_code == 202
    assert response.headers["x-auth-request-user"] == gated.user
    assert response.headers["x-auth-request-email"] == gated.email
    assert response.headers["x-auth-request-groups"] == gated.groups


@pytest.mark.e2e
def test_groups_from_real_providers_decide_per_location_rules(
    gated: Gated, http: httpx.Client
) -> None:
    """The groups each real provider sends (node oidc-provider's claims mapping, the
    dev-idp's users in groups) decide ``/oauth2/auth``'s per-location rules, changed from
    one request to the next: a group held passes (202), one not held is 403, never 401
    (which would send nginx into a sign-in loop)."""
    gated.sign_in(http, f"{gated.url}/")
    held = gated.groups.split(",")[0]
    for query, status in [
        (f"allowed_groups={held}", 202),
        ("allowed_groups=nobody-has-this", 403),
        (f"allowed_groups=nobody-has-this,{held}", 202),
        (f"allowed_emails={gated.email}", 202),
        ("allowed_domains=elsewhere.example", 403),
        (f"allowed_groups={held}&allowed_domains=elsewhere.example", 403),
    ]:
        response = http.get(f"{gated.url}/oauth2/auth?{query}")
        assert response.status_code == status, (query, response.text)
        if status == 403:
            assert response.json()["error"] == "access_denied"
            assert "x-auth-request-user" not in response.headers


@pytest.mark.e2e
def test_forged_identity_headers_never_reach_the_upstream(gated: Gated, http: httpx.Client) -> None:
    """Client-sent identity headers in every spelling, repeated, are removed: signed in
    the upstream sees only the gate's values, on a public path none at all."""
    public = http.get(f"{gated.url}/public/page", headers=FORGED)
    assert public.status_code == 200
    assert identity_seen(public.json()["headers"]) == []

    gated.sign_in(http, f"{gated.url}/")
    private = http.get(f"{gated.url}/private", headers=[*FORGED, ("X-Forwarded-For", "6.6.6.6")])
    headers = private.json()["headers"]
    seen = identity_seen(headers)
    assert ("x-forwarded-user", gated.user) in seen
    assert len(seen) == 4
    assert all("forged" not in v and "evil" not in v for _, v in seen)
    assert header(headers, "x-forwarded-for") == ["127.0.0.1"]


#: request targets below the public ``/public/*`` that an upstream normalising paths its
#: own way (Tomcat and Jetty path parameters, IIS backslashes, a second round of
#: decoding, overlong UTF-8) would route to ``/admin``
PATH_CONFUSIONS = [
    "/public/..;/admin",
    "/public/..%3b/admin",
    "/public/..%3B/admin",
    "/public;x/../admin",
    "/public/..\\admin",
    "/public/..%5cadmin",
    "/public/..%5Cadmin",
    "/public/%2e%2e/admin",
    "/public/.%2e/admin",
    "/public/%2e%2e%2fadmin",
    "/public/..%2f..%2fadmin",
    "/public/%252e%252e/admin",
    "/public/%252e%252e%252fadmin",
    "/public/..%255cadmin",
    "/public/%c0%ae%c0%ae/admin",
    "/public/%c0%ae%c0%ae%c0%afadmin",
    "/public/%e0%80%ae%e0%80%ae/admin",
    "/public/%e2%80%a4%e2%80%a4/admin",
    "/public/..%u2215admin",
    "/public/..%00/admin",
    "/public/%00/../admin",
    "/public/..%09/admin",
    "/public/..%0d%0a/admin",
]

#: what a canonical encoding leaves as it is
CANONICAL = re.compile(r"[A-Za-z0-9/:@!$&'()*+,=._~%-]*")


def raw_get(base_url: str, target: str, cookie: str | None = None) -> tuple[int, bytes]:
    """GET ``target`` exactly as written (httpx would normalise it): status and body."""
    port = int(base_url.rsplit(":", 1)[1])
    head = f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: application/json\r\n"
    if cookie:
        head += f"Cookie: {cookie}\r\n"
    head += "Connection: close\r\n\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head.encode("latin-1"))
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    status_line, _, rest = data.partition(b"\r\n")
    body = rest.partition(b"\r\n\r\n")[2]
    return int(status_line.split()[1]), body


@pytest.mark.e2e
@pytest.mark.parametrize("target", PATH_CONFUSIONS)
def test_path_confusion_below_a_public_path_never_reaches_the_upstream_anonymously(
    dev_idp_proxy: Gated, target: str
) -> None:
    """``/public/..;/admin`` and its kin: the gate judges the decoded path, which is not
    public, so an anonymous request is refused (401, or 400 from the server's parser)
    and the upstream never sees it."""
    status, body = raw_get(dev_idp_proxy.url, target)
    assert status in (400, 401), (status, body[:200])
    assert b"raw_path" not in body


@pytest.mark.e2e
@pytest.mark.parametrize("target", PATH_CONFUSIONS)
def test_path_confusion_reaches_the_upstream_as_the_path_judged(
    signed_in_dev_idp: httpx.Client, dev_idp_proxy: Gated, target: str
) -> None:
    """Signed in, the upstream gets the canonical encoding of the path the gate judged:
    no ``;``, ``\\`` or raw byte it could read as another path, and its decoding is the
    judged path."""
    status, body = raw_get(dev_idp_proxy.url, target, session_cookie(signed_in_dev_idp))
    if status == 400:
        return  # the server's parser refused it: nothing was judged or forwarded
    assert status == 200, (status, body[:200])
    seen = json.loads(body)
    assert CANONICAL.fullmatch(seen["raw_path"]), seen["raw_path"]
    assert ";" not in seen["raw_path"] and "\\" not in seen["raw_path"]
    judged = unquote(target.partition("?")[0])
    assert seen["path"] == judged


@pytest.mark.e2e
def test_sign_out_ends_the_session(gated: Gated, http: httpx.Client) -> None:
    """After signing out through the proxy, the same cookies get a 401."""
    gated.sign_in(http, f"{gated.url}/")
    api = {"Accept": "application/json"}
    assert http.get(f"{gated.url}/api", headers=api).status_code == 200
    out = http.post(f"{gated.url}/oauth2/sign_out?rd=/bye", headers={"Origin": gated.url})
    assert out.status_code == 303
    assert http.get(f"{gated.url}/api", headers=api).status_code == 401


@pytest.mark.e2e
def test_redirects_cookies_and_encodings_pass_intact(
    dev_idp_proxy: Gated, http: httpx.Client
) -> None:
    """The upstream's Location and Set-Cookie lines pass as written, a gzip body is
    forwarded compressed, and the upstream's hop-by-hop headers stop at the proxy."""
    url = dev_idp_proxy.url
    dev_idp_proxy.sign_in(http, f"{url}/")
    redirect = http.get(f"{url}/redirect")
    assert (redirect.status_code, redirect.headers["location"]) == (302, "/landing?from=redirect")
    cookies = http.get(f"{url}/cookies")
    assert cookies.headers.get_list("set-cookie") == [
        "first=1; Path=/; HttpOnly",
        "second=2; Path=/app; SameSite=Strict",
    ]
    with http.stream("GET", f"{url}/gzip", headers={"Accept-Encoding": "gzip"}) as raw:
        assert raw.headers["content-encoding"] == "gzip"
        compressed = b"".join(raw.iter_raw())
    assert gzip.decompress(compressed) == GZIP_TEXT
    hop = http.get(f"{url}/hop")
    assert hop.headers["x-end-to-end"] == "kept"
    assert "x-hop-secret" not in hop.headers
    assert "keep-alive" not in hop.headers
    assert len(hop.headers.get_list("date")) == 1


@pytest.mark.e2e
def test_small_chunked_upload_is_forwarded(dev_idp_proxy: Gated, http: httpx.Client) -> None:
    """A chunked request body (no Content-Length) arrives whole."""
    dev_idp_proxy.sign_in(http, f"{dev_idp_proxy.url}/")
    parts = [b"a" * 1000, b"b" * 5000, b"c"]
    response = http.post(f"{dev_idp_proxy.url}/upload", content=iter(parts))
    assert response.json() == {
        "bytes": 6001,
        "sha256": hashlib.sha256(b"".join(parts)).hexdigest(),
    }


# ---------------------------------------------------------------- memory


def memory_kib(pid: int) -> dict[str, int]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0])
    return fields


def reset_peak(pid: int) -> bool:
    """Reset the process's peak RSS (VmHWM) to its current RSS, where Linux allows it."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


class PeakMemory:
    """The growth of a process's peak RSS over a block, in bytes."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.growth = 0
        self.baseline = 0
        self.peak = 0

    def __enter__(self) -> PeakMemory:
        reset_peak(self.pid)
        self.baseline = memory_kib(self.pid)["VmRSS"] * 1024
        return self

    def __exit__(self, *exc: object) -> None:
        self.peak = memory_kib(self.pid)["VmHWM"] * 1024
        self.growth = self.peak - self.baseline


def download(http: httpx.Client, url: str, size: int) -> tuple[int, str]:
    digest = hashlib.sha256()
    count = 0
    with http.stream("GET", f"{url}/download?size={size}") as response:
        assert response.status_code == 200
        assert response.headers["content-length"] == str(size)
        for chunk in response.iter_raw():
            digest.update(chunk)
            count += len(chunk)
    return count, digest.hexdigest()


def upload(http: httpx.Client, url: str, size: int) -> dict[str, Any]:
    block = hashlib.sha256(b"oakid").digest() * (CHUNK // 32)
    body = (block[:length] for _, length in pattern_chunks(size))
    response = http.post(f"{url}/upload", content=body, headers={"Content-Length": str(size)})
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


@pytest.fixture(scope="module")
def signed_in_dev_idp(dev_idp_proxy: Gated) -> Iterator[httpx.Client]:
    with httpx.Client(timeout=60, trust_env=False) as client:
        response = dev_idp_proxy.sign_in(client, f"{dev_idp_proxy.url}/")
        assert response.status_code == 200
        # Warm up: the first transfers allocate what every later one reuses.
        download(client, dev_idp_proxy.url, 8 * MB)
        upload(client, dev_idp_proxy.url, 8 * MB)
        yield client


@pytest.mark.e2e
def test_100_mb_download_streams_in_bounded_memory(
    dev_idp_proxy: Gated, signed_in_dev_idp: httpx.Client, record_property: Any
) -> None:
    """A 100 MB response passes through whole and unchanged while the proxy's peak RSS
    grows by less than 50 MB."""
    started = time.monotonic()
    with PeakMemory(dev_idp_proxy.proxy.pid) as memory:
        count, digest = download(signed_in_dev_idp, dev_idp_proxy.url, BIG)
    elapsed = time.monotonic() - started
    assert (count, digest) == (BIG, pattern_sha256(BIG))
    record_property("download_seconds", round(elapsed, 2))
    record_property("download_peak_growth_mb", round(memory.growth / MB, 1))
    print(
        f"\n100 MB download: {elapsed:.2f}s, proxy peak RSS {memory.peak / MB:.1f} MB "
        f"(+{memory.growth / MB:.1f} MB)"
    )
    assert memory.growth < PEAK_GROWTH_LIMIT
    assert elapsed < 60


@pytest.mark.e2e
def test_100_mb_upload_streams_in_bounded_memory(
    dev_idp_proxy: Gated, signed_in_dev_idp: httpx.Client, record_property: Any
) -> None:
    """A 100 MB request body reaches the upstream whole and unchanged while the proxy's
    peak RSS grows by less than 50 MB."""
    started = time.monotonic()
    with PeakMemory(dev_idp_proxy.proxy.pid) as memory:
        result = upload(signed_in_dev_idp, dev_idp_proxy.url, BIG)
    elapsed = time.monotonic() - started
    assert result == {"bytes": BIG, "sha256": pattern_sha256(BIG)}
    record_property("upload_seconds", round(elapsed, 2))
    record_property("upload_peak_growth_mb", round(memory.growth / MB, 1))
    print(
        f"\n100 MB upload: {elapsed:.2f}s, proxy peak RSS {memory.peak / MB:.1f} MB "
        f"(+{memory.growth / MB:.1f} MB)"
    )
    assert memory.growth < PEAK_GROWTH_LIMIT
    assert elapsed < 60


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.mark.e2e
def test_client_leaving_a_download_stops_the_transfer(
    dev_idp_proxy: Gated, signed_in_dev_idp: httpx.Client
) -> None:
    """When the client goes away mid-download, the proxy stops reading the upstream
    (a 10 GB answer does not keep it busy), and goes on serving."""
    pid = dev_idp_proxy.proxy.pid
    url = f"{dev_idp_proxy.url}/download?size={10 * 1024 * MB}"
    with signed_in_dev_idp.stream("GET", url) as response:
        received = 0
        for chunk in response.iter_raw():
            received += len(chunk)
            if received > 2 * MB:
                break
    # Leaving the stream early closes the connection.
    time.sleep(0.3)
    before = cpu_seconds(pid)
    time.sleep(1.0)
    busy = cpu_seconds(pid) - before
    assert busy < 0.3, f"the proxy used {busy:.2f}s of CPU in 1s after the client left"
    assert signed_in_dev_idp.get(f"{dev_idp_proxy.url}/after").status_code == 200
    assert "Traceback" not in dev_idp_proxy.proxy.log()


@pytest.mark.e2e
def test_upstream_connections_are_kept_alive(
    dev_idp_proxy: Gated, signed_in_dev_idp: httpx.Client
) -> None:
    """Requests one after another reuse one pooled connection to the upstream."""
    ports = {
        tuple(signed_in_dev_idp.get(f"{dev_idp_proxy.url}/n{i}").json()["client"]) for i in range(5)
    }
    assert len(ports) == 1


@pytest.mark.e2e
async def test_request_target_that_is_not_a_path_is_refused(upstream: Running) -> None:
    """An absolute-form request target is answered 400, never sent on."""
    app = ProxyApp(settings_for(upstream.url))
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "GET",
        "scheme": "http",
        "path": "http://evil.test/",
        "raw_path": b"http://evil.test/",
        "query_string": b"",
        "headers": [],
        "client": ("127.0.0.1", 1),
    }
    try:
        await app(scope, receive, send)
    finally:
        await app.aclose()
    assert sent[0]["status"] == 400


# ---------------------------------------------------------------- websockets


def session_cookie(http: httpx.Client) -> str:
    return "; ".join(f"{c.name}={c.value}" for c in http.cookies.jar if "oakid" in c.name)


@pytest.mark.e2e
async def test_websocket_echo_through_the_proxy(
    dev_idp_proxy: Gated, signed_in_dev_idp: httpx.Client
) -> None:
    """A signed-in WebSocket is passed through: text and bytes echo, the subprotocol is
    the upstream's choice, the upstream's handshake carries the user (and no forged
    identity), and its close code reaches the client."""
    ws_url = dev_idp_proxy.url.replace("http://", "ws://") + "/ws"
    headers = {
        "Cookie": session_cookie(signed_in_dev_idp),
        "X-Forwarded-User": "forged",
        "X_Forwarded_User": "forged",
    }
    async with ws_connect(
        ws_url, additional_headers=headers, subprotocols=["chat"], proxy=None
    ) as ws:
        assert ws.subprotocol == "chat"
        await ws.send("hello")
        assert await ws.recv() == "hello"
        await ws.send(b"\x00\x01binary")
        assert await ws.recv() == b"\x00\x01binary"
        await ws.send("headers")
        handshake = json.loads(await ws.recv())
        assert sorted(identity_seen(handshake))[:1] == [("x-forwarded-email", "alice@example.test")]
        assert ("x-forwarded-user", "u-alice") in identity_seen(handshake)
        assert all(v != "forged" for _, v in identity_seen(handshake))
        await ws.send("close")
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd is not None
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (4001, "bye")


@pytest.mark.e2e
async def test_websocket_closed_by_the_client_closes_upstream(
    dev_idp_proxy: Gated, signed_in_dev_idp: httpx.Client
) -> None:
    """A client's close is passed on; the proxy takes new connections afterwards and
    logs no error."""
    ws_url = dev_idp_proxy.url.replace("http://", "ws://") + "/ws"
    headers = {"Cookie": session_cookie(signed_in_dev_idp)}
    for text in ("first", "second"):
        async with ws_connect(ws_url, additional_headers=headers, proxy=None) as ws:
            await ws.send(text)
            assert await ws.recv() == text
            await ws.close(1000, "done")
        assert ws.close_code == 1000
    assert "Traceback" not in dev_idp_proxy.proxy.log()
    assert "ERROR" not in dev_idp_proxy.proxy.log()


@pytest.mark.e2e
async def test_websocket_without_session_is_refused(dev_idp_proxy: Gated) -> None:
    """No session, no WebSocket: the handshake is refused before reaching the upstream."""
    ws_url = dev_idp_proxy.url.replace("http://", "ws://") + "/ws"
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with ws_connect(ws_url, proxy=None):
            pass
    assert refused.value.response.status_code == 403


@pytest.mark.e2e
@pytest.mark.parametrize(
    "origin",
    [
        pytest.param("http://evil.example", id="another-site"),
        pytest.param("http://127.0.0.1:1", id="same-host-another-port"),
        pytest.param("null", id="opaque-origin"),
    ],
)
async def test_a_websocket_opened_from_another_origin_is_refused(
    dev_idp_proxy: Gated, signed_in_dev_idp: httpx.Client, origin: str
) -> None:
    """Cross-site WebSocket hijacking: a page of another origin, even of the same site,
    cannot open the user's WebSocket with the user's cookie (403 before the upstream)."""
    ws_url = dev_idp_proxy.url.replace("http://", "ws://") + "/ws"
    headers = {"Cookie": session_cookie(signed_in_dev_idp)}
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with ws_connect(ws_url, additional_headers=headers, origin=origin, proxy=None):  # type: ignore[arg-type]
            pass
    assert refused.value.response.status_code == 403
    # The site's own pages may.
    own = dev_idp_proxy.url
    async with ws_connect(ws_url, additional_headers=headers, origin=own, proxy=None) as ws:  # type: ignore[arg-type]
        await ws.send("hello")
        assert await ws.recv() == "hello"


# ---------------------------------------------------------------- upstream down


@pytest.fixture(scope="module")
def proxy_to_nowhere(workdir: Path, dev_idp: DevIdP) -> Iterator[GateProcess]:
    settings = dev_idp.settings(upstream=f"http://127.0.0.1:{free_port()}", public_paths="/*")
    with start_gate(workdir, ["proxy"], settings=settings) as proxy:
        yield proxy


@pytest.mark.parametrize(
    ("accept", "content_type"),
    [
        pytest.param(NAVIGATION_HEADERS["Accept"], "text/html; charset=utf-8", id="browser"),
        pytest.param("application/json", "application/json", id="api"),
    ],
)
@pytest.mark.e2e
def test_upstream_down_is_a_clear_502(
    proxy_to_nowhere: GateProcess, accept: str, content_type: str
) -> None:
    """Nothing listening upstream: a 502 page for a browser, JSON for an API client,
    and no traceback anywhere."""
    response = httpx.get(f"{proxy_to_nowhere.url}/page", headers={"Accept": accept})
    assert response.status_code == 502
    assert response.headers["content-type"] == content_type
    assert "not answering" in response.text
    assert "Traceback" not in proxy_to_nowhere.log()


@pytest.mark.e2e
def test_the_502_page_is_the_gates_own_with_a_reference_in_the_log(
    proxy_to_nowhere: GateProcess,
) -> None:
    """The proxy's 502 page is one of the gate's pages: it names the site and carries a
    reference that is the request id of the log line saying which upstream failed."""
    response = httpx.get(
        f"{proxy_to_nowhere.url}/page",
        headers={"Accept": NAVIGATION_HEADERS["Accept"], "X-Request-ID": "ref-502-check"},
    )
    assert response.status_code == 502
    assert "ref-502-check" in response.text and "127.0.0.1" in response.text
    lines = [json.loads(line) for line in proxy_to_nowhere.log_path.read_text().splitlines() if line.strip()]
    failed = [e for e in lines if e.get("request_id") == "ref-502-check"]
    assert failed and "is not answering" in failed[0]["message"], lines[-3:]


@pytest.mark.e2e
async def test_websocket_to_a_down_upstream_is_a_502(proxy_to_nowhere: GateProcess) -> None:
    """A WebSocket whose upstream is down is refused with a 502."""
    ws_url = proxy_to_nowhere.url.replace("http://", "ws://") + "/ws"
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with ws_connect(ws_url, proxy=None):
            pass
    assert refused.value.response.status_code == 502


# ---------------------------------------------------------------- the example


EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "proxy_internal_tool.py"


@pytest.fixture(scope="module")
def internal_tool(workdir: Path, dev_idp: DevIdP) -> Iterator[GateProcess]:
    """examples/proxy_internal_tool.py behind ``oakid-gate proxy``, as its docstring says."""
    port = free_port()
    log_path = workdir / "internal-tool.log"
    tool = spawn(
        [sys.executable, str(EXAMPLE), "--port", str(port)],
        log_path=log_path,
    )
    try:
        wait_for_port(port, process=tool)
        settings = dev_idp.settings(upstream=f"http://127.0.0.1:{port}", public_paths="/health")
        with start_gate(workdir, ["proxy"], settings=settings) as proxy:
            yield proxy
    finally:
        terminate(tool)


@pytest.mark.e2e
def test_example_internal_tool_behind_the_proxy(
    internal_tool: GateProcess, http: httpx.Client
) -> None:
    """The example tool, which only reads X-Forwarded-*, greets the signed-in user, keeps
    their notes under their name, serves /health without one, and signs out."""
    url = internal_tool.url
    assert httpx.get(f"{url}/health").text == "ok\n"
    assert httpx.get(url, headers={"X-Forwarded-User": "mallory"}).status_code == 401

    page = dev_idp_sign_in(http, f"{url}/", "bob")
    assert page.status_code == 200
    assert "<b id=user>bob</b> (bob@example.test)" in page.text

    posted = http.post(
        f"{url}/notes", data={"text": "deploy at 5"}, headers={"X-Forwarded-User": "mallory"}
    )
    assert posted.status_code == 303
    assert "<b>bob</b>: deploy at 5" in http.get(f"{url}/").text

    out = http.post(f"{url}/oauth2/sign_out?rd=/", headers={"Origin": url})
    assert out.status_code == 303
    assert http.get(url, headers={"Accept": "application/json"}).status_code == 401
