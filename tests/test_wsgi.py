"""``OakIDWSGIMiddleware`` in process: httpx's WSGI transport in front, the dev-idp (a real
``oakid-gate dev-idp`` process on loopback) behind, the same core as the ASGI adapter."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import secrets
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from flask import Flask, request
from peers.gate import NAVIGATION_HEADERS, DevIdP, dev_idp_sign_in, start_dev_idp
from support.spies import full_path_calls

import oakid_gate.adapter
import oakid_gate.wsgi
from oakid_gate import ConfigurationError, OakIDUser, OakIDWSGIMiddleware, SessionView, Settings
from oakid_gate.errors import BodyTooLarge
from oakid_gate.flask import OakID, current_session, current_user

CLIENT_ID = "oak_wsgi_tests"
CLIENT_SECRET = secrets.token_urlsafe(32)
ORIGIN = "http://127.0.0.1:8000"  # the gate's origin; httpx's WSGI transport answers for it
JSON = {"Accept": "application/json"}

Environ = dict[str, Any]


@pytest.fixture(scope="module")
def idp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevIdP]:
    workdir = tmp_path_factory.mktemp("wsgi-idp")
    with start_dev_idp(workdir, client_id=CLIENT_ID, client_secret=CLIENT_SECRET) as process:
        yield process


class Recorder:
    """A WSGI app that answers JSON and keeps the environ of every request it sees."""

    def __init__(self) -> None:
        self.seen: list[Environ] = []

    def __call__(self, environ: Environ, start_response: Callable[..., Any]) -> Iterable[bytes]:
        self.seen.append(dict(environ))
        user = environ.get("oakid.user")
        body = json.dumps(
            {
                "path": environ["PATH_INFO"],
                "remote_user": environ.get("REMOTE_USER"),
                "authenticated": bool(user is not None and user.is_authenticated),
            }
        ).encode()
        start_response("200 OK", [("content-type", "application/json")])
        return [body]

    @property
    def last(self) -> Environ:
        return self.seen[-1]


def settings_for(idp: DevIdP, **overrides: Any) -> Settings:
    """Settings for the dev-idp, from arguments only (never the developer's OAKID_* variables)."""
    values: dict[str, Any] = {
        **idp.settings(secret=secrets.token_urlsafe(32)),
        "public_paths": ["/public", "/public/*"],
        **overrides,
    }
    return Settings.load(env={}, **values)


def browser(app: Callable[..., Iterable[bytes]], *, remote_addr: str = "127.0.0.1") -> httpx.Client:
    """A client whose requests to the gate's origin go to ``app`` in process, and the rest
    (the dev-idp) over loopback; one cookie jar for both, as a browser has."""
    transport = httpx.WSGITransport(app=app, remote_addr=remote_addr)
    return httpx.Client(mounts={ORIGIN: transport}, base_url=ORIGIN, trust_env=False)


@pytest.fixture
def app() -> Recorder:
    return Recorder()


@pytest.fixture
def make_gate(idp: DevIdP, app: Recorder) -> Iterator[Callable[..., OakIDWSGIMiddleware]]:
    gates: list[OakIDWSGIMiddleware] = []

    def make(**overrides: Any) -> OakIDWSGIMiddleware:
        gate = OakIDWSGIMiddleware(app, settings_for(idp, **overrides))
        gates.append(gate)
        return gate

    yield make
    for gate in gates:
        gate.close()


@pytest.fixture
def gate(make_gate: Callable[..., OakIDWSGIMiddleware]) -> OakIDWSGIMiddleware:
    return make_gate()


@contextmanager
def signed_in(
    gate: Callable[..., Iterable[bytes]], username: str = "alice"
) -> Iterator[httpx.Client]:
    """A browser signed in as ``username`` at the dev-idp."""
    with browser(gate) as client:
        response = dev_idp_sign_in(client, "/private", username)
        assert response.status_code == 200, response.text
        yield client


def session_cookie(http: httpx.Client) -> dict[str, str]:
    """The gate's session cookie."""
    return {c.name: c.value for c in http.cookies.jar if c.name == "oakid_session" and c.value}


# ---------------------------------------------------------------- signing in


def test_sign_in_comes_back_to_the_url_with_the_user_in_environ(
    gate: OakIDWSGIMiddleware, app: Recorder
) -> None:
    """A navigation signs in at the provider and lands on the same URL, where the app finds
    REMOTE_USER, the OakIDUser and the session view in its environ."""
    with browser(gate) as client:
        response = dev_idp_sign_in(client, "/private/page?x=1&y=%C3%A9", "alice")
    assert response.status_code == 200
    assert str(response.url) == f"{ORIGIN}/private/page?x=1&y=%C3%A9"
    environ = app.last
    assert environ["REMOTE_USER"] == "u-alice"
    user = environ["oakid.user"]
    assert isinstance(user, OakIDUser)
    assert (user.sub, user.email, user.name) == ("u-alice", "alice@example.test", "Alice Admin")
    assert user.groups == ("admins", "staff")
    view = environ["oakid"]
    assert isinstance(view, SessionView)
    assert view.access_token and view.claims["sub"] == "u-alice"
    assert environ["QUERY_STRING"] == "x=1&y=%C3%A9"


def test_navigation_without_a_session_starts_the_code_flow(
    gate: OakIDWSGIMiddleware, idp: DevIdP, app: Recorder
) -> None:
    """A browser navigation gets a 302 to the authorize endpoint with PKCE S256, state and
    nonce, and the redirect URI of the request's origin; the app is not called."""
    with browser(gate) as client:
        response = client.get("/private", headers=NAVIGATION_HEADERS)
    assert response.status_code == 302
    location = urlsplit(response.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == f"{idp.url}/oauth/authorize"
    params = {k: v[0] for k, v in parse_qs(location.query).items()}
    assert params["redirect_uri"] == f"{ORIGIN}/oauth2/callback"
    assert params["code_challenge_method"] == "S256"
    assert params["state"] and params["nonce"] and params["code_challenge"]
    assert "httponly" in response.headers["set-cookie"].lower()
    assert app.seen == []


@pytest.mark.parametrize(
    ("claim", "expected"),
    [
        pytest.param("sub", "u-bob", id="sub"),
        pytest.param("email", "bob@example.test", id="email"),
        pytest.param("preferred_username", "bob", id="preferred_username"),
    ],
)
def test_remote_user_is_the_user_claim(
    make_gate: Callable[..., OakIDWSGIMiddleware], app: Recorder, claim: str, expected: str
) -> None:
    """REMOTE_USER holds the claim named by ``user_claim``."""
    with signed_in(make_gate(user_claim=claim), "bob"):
        pass
    assert app.last["REMOTE_USER"] == expected
    assert app.last["oakid.user"].identity == expected


def test_three_users_signing_in_on_threads_each_see_themselves(
    gate: OakIDWSGIMiddleware, app: Recorder
) -> None:
    """One middleware serves many threads at once: three users sign in and make requests
    concurrently, and every response names its own user."""

    def session_of(username: str) -> set[str]:
        with signed_in(gate, username) as client:
            seen = set()
            for _ in range(20):
                response = client.get("/private", headers=JSON)
                assert response.status_code == 200
                seen.add(response.json()["remote_user"])
            return seen

    with ThreadPoolExecutor(max_workers=3) as pool:
        results = dict(
            zip(["alice", "bob", "carol"], pool.map(session_of, ["alice", "bob", "carol"]))
        )
    assert results == {"alice": {"u-alice"}, "bob": {"u-bob"}, "carol": {"u-carol"}}


def test_signed_in_requests_take_the_hot_path(
    gate: OakIDWSGIMiddleware, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once signed in, a request is one store read: the gate's full decision never runs."""
    with signed_in(gate) as client:
        calls = full_path_calls(gate, monkeypatch)
        for _ in range(10):
            assert client.get("/private", headers=JSON).status_code == 200
    assert calls == []


@pytest.mark.parametrize("method", ["GET", "HEAD", "POST"])
def test_ping_answers_without_a_program(
    gate: OakIDWSGIMiddleware, monkeypatch: pytest.MonkeyPatch, method: str
) -> None:
    """``/oauth2/ping`` is the cheapest answer there is: 200 OK, no store, no program."""
    calls = full_path_calls(gate, monkeypatch)
    with browser(gate) as client:
        response = client.request(method, "/oauth2/ping")
    assert response.status_code == 200
    assert response.content == (b"" if method == "HEAD" else b"OK")
    assert calls == []


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_auth_endpoint_takes_the_hot_path(
    gate: OakIDWSGIMiddleware, monkeypatch: pytest.MonkeyPatch, method: str
) -> None:
    """nginx's auth_request for a signed-in user is one store read: no program runs, and the
    answer is the 202 with the identity headers."""
    with signed_in(gate) as client:
        calls = full_path_calls(gate, monkeypatch)
        response = client.request(method, "/oauth2/auth")
    assert response.status_code == 202
    assert response.headers["x-auth-request-user"] == "u-alice"
    assert response.headers["cache-control"] == "no-store"
    assert response.content == b""
    assert calls == []


def test_the_access_token_is_refreshed_once_for_concurrent_threads(
    tmp_path: Path, app: Recorder
) -> None:
    """Near expiry, eight threads of one session hitting the gate at once cause exactly one
    refresh at the provider, and every request carries the new, valid access token."""
    short = start_dev_idp(
        tmp_path, client_id=CLIENT_ID, client_secret=CLIENT_SECRET, access_token_ttl=2
    )
    gate = OakIDWSGIMiddleware(app, settings_for(short))
    try:
        with signed_in(gate) as client:
            first = app.last["oakid"].access_token
            cookie = session_cookie(client)
        time.sleep(1.2)  # past refresh_at: expiry minus half the 2 s lifetime

        def request(_: int) -> int:
            with browser(gate) as other:
                other.cookies.update(cookie)
                return other.get("/private", headers=JSON).status_code

        with ThreadPoolExecutor(max_workers=8) as pool:
            statuses = list(pool.map(request, range(8)))
        assert statuses == [200] * 8
        tokens = {environ["oakid"].access_token for environ in app.seen[-8:]}
        assert len(tokens) == 1 and first not in tokens
        refreshes = [e for e in short.events("token") if e["grant_type"] == "refresh_token"]
        assert [e["ok"] for e in refreshes] == [True]
    finally:
        gate.close()
        short.stop()


# ---------------------------------------------------------------- without a session


@pytest.mark.parametrize(
    ("method", "headers"),
    [
        pytest.param("GET", JSON, id="json-get"),
        pytest.param("POST", JSON, id="json-post"),
        pytest.param(
            "GET", {"Accept": "text/html", "X-Requested-With": "XMLHttpRequest"}, id="xhr"
        ),
        pytest.param("GET", {"Accept": "text/html", "Sec-Fetch-Mode": "cors"}, id="fetch"),
        pytest.param("POST", {"Accept": "text/html"}, id="form-post"),
    ],
)
def test_api_requests_without_a_session_get_401_json(
    gate: OakIDWSGIMiddleware, app: Recorder, method: str, headers: dict[str, str]
) -> None:
    """Anything but a browser navigation gets 401 JSON with a login URL and
    WWW-Authenticate, never a redirect, and the app is not called."""
    with browser(gate) as client:
        response = client.request(method, "/api/data?q=1", headers=headers)
    assert response.status_code == 401
    assert response.json() == {
        "error": "unauthenticated",
        "login_url": "/oauth2/start?rd=%2Fapi%2Fdata%3Fq%3D1",
    }
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert app.seen == []


def test_auth_endpoint_answers_202_with_identity_headers_or_401(
    gate: OakIDWSGIMiddleware,
) -> None:
    """``/oauth2/auth`` (nginx auth_request) is 401 signed out, 202 with the X-Auth-Request
    headers signed in."""
    with browser(gate) as client:
        assert client.get("/oauth2/auth").status_code == 401
    with signed_in(gate) as client:
        response = client.get("/oauth2/auth")
    assert response.status_code == 202
    assert response.headers["x-auth-request-user"] == "u-alice"
    assert response.headers["x-auth-request-email"] == "alice@example.test"
    assert response.headers["x-auth-request-preferred-username"] == "alice"
    assert response.headers["x-auth-request-groups"] == "admins,staff"


def test_userinfo_endpoint_and_head_replies(gate: OakIDWSGIMiddleware) -> None:
    """``/oauth2/userinfo`` gives the claims; a HEAD reply from the gate has headers only."""
    with signed_in(gate) as client:
        assert client.get("/oauth2/userinfo").json()["email"] == "alice@example.test"
        head = client.head("/oauth2/ping")
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-length"] == "2"


# ---------------------------------------------------------------- signing out


def test_sign_out_revokes_and_the_old_cookie_stops_working(
    gate: OakIDWSGIMiddleware, idp: DevIdP, app: Recorder
) -> None:
    """The form's POST revokes the refresh token at the provider, clears the cookie and
    redirects; replaying the old cookie afterwards is signed out (302 or 401)."""
    with signed_in(gate) as client:
        cookie = session_cookie(client)
        form = client.get("/oauth2/sign_out?rd=/public")
        assert form.status_code == 200 and b"<form" in form.content
        before = len(idp.events("revoke"))
        response = client.post("/oauth2/sign_out?rd=/public", headers={"Origin": ORIGIN})
    assert response.status_code == 303
    assert response.headers["location"] == f"{ORIGIN}/public"
    assert "max-age=0" in response.headers["set-cookie"].lower()
    revoked = idp.events("revoke")[before:]
    assert [e["revoked"] for e in revoked] == ["refresh_token"]
    with browser(gate) as replay:
        replay.cookies.update(cookie)
        assert replay.get("/private", headers=JSON).status_code == 401
        assert replay.get("/private", headers=NAVIGATION_HEADERS).status_code == 302
        assert replay.get("/oauth2/auth").status_code == 401


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({"Origin": "https://evil.example"}, id="foreign-origin"),
        pytest.param({"Sec-Fetch-Site": "cross-site"}, id="cross-site"),
        pytest.param({}, id="no-origin-no-token"),
    ],
)
def test_cross_site_sign_out_is_refused(gate: OakIDWSGIMiddleware, headers: dict[str, str]) -> None:
    """A sign-out POST from another site (or without the form's token) signs nobody out."""
    with signed_in(gate) as client:
        response = client.post("/oauth2/sign_out", headers={**headers, **JSON})
        assert response.status_code == 403
        assert client.get("/private", headers=JSON).status_code == 200


def test_sign_out_form_token_works_without_origin_headers(gate: OakIDWSGIMiddleware) -> None:
    """Without Origin or Sec-Fetch-Site (old browsers), the form's own token signs out."""
    with signed_in(gate) as client:
        page = client.get("/oauth2/sign_out").text
        token = re.search(r'name="?csrf"? value="([^"]+)"', page)[1]  # type: ignore[index]
        response = client.post("/oauth2/sign_out", data={"csrf": token})
        assert response.status_code == 200
        assert client.get("/private", headers=JSON).status_code == 401


# ---------------------------------------------------------------- identity only from the gate


FORGED_HEADERS = {
    "Remote-User": "mallory",
    "X-Remote-User": "mallory",
    "X-Forwarded-User": "mallory",
    "X-Forwarded-Email": "mallory@evil.example",
    "X-Auth-Request-User": "mallory",
    "X-Auth-Request-Role": "admin",  # a name the gate never sets: still another gate's
}
FORGED_KEYS = {"HTTP_" + name.upper().replace("-", "_") for name in FORGED_HEADERS}


def forging(gate: OakIDWSGIMiddleware) -> Callable[[Environ, Any], Iterable[bytes]]:
    """A server in front that fills in REMOTE_USER and the gate's own keys itself."""

    def server(environ: Environ, start_response: Any) -> Iterable[bytes]:
        environ.update({"REMOTE_USER": "mallory", "oakid.user": "mallory", "oakid": "mallory"})
        return gate(environ, start_response)

    return server


def test_public_path_without_a_session_has_no_identity(
    gate: OakIDWSGIMiddleware, app: Recorder
) -> None:
    """On a public path nobody signed in: no REMOTE_USER (whatever the server or the client
    put there), no session view, an anonymous ``oakid.user``, no identity headers."""
    with browser(forging(gate)) as client:
        response = client.get("/public/page", headers={**FORGED_HEADERS, **JSON})
    assert response.status_code == 200
    environ = app.last
    assert "REMOTE_USER" not in environ
    assert "oakid" not in environ
    assert environ["oakid.user"].is_authenticated is False
    assert FORGED_KEYS.isdisjoint(environ)


def test_a_public_path_without_a_session_runs_no_program(
    gate: OakIDWSGIMiddleware, app: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nobody signed in on a public path: decided on the hot path, no program runs."""
    calls = full_path_calls(gate, monkeypatch)
    with browser(gate) as client:
        assert client.get("/public/page", headers=JSON).status_code == 200
    assert app.last["oakid.user"].is_authenticated is False
    assert calls == []


def test_forged_identity_never_replaces_the_signed_in_user(
    gate: OakIDWSGIMiddleware, app: Recorder
) -> None:
    """A signed-in request whose server or client claims another user carries the real one."""
    with signed_in(forging(gate)) as client:
        response = client.get("/private", headers={**FORGED_HEADERS, **JSON})
    assert response.json()["remote_user"] == "u-alice"
    assert app.last["oakid.user"].sub == "u-alice"
    assert FORGED_KEYS.isdisjoint(app.last)


def test_an_unexpected_error_is_a_plain_500(
    gate: OakIDWSGIMiddleware, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A bug in the gate answers a short 500 page, with the traceback in the log only."""

    def broken(*args: Any) -> Any:
        raise RuntimeError("internal detail 1234")

    monkeypatch.setattr(gate.gate, "handle", broken)
    with caplog.at_level(logging.ERROR, logger="oakid_gate"), browser(gate) as client:
        response = client.get("/private", headers=NAVIGATION_HEADERS)
    assert response.status_code == 500
    assert "internal detail" not in response.text and "Traceback" not in response.text
    assert "internal detail 1234" in caplog.text


# ---------------------------------------------------------------- what the gate reads of environ


@pytest.mark.parametrize(
    ("trusted", "expected"),
    [
        pytest.param(["127.0.0.1"], "https://gate.example/oauth2/callback", id="trusted"),
        pytest.param([], f"{ORIGIN}/oauth2/callback", id="not-trusted"),
        pytest.param(["10.0.0.0/8"], f"{ORIGIN}/oauth2/callback", id="other-proxy"),
    ],
)
def test_forwarded_headers_count_only_from_trusted_proxies(
    make_gate: Callable[..., OakIDWSGIMiddleware], trusted: list[str], expected: str
) -> None:
    """X-Forwarded-Proto and -Host shape the redirect URI only from ``trusted_proxies``."""
    gate = make_gate(trusted_proxies=trusted)
    headers = {**NAVIGATION_HEADERS, "X-Forwarded-Proto": "https", "X-Forwarded-Host": "gate.example"}
    with browser(gate) as client:
        response = client.get("/private", headers=headers)
    params = parse_qs(urlsplit(response.headers["location"]).query)
    assert params["redirect_uri"] == [expected]


def wsgi_call(app: Callable[..., Iterable[bytes]], **environ: Any) -> tuple[str, bytes]:
    """Call a WSGI app with a PEP 3333 environ of our own making."""
    base: Environ = {
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": "",
        "PATH_INFO": "/",
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "127.0.0.1:8000",
        "HTTP_ACCEPT": "application/json",
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": io.StringIO(),
    }
    base.update(environ)
    status: list[str] = []
    body = b"".join(app(base, lambda s, h, exc_info=None: status.append(s)))
    return status[0], body


@pytest.mark.parametrize(
    ("script_name", "path_info", "rd"),
    [
        pytest.param("", "/caf\xc3\xa9", "/caf%C3%A9", id="pep3333-latin1-bytes"),
        pytest.param("", "/café", "/caf%C3%A9", id="already-text"),
        pytest.param("/mount", "/page", "/mount/page", id="script-name"),
    ],
)
def test_the_path_is_script_name_plus_path_info_decoded(
    gate: OakIDWSGIMiddleware, script_name: str, path_info: str, rd: str
) -> None:
    """The gate reads SCRIPT_NAME + PATH_INFO, whose bytes WSGI carries as Latin-1, as the
    same text the ASGI adapter sees, so return targets are right."""
    status, body = wsgi_call(gate, SCRIPT_NAME=script_name, PATH_INFO=path_info)
    assert status == "401 Unauthorized"
    login_url = json.loads(body)["login_url"]
    assert parse_qs(urlsplit(login_url).query)["rd"] == [rd]


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        pytest.param(
            {"CONTENT_LENGTH": "5", "wsgi.input": io.BytesIO(b"a=123")}, b"a=123", id="length"
        ),
        pytest.param({"CONTENT_LENGTH": "", "wsgi.input": io.BytesIO(b"a=1")}, b"", id="no-length"),
        pytest.param(
            {"wsgi.input_terminated": True, "wsgi.input": io.BytesIO(b"a=1")},
            b"a=1",
            id="terminated",
        ),
        pytest.param(
            {"CONTENT_LENGTH": "11", "wsgi.input": io.BytesIO(b"a" * 11)},
            BodyTooLarge,
            id="too-long",
        ),
        pytest.param(
            {"wsgi.input_terminated": True, "wsgi.input": io.BytesIO(b"a" * 11)},
            BodyTooLarge,
            id="too-long-chunked",
        ),
        pytest.param(
            {"CONTENT_LENGTH": "x", "wsgi.input": io.BytesIO(b"a=1")}, b"", id="bad-length"
        ),
    ],
)
def test_the_sign_out_form_is_read_within_its_limit(environ: Environ, expected: Any) -> None:
    """The request body is read by Content-Length, or to the end when the server marks it
    terminated, never past the limit, and never blocking on a body of unknown length."""
    read = oakid_gate.wsgi._body_reader(environ)
    if isinstance(expected, bytes):
        assert read(10) == expected
    else:
        with pytest.raises(expected):
            read(10)


def test_a_forked_child_makes_its_own_http_client(
    gate: OakIDWSGIMiddleware, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a fork the middleware's own HTTP client is replaced, never shared with the parent;
    a client the caller gave is the caller's to manage and stays."""
    parent = gate._client()
    monkeypatch.setattr(oakid_gate.adapter.os, "getpid", lambda: -1)
    child = gate._client()
    assert child is not parent and gate._client() is child
    given = httpx.Client()
    with given:
        mine = OakIDWSGIMiddleware(Recorder(), gate.settings, http=given)
        assert mine._client() is given
    child.close()


def test_settings_are_checked_at_construction(monkeypatch: pytest.MonkeyPatch) -> None:
    """A missing setting is an error naming it when the middleware is built."""
    for name in [n for n in os.environ if n.startswith("OAKID_")]:
        monkeypatch.delenv(name)
    with pytest.raises(ConfigurationError) as caught:
        OakIDWSGIMiddleware(Recorder(), secret="s" * 32, client_secret="x")
    assert caught.value.setting == "client_id"


# ---------------------------------------------------------------- Flask


def flask_app(idp: DevIdP, **settings: Any) -> Flask:
    app = Flask(__name__)
    OakID(app, settings_for(idp, **settings))

    @app.get("/private")
    @app.get("/public")
    def whoami() -> dict[str, Any]:
        session = current_session()
        return {
            "authenticated": current_user.is_authenticated,
            "name": current_user.name if current_user.is_authenticated else None,
            "remote_user": request.remote_user,
            "token": bool(session and session.access_token),
        }

    return app


def test_flask_views_read_the_user_naturally(idp: DevIdP) -> None:
    """With ``OakID(app)``, a view reads ``current_user``, ``current_session()`` and Flask's
    own ``request.remote_user``; on a public path the user is anonymous."""
    app = flask_app(idp)
    with browser(app) as client, closing(app.extensions["oakid"].middleware):
        assert client.get("/public").json() == {
            "authenticated": False,
            "name": None,
            "remote_user": None,
            "token": False,
        }
        response = dev_idp_sign_in(client, "/private", "carol")
    assert response.json() == {
        "authenticated": True,
        "name": "Carol Guest",
        "remote_user": "u-carol",
        "token": True,
    }


def test_flask_helpers_outside_the_gate_raise(idp: DevIdP) -> None:
    """``current_user`` in an app without the gate is an error, not an anonymous user, and
    the gate cannot be installed twice."""
    app = Flask(__name__)
    with app.test_request_context("/"):
        with pytest.raises(RuntimeError, match="OakID"):
            _ = current_user.is_authenticated
        with pytest.raises(RuntimeError):
            current_session()
    with (
        closing(OakID(app, settings_for(idp)).middleware),
        pytest.raises(RuntimeError, match="already"),
    ):
        OakID(app, settings_for(idp))


# ---------------------------------------------------------------- bearer tokens (issue 10)


@pytest.mark.parametrize("mode", ["userinfo", "on", "off"])
def test_bearer_token_under_wsgi_with_a_provider_without_introspection(
    make_gate: Callable[..., OakIDWSGIMiddleware], app: Recorder, mode: str
) -> None:
    """OakID (the dev-idp) has no introspection and opaque tokens: a real access token
    passes only with ``bearer_tokens=userinfo``, as ``REMOTE_USER``, with no cookie set;
    a token nobody issued is 401 invalid_token, never a redirect."""
    gate = make_gate(bearer_tokens=mode)
    with signed_in(gate) as client:
        client.get("/private")
        token = app.last["oakid"].access_token
    with browser(gate) as api:
        response = api.get("/private", headers={"authorization": f"Bearer {token}", "accept": "text/html"})
        forged = api.get("/private", headers={"authorization": "Bearer nobody-issued-this"})
        assert not session_cookie(api)
    if mode == "userinfo":
        assert response.status_code == 200, response.text
        assert app.last["REMOTE_USER"] == "u-alice"
        assert forged.status_code == 401
        assert 'error="invalid_token"' in forged.headers["www-authenticate"]
    elif mode == "on":
        assert response.status_code == 401
        assert 'error="invalid_token"' in response.headers["www-authenticate"]
        assert "location" not in response.headers
    else:
        assert response.status_code == 302  # no token is looked at: a navigation signs in


def test_two_authorization_headers_are_refused_under_wsgi(
    make_gate: Callable[..., OakIDWSGIMiddleware],
) -> None:
    """The WSGI server joins repeated headers (PEP 3333): two bearer tokens are no token."""
    gate = make_gate(bearer_tokens="userinfo")
    with browser(gate) as api:
        response = api.get(
            "/private",
            headers=[("authorization", "Bearer one"), ("authorization", "Bearer two"),
                     ("accept", "application/json")],
        )
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
