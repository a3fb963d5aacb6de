"""oakid_gate.django with a provider in process (``support.hostile_idp``): a whole sign-in
through Django's AsyncClient, and API clients with bearer tokens."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.test import AsyncClient
from support.hostile_idp import USERS, HostileIdP

NAVIGATE = {"Accept": "text/html", "Sec-Fetch-Mode": "navigate"}

pytestmark = pytest.mark.usefixtures("django_project")


@pytest.fixture
async def idp() -> AsyncIterator[HostileIdP]:
    """The provider double, and the project's gate talking to it (its async client)."""
    from oakid_gate.django import DjangoGate, set_gate_adapter

    provider = HostileIdP()
    oakid: dict[str, Any] = {
        "issuer": provider.issuer,
        "client_id": provider.client_id,
        "client_secret": provider.client_secret,
        "secret": "s" * 32,
    }
    adapter = DjangoGate.from_settings(oakid, async_http=provider.http_client())
    set_gate_adapter(adapter)
    try:
        yield provider
    finally:
        set_gate_adapter(None)
        await adapter.aclose()


async def test_a_whole_sign_in_through_the_async_client(idp: HostileIdP) -> None:
    """A navigation goes to the provider, its callback comes back through Django (the
    gate's cookies as Django cookies), and the view sees the Django user it made."""
    client = AsyncClient()
    start = await client.get("/", headers=NAVIGATE)
    assert start.status_code == 302, start.content[:300]
    callback = urlsplit(await idp.authorize(start["Location"]))
    assert callback.path == "/oauth2/callback"
    back = await client.get(callback.path + "?" + callback.query, headers=NAVIGATE)
    assert back.status_code == 302 and back["Location"].endswith("/")
    assert back.cookies["oakid_session"].value
    response = await client.get("/", headers=NAVIGATE)
    assert response.status_code == 200, response.content[:300]
    me = response.json()
    assert (me["username"], me["email"]) == (USERS["alice"]["sub"], "alice@example.org")
    assert me["access_token"] is not None


async def test_a_bearer_token_is_a_user_without_a_django_session(idp: HostileIdP) -> None:
    """An API client's bearer token gets its Django user on ``request.user``: no Django
    session is made, and Django's CSRF check (for cookie sessions) does not apply."""
    api = {"Authorization": f"Bearer {idp.access_token('alice')}"}
    client = AsyncClient(enforce_csrf_checks=True)
    response = await client.get("/", headers=api)
    assert response.status_code == 200, response.content[:300]
    assert response.json()["username"] == USERS["alice"]["sub"]
    assert "sessionid" not in response.cookies
    posted = await client.post("/form", {"value": "api"}, headers=api)
    assert posted.content == b"posted api"
    assert "sessionid" not in client.cookies
    forged = await client.get("/", headers={"Authorization": "Bearer not-a-token"})
    assert forged.status_code == 401


def test_the_middleware_is_sync_and_async_capable() -> None:
    """Django runs it in the handler's own mode: a coroutine under ASGI, plain under WSGI."""
    from asgiref.sync import iscoroutinefunction

    from oakid_gate.django.middleware import OakIDMiddleware

    async def async_view(request: Any) -> Any: ...

    def sync_view(request: Any) -> Any: ...

    assert OakIDMiddleware.sync_capable and OakIDMiddleware.async_capable
    assert iscoroutinefunction(OakIDMiddleware(async_view))
    assert not iscoroutinefunction(OakIDMiddleware(sync_view))
