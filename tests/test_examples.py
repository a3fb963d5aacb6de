"""The examples in ``examples/``, each started the way its docstring says, against the dev-idp,
and signed into."""

from __future__ import annotations

import secrets
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from peers.gate import DevIdP, dev_idp_sign_in, environment, start_dev_idp, wait_until_answers
from peers.ports import free_port
from peers.process import spawn, terminate

ROOT = Path(__file__).resolve().parent.parent
ALICE = {"hello": "Alice Admin", "email": "alice@example.test"}


@dataclass(frozen=True)
class Example:
    server: str  # "gunicorn" or "uvicorn"
    target: str
    signed_in: dict[str, Any]  # what "/" answers for alice

    def command(self, port: int) -> list[str]:
        if self.server == "gunicorn":
            bind = ["--bind", f"127.0.0.1:{port}", "--no-control-socket"]
            return [sys.executable, "-m", "gunicorn", *bind, self.target]
        bind = ["--host", "127.0.0.1", "--port", str(port)]
        return [sys.executable, "-m", "uvicorn", *bind, self.target]


EXAMPLES = [
    pytest.param(
        Example("gunicorn", "examples.flask_app:app", {**ALICE, "remote_user": "u-alice"}),
        id="flask",
    ),
    pytest.param(
        Example("uvicorn", "examples.starlette_app:app", {**ALICE, "sub": "u-alice"}),
        id="starlette",
    ),
    pytest.param(
        Example("uvicorn", "examples.fastapi_app:app", {**ALICE, "sub": "u-alice"}),
        id="fastapi",
    ),
]
# The Django example (a project with a database to migrate) is served under WSGI and ASGI
# and signed into by tests/test_django_e2e.py.


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("examples")


@pytest.fixture(scope="module")
def idp(workdir: Path) -> Iterator[DevIdP]:
    with start_dev_idp(workdir, client_id="oak_examples") as process:
        yield process


@dataclass(frozen=True)
class Running:
    url: str
    example: Example


@pytest.fixture(scope="module", params=EXAMPLES)
def running(request: pytest.FixtureRequest, workdir: Path, idp: DevIdP) -> Iterator[Running]:
    """The example served as its docstring says, its settings in ``OAKID_*`` variables."""
    example: Example = request.param
    port = free_port()
    env = environment(idp.settings(secret=secrets.token_urlsafe(32)))
    log_path = workdir / f"{example.target.replace(':', '-')}.log"
    process = spawn(example.command(port), log_path=log_path, env=env, cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_answers(f"{url}/oauth2/ping", process, log_path)
        yield Running(url, example)
    finally:
        terminate(process)


def test_example_signs_in_and_shows_the_user(running: Running) -> None:
    """Opening the example's home page signs in at the dev-idp and shows alice."""
    with httpx.Client(trust_env=False) as http:
        response = dev_idp_sign_in(http, f"{running.url}/", "alice")
    assert response.status_code == 200, response.text
    assert str(response.url) == f"{running.url}/"
    assert response.json() == running.example.signed_in


def test_example_api_call_without_a_session_is_401(running: Running) -> None:
    """The home page asked for as an API is 401 without a session."""
    response = httpx.get(f"{running.url}/", headers={"Accept": "application/json"}, trust_env=False)
    assert response.status_code == 401
    assert response.json()["error"] == "unauthenticated"


def test_example_health_is_public(running: Running) -> None:
    """The example's public ``/health`` answers without anyone signed in."""
    response = httpx.get(f"{running.url}/health", trust_env=False)
    assert response.status_code == 200
    assert response.json() == {"ok": True, "signed_in": False}
