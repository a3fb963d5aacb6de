"""Configuration (issue 11 item 5): a TOML file, ``*_file`` secrets, durations, the order
flags > environment > file > defaults, ``--version``, and ``check`` saying where each
setting came from."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from peers.gate import DevIdP, run_to_exit, start_dev_idp

from oakid_gate import __version__
from oakid_gate.errors import ConfigurationError
from oakid_gate.settings import Settings

SECRET = "s" * 32
BASE = {"client_id": "c", "client_secret": "cs", "secret": SECRET}


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# ---------------------------------------------------------------- the order of sources


def test_arguments_over_environment_over_file_over_defaults(tmp_path: Path) -> None:
    config = write(
        tmp_path, "oakid.toml",
        'client_id = "from-file"\nclient_secret = "file-secret"\nsecret = "' + SECRET + '"\n'
        'prefix = "/auth-file"\npublic_paths = ["/health", "GET,HEAD /status"]\n'
        'session_lifetime = "8h"\ncookie_secure = true\n',
    )
    env = {"OAKID_CONFIG": str(config), "OAKID_PREFIX": "/auth-env", "OAKID_CLIENT_ID": "from-env"}
    settings = Settings.load(env=env, client_id="from-argument")
    assert settings.client_id == "from-argument" and settings.source("client_id") == "argument"
    assert settings.prefix == "/auth-env" and settings.source("prefix") == "environment"
    assert settings.session_lifetime == 8 * 3600 and settings.source("session_lifetime") == "config file"
    assert settings.public_paths == ("/health", "GET,HEAD /status")
    assert settings.cookie_secure is True
    assert settings.client_secret.reveal() == "file-secret"
    assert settings.idle_timeout == 2 * 3600 and settings.source("idle_timeout") == "default"


def test_the_config_file_may_be_given_as_an_argument(tmp_path: Path) -> None:
    config = write(tmp_path, "c.toml", 'user_claim = "email"\n')
    assert Settings.load(env={}, config=str(config), **BASE).user_claim == "email"


@pytest.mark.parametrize(
    ("text", "setting"),
    [
        pytest.param('clientid = "typo"\n', "clientid", id="unknown-key"),
        pytest.param("client_id = \n", "config", id="not-toml"),
        pytest.param('[oakid]\nclient_id = "c"\n', "oakid", id="a-table"),
        pytest.param('session_lifetime = "forever"\n', "session_lifetime", id="bad-duration"),
        pytest.param("port = true\n", "port", id="bad-type"),
    ],
)
def test_a_bad_config_file_names_what_is_wrong(tmp_path: Path, text: str, setting: str) -> None:
    config = write(tmp_path, "bad.toml", text)
    with pytest.raises(ConfigurationError) as info:
        Settings.load(env={}, config=str(config), **BASE)
    assert info.value.setting == setting


def test_a_missing_config_file_names_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError) as info:
        Settings.load(env={"OAKID_CONFIG": str(tmp_path / "nope.toml")}, **BASE)
    assert info.value.setting == "config"


# ---------------------------------------------------------------- secrets from files


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        pytest.param("from-a-file\n", "from-a-file", id="newline-stripped"),
        pytest.param("from-a-file\r\n", "from-a-file", id="crlf-stripped"),
        pytest.param("from-a-file", "from-a-file", id="no-newline"),
        pytest.param("two-newlines\n\n", "two-newlines\n", id="only-one-newline-stripped"),
    ],
)
def test_secrets_are_read_from_files(tmp_path: Path, content: str, expected: str) -> None:
    """Containers mount secrets as files: read once, one trailing newline removed."""
    client_secret = write(tmp_path, "client_secret", content)
    secret = write(tmp_path, "secret", SECRET + "\n")
    settings = Settings.load(
        env={"OAKID_SECRET_FILE": str(secret)},
        client_id="c",
        client_secret_file=str(client_secret),
    )
    assert settings.client_secret.reveal() == expected
    assert settings.secret[0].reveal() == SECRET
    assert settings.source("client_secret") == "argument"
    assert settings.source("secret") == "environment"


@pytest.mark.parametrize(
    ("kwargs", "env", "setting"),
    [
        pytest.param({"client_secret": "x", "client_secret_file": "f"}, {}, "client_secret", id="both-as-arguments"),
        pytest.param({}, {"OAKID_CLIENT_SECRET": "x", "OAKID_CLIENT_SECRET_FILE": "f"}, "client_secret", id="both-in-the-environment"),
        pytest.param({"client_secret_file": "/no/such/file"}, {}, "client_secret_file", id="missing-file"),
        pytest.param({"client_secret_file": "EMPTY"}, {}, "client_secret_file", id="empty-file"),
    ],
)
def test_secret_file_mistakes_name_the_setting(
    tmp_path: Path, kwargs: dict[str, Any], env: dict[str, str], setting: str
) -> None:
    empty = write(tmp_path, "empty", "")
    kwargs = {k: (str(empty) if v == "EMPTY" else v) for k, v in kwargs.items()}
    with pytest.raises(ConfigurationError) as info:
        Settings.load(env=env, client_id="c", secret=SECRET, **kwargs)
    assert info.value.setting == setting


def test_a_file_at_a_stronger_level_wins(tmp_path: Path) -> None:
    """An argument's ``client_secret_file`` beats the environment's ``client_secret``."""
    path = write(tmp_path, "cs", "from-file\n")
    settings = Settings.load(
        env={"OAKID_CLIENT_SECRET": "from-env"}, client_id="c", secret=SECRET,
        client_secret_file=str(path),
    )
    assert settings.client_secret.reveal() == "from-file"


# ---------------------------------------------------------------- durations


@pytest.mark.parametrize(
    ("raw", "seconds"),
    [("90", 90), ("90s", 90), ("15m", 900), ("12h", 43200), ("7d", 604800), (3600, 3600), (" 2H ", 7200)],
)
def test_durations_take_units(raw: Any, seconds: int) -> None:
    settings = Settings.load(env={}, session_lifetime=raw, **BASE)
    assert settings.session_lifetime == seconds


def test_a_fractional_duration_where_seconds_are_whole_is_refused() -> None:
    assert Settings.load(env={}, http_timeout="1.5s", **BASE).http_timeout == 1.5
    with pytest.raises(ConfigurationError) as info:
        Settings.load(env={}, idle_timeout="1.5s", **BASE)
    assert info.value.setting == "idle_timeout"


@pytest.mark.parametrize("raw", ["12 hours", "-5m", "1w", "h", "", "true"])
def test_a_bad_duration_names_the_setting(raw: str) -> None:
    env = {"OAKID_IDLE_TIMEOUT": raw}
    if raw == "":
        assert Settings.load(env=env, **BASE).idle_timeout == 2 * 3600  # empty: unset
        return
    with pytest.raises(ConfigurationError) as info:
        Settings.load(env=env, **BASE)
    assert info.value.setting == "idle_timeout"


# ---------------------------------------------------------------- the command


@pytest.fixture(scope="module")
def idp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevIdP]:
    with start_dev_idp(tmp_path_factory.mktemp("config-idp"), client_id="oak_cfg") as process:
        yield process


def test_version() -> None:
    result = run_to_exit("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"oakid-gate {__version__}"


@pytest.mark.e2e
def test_check_says_where_each_setting_came_from(idp: DevIdP, tmp_path: Path) -> None:
    """Flag, variable, config file; secrets never printed, whichever source."""
    client_secret = secrets.token_urlsafe(24)
    write(tmp_path, "client_secret", idp.client_secret + "\n")
    config = write(
        tmp_path, "oakid.toml",
        f'issuer = "{idp.url}"\nclient_secret_file = "{tmp_path / "client_secret"}"\n'
        'idle_timeout = "30m"\n',
    )
    result = run_to_exit(
        "check", "--config", str(config), "--session-lifetime", "8h",
        client_id=idp.client_id, secret=SECRET,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert f"issuer = {idp.url}  [config file]" in out
    assert "idle_timeout = 1800  [config file]" in out
    assert "session_lifetime = 28800  [flag]" in out
    assert f"client_id = {idp.client_id}  [environment]" in out
    assert "client_secret = (hidden)  [config file]" in out
    assert "secret = (hidden)  [environment]" in out
    for value in (idp.client_secret, SECRET, client_secret):
        assert value not in out + result.stderr


def test_command_options_are_variables_too() -> None:
    """Every command flag has a variable: a bad OAKID_WORKERS is refused like --workers."""
    bad = run_to_exit("run", "apps.claims_app:app", workers="many", **BASE)
    assert bad.returncode == 2 and "--workers" in bad.stderr
    interface = run_to_exit("run", "apps.claims_app:app", interface="cobol", **BASE)
    assert interface.returncode == 2 and "'interface'" in interface.stderr
