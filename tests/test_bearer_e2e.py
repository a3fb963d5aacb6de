"""Bearer tokens end to end against node ``oidc-provider`` (issue 10): real tokens from
the provider, through ``oakid-gate proxy`` to a real upstream.

The provider has introspection on, and issues RFC 9068 JWT access tokens for one
resource (resource indicators) to a service client (client credentials). The gate
(``oakid-gate proxy``, ``bearer_audiences`` that resource) is signed into once by a
browser to get a real, opaque access token of its own client
(``pass_access_token`` shows it to the upstream). Then each kind of token is sent
with no cookie: valid, expired, revoked, issued to another client, for another
audience, tampered; the provider's introspection calls are counted to show the cache.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from apps.upstream import start_upstream
from peers.gate import GateProcess, start_gate
from peers.oidc_provider import OidcClient, OidcProvider, sign_in
from peers.ports import free_port

from oakid_gate import OakIDMiddleware

pytestmark = pytest.mark.e2e

RESOURCE = "https://reports.example/api"
JWT_TTL = 3


@dataclass
class World:
    provider: OidcProvider
    gate: GateProcess
    gate_client: str
    service: OidcClient
    user_token: str


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, oidc_provider_factory: Any) -> Iterator[World]:
    workdir = tmp_path_factory.mktemp("bearer")
    port = free_port()
    provider: OidcProvider = oidc_provider_factory(
        redirect_uris=[f"http://127.0.0.1:{port}/oauth2/callback"],
        jwt_resource=RESOURCE,
        jwt_ttl=JWT_TTL,
    )
    service = provider.register_client(
        redirect_uris=[], grant_types=("client_credentials",), response_types=[]
    )
    with start_upstream(workdir) as upstream:
        settings = provider.gate_settings(port)
        settings.update(
            upstream=upstream.url, pass_access_token="true", bearer_audiences=RESOURCE,
            clock_skew="1",  # 1 s: an ID token issued during the exchange passes
        )
        with start_gate(workdir, ["proxy"], settings=settings, port=port) as gate, httpx.Client(
            timeout=30, trust_env=False
        ) as browser:
            page = sign_in(browser, f"{gate.url}/private", login="alice")
            assert page.status_code == 200, page.text
            token = dict(_identity(page.json()))["x-forwarded-access-token"]
            yield World(provider, gate, settings["client_id"], service, token)


def _identity(body: dict[str, Any]) -> list[tuple[str, str]]:
    return [(k.lower(), v) for k, v in body["headers"] if k.lower().startswith("x-forwarded-")]


def call(world: World, token: str, path: str = "/api/reports") -> httpx.Response:
    """An API client: no cookie, the token, JSON."""
    with httpx.Client(timeout=30, trust_env=False) as client:
        return client.get(
            world.gate.url + path,
            headers={"authorization": f"Bearer {token}", "accept": "application/json"},
        )


def assert_invalid_token(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    assert "set-cookie" not in response.headers and "location" not in response.headers


def introspections(world: World, since: int) -> list[dict[str, Any]]:
    return world.provider.events("introspection", since=since)


def service_token(world: World, **form: str) -> str:
    answer = world.provider.token(world.service, grant_type="client_credentials", **form)
    assert answer.status_code == 200, answer.text
    token: str = answer.json()["access_token"]
    return token


def test_a_users_access_token_passes_by_introspection_and_is_cached(world: World) -> None:
    """The gate's own user token (opaque): introspected once, then served from the cache;
    the upstream sees the user; no cookie is made."""
    mark = world.provider.mark()
    for _ in range(3):
        response = call(world, world.user_token)
        assert response.status_code == 200, response.text
        assert "set-cookie" not in response.headers
        assert dict(_identity(response.json()))["x-forwarded-user"] == "alice"
    assert len(introspections(world, mark)) == 1
    auth = call(world, world.user_token, "/oauth2/auth")
    assert auth.status_code == 202 and auth.headers["x-auth-request-user"] == "alice"


def test_a_tampered_token_is_refused(world: World) -> None:
    assert_invalid_token(call(world, world.user_token[:-2] + "xy"))


def user_token(world: World, login: str) -> str:
    """A fresh access token of the gate's own client for ``login`` (a new browser)."""
    with httpx.Client(timeout=30, trust_env=False) as browser:
        page = sign_in(browser, f"{world.gate.url}/private", login=login)
        assert page.status_code == 200, page.text
        return dict(_identity(page.json()))["x-forwarded-access-token"]


def test_a_revoked_token_is_refused(world: World) -> None:
    """A token of the gate's own client, revoked at the provider before its first use
    here: introspection says inactive."""
    token = user_token(world, "carol")
    gate_client = world.provider.clients[world.gate_client]
    revoked = world.provider.client_request(gate_client, "revocation_endpoint", token=token)
    assert revoked.status_code == 200
    assert_invalid_token(call(world, token))
    assert call(world, user_token(world, "dave")).status_code == 200  # an unrevoked one passes


def test_a_token_issued_to_another_client_is_refused(world: World) -> None:
    """An opaque token of another client (introspection: active, client_id the other's)."""
    assert_invalid_token(call(world, service_token(world)))


def test_a_jwt_access_token_for_the_gates_audience_passes_without_introspection(world: World) -> None:
    """RFC 9068: checked against the provider's JWKS, no introspection; the service is
    the user (sub is its client id), its scopes come with it."""
    token = service_token(world, resource=RESOURCE, scope="read:reports")
    assert token.count(".") == 2
    mark = world.provider.mark()
    response = call(world, token)
    assert response.status_code == 200, response.text
    assert dict(_identity(response.json()))["x-forwarded-user"] == world.service.client_id
    assert introspections(world, mark) == []


def test_a_jwt_for_another_audience_is_refused(world: World) -> None:
    """The same real JWT at a gate that does not list its audience: 401."""
    token = service_token(world, resource=RESOURCE, scope="read:reports")

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"app"})

    gate_client = world.provider.clients[world.gate_client]
    gate = OakIDMiddleware(
        app, issuer=world.provider.issuer, client_id=gate_client.client_id,
        client_secret=gate_client.client_secret, secret="s" * 32,
    )
    import asyncio

    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=gate)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            answer = await client.get("/api", headers={"authorization": f"Bearer {token}"})
        await gate.aclose()
        return answer

    assert_invalid_token(asyncio.run(go()))


def test_an_expired_jwt_is_refused(world: World) -> None:
    token = service_token(world, resource=RESOURCE, scope="read:reports")
    time.sleep(JWT_TTL + 1 + 1.5)  # past exp and the 1 s clock_skew
    assert_invalid_token(call(world, token))
