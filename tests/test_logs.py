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
"""

from __future__ import annotations

import re
from pathlib import Path

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
    for path in sorted(tmp_root.rglob("*.log")):
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
