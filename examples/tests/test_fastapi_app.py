"""examples/fastapi_app.py, tested as its author would: oakid_gate.testing only."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from example_env import load_example
from fastapi.testclient import TestClient

from oakid_gate.testing import FakeProvider, sign_in

API = {"accept": "application/json"}


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch) -> TestClient:
    return TestClient(load_example(monkeypatch, "fastapi_app").app)


def test_home_greets_the_signed_in_user(client: TestClient) -> None:
    """A signed-in user is greeted by name, with their email and subject."""
    sign_in(client, sub="u-ann", name="Ann", email="ann@example.com")
    assert client.get("/", headers=API).json() == {
        "hello": "Ann", "email": "ann@example.com", "sub": "u-ann",
    }


def test_home_without_a_session_is_401(client: TestClient) -> None:
    """An API call with no session gets 401, not a page."""
    assert client.get("/", headers=API).status_code == 401


def test_health_is_public_and_says_who_is_signed_in(client: TestClient) -> None:
    """/health answers everyone; it knows whether someone is signed in."""
    assert client.get("/health").json() == {"ok": True, "signed_in": False}
    sign_in(client)
    assert client.get("/health").json() == {"ok": True, "signed_in": True}


def test_token_gives_the_sessions_scopes(
    client: TestClient, oakid_sign_in: Callable[..., Any]
) -> None:
    """/token shows what calling an API on the user's behalf has: the session's scopes."""
    oakid_sign_in(client, scopes=["openid", "email", "orders:read"])
    assert client.get("/token", headers=API).json()["scopes"] == ["openid", "email", "orders:read"]


@pytest.mark.parametrize(
    ("groups", "status"),
    [pytest.param(["admins"], 200, id="admin"), pytest.param(["staff"], 403, id="not-admin")],
)
def test_admin_is_for_admins(client: TestClient, groups: list[str], status: int) -> None:
    """/admin answers members of "admins" and refuses everyone else with 403."""
    sign_in(client, groups=groups)
    assert client.get("/admin", headers=API).status_code == status


def test_the_docs_mark_the_routes_that_need_a_sign_in(client: TestClient) -> None:
    """/openapi.json is public and marks exactly the routes behind the sign-in."""
    paths = client.get("/openapi.json").json()["paths"]
    assert {p for p, item in paths.items() if "security" in item["get"]} == {"/", "/token", "/admin"}


def test_bob_signs_in_through_the_whole_flow(client: TestClient) -> None:
    """Through the fake provider (the dev-idp in process): bob lands on the home page."""
    provider = FakeProvider()
    provider.connect(client.app)
    page = provider.sign_in(client, "bob", path="/")
    assert page.status_code == 200 and page.json()["email"] == "bob@example.test"
