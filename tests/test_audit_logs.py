"""Structured logs and audit events (issue 11 item 3).

Unit: the two formats. End to end: ``oakid-gate run`` with ``log_format=json`` behind
the dev-idp; a sign-in, a refused request, a refused sign-in and a sign-out; every line
of its log is JSON, the audit events carry their fixed fields, and no line holds a
token, code, state or cookie value.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from peers.gate import (
    NAVIGATION_HEADERS,
    DevIdP,
    GateProcess,
    dev_idp_sign_in,
    start_dev_idp,
    start_gate,
)

from oakid_gate.errors import ConfigurationError
from oakid_gate.gate.audit import audit
from oakid_gate.gate.request import GateRequest, pick_request_id
from oakid_gate.logs import JSONFormatter, TextFormatter, configure


def _record(caplog: pytest.LogCaptureFixture) -> logging.LogRecord:
    return next(r for r in caplog.records if getattr(r, "oakid", None))


def test_an_audit_event_in_both_formats(caplog: pytest.LogCaptureFixture) -> None:
    req = GateRequest(method="GET", scheme="https", path="/x", query_string="", headers={},
                      cookies={}, client="192.0.2.7", request_id="req-1")
    with caplog.at_level(logging.INFO, logger="oakid_gate"):
        audit("sign_in", "success", req, sub="alice", session="ab" * 32)
    record = _record(caplog)
    entry = json.loads(JSONFormatter().format(record))
    assert entry["event"] == "sign_in" and entry["outcome"] == "success"
    assert entry["sub"] == "alice" and entry["session"] == "ab" * 8
    assert entry["client"] == "192.0.2.7" and entry["request_id"] == "req-1"
    assert entry["level"] == "info" and entry["logger"] == "oakid_gate"
    assert "reason" not in entry
    text = TextFormatter().format(record)
    assert "event=sign_in outcome=success sub=alice session=abababababababab" in text


@pytest.mark.parametrize(
    ("header", "kept"),
    [("abc-123", True), ("a" * 64, True), ("a" * 65, False), ("x y", False), ("id\r\nX: 1", False), (None, False)],
)
def test_a_request_id_from_the_client_is_kept_only_when_plain(header: str | None, kept: bool) -> None:
    assert (pick_request_id(header, "generated") == header) is kept


def test_a_log_format_that_does_not_exist_names_the_setting() -> None:
    with pytest.raises(ConfigurationError) as info:
        configure("info", "xml")
    assert info.value.setting == "log_format"


# ---------------------------------------------------------------- end to end


@pytest.fixture(scope="module")
def idp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevIdP]:
    with start_dev_idp(tmp_path_factory.mktemp("audit-idp")) as process:
        yield process


@pytest.fixture(scope="module")
def gate(tmp_path_factory: pytest.TempPathFactory, idp: DevIdP) -> Iterator[GateProcess]:
    settings = idp.settings(log_format="json")
    with start_gate(tmp_path_factory.mktemp("audit-gate"), settings=settings) as process:
        yield process


def events(gate: GateProcess) -> list[dict[str, Any]]:
    lines = [line for line in gate.log_path.read_text().splitlines() if line.strip()]
    parsed = []
    for line in lines:
        entry = json.loads(line)  # every line is JSON, or this fails
        assert {"time", "level", "logger", "message"} <= set(entry), line
        parsed.append(entry)
    return parsed


@pytest.mark.e2e
def test_json_logs_hold_the_audit_events_and_no_secret(gate: GateProcess, idp: DevIdP) -> None:
    seen: list[str] = []  # every URL the browser went through: codes and states
    with httpx.Client(timeout=30, trust_env=False, event_hooks={"request": [lambda r: seen.append(str(r.url))]}) as http:
        page = dev_idp_sign_in(http, f"{gate.url}/private", "alice")
        assert page.status_code == 200
        # A location's rule refuses her (nginx auth_request), twice.
        for request_id in ("trace-42", "x y"):
            refused_here = http.get(
                f"{gate.url}/oauth2/auth?allowed_groups=nobody", headers={"x-request-id": request_id}
            )
            assert refused_here.status_code == 403
        cookies = [c.value for c in http.cookies.jar if c.value]
        form = http.get(f"{gate.url}/oauth2/sign_out", headers=NAVIGATION_HEADERS)
        csrf = re.search(r'name=csrf value="([^"]+)"', form.text)
        assert csrf is not None
        out = http.post(f"{gate.url}/oauth2/sign_out", data={"csrf": csrf.group(1)},
                        headers={"origin": gate.url, "sec-fetch-site": "same-origin"})
        assert out.status_code == 200
        # A callback nobody started: a refused sign-in.
        refused = http.get(f"{gate.url}/oauth2/callback?code=forged-code&state=forged-state", headers=NAVIGATION_HEADERS)
        assert refused.status_code == 400
    log = events(gate)
    audits = [e for e in log if "event" in e]
    sign_in = next(e for e in audits if e["event"] == "sign_in" and e["outcome"] == "success")
    assert sign_in["sub"] == "u-alice" and re.fullmatch(r"[0-9a-f]{16}", sign_in["session"])
    assert sign_in["client"] == "127.0.0.1" and sign_in["request_id"]
    refusals = [e for e in audits if e["event"] == "authorization" and e["outcome"] == "refused"]
    assert len(refusals) == 2 and all("nobody" in e["reason"] for e in refusals)
    assert refusals[0]["request_id"] == "trace-42"
    assert refusals[1]["request_id"] not in ("x y", "") and refusals[1]["sub"] == "u-alice"
    assert all(e["session"] == sign_in["session"] for e in refusals)
    sign_out = next(e for e in audits if e["event"] == "sign_out")
    assert sign_out["outcome"] == "success" and sign_out["session"] == sign_in["session"]
    bad = next(e for e in audits if e["event"] == "sign_in" and e["outcome"] == "refused")
    assert bad["reason"] == "invalid_request"
    # No secret in any line: codes and states the browser carried, cookie values.
    secrets_seen = set(cookies) | {"forged-code", "forged-state"}
    for url in seen:
        query = parse_qs(urlsplit(url).query)
        for name in ("code", "state", "nonce", "code_challenge"):
            secrets_seen.update(query.get(name, []))
    text = gate.log_path.read_text()
    leaked = [s for s in secrets_seen if len(s) >= 8 and s in text]
    assert not leaked, leaked
    assert idp.client_secret not in text


def test_the_middleware_users_formatter_is_importable(tmp_path: Path) -> None:
    """Apps that run the middleware under their own server install the formatter."""
    handler = logging.StreamHandler()
    handler.setFormatter(JSONFormatter())
    assert isinstance(handler.formatter, JSONFormatter)
