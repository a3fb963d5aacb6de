"""The FastAPI, Starlette and Flask examples' own rules, in process, signed in with
oakid_gate.testing (tests/test_examples.py signs into them at the dev-idp)."""

from __future__ import annotations

import runpy
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient
from support.route_rules import JSON, SETTINGS

from oakid_gate.testing import session_cookie

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
ALICE = {"sub": "u-alice", "name": "Alice Admin", "groups": ["admins", "staff"]}
CAROL = {"sub": "u-carol", "name": "Carol Guest", "groups": []}


def _load(name: str, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, Any]:
    """The example's served ``app`` and its gate, its settings in ``OAKID_*`` variables."""
    for key, value in SETTINGS.items():
        if key != "public_paths":
            monkeypatch.setenv(f"OAKID_{key.upper()}", value)
    app = runpy.run_path(str(EXAMPLES / f"{name}.py"))["app"]
    return app, app.extensions["oakid"].middleware if name == "flask_app" else app


def _status(app: Any, path: str, cookie: tuple[str, str] | None = None) -> tuple[int, Any]:
    """Status and JSON body of ``GET path`` as an API client (Flask's or Starlette's client)."""
    if hasattr(app, "test_client"):  # Flask
        flask_client = app.test_client()
        if cookie is not None:
            flask_client.set_cookie(*cookie)
        answer = flask_client.get(path, headers=JSON)
        return answer.status_code, answer.json
    with TestClient(app) as client:
        if cookie is not None:
            client.cookies.set(*cookie)
        response = client.get(path, headers=JSON)
        return response.status_code, response.json()


@pytest.mark.parametrize("name", ["fastapi_app", "starlette_app", "flask_app"])
def test_the_admin_page_is_for_admins(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    app, gate = _load(name, monkeypatch)
    assert _status(app, "/admin")[0] == 401
    assert _status(app, "/admin", session_cookie(gate, CAROL))[0] == 403
    assert _status(app, "/admin", session_cookie(gate, ALICE))[0] == 200
    assert _status(app, "/health") == (200, {"ok": True, "signed_in": False})


def test_the_fastapi_examples_docs_mark_the_signed_in_routes(monkeypatch: pytest.MonkeyPatch) -> None:
    app, _ = _load("fastapi_app", monkeypatch)
    with TestClient(app) as client:
        paths = client.get("/openapi.json").json()["paths"]
    assert {p for p, item in paths.items() if "security" in item["get"]} == {"/", "/token", "/admin"}
