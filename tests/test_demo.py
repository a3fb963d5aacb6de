"""``oakid-gate demo``: prints where to go and who to be, and the sign-in works."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from peers.gate import OAKID_GATE
from peers.oidc_provider import NAVIGATION_HEADERS
from peers.ports import free_port
from peers.process import spawn, terminate


def test_demo_serves_a_working_sign_in(tmp_path: Path) -> None:
    """The demo prints the URL and users; alice signs in and sees her claims."""
    port, idp_port = free_port(), free_port()
    log = tmp_path / "demo.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("OAKID_")}
    process = spawn(
        [OAKID_GATE, "demo", "--port", str(port), "--idp-port", str(idp_port)],
        log_path=log,
        env=env,
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 20
        while "Ctrl-C" not in log.read_text() or not _up(f"{url}oauth2/ping"):
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        printed = log.read_text()
        assert f"open:     {url}" in printed
        assert re.search(r"alice / alice", printed)
        with httpx.Client() as http:
            to_idp = http.get(url, headers=NAVIGATION_HEADERS)
            assert to_idp.status_code == 302
            authorize = urlsplit(to_idp.headers["location"])
            answer = http.post(
                f"http://127.0.0.1:{idp_port}/oauth/authorize",
                data={**dict(parse_qsl(authorize.query)), "username": "alice",
                      "password": "alice", "consent": "approve"},
            )
            back = http.get(answer.headers["location"], headers=NAVIGATION_HEADERS)
            page = http.get(back.headers["location"], headers=NAVIGATION_HEADERS)
            assert page.status_code == 200
            assert "Hello, Alice" in page.text
            assert http.get(f"{url}public").status_code == 200
    finally:
        terminate(process)


def _up(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


pytestmark = pytest.mark.e2e
