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


def test_demo_page_shows_what_the_gate_gives_the_app(tmp_path: Path) -> None:
    """The demo's page shows the user, their groups, a link to /oauth2/userinfo, an API
    call made with the access token (its answer, never the token) and the sign-out
    button, which ends on the gate's signed-out page named after the demo."""
    with start_demo(tmp_path) as demo, httpx.Client() as http:
        page = dev_idp_sign_in(http, f"{demo.url}/", "alice", provider=demo.idp_url)
        assert page.status_code == 200
        text = page.text
        assert "Hello, Alice" in text and "admins, staff" in text
        assert 'href="/oauth2/userinfo"' in text
        assert f"GET {demo.idp_url}/oauth/userinfo" in text
        assert re.search(r"<pre>200\n\{", text) and "u-alice" in text
        assert '<form method="post" action="/oauth2/sign_out">' in text
        userinfo = http.get(f"{demo.url}/oauth2/userinfo", headers={"accept": "application/json"})
        assert userinfo.status_code == 200 and userinfo.json()["sub"] == "u-alice"
        assert not re.search(r"Bearer\s+[\w.~+/-]{16,}", text)  # the token is not shown
        confirm = http.get(f"{demo.url}/oauth2/sign_out", headers=NAVIGATION_HEADERS)
        assert "Sign out of oakid-gate demo?" in confirm.text


pytestmark = pytest.mark.e2e
