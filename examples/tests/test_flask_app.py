"""examples/flask_app.py, tested as its author would: oakid_gate.testing only."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from example_env import load_example
from flask import Flask

from oakid_gate.testing import FakeProvider, sign_in

API = {"accept": "application/json"}


@pytest.fixture
def app(monkeypatch: pytest.MonkeyPatch) -> Flask:
    flask_app: Flask = load_example(monkeypatch, "flask_app").create_app()  # the factory, a fresh app
    return flask_app


def test_home_shows_current_user_and_remote_user(app: Flask) -> None:
    """``current_user`` is the signed-in user; ``request.remote_user`` is their ``sub``."""
    client = app.test_client()
    sign_in(client, sub="u-ann", name="Ann", email="ann@example.com")
    assert client.get("/", headers=API).json == {
        "hello": "Ann", "email": "ann@example.com", "remote_user": "u-ann",
    }


def test_home_without_a_session_is_401(app: Flask) -> None:
    """An API call with no session gets 401."""
    assert app.test_client().get("/", headers=API).status_code == 401


@pytest.mark.parametrize(
    ("groups", "status"),
    [pytest.param(["admins"], 200, id="admin"), pytest.param([], 403, id="no-group")],
)
def test_admin_is_for_admins(
    app: Flask, oakid_sign_in: Callable[..., Any], groups: list[str], status: int
) -> None:
    """``login_required(groups=["admins"])``: 200 for admins, 403 for others."""
    client = app.test_client()
    oakid_sign_in(client, groups=groups)
    assert client.get("/admin", headers=API).status_code == status


def test_health_is_public(app: Flask) -> None:
    """/health answers without a session."""
    assert app.test_client().get("/health").json == {"ok": True, "signed_in": False}


def test_carol_signs_in_through_the_whole_flow(app: Flask) -> None:
    """Through the fake provider (the dev-idp in process), on the WSGI gate."""
    provider = FakeProvider()
    provider.connect(app)
    client = app.test_client()
    page = provider.sign_in(client, "carol", path="/")
    assert page.status_code == 200
    assert page.json is not None and page.json["email"] == "carol@example.test"
