"""oakid_gate.flask: ``login_required`` with a route's own rules, settings from
``app.config``, the ``init_app`` factory pattern, and the Flask-Login user protocol
(issue 12 item 4), in process with Flask's test client, signed in with oakid_gate.testing."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from flask import Flask, request
from support.route_rules import ALICE, BROWSER, FORGED, JSON, RULE_CASES, SETTINGS

from oakid_gate.errors import ConfigurationError
from oakid_gate.flask import OakID, current_session, current_user, login_required
from oakid_gate.settings import Settings
from oakid_gate.testing import TEST_ACCESS_TOKEN, session_cookie
from oakid_gate.user import ANONYMOUS, OakIDAnonymousUser, OakIDUser
from oakid_gate.wsgi import OakIDWSGIMiddleware

#: the settings as a Flask app's config holds them
CONFIG = {f"OAKID_{name.upper()}": value for name, value in SETTINGS.items()}

#: the extension, made unbound at import as a factory's module does
oakid = OakID()


def create_app(rules: dict[str, Any] | None = None, **config: Any) -> Flask:
    """The application factory: configuration first, then ``oakid.init_app``."""
    app = Flask(__name__)
    app.config.update({**CONFIG, **config})
    oakid.init_app(app)
    rules = rules or {}

    def who() -> dict[str, Any]:
        return {
            "type": current_user.__class__.__name__,
            "authenticated": current_user.is_authenticated,
            "sub": current_user.sub,
            "email": current_user.email,
            "groups": list(current_user.groups),
            "claims": dict(current_user.claims),
            "id": current_user.get_id(),
            "active": current_user.is_active,
            "anonymous": current_user.is_anonymous,
            "remote_user": request.remote_user,
            "token": (s.access_token if (s := current_session()) else None),
        }

    @app.get("/public/open")
    def open_() -> dict[str, Any]:
        return who()

    @app.get("/public/signed-in")
    @login_required
    def signed_in() -> dict[str, Any]:
        return who()

    @app.get("/public/guarded")
    @login_required(**rules)
    def guarded() -> dict[str, Any]:
        return who()

    @app.get("/public/async")
    @login_required(**rules)
    async def guarded_async() -> dict[str, Any]:
        return who()

    return app


def _client(app: Flask, claims: dict[str, Any] | None = None, scopes: Any = None) -> Any:
    client = app.test_client()
    if claims is not None:
        name, value = session_cookie(app.extensions["oakid"].middleware, claims, scopes=scopes)
        client.set_cookie(name, value)
    return client


# ---------------------------------------------------------------- login_required


@pytest.mark.parametrize(("rules", "claims", "scopes", "allowed"), RULE_CASES)
@pytest.mark.parametrize("path", ["/public/guarded", "/public/async"])
def test_login_required_judges_each_rule_kind(rules: dict[str, Any], claims: dict[str, Any], scopes: Any, allowed: bool, path: str) -> None:
    response = _client(create_app(rules), claims, scopes).get(path, headers={**JSON, **FORGED})
    if allowed:
        assert response.status_code == 200, response.text
        assert response.json["sub"] == "u-alice"
    else:
        assert response.status_code == 403, response.text
        assert response.json["error"] == "access_denied" and response.json["missing"]


def test_the_403_is_a_page_for_a_browser_and_an_audit_event(caplog: pytest.LogCaptureFixture) -> None:
    app = create_app({"groups": ["admins"], "claims": {"department": "eng"}})
    client = _client(app, {**ALICE, "groups": ["admins"], "department": "sales"})
    with caplog.at_level(logging.INFO, "oakid_gate"):
        response = client.get("/public/guarded", headers=BROWSER)
    assert response.status_code == 403
    assert response.content_type.startswith("text/html")
    assert "department=eng" in response.text and "/oauth2/sign_out" in response.text
    events = [r.oakid for r in caplog.records if hasattr(r, "oakid")]  # type: ignore[attr-defined]
    assert [(e["event"], e["outcome"], e["reason"]) for e in events] == [
        ("authorization", "refused", "the claim department=eng")
    ]


@pytest.mark.parametrize("path", ["/public/signed-in", "/public/guarded", "/public/async"])
def test_nobody_signed_in_gets_the_401_or_the_sign_in(path: str) -> None:
    client = _client(create_app({"groups": ["admins"]}))
    api = client.get(path, headers={**JSON, **FORGED})
    browser = client.get(path, headers={**BROWSER, **FORGED})
    assert api.status_code == 401
    assert api.json["error"] == "unauthenticated"
    assert api.headers["www-authenticate"] == 'Bearer realm="oakid-gate"'
    assert browser.status_code == 302
    assert browser.headers["location"] == "/oauth2/start?rd=" + path.replace("/", "%2F")


def test_login_required_without_the_gate_is_an_error() -> None:
    app = Flask(__name__)

    @app.get("/")
    @login_required
    def home() -> str:
        return "never"

    app.testing = True  # errors propagate
    with pytest.raises(RuntimeError, match="OakID"):
        app.test_client().get("/")


# ---------------------------------------------------------------- current_user


def test_public_paths_give_the_anonymous_user_whatever_is_forged() -> None:
    body = _client(create_app()).get("/public/open", headers=FORGED).json
    assert body == {
        "type": "OakIDAnonymousUser",
        "authenticated": False,
        "sub": None,
        "email": None,
        "groups": [],
        "claims": {},
        "id": None,
        "active": False,
        "anonymous": True,
        "remote_user": None,
        "token": None,
    }


def test_signed_in_current_user_follows_the_flask_login_protocol() -> None:
    claims = {**ALICE, "groups": ["admins"]}
    body = _client(create_app(), claims).get("/public/signed-in").json
    assert body == {
        "type": "OakIDUser",
        "authenticated": True,
        "sub": "u-alice",
        "email": "alice@example.test",
        "groups": ["admins"],
        "claims": claims,
        "id": "u-alice",  # get_id(): the identity, as REMOTE_USER
        "active": True,
        "anonymous": False,
        "remote_user": "u-alice",
        "token": TEST_ACCESS_TOKEN,
    }


def test_flask_login_takes_the_gates_user() -> None:
    """Flask-Login itself (its ``current_user`` and ``login_required``) with the gate's
    users: a ``request_loader`` and the anonymous user class are all it takes."""
    flask_login = pytest.importorskip("flask_login")
    app = create_app(SECRET_KEY="test")
    manager = flask_login.LoginManager(app)
    manager.anonymous_user = OakIDAnonymousUser

    @manager.request_loader
    def from_the_gate(req: Any) -> OakIDUser | None:
        user = req.environ["oakid.user"]
        return user if user.is_authenticated else None

    @app.get("/public/flask-login")
    @flask_login.login_required
    def page() -> dict[str, Any]:
        return {"id": flask_login.current_user.get_id(), "name": flask_login.current_user.display_name}

    assert _client(app).get("/public/flask-login").status_code == 401
    assert _client(app, ALICE).get("/public/flask-login").json == {"id": "u-alice", "name": "Alice"}


# ---------------------------------------------------------------- settings and the factory


def test_the_factory_pattern_gives_each_app_its_own_gate() -> None:
    """``oakid = OakID()`` reads nothing; each ``init_app`` installs a gate of its own."""
    first, second = create_app(), create_app(OAKID_COOKIE_NAME="second")
    gates = [app.extensions["oakid"].middleware for app in (first, second)]
    assert all(isinstance(g, OakIDWSGIMiddleware) for g in gates) and gates[0] is not gates[1]
    assert [app.wsgi_app for app in (first, second)] == gates
    assert gates[1].settings.cookie_name == "second" and gates[0].settings.cookie_name == "oakid_session"
    # a session in one app's store is no session in the other's
    name, value = session_cookie(gates[0], ALICE)
    client = second.test_client()
    client.set_cookie(name, value)
    assert client.get("/public/open").json["authenticated"] is False


def test_keyword_arguments_win_over_app_config_which_wins_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OAKID_COOKIE_NAME", "from_env")
    monkeypatch.setenv("OAKID_IDLE_TIMEOUT", "7m")
    monkeypatch.setenv("OAKID_LOGIN_TIMEOUT", "5m")
    app = Flask(__name__)
    app.config.update(CONFIG, OAKID_COOKIE_NAME="from_config", OAKID_IDLE_TIMEOUT=120)
    ext = OakID(app, cookie_name="from_kwargs")
    settings = ext.settings
    assert settings is not None
    assert settings.cookie_name == "from_kwargs"  # argument > app.config
    assert settings.idle_timeout == 120  # app.config > environment
    assert settings.login_timeout == 300  # environment > default
    assert settings.source("idle_timeout") == "argument"


def test_a_settings_object_is_used_as_it_is() -> None:
    settings = Settings.load(**SETTINGS, cookie_name="given")
    app = Flask(__name__)
    app.config["OAKID_COOKIE_NAME"] = "ignored"
    assert OakID(app, settings).middleware.settings is settings  # type: ignore[union-attr]


def test_app_config_mistakes_name_the_setting() -> None:
    app = Flask(__name__)
    app.config.update(CONFIG, OAKID_CLIENT_ID="")
    app.config["OAKID_COOKIE_NAM"] = "typo"
    with pytest.raises(ConfigurationError, match=r"OAKID_COOKIE_NAM"):
        OakID().init_app(app)
    app = Flask(__name__)
    app.config.update(CONFIG, OAKID_SESSION_LIFETIME="forever")
    with pytest.raises(ConfigurationError) as caught:
        OakID().init_app(app)
    assert caught.value.setting == "session_lifetime"


def test_the_anonymous_user_is_one_object() -> None:
    assert create_app() and ANONYMOUS.get_id() is None and not ANONYMOUS.is_active
