"""End to end: ``oakid-gate run`` with an ASGI app, against providers we did not write.

Three set-ups, each a real gate process on loopback:

- the dev-idp (``oakid-gate dev-idp``: OakID's HS256 ID tokens, scripted sign-in);
- node ``oidc-provider`` with a ``client_secret_basic`` client and ES256 ID tokens;
- node ``oidc-provider`` with a ``client_secret_post`` client and RS256 ID tokens,

signing in with an httpx cookie jar through each provider's own pages.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from peers.gate import NAVIGATION_HEADERS, GateProcess, dev_idp_sign_in, start_dev_idp, start_gate
from peers.oidc_provider import OidcProvider, sign_in
from peers.ports import free_port
from support.logout import assert_signed_out_to

pytestmark = pytest.mark.e2e


@dataclass
class Setup:
    """A gate in front of the claims app, and how to sign in at its provider."""

    name: str
    gate: GateProcess
    sign_in: Callable[[httpx.Client, str], httpx.Response]
    revocations: Callable[[], int]
    expected_sub: str


@pytest.fixture(scope="module")
def dev_idp_setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    workdir = tmp_path_factory.mktemp("e2e-dev-idp")
    with (
        start_dev_idp(workdir, client_id="oak_e2e") as idp,
        start_gate(
            workdir, settings=idp.settings(public_paths="/public", access_log="true")
        ) as gate,
    ):
        yield Setup(
            "dev-idp",
            gate,
            lambda http, url: dev_idp_sign_in(http, url, provider=idp.url),
            lambda: sum(e.get("revoked") == "refresh_token" for e in idp.events("revoke")),
            "u-alice",
        )


def oidc_setup(
    provider: OidcProvider, workdir: Path, auth_method: str, alg: str
) -> Iterator[Setup]:
    port = free_port()
    settings = provider.gate_settings(
        port,
        scopes="openid,profile,email",
        token_endpoint_auth_method=auth_method,
        id_token_signed_response_alg=alg,
    )
    settings.update(
        token_endpoint_auth_method=auth_method, public_paths="/public", access_log="true"
    )
    gate = start_gate(workdir, port=port, settings=settings)

    def login(http: httpx.Client, url: str) -> httpx.Response:
        return sign_in(http, url, login="alice")

    yield Setup(
        f"oidc-provider-{auth_method}-{alg}",
        gate,
        login,
        lambda: len(provider.events("revocation.success")),
        "alice",
    )
    gate.stop()


@pytest.fixture(scope="module")
def oidc_basic_es256(
    oidc_provider: OidcProvider, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Setup]:
    yield from oidc_setup(
        oidc_provider, tmp_path_factory.mktemp("e2e-basic"), "client_secret_basic", "ES256"
    )


@pytest.fixture(scope="module")
def oidc_post_rs256(
    oidc_provider: OidcProvider, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Setup]:
    yield from oidc_setup(
        oidc_provider, tmp_path_factory.mktemp("e2e-post"), "client_secret_post", "RS256"
    )


@pytest.fixture(params=["dev_idp_setup", "oidc_basic_es256", "oidc_post_rs256"])
def setup(request: pytest.FixtureRequest) -> Setup:
    return request.getfixturevalue(request.param)  # type: ignore[no-any-return]


def test_sign_in_returns_to_the_original_url(setup: Setup) -> None:
    """A signed-out browser goes through the provider and lands on the URL it asked for."""
    with httpx.Client(base_url=setup.gate.url) as http:
        page = setup.sign_in(http, f"{setup.gate.url}/private?tab=2&x=%2F")
        assert page.status_code == 200, page.text
        assert str(page.url).startswith(setup.gate.url) or page.request.url.path == "/private"
        body = page.json()
        assert body["path"] == "/private"
        assert body["query"] == "tab=2&x=%2F"
        assert body["authenticated"] is True
        assert body["sub"] == setup.expected_sub
        assert body["email"] == "alice@example.test"
        assert "authenticated" in body["scopes"] and "openid" in body["scopes"]
        # validation-only ID token claims stay out of the app's claims
        assert not {"nonce", "exp", "iat", "aud", "at_hash"} & set(body["claims"])
        assert body["claims"]["sub"] == setup.expected_sub
        cookie = next(c for c in http.cookies.jar if c.name == "oakid_session")
        assert cookie.has_nonstandard_attr("HttpOnly")
        assert cookie.path == "/"


def test_api_without_session_is_401_json(setup: Setup) -> None:
    """An API call without a session gets 401 JSON with a login URL, never a redirect."""
    response = httpx.get(f"{setup.gate.url}/api/data", headers={"accept": "application/json"})
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    body = response.json()
    assert body["error"] == "unauthenticated"
    assert body["login_url"].startswith("/oauth2/start?rd=")
    post = httpx.post(f"{setup.gate.url}/api/data", headers={"accept": "text/html"})
    assert post.status_code == 401


def test_auth_endpoint_202_and_401(setup: Setup) -> None:
    """/oauth2/auth answers 401 when signed out and 202 with identity headers when signed in."""
    assert httpx.get(f"{setup.gate.url}/oauth2/auth").status_code == 401
    with httpx.Client(base_url=setup.gate.url) as http:
        assert setup.sign_in(http, f"{setup.gate.url}/private").status_code == 200
        answer = http.get("/oauth2/auth")
        assert answer.status_code == 202
        assert answer.headers["x-auth-request-user"] == setup.expected_sub
        assert answer.headers["x-auth-request-email"] == "alice@example.test"
        info = http.get("/oauth2/userinfo")
        assert info.status_code == 200 and info.json()["sub"] == setup.expected_sub


def test_sign_out_revokes_and_the_old_cookie_stops_working(setup: Setup) -> None:
    """Sign-out revokes the refresh token at the provider; the old cookie no longer works."""
    with httpx.Client(base_url=setup.gate.url) as http:
        assert setup.sign_in(http, f"{setup.gate.url}/private").status_code == 200
        old_cookie = http.cookies.get("oakid_session")
        before = setup.revocations()
        confirm = http.get("/oauth2/sign_out", headers=NAVIGATION_HEADERS)
        assert confirm.status_code == 200 and b"<form" in confirm.content
        assert http.get("/private").status_code == 200  # a GET signs nobody out
        out = http.post("/oauth2/sign_out?rd=/public", headers={"origin": setup.gate.url})
        assert out.status_code == 303
        assert_signed_out_to(out.headers["location"], setup.gate.url)
        assert setup.revocations() == before + 1
    replay = httpx.get(
        f"{setup.gate.url}/private",
        cookies={"oakid_session": old_cookie or ""},
        headers={"accept": "application/json"},
    )
    assert replay.status_code == 401


def test_public_path_and_ops_endpoints(setup: Setup) -> None:
    """A public path serves anonymously; ping and ready answer 200."""
    public = httpx.get(f"{setup.gate.url}/public", headers=NAVIGATION_HEADERS)
    assert public.status_code == 200 and "anonymous" in public.text
    assert httpx.get(f"{setup.gate.url}/oauth2/ping").status_code == 200
    assert httpx.get(f"{setup.gate.url}/oauth2/ready").status_code == 200


def test_cross_site_sign_out_is_refused(setup: Setup) -> None:
    """A sign-out POST from another site signs nobody out."""
    with httpx.Client(base_url=setup.gate.url) as http:
        assert setup.sign_in(http, f"{setup.gate.url}/private").status_code == 200
        forged = http.post(
            "/oauth2/sign_out", headers={"origin": "https://evil.example", "accept": "text/html"}
        )
        assert forged.status_code == 403
        assert http.get("/private").status_code == 200


# ---------------------------------------------------------------- a real browser


def browser_sign_in(page: Any, setup: Setup) -> None:
    """Fill in the provider's own sign-in (and consent) pages in Chromium."""
    if setup.name == "dev-idp":
        page.fill("input[name=username]", "alice")
        page.fill("input[name=password]", "alice")
        page.click("button[type=submit]")
        if page.locator("button[name=consent][value=approve]").count():
            page.click("button[name=consent][value=approve]")
    else:  # oidc-provider's development interactions
        page.fill("input[name=login]", "alice")
        page.fill("input[name=password]", "pw")
        page.click("button[type=submit]")
        page.click("button[type=submit]")  # consent


@pytest.mark.parametrize("name", ["dev_idp_setup", "oidc_basic_es256"])
def test_browser_sign_in_and_out(
    name: str, request: pytest.FixtureRequest, page: Any, blocked_requests: list[str]
) -> None:
    """Headless Chromium signs in through the provider's pages, sees its claims, signs out."""
    setup: Setup = request.getfixturevalue(name)
    page.goto(f"{setup.gate.url}/private?from=browser")
    assert not page.url.startswith(setup.gate.url)  # at the provider
    browser_sign_in(page, setup)
    try:
        page.wait_for_url(f"{setup.gate.url}/private?from=browser", timeout=5000)
    except Exception:
        raise AssertionError(f"stuck at {page.url}: {page.inner_text('body')[:600]}") from None
    body = json.loads(page.inner_text("body"))
    assert body["sub"] == setup.expected_sub and body["query"] == "from=browser"
    cookies = {c["name"]: c for c in page.context.cookies(setup.gate.url)}
    session = cookies["oakid_session"]
    assert session["httpOnly"] and session["sameSite"] == "Lax" and session["path"] == "/"
    assert not any("_login_" in n for n in cookies)  # the sign-in's own cookie is gone
    page.goto(f"{setup.gate.url}/")
    page.click("#sign-out")
    if setup.name != "dev-idp":
        # RP-initiated logout: signed out here, then at the provider's own logout page
        # (with id_token_hint), then back through /oauth2/signed_out to the rd.
        page.wait_for_selector("button[name=logout][value=yes]", timeout=5000)
        assert not page.url.startswith(setup.gate.url)  # at the provider
        page.click("button[name=logout][value=yes]")
    page.wait_for_url(f"{setup.gate.url}/public")
    assert page.inner_text("#who") == "anonymous"
    page.goto(f"{setup.gate.url}/private")
    assert not page.url.startswith(f"{setup.gate.url}/private")  # sent to sign in again
    if setup.name != "dev-idp":
        # The provider's session ended too: it asks who is signing in, not signs back in.
        page.wait_for_selector("input[name=login]", timeout=5000)
    assert all(not u.startswith(setup.gate.url) for u in blocked_requests)


def test_no_code_or_state_in_the_gate_log(setup: Setup) -> None:
    """After sign-ins, the gate's log (uvicorn's access log included) holds no code or state."""
    import re

    with httpx.Client(base_url=setup.gate.url) as http:
        assert setup.sign_in(http, f"{setup.gate.url}/private").status_code == 200
        session = http.cookies.get("oakid_session") or ""
    log = setup.gate.log()
    assert "/oauth2/callback?" in log  # the access log is on (asked for), and redacted
    assert not re.search(r"[?&](code|state)=(?!\[redacted\])", log)
    assert session and session not in log
