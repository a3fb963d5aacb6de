"""``oakid-gate run module:app``: ASGI and WSGI apps served behind the gate, end to end, against
the dev-idp and node ``oidc-provider``; worker processes; telling ASGI from WSGI."""

from __future__ import annotations

import functools
import os
import re
import secrets
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from flask import Flask
from peers.gate import (
    NAVIGATION_HEADERS,
    DevIdP,
    GateProcess,
    dev_idp_sign_in,
    run_to_exit,
    start_dev_idp,
    start_gate,
)
from peers.oidc_provider import OidcProvider, sign_in
from peers.ports import free_port
from starlette.applications import Starlette
from support.logout import assert_signed_out_to

from oakid_gate import ConfigurationError, OakIDMiddleware, OakIDWSGIMiddleware, Settings, protect
from oakid_gate.protect import detect_interface
from oakid_gate.serve import app_from_environment, worker_environment
from oakid_gate.stores.data_version import CHECK_INTERVAL

CLIENT_ID = "oak_run_tests"
CLIENT_SECRET = secrets.token_urlsafe(32)
JSON = {"Accept": "application/json"}
PUBLIC = "/public,/public/*"


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("run")


@pytest.fixture(scope="module")
def idp(workdir: Path) -> Iterator[DevIdP]:
    with start_dev_idp(workdir, client_id=CLIENT_ID, client_secret=CLIENT_SECRET) as process:
        yield process


def dev_idp_settings(idp: DevIdP, **extra: str) -> dict[str, str]:
    return idp.settings(secret=secrets.token_urlsafe(32), public_paths=PUBLIC, **extra)


# ---------------------------------------------------------------- the sites under test


@dataclass
class Site:
    """A gate started with ``oakid-gate run`` and what to expect of its provider."""

    url: str
    interface: str
    sign_in: Callable[[httpx.Client, str], httpx.Response]
    sub: str
    email: str
    groups: str
    revocations: Callable[[], int]  # refresh tokens the provider has revoked for us


def dev_idp_site(workdir: Path, idp: DevIdP, interface: str) -> tuple[Site, GateProcess]:
    gate = start_gate(workdir, ["run", f"apps.whoami:{interface}"], settings=dev_idp_settings(idp))
    site = Site(
        url=gate.url,
        interface=interface,
        sign_in=lambda http, url: dev_idp_sign_in(http, url, "alice", provider=idp.url),
        sub="u-alice",
        email="alice@example.test",
        groups="admins,staff",
        revocations=lambda: sum(e["revoked"] == "refresh_token" for e in idp.events("revoke")),
    )
    return site, gate


def oidc_provider_site(
    workdir: Path, provider: OidcProvider, interface: str
) -> tuple[Site, GateProcess]:
    port = free_port()
    settings = provider.gate_settings(port)
    settings.update(secret=secrets.token_urlsafe(32), public_paths=PUBLIC)
    gate = start_gate(workdir, ["run", f"apps.whoami:{interface}"], settings=settings, port=port)
    site = Site(
        url=gate.url,
        interface=interface,
        sign_in=lambda http, url: sign_in(http, url, login="alice"),
        sub="alice",
        email="alice@example.test",
        groups="staff",
        revocations=lambda: sum(
            e.get("client_id") == settings["client_id"] and e.get("kind") == "RefreshToken"
            for e in provider.events("revocation.success")
        ),
    )
    return site, gate


@pytest.fixture(
    scope="module",
    params=[
        pytest.param(("dev-idp", "asgi"), id="dev-idp-asgi"),
        pytest.param(("dev-idp", "wsgi"), id="dev-idp-wsgi"),
        pytest.param(("oidc-provider", "asgi"), id="oidc-provider-asgi"),
        pytest.param(("oidc-provider", "wsgi"), id="oidc-provider-wsgi"),
    ],
)
def site(request: pytest.FixtureRequest, workdir: Path) -> Iterator[Site]:
    provider, interface = request.param
    if provider == "dev-idp":
        made, gate = dev_idp_site(workdir, request.getfixturevalue("idp"), interface)
    else:
        made, gate = oidc_provider_site(
            workdir, request.getfixturevalue("oidc_provider"), interface
        )
    try:
        yield made
    finally:
        gate.stop()


def client() -> httpx.Client:
    """A fresh browser: its own cookie jar (the node provider remembers users in cookies)."""
    return httpx.Client(trust_env=False, timeout=10)


def session_cookie(http: httpx.Client) -> dict[str, str]:
    """The gate's session cookie alone (the node provider's cookies share the host)."""
    return {c.name: c.value for c in http.cookies.jar if c.name == "oakid_session" and c.value}


# ---------------------------------------------------------------- the scenarios


def test_sign_in_comes_back_to_the_url_with_the_claims(site: Site) -> None:
    """A protected page sends the browser to the provider and back to the same URL, where
    the app (ASGI or WSGI, served by run) sees the signed-in user."""
    with client() as http:
        response = site.sign_in(http, f"{site.url}/private?from=run&x=%C3%A9")
    assert response.status_code == 200, response.text
    assert str(response.url) == f"{site.url}/private?from=run&x=%C3%A9"
    body = response.json()
    assert body["interface"] == site.interface
    assert (body["sub"], body["email"], body["identity"]) == (site.sub, site.email, site.sub)
    assert body["query"] == "from=run&x=%C3%A9"
    assert body["access_token_sha256"]
    assert body["remote_user"] == (site.sub if site.interface == "wsgi" else None)


def test_api_request_without_a_session_is_401_json(site: Site) -> None:
    """An API call without a session is 401 JSON with a login URL, never a redirect."""
    with client() as http:
        response = http.post(f"{site.url}/api/data", headers=JSON)
    assert response.status_code == 401
    assert response.json()["error"] == "unauthenticated"
    assert response.json()["login_url"].startswith("/oauth2/start?rd=")
    assert "www-authenticate" in response.headers


def test_auth_endpoint_is_202_signed_in_and_401_signed_out(site: Site) -> None:
    """``/oauth2/auth`` answers 401 without a session and 202 with the identity headers."""
    with client() as http:
        assert http.get(f"{site.url}/oauth2/auth").status_code == 401
        site.sign_in(http, f"{site.url}/private")
        response = http.get(f"{site.url}/oauth2/auth")
    assert response.status_code == 202
    assert response.headers["x-auth-request-user"] == site.sub
    assert response.headers["x-auth-request-email"] == site.email
    assert response.headers["x-auth-request-groups"] == site.groups


def test_sign_out_revokes_and_the_old_cookie_stops_working(site: Site) -> None:
    """Signing out (a same-origin POST) revokes the refresh token at the provider, clears the
    cookie and lands on ``rd``; the old cookie is then signed out."""
    with client() as http:
        site.sign_in(http, f"{site.url}/private")
        cookies = session_cookie(http)
        before = site.revocations()
        response = http.post(f"{site.url}/oauth2/sign_out?rd=/public", headers={"Origin": site.url})
        assert response.status_code == 303
        assert_signed_out_to(response.headers["location"], site.url)
        assert site.revocations() == before + 1
    with httpx.Client(trust_env=False, cookies=cookies) as replay:
        assert replay.get(f"{site.url}/private", headers=JSON).status_code == 401
        assert replay.get(f"{site.url}/private", headers=NAVIGATION_HEADERS).status_code == 302


def test_a_public_path_is_served_anonymously(site: Site) -> None:
    """A public path reaches the app without a session, with no identity at all, even when
    the client sends one."""
    headers = {**JSON, "Remote-User": "mallory", "X-Forwarded-User": "mallory"}
    with client() as http:
        response = http.get(f"{site.url}/public/page", headers=headers)
    assert response.status_code == 200
    body = response.json()
    assert (body["authenticated"], body["remote_user"], body["identity"]) == (False, None, None)


# ---------------------------------------------------------------- worker processes


@pytest.mark.parametrize("interface", ["asgi", "wsgi"])
@pytest.mark.parametrize("access_log", [False, True], ids=["default-off", "asked-for"])
def test_the_access_log_is_off_by_default_and_never_shows_a_code(
    workdir: Path, idp: DevIdP, interface: str, access_log: bool
) -> None:
    """No request lines unless --access-log (OAKID_ACCESS_LOG); with it, uvicorn's redacts
    codes and state and gunicorn's names the path alone."""
    settings = dev_idp_settings(idp, **({"access_log": "true"} if access_log else {}))
    with (
        start_gate(workdir, ["run", f"apps.whoami:{interface}"], settings=settings) as gate,
        client() as http,
    ):
        assert (
            dev_idp_sign_in(http, f"{gate.url}/private", "alice", provider=idp.url).status_code
            == 200
        )
        log = gate.log()
    callback_lines = [line for line in log.splitlines() if "/oauth2/callback" in line]
    assert bool(callback_lines) is access_log
    assert not re.search(r"[?&](code|state)=(?!\[redacted\])", log)


@pytest.mark.parametrize("interface", ["asgi", "wsgi"])
def test_two_workers_share_sessions_through_sqlite(
    workdir: Path, idp: DevIdP, interface: str
) -> None:
    """With ``--workers 2`` and a sqlite store, a user signed in through one worker stays
    signed in on both, and a sign-out through either ends it on both (on the other once
    its near cache's bound has passed: ``CHECK_INTERVAL`` after the commit)."""
    store = f"sqlite:///{workdir / f'sessions-{interface}.db'}"
    gate = start_gate(
        workdir,
        ["run", "--workers", "2", f"apps.whoami:{interface}"],
        settings=dev_idp_settings(idp, session_store=store),
    )
    try:
        with client() as http:
            assert dev_idp_sign_in(http, f"{gate.url}/private").status_code == 200
            # A new connection for each request, so that either worker may take it.
            close = {**JSON, "Connection": "close"}
            pids: set[int] = set()
            deadline = time.monotonic() + 30
            for _ in range(200):
                response = http.get(f"{gate.url}/private", headers=close)
                assert response.status_code == 200, response.text
                assert response.json()["sub"] == "u-alice"
                pids.add(response.json()["pid"])
                if len(pids) == 2 or time.monotonic() > deadline:
                    break
            assert len(pids) == 2, "every request landed on one worker"
            response = http.post(f"{gate.url}/oauth2/sign_out", headers={"Origin": gate.url})
            assert response.status_code == 200
            cookies = session_cookie(http)
        time.sleep(CHECK_INTERVAL)
        with httpx.Client(trust_env=False, cookies=cookies) as replay:
            for _ in range(10):
                response = replay.get(f"{gate.url}/private", headers=close)
                assert response.status_code == 401
    finally:
        gate.stop()


@pytest.mark.parametrize(
    ("args", "store"),
    [
        pytest.param(("--workers", "2", "apps.whoami:wsgi"), "memory://", id="wsgi-memory"),
        pytest.param(("--workers", "3", "apps.whoami:asgi"), "", id="asgi-default-store"),
    ],
)
def test_several_workers_on_the_memory_store_refuse_to_start(
    args: tuple[str, ...], store: str
) -> None:
    """``--workers`` above 1 with ``memory://`` exits at once, saying to choose a shared store."""
    settings = {"client_id": "c", "client_secret": "x", "secret": "s" * 32}
    if store:
        settings["session_store"] = store
    result = run_to_exit("run", *args, **settings)
    assert result.returncode == 2
    assert "session_store" in result.stderr
    assert "sqlite:///" in result.stderr and "redis://" in result.stderr
    assert "Traceback" not in result.stderr


def test_run_starts_and_stops_the_apps_lifespan_and_ends_cleanly_on_sigterm(
    workdir: Path, idp: DevIdP, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The app's lifespan runs under the gate (start-up before the first request, shutdown
    on SIGTERM), and the command ends as uvicorn does (the signal raised again once shut
    down, for the process manager) with nothing unexpected in its log."""
    events = workdir / "lifespan.log"
    monkeypatch.setenv("LIFESPAN_LOG", str(events))
    gate = start_gate(workdir, ["run", "apps.lifespan_app:app"], settings=dev_idp_settings(idp))
    try:
        assert events.read_text().splitlines() == ["startup"]
        answer = httpx.get(gate.url + "/public", headers=JSON, timeout=10)
        assert answer.status_code == 404  # public, so the app answered (it has no /public)
        gate.process.send_signal(signal.SIGTERM)
        assert gate.process.wait(timeout=15) in (0, -signal.SIGTERM)
    finally:
        gate.stop()
    assert events.read_text().splitlines() == ["startup", "shutdown"]
    assert "Traceback" not in gate.log() and "ERROR" not in gate.log()


@pytest.mark.parametrize(
    ("args", "setting", "words"),
    [
        pytest.param(
            ("--workers", "0", "apps.whoami:wsgi"), "workers", "at least 1", id="workers-0"
        ),
        pytest.param(("apps.whoami:ambiguous",), "app", "--interface", id="ambiguous-app"),
        pytest.param(("apps.whoami:not_callable",), "app", "not callable", id="not-callable"),
        pytest.param(
            ("--workers", "2", "apps.whoami:wsgi"), "session_store", "unsupported", id="bad-store"
        ),
    ],
)
def test_run_refuses_what_it_cannot_serve(args: tuple[str, ...], setting: str, words: str) -> None:
    """Start-up errors name what is wrong before any server starts."""
    settings = {"client_id": "c", "client_secret": "x", "secret": "s" * 32}
    if setting == "session_store":
        settings["session_store"] = "mysql://db/x"
    result = run_to_exit("run", *args, **settings)
    assert result.returncode == 2
    assert f"setting {setting!r}" in result.stderr
    assert words in result.stderr


@pytest.mark.parametrize("interface", ["asgi", "wsgi"])
def test_run_passes_no_secret_on_any_command_line(
    workdir: Path, idp: DevIdP, interface: str
) -> None:
    """No process of ``run --workers 2`` has a secret on its command line: uvicorn's workers
    get them in their environment, gunicorn's are forked with them in memory."""
    store = f"sqlite:///{workdir / f'argv-{interface}.db'}"
    settings = dev_idp_settings(idp, session_store=store)
    gate = start_gate(
        workdir, ["run", "--workers", "2", f"apps.whoami:{interface}"], settings=settings
    )
    try:
        with httpx.Client(trust_env=False) as http:
            assert http.get(f"{gate.url}/public", headers=JSON).status_code == 200
        group = os.getpgid(gate.pid)
        deadline = time.monotonic() + 10
        while len(argvs := command_lines(group)) < 3 and time.monotonic() < deadline:
            time.sleep(0.1)  # the second worker may still be starting
        assert len(argvs) >= 3  # the parent and two workers
        for argv in argvs:
            assert CLIENT_SECRET.encode() not in argv
            assert settings["secret"].encode() not in argv
    finally:
        gate.stop()


def command_lines(group: int) -> list[bytes]:
    """The command lines of the processes in process group ``group``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.getpgid(int(entry.name)) == group:
                    found.append((entry / "cmdline").read_bytes())
            except (ProcessLookupError, FileNotFoundError, PermissionError):
                continue
    return found


# ---------------------------------------------------------------- telling ASGI from WSGI


async def asgi_function(scope: Any, receive: Any, send: Any) -> None: ...


def wsgi_function(environ: Any, start_response: Any) -> list[bytes]:
    return []


class AsgiObject:
    async def __call__(self, scope: Any, receive: Any, send: Any) -> None: ...


class AsgiReturningAwaitable:
    def __call__(self, scope: Any, receive: Any, send: Any) -> Any:
        return asgi_function(scope, receive, send)


class WsgiObject:
    def __call__(self, environ: Any, start_response: Any) -> list[bytes]:
        return []


def django_handler(kind: str) -> Any:
    """A Django handler object, made without Django settings (its signature is what counts)."""
    if kind == "wsgi":
        from django.core.handlers.wsgi import WSGIHandler

        return WSGIHandler.__new__(WSGIHandler)
    from django.core.handlers.asgi import ASGIHandler

    return ASGIHandler.__new__(ASGIHandler)


def fastapi_app() -> Any:
    from fastapi import FastAPI

    return FastAPI()


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        pytest.param(lambda: asgi_function, "asgi", id="async-function"),
        pytest.param(lambda: AsgiObject(), "asgi", id="async-call"),
        pytest.param(lambda: AsgiReturningAwaitable(), "asgi", id="sync-three-args"),
        pytest.param(lambda: functools.partial(asgi_function), "asgi", id="partial"),
        pytest.param(lambda: Starlette(), "asgi", id="starlette"),
        pytest.param(fastapi_app, "asgi", id="fastapi"),
        pytest.param(lambda: django_handler("asgi"), "asgi", id="django-asgi"),
        pytest.param(lambda: wsgi_function, "wsgi", id="wsgi-function"),
        pytest.param(lambda: WsgiObject(), "wsgi", id="wsgi-call"),
        pytest.param(lambda: Flask("x"), "wsgi", id="flask"),
        pytest.param(lambda: Flask("x").wsgi_app, "wsgi", id="flask-wsgi-app"),
        pytest.param(lambda: django_handler("wsgi"), "wsgi", id="django-wsgi"),
    ],
)
def test_the_interface_is_detected(make: Callable[[], Any], expected: str) -> None:
    """ASGI and WSGI apps of every common kind are told apart by their call signature."""
    assert detect_interface(make()) == expected


def ambiguous(*args: Any) -> Any: ...


async def async_two(environ: Any, start_response: Any) -> None: ...


def asgi2(scope: Any) -> Any: ...


def with_default(environ: Any, start_response: Any, extra: Any = None) -> Any: ...


@pytest.mark.parametrize(
    ("app", "words"),
    [
        pytest.param(ambiguous, "cannot tell", id="star-args"),
        pytest.param(async_two, "cannot tell", id="async-two-args"),
        pytest.param(asgi2, "cannot tell", id="asgi2"),
        pytest.param(with_default, "cannot tell", id="two-or-three"),
        pytest.param(Starlette, "is a class", id="class"),
        pytest.param("app", "not callable", id="not-callable"),
    ],
)
def test_an_app_of_unknown_interface_is_refused(app: Any, words: str) -> None:
    """What is neither clearly ASGI nor clearly WSGI is an error that says what it found."""
    with pytest.raises(ConfigurationError) as caught:
        detect_interface(app)
    assert caught.value.setting == "app"
    assert words in str(caught.value)


def settings() -> Settings:
    return Settings.load(env={}, client_id="c", client_secret="x", secret="s" * 32)


def test_protect_wraps_each_kind_in_its_middleware() -> None:
    """``protect`` returns the ASGI middleware for ASGI apps and the WSGI one for WSGI apps,
    or the one named by ``interface``."""
    assert isinstance(protect(Starlette(), settings()), OakIDMiddleware)
    flask = Flask("x")
    wrapped = protect(flask, settings())
    assert isinstance(wrapped, OakIDWSGIMiddleware) and wrapped.app is flask
    assert flask.wsgi_app is not wrapped  # the Flask object is left as it was
    assert isinstance(protect(ambiguous, settings(), interface="wsgi"), OakIDWSGIMiddleware)
    with pytest.raises(ConfigurationError):
        protect(ambiguous, settings(), interface="cgi")  # type: ignore[arg-type]


def starlette_with_gate() -> Starlette:
    app = Starlette()
    app.add_middleware(OakIDMiddleware, settings())
    return app


def flask_with_gate() -> Flask:
    app = Flask("x")
    app.wsgi_app = OakIDWSGIMiddleware(app.wsgi_app, settings())  # type: ignore[method-assign]
    return app


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda: OakIDMiddleware(Starlette(), settings()), id="asgi-middleware"),
        pytest.param(lambda: OakIDWSGIMiddleware(wsgi_function, settings()), id="wsgi-middleware"),
        pytest.param(starlette_with_gate, id="starlette-add-middleware"),
        pytest.param(flask_with_gate, id="flask-wsgi-app"),
    ],
)
def test_an_app_already_behind_the_gate_is_refused(make: Callable[[], Any]) -> None:
    """Two gates in a row would each want a sign-in of their own: ``protect`` refuses."""
    with pytest.raises(ConfigurationError, match="already"):
        protect(make(), settings())


def test_worker_environment_carries_every_setting_back() -> None:
    """The OAKID_* variables handed to worker processes load as the very same settings."""
    original = Settings.load(
        env={},
        client_id="c",
        client_secret="x,y",
        secret=["s" * 32, "t" * 32],
        scopes=["openid", "email"],
        public_paths=["/health", "/static/*"],
        allowed_domains=["example.test"],
        trusted_proxies=["10.0.0.0/8"],
        cookie_secure=True,
        http_timeout=2.5,
        base_url="https://tools.example.test",
        session_store="sqlite:///x.db",
    )
    env = worker_environment(original)
    assert "OAKID_TOKEN_ENDPOINT_AUTH_METHOD" not in env  # None stays unset
    assert Settings.load(env=env) == original


def test_app_from_environment_builds_the_protected_app(monkeypatch: pytest.MonkeyPatch) -> None:
    """The workers' factory imports OAKID_RUN_APP and protects it with the OAKID_* settings."""
    for name in [n for n in os.environ if n.startswith("OAKID_")]:
        monkeypatch.delenv(name)
    with pytest.raises(ConfigurationError, match="OAKID_RUN_APP"):
        app_from_environment()
    for name, value in worker_environment(settings()).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("OAKID_RUN_APP", "apps.whoami:wsgi")
    app = app_from_environment()
    assert isinstance(app, OakIDWSGIMiddleware)
    assert app.settings == settings()
