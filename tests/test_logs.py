"""No log line of the whole test session holds a token, a code, a secret, a cookie or a state.

This test runs last (tests/conftest.py puts it there). It reads what the
gate's loggers said in this process during the session (every record of
``oakid_gate``, uvicorn, gunicorn and daphne: support/log_watch.py), and every
log file that the session's gate processes wrote (``oakid-gate run``,
``proxy``, ``dev-idp``, ``demo``, and the servers the tests start around the
gate), and looks for the shapes secrets take and the exact values the
provider doubles issued. Third-party peers' logs (node oidc-provider, redis,
nginx, the test upstream, which echoes what it is sent) are not the gate's
and are not read.

Every ``oakid-gate`` command the tests start (tests/peers/gate.py) runs with
``--log-format json`` (``OAKID_LOG_FORMAT``), so the whole suite is also the
test of the JSON logs: every line those processes wrote to stderr, and every
line after the banner on stdout (the access log), is one JSON object with the
fixed fields, and the audit events of the suite's sign-ins, sign-outs and
refusals are among them.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from support.log_watch import RECORDS, SECRETS

#: log files of peers, not of the gate
PEERS = ("oidc-provider", "redis", "nginx", "apache", "upstream", "provider.log")

SHAPES = {
    "a JWT": re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}"),
    "an unredacted code, state or token parameter": re.compile(
        r"[?&](?:code|state|access_token|refresh_token|id_token|token)=(?!\[redacted\])[^&\s\"']{6,}"
    ),
    "a bearer token": re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]{12,}"),
    "a session or sign-in cookie value": re.compile(
        r"oakid_session(?:_login_[0-9a-f]+)?=[A-Za-z0-9_-]{12,}"
    ),
    "a token in JSON": re.compile(
        r'"(?:access_token|refresh_token|id_token|client_secret|code_verifier)"\s*:\s*"[^"]{8,}"'
    ),
}


def _lines(tmp_root: Path) -> list[tuple[str, str]]:
    """(where, line) for every line the gate logged in the session."""
    out = [("this process", r) for r in RECORDS]
    for path in sorted([*tmp_root.rglob("*.log"), *tmp_root.rglob("*.out")]):
        if any(peer in path.name for peer in PEERS):
            continue
        for line in path.read_text(errors="replace").splitlines():
            out.append((path.name, line))
    return out


def test_no_log_line_of_the_session_holds_a_secret(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Every line the gate logged in the session is free of tokens, codes, state, secrets
    and cookie values (by shape, and by the exact values the provider doubles issued)."""
    lines = _lines(tmp_path_factory.getbasetemp())
    assert lines, "no log line was captured: the capture itself is broken"
    found = []
    for where, line in lines:
        for what, shape in SHAPES.items():
            if shape.search(line):
                found.append(f"{where}: {what}: {line[:200]}")
        found.extend(f"{where}: an issued secret: {line[:200]}" for s in SECRETS if s in line)
    assert not found, "\n".join(found[:20])


#: the log files of the commands that tests/peers/gate.py starts: stderr, stdout
COMMAND_LOG = re.compile(r"(?:run|proxy|dev-idp|demo)-\d+\.(log|out)")
FIELDS = {"time", "level", "logger", "message"}


def _json_lines(tmp_root: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """(the JSON lines of every command's log, the lines that are not JSON)."""
    entries: list[dict[str, Any]] = []
    bad: list[str] = []
    for path in sorted(tmp_root.rglob("*-*.*")):
        match = COMMAND_LOG.fullmatch(path.name)
        if match is None:
            continue
        lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
        if match.group(1) == "out":  # a banner for people first, then the access log
            lines = lines[next((i for i, line in enumerate(lines) if line.startswith("{")), len(lines)):]
        for line in lines:
            try:
                entry = json.loads(line)
            except ValueError:
                entry = None
            if isinstance(entry, dict) and set(entry) >= FIELDS:
                entries.append(entry)
            else:
                bad.append(f"{path.name}: {line[:200]}")
    return entries, bad


def test_every_line_of_every_gate_of_the_session_is_json(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Under ``--log-format json`` every line of every command is one JSON object, gunicorn's
    and uvicorn's included; the suite's audit events are there with their fields."""
    entries, bad = _json_lines(tmp_path_factory.getbasetemp())
    assert not bad, "\n".join(bad[:20])
    if not entries:
        pytest.skip("no oakid-gate command ran in this session")
    events = {(e["event"], e.get("outcome")) for e in entries if "event" in e}
    if any(e.get("logger", "").startswith("gunicorn") for e in entries):
        assert any(e["logger"] == "gunicorn.error" for e in entries)
    if len(entries) > 1000:  # the whole suite ran, not a file of it
        expected = {
            ("sign_in", "success"), ("sign_in", "refused"), ("sign_out", "success"),
            ("authorization", "refused"),
        }
        assert expected <= events, events
