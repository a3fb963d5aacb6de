"""Settings: arguments over the environment, and errors that name the setting."""

from __future__ import annotations

from typing import Any

import pytest

from oakid_gate import ConfigurationError, Settings

GOOD: dict[str, Any] = {"client_id": "oak_1", "client_secret": "cs", "secret": "s" * 32}


def test_defaults_follow_the_spec() -> None:
    """Defaults are those of SPEC "Settings"."""
    s = Settings.load(env={}, **GOOD)
    assert s.issuer == "https://id.oakwall.mom"
    assert s.scopes == ("openid", "profile", "email")
    assert s.prefix == "/oauth2"
    assert s.session_store == "memory://"
    assert s.user_claim == "sub"
    assert (s.host, s.port) == ("127.0.0.1", 8000)
    assert s.refresh_margin == 30
    assert s.http_timeout == 10.0


def test_environment_and_arguments() -> None:
    """OAKID_* variables fill settings; explicit arguments win; lists are comma-separated."""
    env = {
        "OAKID_CLIENT_ID": "from-env",
        "OAKID_CLIENT_SECRET": "cs",
        "OAKID_SECRET": "e" * 32,
        "OAKID_PUBLIC_PATHS": "/health, /static/*",
        "OAKID_PORT": "9001",
        "OAKID_PASS_ACCESS_TOKEN": "true",
    }
    s = Settings.load(env=env, client_id="from-arg")
    assert s.client_id == "from-arg"
    assert s.public_paths == ("/health", "/static/*")
    assert s.port == 9001
    assert s.pass_access_token is True


def test_secrets_never_show() -> None:
    """The repr of settings holds no secret value."""
    s = Settings.load(env={}, client_id="oak_1", client_secret="client-secret-value", secret="k" * 40)
    assert "client-secret-value" not in repr(s)
    assert "k" * 40 not in repr(s)
    assert "client-secret-value" not in str(s.describe())


@pytest.mark.parametrize(
    ("changes", "setting"),
    [
        pytest.param({"client_id": None}, "client_id", id="client-id-missing"),
        pytest.param({"client_secret": None}, "client_secret", id="client-secret-missing"),
        pytest.param({"secret": "short"}, "secret", id="secret-short"),
        pytest.param({"secret": ["s" * 32, "short"]}, "secret", id="rotated-secret-short"),
        pytest.param({"issuer": "http://id.example.com"}, "issuer", id="issuer-http"),
        pytest.param({"issuer": "id.example.com"}, "issuer", id="issuer-not-url"),
        pytest.param({"issuer": "https://u:p@id.example.com"}, "issuer", id="issuer-credentials"),
        pytest.param({"scopes": ""}, "scopes", id="scopes-empty"),
        pytest.param({"base_url": "https://x.example.com/app"}, "base_url", id="base-url-path"),
        pytest.param({"prefix": "oauth2/"}, "prefix", id="prefix-shape"),
        pytest.param({"public_paths": "health"}, "public_paths", id="public-relative"),
        pytest.param({"public_paths": "/a*b"}, "public_paths", id="public-wildcard"),
        pytest.param({"public_paths": "/oauth2/x"}, "public_paths", id="public-in-prefix"),
        pytest.param({"allowed_emails": "bob"}, "allowed_emails", id="email-shape"),
        pytest.param({"allowed_domains": "@x.com"}, "allowed_domains", id="domain-shape"),
        pytest.param({"trusted_proxies": "not-an-ip"}, "trusted_proxies", id="proxy-shape"),
        pytest.param({"token_endpoint_auth_method": "none"}, "token_endpoint_auth_method", id="auth-method"),
        pytest.param({"port": "eighty"}, "port", id="port-not-number"),
        pytest.param({"port": 0}, "port", id="port-zero"),
        pytest.param({"session_lifetime": 0}, "session_lifetime", id="lifetime-zero"),
        pytest.param({"http_timeout": -1}, "http_timeout", id="timeout-negative"),
        pytest.param({"clock_skew": 3600}, "clock_skew", id="skew-large"),
        pytest.param({"cookie_name": "_session"}, "cookie_name", id="cookie-clash"),
        pytest.param({"cookie_name": "a b"}, "cookie_name", id="cookie-space"),
        pytest.param({"cookie_samesite": "none"}, "cookie_samesite", id="samesite-none"),
        pytest.param({"pass_access_token": "maybe"}, "pass_access_token", id="bool-shape"),
        pytest.param({"nonsense": 1}, "nonsense", id="unknown"),
    ],
)
def test_invalid_settings_name_the_setting(changes: dict[str, Any], setting: str) -> None:
    """A bad or missing setting is a start-up error that names it."""
    with pytest.raises(ConfigurationError) as info:
        Settings.load(env={}, **{**GOOD, **changes})
    assert info.value.setting == setting
    assert setting in str(info.value)


def test_rotation_keeps_every_secret() -> None:
    """Several secrets may be given; the order is kept (the first one signs)."""
    s = Settings.load(env={}, **{**GOOD, "secret": f"{'a' * 32},{'b' * 32}"})
    assert [x.reveal() for x in s.secret] == ["a" * 32, "b" * 32]
