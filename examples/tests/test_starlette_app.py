"""examples/starlette_app.py, tested as its author would: oakid_gate.testing only."""

from __future__ import annotations

import pytest
from example_env import load_example
from starlette.testclient import TestClient

from oakid_gate.testing import FakeProvider, sign_in, sign_out, signed_in

API = {"accept": "application/json"}


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch) -> TestClient:
    return TestClient(load_example(monkeypatch, "starlette_app").app)


def test_home_shows_request_user(client: TestClient) -> None:
    """``request.user`` is the signed-in user."""
    sign_in(client, sub="u-ann", name="Ann", email="ann@example.com")
    assert client.get("/", headers=API).json() == {
        "hello": "Ann", "email": "ann@example.com", "sub": "u-ann",
    }


def test_a_browser_without_a_session_is_sent_to_the_provider(client: TestClient) -> None:
    """A page request with no session is redirected to the provider's sign-in page."""
    provider = FakeProvider()
    provider.connect(client.app)
    response = client.get("/", headers={"accept": "text/html"}, follow_redirects=False)
    assert response.status_code in (302, 303)
    assert response.headers["location"].startswith(f"{provider.issuer}/")


def test_signing_out_ends_access(client: TestClient) -> None:
    """After sign-out the same client is anonymous again."""
    sign_in(client)
    assert client.get("/", headers=API).status_code == 200
    sign_out(client)
    assert client.get("/", headers=API).status_code == 401


def test_admin_is_for_admins(client: TestClient) -> None:
    """/admin: 200 for "admins", 403 for another signed-in user."""
    with signed_in(client, groups=["admins"], name="Ann"):
        assert client.get("/admin", headers=API).json() == {"admin": "Ann"}
    with signed_in(client, groups=["staff"]):
        assert client.get("/admin", headers=API).status_code == 403


def test_health_is_public(client: TestClient) -> None:
    """/health answers without a session, as anonymous."""
    assert client.get("/health").json() == {"ok": True, "signed_in": False}
