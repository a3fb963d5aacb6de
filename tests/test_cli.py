"""The ``oakid-gate`` command: ``check`` and start-up errors."""

from __future__ import annotations

import secrets
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from peers.gate import DevIdP, run_to_exit, start_dev_idp

CLIENT_SECRET = secrets.token_urlsafe(32)


@pytest.fixture(scope="module")
def idp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevIdP]:
    workdir = tmp_path_factory.mktemp("cli")
    with start_dev_idp(workdir, client_id="oak_cli", client_secret=CLIENT_SECRET) as process:
        yield process


def test_check_reports_a_working_provider(idp: DevIdP) -> None:
    """check loads the settings, fetches discovery and keys, and says all is well."""
    result = run_to_exit(
        "check", issuer=idp.url, client_id="oak_cli", client_secret=CLIENT_SECRET, secret="s" * 32
    )
    assert result.returncode == 0, result.stderr
    assert "provider: ok" in result.stdout
    assert f"{idp.url}/oauth/token" in result.stdout
    assert "HS256" in result.stdout
    assert CLIENT_SECRET not in result.stdout + result.stderr


def test_check_names_a_wrong_issuer(idp: DevIdP) -> None:
    """A discovery document for another issuer is reported, not accepted."""
    result = run_to_exit(
        "check", issuer=idp.url + "/other", client_id="c", client_secret="x", secret="s" * 32
    )
    assert result.returncode == 1
    assert "provider: FAILED" in result.stderr


@pytest.mark.parametrize(
    ("args", "settings", "setting"),
    [
        pytest.param(("check",), {"client_secret": "x", "secret": "s" * 32}, "client_id", id="missing"),
        pytest.param(("check",), {"client_id": "c", "client_secret": "x", "secret": "short"}, "secret", id="short-secret"),
        pytest.param(("run", "apps.claims_app:app"), {"client_id": "c", "client_secret": "x", "secret": "s" * 32, "port": "x"}, "port", id="bad-port"),
        pytest.param(("run", "no_such_module:app"), {"client_id": "c", "client_secret": "x", "secret": "s" * 32}, "app", id="bad-app"),
        pytest.param(("check", "--issuer", "http://example.com"), {"client_id": "c", "client_secret": "x", "secret": "s" * 32}, "issuer", id="http-issuer"),
    ],
)
def test_startup_errors_name_the_setting(args: tuple[str, ...], settings: dict[str, str], setting: str) -> None:
    """A bad setting stops the command with a message that names it, and no traceback."""
    result = run_to_exit(*args, **settings)
    assert result.returncode == 2
    assert f"'{setting}'" in result.stderr
    assert "Traceback" not in result.stderr


pytestmark = pytest.mark.e2e


@pytest.mark.parametrize(
    ("args", "kind"),
    [
        pytest.param(
            ("127.0.0.1:5000", "GET", "/oauth2/callback?code=abc123def456&state=st4t3v4lu3x&iss=x", "1.1", 302),
            "uvicorn",
            id="uvicorn-tuple",
        ),
        pytest.param(
            ({"r": "GET /oauth2/callback?code=abc123def456&state=st4t3v4lu3x HTTP/1.1",
              "q": "code=abc123def456&state=st4t3v4lu3x", "U": "/oauth2/callback", "s": "302"},),
            "gunicorn",
            id="gunicorn-atoms",
        ),
    ],
)
def test_a_middleware_redacts_the_servers_access_logs(
    args: tuple[Any, ...], kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Built under a server of the user's own (``uvicorn app:app``, gunicorn), the
    middleware keeps codes and state out of that server's access log."""
    import logging

    from oakid_gate import OakIDMiddleware

    OakIDMiddleware(lambda *a: None, client_id="c", client_secret="cs", secret="s" * 32)
    logger = logging.getLogger(f"{kind}.access")
    fmt = '%s - "%s %s HTTP/%s" %d' if kind == "uvicorn" else '"%(r)s" %(s)s %(q)s'
    with caplog.at_level(logging.INFO, logger=logger.name):
        logger.info(fmt, *args)
    line = caplog.records[-1].getMessage()
    assert "abc123def456" not in line and "st4t3v4lu3x" not in line
    assert "code=[redacted]" in line and "state=[redacted]" in line


def _printed_by_a_new_interpreter(*lines: str) -> list[str]:
    """The lines that ``lines`` of Python print, run by an interpreter of their own (its
    ``sys.modules`` shows what they imported)."""
    done = subprocess.run(
        [sys.executable, "-c", "\n".join(lines)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout.splitlines()


def _cli(argv: list[str], *, quiet: bool = False) -> str:
    """A line of Python running ``oakid-gate argv`` to its exit (``--help`` exits),
    printing nothing of its own when ``quiet``."""
    out = "contextlib.redirect_stdout(io.StringIO())" if quiet else "contextlib.nullcontext()"
    return (
        "import contextlib, io, oakid_gate.cli\n"
        f"with contextlib.suppress(SystemExit), {out}: oakid_gate.cli.main({argv!r})"
    )


def test_the_commands_but_proxy_do_not_import_the_proxy() -> None:
    """``oakid-gate run`` (and the command's parser, help included) starts without the proxy
    package (start-up is a target of its own): only ``oakid_gate.proxy.limits`` is read,
    for the ``proxy`` command's defaults; the package's names load on first use."""
    *help_text, loaded, names = _printed_by_a_new_interpreter(
        "import sys, oakid_gate.serve",
        _cli(["proxy", "--help"]),
        "print(sorted(m for m in sys.modules if m.startswith('oakid_gate.proxy')))",
        "from oakid_gate.proxy import ProxyApp, upstream_headers",
        "print(ProxyApp.__module__, upstream_headers.__module__)",
    )
    assert any("--upstream-timeout" in line for line in help_text)
    assert loaded == "['oakid_gate.proxy', 'oakid_gate.proxy.limits']"
    assert names == "oakid_gate.proxy.app oakid_gate.proxy.headers"


def test_each_command_summary_is_its_docstring_first_sentence() -> None:
    """``oakid-gate --help`` lists every command without importing it: the table's summary
    must say what the command's own docstring says."""
    from oakid_gate.cli import COMMANDS, command_module

    for name, (_, summary) in COMMANDS.items():
        doc = command_module(name).__doc__ or ""
        first = doc.partition(".")[0]
        assert summary == first[0].lower() + first[1:], name


def test_run_imports_no_other_command_and_help_lists_them_all() -> None:
    """Only the command given is imported (start-up); the top-level help names them all."""
    loaded, *help_text = _printed_by_a_new_interpreter(
        "import sys",
        _cli(["run", "--help"], quiet=True),
        "print(sorted(m for m in sys.modules if m.startswith('oakid_gate.cli.')))",
        _cli(["--help"]),
    )
    assert loaded == "['oakid_gate.cli.options', 'oakid_gate.cli.run']"
    text = "\n".join(help_text)
    for name in ("run", "proxy", "dev-idp", "demo", "check"):
        assert name in text
    assert "a reverse proxy to any HTTP service, behind the gate" in text
