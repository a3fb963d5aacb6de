"""oakid_gate.testing.FakeProvider and the pytest plugin: the whole sign-in flow in
process (code, PKCE, ID token, userinfo), on ASGI and WSGI, with no network."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from flask import Flask, jsonify
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from oakid_gate import OakIDMiddleware, OakIDWSGIMiddleware
from oakid_gate.flask import OakID, current_user
from oakid_gate.testing import FAKE_ISSUER, FakeProvider, offline_settings

pytest_plugins = ["pytester"]

ALICE = {"sub": "u-alice", "email": "alice@example.test", "groups": ["admins", "staff"]}
CAROL = {"sub": "u-carol", "email": "carol@example.test", "groups": []}


def _view(user: Any) -> dict[str, Any]:
    return {"sub": user.sub, "email": user.email, "groups": list(user.groups)}


async def whoami(request: Request) -> JSONResponse:
    return JSONResponse(_view(request.user))


def _asgi(provider: FakeProvider, **settings: Any) -> OakIDMiddleware:
    app = Starlette(routes=[Route("/", whoami), Route("/page", whoami)])
    return OakIDMiddleware(app, **provider.settings(**settings), http=provider.async_client())


def _flask(provider: FakeProvider, **settings: Any) -> Flask:
    app = Flask(__name__)
    app.add_url_rule("/", "home", lambda: jsonify(_view(current_user)))
    app.add_url_rule("/page", "page", lambda: jsonify(_view(current_user)))
    OakID(app, **provider.settings(**settings))
    provider.connect(app)
    return app


def _wsgi_wrapped(provider: FakeProvider) -> Flask:
    app = Flask(__name__)
    app.get("/")(lambda: jsonify(_view(current_user)))
    gate = OakIDWSGIMiddleware(app.wsgi_app, **provider.settings(), http=provider.sync_client())
    app.wsgi_app = gate  # type: ignore[method-assign]
    return app


def _json(response: Any) -> Any:
    return response.get_json() if hasattr(response, "get_json") else response.json()


#: a sync test client of each kind on an app whose gate calls the fake provider
SYNC_CLIENTS = [
    pytest.param(lambda p, **s: TestClient(_asgi(p, **s)), id="asgi-testclient"),
    pytest.param(lambda p, **s: _flask(p, **s).test_client(), id="wsgi-flask-test-client"),
    pytest.param(
        lambda p, **s: httpx.Client(
            transport=httpx.WSGITransport(app=_flask(p, **s)), base_url="http://localhost"
        ),
        id="wsgi-httpx-client",
    ),
]


@pytest.mark.parametrize("make_client", SYNC_CLIENTS)
def test_the_flow_ends_signed_in_as_the_chosen_user(make_client: Callable[..., Any]) -> None:
    """The whole flow (start, authorize, callback) signs the client in with the chosen
    user's claims, and lands on the path asked for."""
    provider = FakeProvider()
    client = make_client(provider)
    page = provider.sign_in(client, "alice", path="/page")
    assert page.status_code == 200
    assert _json(page) == ALICE
    assert _json(client.get("/")) == ALICE


async def test_the_flow_on_an_httpx_async_client() -> None:
    """asign_in does the same on an ``httpx.AsyncClient`` over ``ASGITransport``."""
    provider = FakeProvider()
    transport = httpx.ASGITransport(app=_asgi(provider))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        page = await provider.asign_in(client, "carol")
        assert (page.status_code, page.json()) == (200, CAROL)


def test_the_flow_is_the_real_code_path() -> None:
    """The provider saw a code issued, exchanged with PKCE, and userinfo read: the gate's
    real sign-in ran."""
    provider = FakeProvider()
    with TestClient(_asgi(provider)) as client:
        provider.sign_in(client, "bob")
    seen = [(e["event"], e.get("result") or e.get("grant_type")) for e in provider.events]
    assert ("authorize", "code") in seen
    assert ("token", "authorization_code") in seen
    assert ("userinfo", None) in seen
    assert all(e["ok"] for e in provider.events)


@pytest.mark.parametrize("make_client", SYNC_CLIENTS)
def test_the_allow_list_still_applies(make_client: Callable[..., Any]) -> None:
    """A user outside ``allowed_groups`` signs in and lands on the gate's 403."""
    provider = FakeProvider()
    client = make_client(provider, allowed_groups=["admins"])
    assert provider.sign_in(client, "carol").status_code == 403


def test_users_given_as_claims() -> None:
    """Users may be claims; the username and password are the ``preferred_username``."""
    provider = FakeProvider([{"sub": "s-1", "preferred_username": "dana", "groups": ["ops"]}])
    with TestClient(_asgi(provider)) as client:
        page = provider.sign_in(client, "dana")
    assert _json(page) == {"sub": "s-1", "email": None, "groups": ["ops"]}


@pytest.mark.parametrize(
    ("username", "password", "error"),
    [
        pytest.param("mallory", None, "no user 'mallory'", id="unknown-user"),
        pytest.param("alice", "wrong", "refused the sign-in of 'alice'", id="wrong-password"),
    ],
)
def test_a_failed_sign_in_is_a_clear_error(username: str, password: str | None, error: str) -> None:
    """An unknown user or a wrong password raises ValueError, never a half signed-in client."""
    provider = FakeProvider()
    with TestClient(_asgi(provider)) as client:
        with pytest.raises(ValueError, match=error):
            provider.sign_in(client, username, password=password)
        assert not client.cookies.get("oakid_session")


def test_an_unknown_redirect_uri_is_a_clear_error() -> None:
    """A client host the provider does not know is refused with a hint at redirect_uris."""
    provider = FakeProvider()
    with (
        TestClient(_asgi(provider), base_url="http://elsewhere.test") as client,
        pytest.raises(ValueError, match="redirect_uris"),
    ):
        provider.sign_in(client)
    extra = FakeProvider(redirect_uris=["http://elsewhere.test/oauth2/callback"])
    with TestClient(_asgi(extra), base_url="http://elsewhere.test") as client:
        assert extra.sign_in(client).status_code == 200


def test_connect_refuses_a_gate_of_another_issuer() -> None:
    """connect() on a gate not built from provider.settings() names the mismatch."""
    gate = OakIDMiddleware(Starlette(), **offline_settings(issuer="http://127.0.0.1:7"))
    with pytest.raises(ValueError, match=r"provider\.settings"):
        FakeProvider().connect(gate)


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[object]]:
    """Every outgoing connection attempt fails, and is recorded."""
    attempts: list[object] = []

    def refuse(*args: Any, **kwargs: Any) -> Any:
        attempts.append(args)
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    yield attempts


@pytest.mark.parametrize(
    "make_client",
    [
        pytest.param(lambda p: TestClient(_asgi(p)), id="asgi"),
        pytest.param(lambda p: _flask(p).test_client(), id="wsgi"),
        pytest.param(lambda p: _wsgi_wrapped(p).test_client(), id="wsgi-http-given"),
    ],
)
def test_the_flow_needs_no_network(
    make_client: Callable[..., Any], no_network: list[object]
) -> None:
    """With every socket connection refused, the flow still signs in: the issuer
    (``http://127.0.0.1:9``) is never contacted."""
    provider = FakeProvider()
    assert provider.issuer == FAKE_ISSUER
    client = make_client(provider)
    assert _json(provider.sign_in(client, "alice")) == ALICE
    assert no_network == []


async def test_a_wsgi_gate_calls_the_provider_from_inside_an_event_loop() -> None:
    """The sync provider client works when the WSGI app is called from an async test."""
    provider = FakeProvider()
    client = _flask(provider).test_client()
    assert _json(provider.sign_in(client, "bob"))["sub"] == "u-bob"


# ---------------------------------------------------------------- the pytest plugin


def test_fixtures_are_offered_directly(
    oakid_settings: dict[str, Any],
    oakid_sign_in: Callable[..., Any],
    oakid_fake_provider: FakeProvider,
) -> None:
    """The plugin is loaded by its entry point: its fixtures work in this very suite."""
    assert oakid_settings["issuer"] == FAKE_ISSUER
    with TestClient(OakIDMiddleware(Starlette(routes=[Route("/", whoami)]), **oakid_settings)) as c:
        user = oakid_sign_in(c, sub="ann")
        assert (user.sub, c.get("/").json()["sub"]) == ("ann", "ann")
    with TestClient(_asgi(oakid_fake_provider)) as c:
        assert oakid_fake_provider.sign_in(c, "alice").json() == ALICE


PLUGIN_SUITE = """
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient
from oakid_gate import OakIDMiddleware


async def home(request: Request) -> PlainTextResponse:
    return PlainTextResponse(request.user.email)


def app(**settings):
    return Starlette(routes=[Route("/", home)])


def test_sign_in(oakid_settings, oakid_sign_in):
    gate = OakIDMiddleware(app(), **oakid_settings)
    client = TestClient(gate)
    oakid_sign_in(client, email="ann@example.com")
    assert client.get("/").text == "ann@example.com"


def test_signed_out_after_the_test_above(oakid_settings):
    assert oakid_settings["session_store"] == "memory://"


def test_refused(oakid_settings, oakid_sign_in):
    client = TestClient(OakIDMiddleware(app(), **oakid_settings, allowed_domains=["corp.example"]))
    oakid_sign_in(client, email="ann@example.com")
    assert client.get("/").status_code == 403


def test_flow(oakid_fake_provider):
    gate = OakIDMiddleware(app(), **oakid_fake_provider.settings(),
                           http=oakid_fake_provider.async_client())
    with TestClient(gate) as client:
        assert oakid_fake_provider.sign_in(client, "bob").text == "bob@example.test"
"""


def test_fixtures_in_a_users_suite(pytester: pytest.Pytester) -> None:
    """A user's suite gets the fixtures with no configuration, warnings as errors."""
    pytester.makeini(
        "[pytest]\nfilterwarnings = error\nasyncio_default_fixture_loop_scope = function\n"
    )
    pytester.makepyfile(test_app=PLUGIN_SUITE)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=4)


def test_loading_the_plugin_imports_nothing_yet() -> None:
    """Loading the plugin (as pytest does in every suite) imports no framework, no HTTP
    client and no provider: only oakid_gate itself."""
    later = ("flask", "django", "fastapi", "httpx", "oakid_gate.devidp", "oakid_gate.flask")
    code = (
        "import sys, oakid_gate.testing.plugin; "
        f"print([m for m in {later!r} if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_readme_examples_run(pytester: pytest.Pytester) -> None:
    """Every example of README's "Testing your app" runs and passes as written."""
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    section = readme.split("## Testing your app", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    first = next(b for b in blocks if "FastAPI()" in b)
    modules = {}
    for number, block in enumerate(blocks):
        if block is not first:  # the httpx example tests the FastAPI example's app
            modules[f"test_readme_{number}"] = first + block if "ASGITransport" in block else block
    pytester.makeini(
        "[pytest]\nfilterwarnings = error\nasyncio_mode = auto\n"
        "asyncio_default_fixture_loop_scope = function\n"
    )
    pytester.makepyfile(**modules)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=6)


def test_connecting_after_the_gate_made_its_own_client_is_refused() -> None:
    """A gate that has called its provider already keeps its own client: connecting a fake
    provider then would leave that client open, and says so instead."""
    from oakid_gate import OakIDMiddleware
    from oakid_gate.testing import FakeProvider, offline_settings

    gate = OakIDMiddleware(lambda scope, receive, send: None, **offline_settings())
    assert gate.http is not None  # what the first exchange with the provider does
    with pytest.raises(RuntimeError, match="before its first request"):
        FakeProvider().connect(gate)


def test_the_whole_flow_under_a_mount_prefix() -> None:
    """An app served under ``root_path`` signs in through the fake provider too, and lands
    on the prefixed page it asked for."""
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route
    from starlette.testclient import TestClient

    from oakid_gate import OakIDMiddleware
    from oakid_gate.testing import FakeProvider

    async def whoami(request: Request) -> JSONResponse:
        return JSONResponse({"email": request.user.email, "path": request.url.path})

    provider = FakeProvider()
    settings = provider.settings(root_path="/app")
    gate = OakIDMiddleware(Starlette(routes=[Route("/", whoami)]), **settings, http=provider.async_client())
    with TestClient(gate, root_path="/app") as client:
        page = provider.sign_in(client, "bob", path="/app/")
        assert page.status_code == 200
        assert page.json() == {"email": "bob@example.test", "path": "/app/"}
