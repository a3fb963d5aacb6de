"""Back-channel logout end to end (issue 11): node ``oidc-provider`` delivers the logout
token itself, to two ``oakid-gate run`` processes sharing a store (sqlite, then redis).

A user signs in through the first gate; the second, sharing the store and the secret,
honours the same cookie. The user then logs out on the provider's own logout page; the
provider POSTs its logout token to the back-channel URI registered for the client (the
first gate's); the session ends in the store, so both gates refuse the cookie.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from peers.gate import GateProcess, start_gate
from peers.oidc_provider import OidcProvider, log_out_at_provider, sign_in
from peers.ports import free_port

pytestmark = pytest.mark.e2e

JSON = {"accept": "application/json"}


@pytest.fixture(params=["sqlite", "redis"])
def gates(
    request: pytest.FixtureRequest, tmp_path: Path, oidc_provider: OidcProvider
) -> Iterator[tuple[GateProcess, GateProcess, OidcProvider]]:
    if request.param == "sqlite":
        store = f"sqlite:///{tmp_path / 'sessions.db'}"
    else:
        store = request.getfixturevalue("redis_url")
    first_port, second_port = free_port(), free_port()
    settings = oidc_provider.gate_settings(
        first_port,
        backchannel_logout_uri=f"http://127.0.0.1:{first_port}/oauth2/backchannel_logout",
        backchannel_logout_session_required=True,
        post_logout_redirect_uris=[f"http://127.0.0.1:{first_port}/oauth2/signed_out"],
    )
    shared: dict[str, Any] = {**settings, "session_store": store, "secret": secrets.token_urlsafe(32),
                              "public_paths": "/public/*"}
    with start_gate(tmp_path, settings=shared, port=first_port) as first, start_gate(
        tmp_path, settings=shared, port=second_port
    ) as second:
        yield first, second, oidc_provider


def test_a_logout_at_the_provider_ends_the_session_in_every_gate_sharing_the_store(
    gates: tuple[GateProcess, GateProcess, OidcProvider],
) -> None:
    first, second, provider = gates
    with httpx.Client(timeout=30, trust_env=False) as browser:
        page = sign_in(browser, f"{first.url}/private", login=f"bc-{secrets.token_hex(4)}")
        assert page.status_code == 200, page.text
        cookie = {c.name: c.value for c in browser.cookies.jar if c.name == "oakid_session"}
        with httpx.Client(timeout=30, trust_env=False, cookies=cookie) as elsewhere:
            assert elsewhere.get(f"{second.url}/private", headers=JSON).status_code == 200
        mark = provider.mark()
        log_out_at_provider(browser, provider.issuer)
    deadline = time.monotonic() + 5
    while not (provider.events("end_session.success", since=mark)) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.2)  # the near caches' bound (sqlite 50 ms; redis on invalidation)
    for gate in (first, second):
        with httpx.Client(timeout=30, trust_env=False, cookies=cookie) as replay:
            response = replay.get(f"{gate.url}/private", headers=JSON)
        assert response.status_code == 401, (gate.url, provider.events("backchannel.error"))
    assert provider.events("backchannel.success", since=mark)
    lines = [json.loads(line) for line in first.log_path.read_text().splitlines() if line.strip()]
    assert any(e.get("event") == "sign_out" and "backchannel" in e.get("reason", "") for e in lines)
