"""The gate's pages in process: what each says, the reference in the log, ``templates_dir``,
start-up errors naming the file, and ``Cache-Control`` on gate pages and protected responses.

The same pages in Chromium, with axe-core and screenshots: ``tests/test_pages_browser.py``.
"""

from __future__ import annotations

import html
import logging
import re
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

from oakid_gate import ConfigurationError, OakIDMiddleware, OakIDWSGIMiddleware, Settings
from oakid_gate.templates import PAGES, load_templates
from oakid_gate.testing import sign_in
from oakid_gate.testing.settings import offline_settings

NAVIGATE = {"accept": "text/html", "sec-fetch-mode": "navigate"}
HERE = Path(__file__).parent
CUSTOM = HERE / "apps" / "page_templates"


async def _private(request: Request) -> Response:
    return HTMLResponse("<p>secret stuff</p>")


async def _cached(request: Request) -> Response:
    return PlainTextResponse("asset", headers={"cache-control": "public, max-age=60"})


async def _public(request: Request) -> Response:
    return PlainTextResponse("public")


def starlette_app() -> Starlette:
    routes = [Route("/", _private), Route("/asset", _cached), Route("/public", _public)]
    return Starlette(routes=routes)


@pytest.fixture
def make_client() -> Iterator[Callable[..., TestClient]]:
    clients: list[TestClient] = []

    def make(**settings: Any) -> TestClient:
        values = offline_settings(public_paths=["/public"], **settings)
        gate = OakIDMiddleware(starlette_app(), Settings.load(env={}, **values))
        client = TestClient(gate, base_url="http://tools.example.test", follow_redirects=False)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def text_of(response: httpx.Response) -> str:
    """The page's words, tags removed and entities decoded."""
    return html.unescape(re.sub(r"<[^>]+>", " ", response.text))


def assert_gate_page(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["cache-control"] == "no-store"
    assert "<script" not in response.text and "http://" not in response.text.replace(
        "http://tools.example.test", ""
    )


# ---------------------------------------------------------------- what the pages say


def test_error_page_has_a_reference_that_is_in_the_log_line(
    make_client: Callable[..., TestClient], caplog: pytest.LogCaptureFixture
) -> None:
    """A 503 page names the site, says what happened and what to do, and shows a
    reference that is the request_id of the log line for that event."""
    client = make_client()
    caplog.set_level(logging.INFO, "oakid_gate")
    response = client.get("/", headers={**NAVIGATE, "x-request-id": "trace-503-a"})
    assert_gate_page(response, 503)
    words = text_of(response)
    assert "tools.example.test" in words  # app_name defaults to the host
    assert "Try again in a moment" in words
    assert "Reference trace-503-a" in " ".join(words.split())
    logged = [
        r for r in caplog.records if getattr(r, "oakid", {}).get("request_id") == "trace-503-a"
    ]
    assert logged and logged[0].levelno == logging.WARNING


def test_not_found_page_has_a_logged_reference(
    make_client: Callable[..., TestClient], caplog: pytest.LogCaptureFixture
) -> None:
    """A 404 under the prefix is a page with a reference the log line also holds."""
    client = make_client(app_name="Example Tools")
    caplog.set_level(logging.INFO, "oakid_gate")
    response = client.get("/oauth2/nothing", headers=NAVIGATE)
    assert_gate_page(response, 404)
    reference = re.search(r"<code>([0-9a-f]{16})</code>", response.text)
    assert reference is not None, response.text
    assert any(getattr(r, "oakid", {}).get("request_id") == reference[1] for r in caplog.records)
    assert "Example Tools" in text_of(response)


def _broken_gate(kind: str) -> tuple[Any, httpx.Client | TestClient]:
    """A gate of ``kind`` whose core fails in a way nobody expected."""
    values = offline_settings(app_name="Example Tools")
    if kind == "asgi":
        gate: Any = OakIDMiddleware(starlette_app(), Settings.load(env={}, **values))
        client: Any = TestClient(gate, base_url="http://tools.example.test")
    else:
        gate = OakIDWSGIMiddleware(lambda environ, start: [], Settings.load(env={}, **values))
        client = httpx.Client(transport=httpx.WSGITransport(app=gate), base_url="http://tools.example.test")

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug")

    gate.gate.handle = broken
    return gate, client


@pytest.mark.parametrize("kind", ["asgi", "wsgi"])
def test_an_unexpected_error_is_a_page_with_a_logged_reference(
    kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    """An error nobody expected is the gate's 500 page (JSON for an API client), with a
    reference that is the request id of the log line holding the traceback; no detail
    of the error reaches the visitor."""
    _, client = _broken_gate(kind)
    caplog.set_level(logging.INFO, "oakid_gate")
    with client:
        page = client.get("/", headers={**NAVIGATE, "x-request-id": "trace-500"})
        api = client.get("/", headers={"accept": "application/json"})
    assert_gate_page(page, 500)
    words = " ".join(text_of(page).split())
    assert "Reference trace-500" in words and "Example Tools" in words and "a bug" not in words
    assert api.status_code == 500 and api.json()["error"] == "server_error"
    logged = [r for r in caplog.records if getattr(r, "oakid", {}).get("request_id") == "trace-500"]
    assert logged and logged[0].exc_info is not None and logged[0].levelno == logging.ERROR


def test_failed_sign_in_offers_to_sign_in_again(make_client: Callable[..., TestClient]) -> None:
    """A callback with no sign-in under way says so and links to a fresh sign-in."""
    client = make_client()
    response = client.get("/oauth2/callback?code=x&state=y", headers=NAVIGATE)
    assert 400 <= response.status_code < 500
    assert_gate_page(response, response.status_code)
    assert 'href="/oauth2/start?rd=/"' in response.text and "Sign in again" in response.text


def test_not_allowed_page_names_user_and_what_is_missing(
    make_client: Callable[..., TestClient],
) -> None:
    """The 403 names the signed-in user and the missing group, and offers sign-out."""
    client = make_client(allowed_groups=["admins"], app_name="Example Tools")
    sign_in(client, name="Carol <Example>", groups=["staff"])
    response = client.get("/", headers=NAVIGATE)
    assert_gate_page(response, 403)
    words = text_of(response)
    assert "Signed in as Carol <Example>" in " ".join(words.split())
    assert "<Example>" not in response.text  # escaped
    assert "admins" in words and "Example Tools" in words
    assert 'href="/oauth2/sign_out"' in response.text


@pytest.mark.parametrize(
    ("rd", "cancel"),
    [
        pytest.param(None, "/", id="no-rd"),
        pytest.param("/reports?y=2026", "/reports?y=2026", id="same-origin"),
        pytest.param("//evil.example/", "/", id="other-origin"),
    ],
)
def test_sign_out_confirmation_names_site_user_and_cancel(
    make_client: Callable[..., TestClient], rd: str | None, cancel: str
) -> None:
    """The confirmation says which site and which account, and its cancel link goes back
    to ``rd`` when that is a same-origin path, else to ``/``."""
    client = make_client(app_name="Example Tools")
    sign_in(client, name="Alice Example")
    response = client.get("/oauth2/sign_out", params={"rd": rd} if rd else None, headers=NAVIGATE)
    assert_gate_page(response, 200)
    words = " ".join(text_of(response).split())
    assert "Sign out of Example Tools?" in words and "signed in as Alice Example" in words
    assert f'href="{html.escape(cancel)}">Cancel' in response.text
    assert "<form method=post" in response.text and 'name=csrf value="' in response.text


def test_sign_out_without_a_session_says_so(make_client: Callable[..., TestClient]) -> None:
    """With nobody signed in, the sign-out page says so and offers to sign in."""
    response = make_client().get("/oauth2/sign_out", headers=NAVIGATE)
    assert_gate_page(response, 200)
    assert "You are not signed in" in response.text and "<form" not in response.text


def test_signed_out_page_after_sign_out(make_client: Callable[..., TestClient]) -> None:
    """After the POST, the signed-out page names the site and offers to sign in again."""
    client = make_client(app_name="Example Tools")
    sign_in(client)
    response = client.post(
        "/oauth2/sign_out", headers={**NAVIGATE, "sec-fetch-site": "same-origin"}
    )
    assert_gate_page(response, 200)
    words = text_of(response)
    assert "You are signed out" in words and "Example Tools" in words
    assert "Sign in again" in words


def test_app_name_and_logo_are_escaped(make_client: Callable[..., TestClient]) -> None:
    """``app_name`` and ``logo_url`` are values like any other: escaped in the page."""
    client = make_client(app_name='<b>"Tools"</b>', logo_url='/logo.svg?a="><script>')
    response = client.get("/oauth2/nothing", headers=NAVIGATE)
    assert "<b>" not in response.text and "<script>" not in response.text
    assert "&lt;b&gt;&#34;Tools&#34;&lt;/b&gt;" in response.text
    assert 'src="/logo.svg?a=&#34;&gt;&lt;script&gt;"' in response.text


# ---------------------------------------------------------------- templates_dir


def test_templates_dir_replaces_pages_one_by_one(make_client: Callable[..., TestClient]) -> None:
    """A template in ``templates_dir`` replaces the built-in one; the others stay; its
    ``custom.css`` is added to every page's styles."""
    client = make_client(templates_dir=str(CUSTOM), app_name="Acme")
    response = client.get("/oauth2/nothing", headers=NAVIGATE)
    assert_gate_page(response, 404)
    assert "acme-error" in response.text  # the custom error.html
    assert "--accent:#8a1538" in response.text  # the custom custom.css
    signed_out = client.get("/oauth2/sign_out", headers=NAVIGATE)
    assert "You are not signed in" in signed_out.text  # the built-in sign_out.html
    assert "--accent:#8a1538" in signed_out.text


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        pytest.param({"error.html": "{% if %}"}, r"error\.html line 1: ", id="syntax"),
        pytest.param(
            {"error.html": "{{ titel }}"}, r"error\.html: 'titel' is undefined", id="typo"
        ),
        pytest.param(
            {"base.html": "{{ app_nme }}{% block main %}{% endblock %}"},
            r"base\.html: 'app_nme' is undefined",
            id="typo-in-base",
        ),
        pytest.param(
            {"sign_out.html": "{% if csrf_token %}ok{% else %}{{ nope }}{% endif %}"},
            r"sign_out\.html: 'nope' is undefined",
            id="typo-in-other-branch",
        ),
        pytest.param(
            {"error.html": "{% include 'missing.html' %}"},
            r"error\.html: missing\.html",
            id="include",
        ),
        pytest.param({"partial.html": "{% endif %}"}, r"partial\.html line 1", id="unused-file"),
    ],
)
def test_a_bad_template_is_a_start_up_error_naming_the_file(
    tmp_path: Path, files: dict[str, str], expected: str
) -> None:
    """A template that does not compile or names an unknown variable stops the gate at
    start-up with a ConfigurationError naming ``templates_dir`` and the file."""
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    with pytest.raises(ConfigurationError) as raised:
        Settings.load(env={}, **offline_settings(templates_dir=str(tmp_path)))
    assert raised.value.setting == "templates_dir"
    assert re.search(expected, str(raised.value)), str(raised.value)
    assert str(tmp_path) in str(raised.value)


@pytest.mark.parametrize(
    ("settings", "setting"),
    [
        pytest.param({"templates_dir": "/nonexistent/templates"}, "templates_dir", id="no-folder"),
        pytest.param({"logo_url": "http://cdn.example/logo.png"}, "logo_url", id="logo-http"),
        pytest.param({"logo_url": "//cdn.example/logo.png"}, "logo_url", id="logo-scheme-relative"),
        pytest.param({"logo_url": "javascript:alert(1)"}, "logo_url", id="logo-javascript"),
        pytest.param({"app_name": "  "}, "app_name", id="app-name-blank"),
        pytest.param(
            {"protected_cache_control": "no-store\r\nX: y"},
            "protected_cache_control",
            id="header-split",
        ),
    ],
)
def test_page_settings_are_checked_at_start_up(settings: dict[str, Any], setting: str) -> None:
    """Page settings that cannot work are ConfigurationErrors naming the setting."""
    with pytest.raises(ConfigurationError) as raised:
        Settings.load(env={}, **offline_settings(**settings))
    assert raised.value.setting == setting


def test_built_in_templates_render_every_page_with_autoescape() -> None:
    """Every page the core renders exists among the built-in templates, and values are escaped."""
    templates = load_templates()
    assert set(PAGES) == {"error.html", "not_allowed.html", "sign_out.html", "signed_out.html"}
    page = templates.render(
        "signed_out.html",
        {
            "app_name": "<i>x</i>",
            "logo_url": None,
            "user": None,
            "title": "t",
            "reference": None,
            "home_url": "/",
            "sign_in_url": "/s",
        },
    )
    assert "<i>x</i>" not in page and "&lt;i&gt;x&lt;/i&gt;" in page


# ---------------------------------------------------------------- Cache-Control


#: what each kind of client sends that tells a browser (gate/caching.py): a browser's
#: request of every kind carries Sec-Fetch-Mode; an old browser only its User-Agent
BROWSERS = {
    "navigation": {"sec-fetch-mode": "navigate", "sec-fetch-dest": "document"},
    "fetch": {"sec-fetch-mode": "cors", "sec-fetch-dest": "empty", "accept": "application/json"},
    "image": {"sec-fetch-mode": "no-cors", "sec-fetch-dest": "image"},
    "old-browser": {"user-agent": "Mozilla/5.0 (Windows NT 6.1; Trident/7.0; rv:11.0) like Gecko"},
}
#: clients with no back button and no cache of their own
NOT_BROWSERS = {
    "curl": {"user-agent": "curl/8.5.0"},
    "no-user-agent": {"user-agent": ""},
    "api-client": {"user-agent": "python-httpx/0.28", "accept": "application/json"},
}


@pytest.mark.parametrize("sent", BROWSERS.values(), ids=BROWSERS.keys())
def test_a_browsers_protected_responses_are_not_stored(
    make_client: Callable[..., TestClient], sent: dict[str, str]
) -> None:
    """Every protected response to a browser without a Cache-Control of its own gets
    ``no-store`` (the back button after sign-out shows nothing); the app's own value is
    kept; a public response is left alone."""
    client = make_client()
    sign_in(client)
    assert client.get("/", headers=sent).headers["cache-control"] == "no-store"
    assert client.get("/asset", headers=sent).headers["cache-control"] == "public, max-age=60"
    client.cookies.clear()
    assert "cache-control" not in client.get("/public", headers=sent).headers


@pytest.mark.parametrize("sent", NOT_BROWSERS.values(), ids=NOT_BROWSERS.keys())
def test_a_clients_protected_responses_are_left_as_the_app_made_them(
    make_client: Callable[..., TestClient], sent: dict[str, str]
) -> None:
    """A client that is no browser keeps nothing for a back button: its responses are the
    app's own (the hot path adds nothing)."""
    client = make_client()
    sign_in(client)
    assert "cache-control" not in client.get("/", headers=sent).headers


def test_protected_cache_control_can_be_changed_or_off(
    make_client: Callable[..., TestClient],
) -> None:
    """``protected_cache_control`` sets the value; empty adds none."""
    browser = BROWSERS["navigation"]
    custom = make_client(protected_cache_control="private, no-cache")
    sign_in(custom)
    assert custom.get("/", headers=browser).headers["cache-control"] == "private, no-cache"
    off = make_client(protected_cache_control="")
    sign_in(off)
    assert "cache-control" not in off.get("/", headers=browser).headers


def _wsgi_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    headers = [("Content-Type", "text/plain")]
    if environ["PATH_INFO"] == "/asset":
        headers.append(("Cache-Control", "max-age=60"))
    start_response("200 OK", headers)
    return [b"secret stuff"]


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        *((sent, False) for sent in BROWSERS.values()),
        *((sent, True) for sent in NOT_BROWSERS.values()),
    ],
    ids=[*BROWSERS, *NOT_BROWSERS],
)
def test_wsgi_protected_responses_are_not_stored(sent: dict[str, str], stored: bool) -> None:
    """The WSGI adapter adds the same ``no-store`` for a browser, nothing for another
    client, and keeps an app's own value."""
    settings = Settings.load(env={}, **offline_settings())
    gate = OakIDWSGIMiddleware(_wsgi_app, settings)
    transport = httpx.WSGITransport(app=gate)
    with httpx.Client(transport=transport, base_url="http://tools.example.test") as client:
        sign_in(client, gate=gate)
        response = client.get("/", headers=sent)
        assert response.headers.get("cache-control") == (None if stored else "no-store")
        assert client.get("/asset", headers=sent).headers["cache-control"] == "max-age=60"


def test_a_gate_without_templates_dir_starts_without_jinja2() -> None:
    """Start-up cost: the built-in pages are compiled when the first one is shown, so
    building a gate imports no Jinja2 (a ``templates_dir`` is compiled at start-up)."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from oakid_gate import OakIDMiddleware\n"
        "gate = OakIDMiddleware(lambda *a: None, issuer='http://127.0.0.1:9', client_id='c',"
        " client_secret='s', secret='x' * 32)\n"
        "print('jinja2' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env={})
    assert result.stdout.strip() == "False", result.stderr
