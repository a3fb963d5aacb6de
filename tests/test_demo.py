"""``oakid-gate demo``: prints where to go and who to be, and the sign-in works."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from peers.gate import NAVIGATION_HEADERS, dev_idp_sign_in, start_demo


def test_demo_serves_a_working_sign_in(tmp_path: Path) -> None:
    """The demo prints the URL and users; alice signs in and sees her claims."""
    with start_demo(tmp_path) as demo:
        url = f"{demo.url}/"
        printed = demo.log()
        assert f"open:     {url}" in printed
        assert re.search(r"alice / alice", printed)
        with httpx.Client() as http:
            to_idp = http.get(url, headers=NAVIGATION_HEADERS)
            assert to_idp.status_code == 302
            page = dev_idp_sign_in(http, url, "alice", provider=demo.idp_url)
            assert page.status_code == 200
            assert "Hello, Alice" in page.text
            assert http.get(f"{url}public").status_code == 200


pytestmark = pytest.mark.e2e
