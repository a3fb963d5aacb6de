"""Smoke tests of the test peers themselves: if these fail, no e2e result means much."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import http.server
import json
import secrets
import threading
from collections.abc import Iterator
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
import redis
from peers.oidc_provider import (
    OidcClient,
    OidcProvider,
    async_sign_in,
    sign_in,
    token_fingerprint,
)
from peers.ports import free_port, wait_for_port
from peers.redis_server import RedisServer
from playwright.sync_api import BrowserContext, Page
from playwright.sync_api import Error as PlaywrightError

SCOPE = "openid profile email groups"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwt_part(token: str, index: int) -> dict[str, Any]:
    part = token.split(".")[index]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return decoded


class Authorization:
    """A hand-built authorization request with PKCE S256 (RFC 7636 section 4)."""

    def __init__(self, provider: OidcProvider, client: OidcClient, redirect_uri: str) -> None:
        self.redirect_uri = redirect_uri
        self.verifier = secrets.token_urlsafe(48)
        self.state = secrets.token_urlsafe(16)
        self.nonce = secrets.token_urlsafe(16)
        challenge = b64url(hashlib.sha256(self.verifier.encode()).digest())
        query = urlencode(
            {
                "response_type": "code",
                "client_id": client.client_id,
                "redirect_uri": redirect_uri,
                "scope": SCOPE,
                "state": self.state,
                "nonce": self.nonce,
                "code_challenge": challenge,
                "code_challenge_method": "S256",
            }
        )
        self.url = f"{provider.metadata['authorization_endpoint']}?{query}"

    def callback_params(self, response: httpx.Response) -> dict[str, str]:
        location = response.headers["location"]
        assert location.startswith(self.redirect_uri + "?")
        return {key: values[0] for key, values in parse_qs(urlsplit(location).query).items()}


def signed_in_tokens(
    provider: OidcProvider, client: OidcClient, redirect_uri: str, login: str
) -> dict[str, Any]:
    """Sign in with a fresh cookie jar and exchange the code; return the token response."""
    authorization = Authorization(provider, client, redirect_uri)
    with httpx.Client() as http:
        response = sign_in(http, authorization.url, login=login, stop_at=redirect_uri)
    code = authorization.callback_params(response)["code"]
    tokens = provider.token(
        client,
        grant_type="authorization_code",
        code=code,
        redirect_uri=redirect_uri,
        code_verifier=authorization.verifier,
    )
    assert tokens.status_code == 200, tokens.text
    body: dict[str, Any] = tokens.json()
    return body


# -- oidc-provider ---------------------------------------------------------------


def test_discovery_names_issuer_and_both_signing_algorithms(oidc_provider: OidcProvider) -> None:
    """Discovery answers with the loopback issuer, ES256 and RS256, and S256 PKCE only."""
    metadata = httpx.get(oidc_provider.discovery_url).json()
    assert metadata["issuer"] == oidc_provider.issuer == f"http://127.0.0.1:{oidc_provider.port}"
    assert {"ES256", "RS256"} <= set(metadata["id_token_signing_alg_values_supported"])
    assert metadata["code_challenge_methods_supported"] == ["S256"]
    for endpoint in ("revocation_endpoint", "introspection_endpoint", "userinfo_endpoint"):
        assert metadata[endpoint].startswith(oidc_provider.issuer)
    keys = httpx.get(metadata["jwks_uri"]).json()["keys"]
    assert sorted(key["alg"] for key in keys) == ["ES256", "RS256"]
    assert all("d" not in key for key in keys)


@pytest.mark.parametrize(
    ("client_id", "alg"),
    [
        pytest.param("gate-basic", "ES256", id="client_secret_basic-ES256"),
        pytest.param("gate-post", "RS256", id="client_secret_post-RS256"),
    ],
)
def test_scripted_sign_in_yields_code_that_exchanges_for_tokens(
    oidc_provider: OidcProvider, gate_url: str, client_id: str, alg: str
) -> None:
    """A raw authorize URL signs in to the redirect URI with code, state and iss, and the
    code exchanges (with the client's own auth method) for ID, access and refresh tokens."""
    client = oidc_provider.clients[client_id]
    redirect_uri = f"{gate_url}/oauth2/callback"
    authorization = Authorization(oidc_provider, client, redirect_uri)
    mark = oidc_provider.mark()

    with httpx.Client() as http:
        response = sign_in(http, authorization.url, login="alice", stop_at=redirect_uri)
    params = authorization.callback_params(response)
    assert params["state"] == authorization.state
    assert params["iss"] == oidc_provider.issuer

    tokens = oidc_provider.token(
        client,
        grant_type="authorization_code",
        code=params["code"],
        redirect_uri=redirect_uri,
        code_verifier=authorization.verifier,
    )
    assert tokens.status_code == 200, tokens.text
    body = tokens.json()
    assert body["token_type"] == "Bearer"
    assert body["refresh_token"]
    assert jwt_part(body["id_token"], 0)["alg"] == alg
    id_claims = jwt_part(body["id_token"], 1)
    assert (id_claims["sub"], id_claims["nonce"]) == ("alice", authorization.nonce)
    assert "email" not in id_claims  # conformIdTokenClaims: profile claims via userinfo only

    userinfo = httpx.get(
        oidc_provider.metadata["userinfo_endpoint"],
        headers={"Authorization": f"Bearer {body['access_token']}"},
    ).json()
    assert userinfo == {
        "sub": "alice",
        "email": "alice@example.test",
        "email_verified": True,
        "name": "Alice",
        "preferred_username": "alice",
        "groups": ["staff"],
    }
    [success] = oidc_provider.events("grant.success", since=mark)
    assert success["grant_type"] == "authorization_code"
    assert success["client_id"] == client_id
    assert success["refresh_token"] == token_fingerprint(body["refresh_token"])
    log = oidc_provider.log_path.read_text()
    assert body["refresh_token"] not in log
    assert body["access_token"] not in log


def test_refresh_rotates_and_reusing_the_old_token_revokes_the_grant(
    oidc_provider: OidcProvider, gate_url: str
) -> None:
    """Each refresh returns a new refresh token; replaying the old one fails with
    invalid_grant, logs why, and kills the newer one too."""
    client = oidc_provider.clients["gate-basic"]
    first = signed_in_tokens(oidc_provider, client, f"{gate_url}/oauth2/callback", "bob")[
        "refresh_token"
    ]

    refreshed = oidc_provider.token(client, grant_type="refresh_token", refresh_token=first)
    assert refreshed.status_code == 200, refreshed.text
    second = refreshed.json()["refresh_token"]
    assert second != first

    mark = oidc_provider.mark()
    replay = oidc_provider.token(client, grant_type="refresh_token", refresh_token=first)
    assert (replay.status_code, replay.json()["error"]) == (400, "invalid_grant")
    [error] = oidc_provider.events("grant.error", since=mark)
    assert error["grant_type"] == "refresh_token"
    assert error["error_detail"] == "refresh token already used"
    assert oidc_provider.events("grant.revoked", since=mark)

    after = oidc_provider.token(client, grant_type="refresh_token", refresh_token=second)
    assert after.status_code == 400


def test_introspection_and_revocation_answer_and_are_logged(
    oidc_provider: OidcProvider, gate_url: str
) -> None:
    """Introspection vouches for a live access token; revoking the refresh token ends
    the grant, so the access token goes inactive; both calls show in the event log."""
    client = oidc_provider.clients["gate-post"]
    tokens = signed_in_tokens(oidc_provider, client, f"{gate_url}/oauth2/callback", "frank")
    mark = oidc_provider.mark()

    def introspect() -> dict[str, Any]:
        response = oidc_provider.client_request(
            client, "introspection_endpoint", token=tokens["access_token"]
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    assert introspect()["active"] is True
    revoked = oidc_provider.client_request(
        client,
        "revocation_endpoint",
        token=tokens["refresh_token"],
        token_type_hint="refresh_token",
    )
    assert revoked.status_code == 200
    assert introspect() == {"active": False}

    events = oidc_provider.events(since=mark)
    assert [(e["event"], e.get("active")) for e in events if e["event"] == "introspection"] == [
        ("introspection", True),
        ("introspection", False),
    ]
    [revocation] = [e for e in events if e["event"] == "revocation.success"]
    assert revocation["kind"] == "RefreshToken"
    assert revocation["fp"] == token_fingerprint(tokens["refresh_token"])


def test_registered_client_gets_its_own_redirect_uri_and_access_token_ttl(
    oidc_provider: OidcProvider,
) -> None:
    """A client registered at test time signs in to its own redirect URI and gets
    access tokens with its own lifetime (here 2 s, for refresh tests)."""
    redirect_uri = f"http://127.0.0.1:{free_port()}/oauth2/callback"
    client = oidc_provider.register_client(
        redirect_uris=[redirect_uri],
        token_endpoint_auth_method="client_secret_post",
        access_token_ttl=2,
    )
    assert oidc_provider.clients[client.client_id] == client
    tokens = signed_in_tokens(oidc_provider, client, redirect_uri, "carol")
    assert tokens["expires_in"] == 2


async def test_async_sign_in_twin(oidc_provider: OidcProvider, gate_url: str) -> None:
    """The async twin of sign_in gets the same code, state and iss."""
    redirect_uri = f"{gate_url}/oauth2/callback"
    authorization = Authorization(oidc_provider, oidc_provider.clients["gate-post"], redirect_uri)
    async with httpx.AsyncClient() as http:
        response = await async_sign_in(http, authorization.url, login="dave", stop_at=redirect_uri)
    params = authorization.callback_params(response)
    assert (params["state"], params["iss"]) == (authorization.state, oidc_provider.issuer)


# -- redis -----------------------------------------------------------------------


def test_redis_answers_ping_and_restart_keeps_the_port(redis_server: RedisServer) -> None:
    """redis-py reaches the server; a restart comes back on the same port, empty."""
    port = redis_server.port
    with redis.Redis.from_url(redis_server.url) as client:
        assert client.ping() is True
        client.set("peer-smoke", "1")
    redis_server.restart()
    assert redis_server.port == port
    assert redis_server.url == f"redis://127.0.0.1:{port}/0"
    with redis.Redis.from_url(redis_server.url) as client:
        assert client.ping() is True
        assert client.get("peer-smoke") is None


# -- Chromium --------------------------------------------------------------------


class _Callback(http.server.BaseHTTPRequestHandler):
    """Serves a page that also asks for an image on a non-loopback host."""

    seen: ClassVar[list[str]]

    def do_GET(self) -> None:
        self.seen.append(self.path)
        body = (
            b"<!doctype html><title>peer smoke</title>"
            b'<img src="http://example.invalid/tracker.png">'
        )
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def local_site() -> Iterator[tuple[str, list[str]]]:
    """A tiny http.server on 127.0.0.1: (its origin, the paths it was asked for)."""

    class Handler(_Callback):
        seen: ClassVar[list[str]] = []

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    wait_for_port(server.server_address[1])
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", Handler.seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_chromium_loads_loopback_pages_and_aborts_other_hosts(
    page: Page, blocked_requests: list[str], local_site: tuple[str, list[str]]
) -> None:
    """Chromium renders a page from 127.0.0.1, while requests to other hosts are aborted."""
    origin, _ = local_site
    page.goto(f"{origin}/hello")
    assert page.title() == "peer smoke"
    assert blocked_requests == ["http://example.invalid/tracker.png"]
    with pytest.raises(PlaywrightError, match="ERR_BLOCKED_BY_CLIENT"):
        page.goto("http://example.com/")


def test_chromium_signs_in_through_the_provider_pages(
    oidc_provider: OidcProvider,
    browser_context: BrowserContext,
    blocked_requests: list[str],
    local_site: tuple[str, list[str]],
) -> None:
    """A real browser gets through the provider's sign-in and consent pages to the
    redirect URI; the pages' web-font import is blocked, not fetched."""
    origin, seen = local_site
    redirect_uri = f"{origin}/callback"
    client = oidc_provider.register_client(redirect_uris=[redirect_uri])
    authorization = Authorization(oidc_provider, client, redirect_uri)
    page = browser_context.new_page()
    page.goto(authorization.url)
    page.fill("input[name=login]", "erin")
    page.fill("input[name=password]", "pw")
    page.click("button[type=submit]")
    page.click("button[type=submit]")  # consent
    page.wait_for_url(f"{redirect_uri}?*")
    query = parse_qs(urlsplit(seen[-1]).query)
    assert query["state"] == [authorization.state]
    assert any(urlsplit(url).hostname == "fonts.googleapis.com" for url in blocked_requests)


async def test_asyncio_runs_after_browser_tests() -> None:
    """pytest-asyncio still runs once Playwright's sync API has been used (see peers.browser)."""
    assert await asyncio.sleep(0, result="ok") == "ok"
