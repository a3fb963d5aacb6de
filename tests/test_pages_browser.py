"""Every page of the gate in headless Chromium: axe-core finds no violation, no request
leaves the gate, and a screenshot of each (light and dark, 320 and 1280 px wide) is saved
under ``test-output/pages/``; the built-in pages and a custom template set
(``tests/apps/page_templates``); and the back button after sign-out.

The gates are ``oakid-gate run apps.claims_app:app`` processes in front of the
dev-idp; a signed-in browser gets its cookie from a scripted sign-in
(:func:`peers.gate.dev_idp_sign_in`). axe-core is the npm package pinned in
``tests/peers/node/package.json`` (``scripts/install-peers.sh``), injected into
each page.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from peers.browser import is_loopback_url
from peers.gate import (
    NAVIGATION_HEADERS,
    DevIdP,
    GateProcess,
    dev_idp_sign_in,
    start_demo,
    start_dev_idp,
    start_gate,
)
from peers.ports import free_port

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

TESTS = Path(__file__).resolve().parent
AXE = TESTS / "peers" / "node" / "node_modules" / "axe-core" / "axe.min.js"
SHOTS = TESTS.parent / "test-output" / "pages"
CUSTOM = TESTS / "apps" / "page_templates"
LOGO = (
    "data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 32 32'%3E"
    "%3Crect width='32' height='32' rx='6' fill='%238a1538'/%3E%3C/svg%3E"
)
VARIANTS = [("light", 1280), ("light", 320), ("dark", 1280), ("dark", 320)]


def require_axe() -> None:
    if not AXE.exists():
        message = f"axe-core missing: {AXE} (scripts/install-peers.sh)"
        if os.environ.get("CI", "").lower() in {"true", "1", "yes"}:
            pytest.fail(message, pytrace=False)
        pytest.skip(message)


@dataclass
class Site:
    """One template set: its gate, one whose provider is down (for the 503), and
    ``oakid-gate proxy`` to an upstream that is down (for the 502)."""

    name: str
    gate: GateProcess
    down: GateProcess
    proxy: GateProcess
    idp: DevIdP


@pytest.fixture(scope="module")
def idp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevIdP]:
    with start_dev_idp(tmp_path_factory.mktemp("pages-idp")) as process:
        yield process


SETS: dict[str, dict[str, str]] = {
    "builtin": {},
    "custom": {"templates_dir": str(CUSTOM), "app_name": "Acme Tools", "logo_url": LOGO},
}


@pytest.fixture(scope="module", params=sorted(SETS))
def site(
    request: pytest.FixtureRequest, idp: DevIdP, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Site]:
    name = request.param
    workdir = tmp_path_factory.mktemp(f"pages-{name}")
    settings = idp.settings(
        public_paths="/public",
        allowed_groups="staff",  # alice passes; carol (no groups) gets the 403
        provider_logout="false",
        cookie_name=f"oakid_{name}",
        **SETS[name],
    )
    down = {**settings, "issuer": "http://127.0.0.1:9"}  # nothing listens there
    dead = {**settings, "upstream": f"http://127.0.0.1:{free_port()}"}  # nor there
    with (
        start_gate(workdir, settings=settings) as gate,
        start_gate(workdir, settings=down) as off,
        start_gate(workdir, ["proxy"], settings=dead) as proxy,
    ):
        yield Site(name, gate, off, proxy, idp)


def sign_in_cookies(page: Page, site: Site, user: str) -> None:
    """Sign ``user`` in with a script and hand the session cookie to the browser."""
    with httpx.Client() as http:
        start = http.get(f"{site.gate.url}/oauth2/start?rd=/public", headers=NAVIGATION_HEADERS)
        authorize = start.url.join(start.headers["location"])
        assert str(authorize).startswith(site.idp.url), authorize
        form = {**authorize.params, "username": user, "password": user, "consent": "approve"}
        approved = http.post(authorize.copy_with(query=None), data=form)
        assert approved.status_code == 302, approved.text[:300]
        landed = http.get(approved.headers["location"], headers=NAVIGATION_HEADERS)
        assert landed.status_code in (302, 403), landed.text[:300]  # carol: refused, signed in
        cookies = [
            {"name": c.name, "value": c.value or "", "url": site.gate.url}
            for c in http.cookies.jar
            if c.name.startswith("oakid_")
        ]
    assert cookies
    page.context.add_cookies(cookies)  # type: ignore[arg-type]


def axe_violations(page: Page) -> list[dict[str, Any]]:
    page.add_script_tag(path=str(AXE))
    violations: list[dict[str, Any]] = page.evaluate(
        """async () => (await axe.run(document, {resultTypes: ['violations']})).violations
            .map(v => ({id: v.id, impact: v.impact, help: v.help,
                        nodes: v.nodes.map(n => n.target.join(' '))}))"""
    )
    return violations


def look_at(page: Page, set_name: str, name: str) -> list[Path]:
    """axe-core in every variant (no violation), then a full-page screenshot of each."""
    shots = []
    SHOTS.mkdir(parents=True, exist_ok=True)
    for scheme, width in VARIANTS:
        page.emulate_media(color_scheme=scheme)  # type: ignore[arg-type]
        page.set_viewport_size({"width": width, "height": 720})
        assert axe_violations(page) == [], f"{set_name} {name} {scheme} {width}px"
        # readable at 320 px: nothing wider than the viewport
        assert page.evaluate("document.documentElement.scrollWidth") <= width, (name, width)
        path = SHOTS / f"{set_name}-{name}-{scheme}-{width}.png"
        page.screenshot(path=str(path), full_page=True)
        shots.append(path)
    return shots


def open_page(page: Page, url: str, requests: list[str]) -> int:
    response = page.goto(url)
    assert response is not None
    return response.status


# What each page is, how to reach it, its status, and words it must say.
Reach = Callable[["Page", Site], str]


def _sign_out(page: Page, site: Site) -> str:
    sign_in_cookies(page, site, "alice")
    return f"{site.gate.url}/oauth2/sign_out?rd=/public"


def _not_allowed(page: Page, site: Site) -> str:
    sign_in_cookies(page, site, "carol")
    return f"{site.gate.url}/"


PAGES: list[Any] = [
    pytest.param("sign-out", _sign_out, 200, "Sign out of", id="sign-out"),
    pytest.param(
        "not-signed-in",
        lambda page, site: f"{site.gate.url}/oauth2/sign_out",
        200,
        "You are not signed in",
        id="not-signed-in",
    ),
    pytest.param(
        "sign-in-failed",
        lambda page, site: f"{site.gate.url}/oauth2/callback?code=x&state=y",
        400,
        "Sign in again",
        id="sign-in-failed",
    ),
    pytest.param("not-allowed", _not_allowed, 403, "staff", id="not-allowed"),
    pytest.param(
        "provider-unavailable",
        lambda page, site: f"{site.down.url}/",
        503,
        "Try again in a moment",
        id="provider-unavailable",
    ),
    pytest.param(
        "bad-gateway",
        lambda page, site: f"{site.proxy.url}/public",
        502,
        "not answering",
        id="bad-gateway",
    ),
    pytest.param(
        "not-found",
        lambda page, site: f"{site.gate.url}/oauth2/nope",
        404,
        "no such page",
        id="not-found",
    ),
]


@pytest.mark.parametrize(("name", "reach", "status", "words"), PAGES)
def test_page_is_accessible_self_contained_and_looked_at(
    page: Page, site: Site, name: str, reach: Reach, status: int, words: str
) -> None:
    """Each page answers its status, says what it should, loads nothing but itself, passes
    axe-core light and dark at 320 and 1280 px, and is saved as a screenshot."""
    require_axe()
    url = reach(page, site)
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    assert open_page(page, url, requests) == status
    assert words in page.inner_text("main")
    origin = url.split("/", 3)[:3]
    assert all(r.startswith(("/".join(origin), "data:")) for r in requests), requests
    if site.name == "custom":
        assert "Acme Tools" in (page.text_content("header") or "")
    look_at(page, site.name, name)


def test_signed_out_page_after_the_button(page: Page, site: Site) -> None:
    """Clicking Sign out on the confirmation ends on the signed-out page, which passes
    axe-core and is saved as a screenshot too."""
    require_axe()
    sign_in_cookies(page, site, "alice")
    page.goto(f"{site.gate.url}/oauth2/sign_out")
    assert "Alice" in page.inner_text("header")
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_load_state()
    assert "You are signed out" in page.inner_text("main")
    look_at(page, site.name, "signed-out")


def test_focus_is_visible_on_the_sign_out_button(page: Page, site: Site) -> None:
    """Tabbing to the Sign out button draws a visible outline around it."""
    sign_in_cookies(page, site, "alice")
    page.goto(f"{site.gate.url}/oauth2/sign_out")
    button = page.get_by_role("button", name="Sign out")
    for _ in range(6):
        page.keyboard.press("Tab")
        if button.evaluate("b => b === document.activeElement"):
            break
    style = button.evaluate(
        "b => getComputedStyle(b).outlineStyle + ' ' + getComputedStyle(b).outlineWidth"
    )
    assert style.startswith("solid") and not style.endswith(" 0px"), style


@pytest.mark.parametrize(
    ("cache_control", "shown"),
    [
        pytest.param(None, False, id="no-store"),
        pytest.param("private, max-age=600", True, id="control-cacheable"),
    ],
)
def test_back_button_after_sign_out_shows_nothing_protected(
    browser: Browser,
    idp: DevIdP,
    tmp_path: Path,
    cache_control: str | None,
    shown: bool,
) -> None:
    """After signing out, the back button does not bring the protected page back from the
    browser's cache: it asks the gate, which sends the browser to sign in. The control
    (a cacheable ``protected_cache_control``) shows that the test sees a page the
    browser kept.

    The context is made without request routing: Playwright turns the HTTP cache off
    while it routes, and then no page would ever come back from it. Every request is
    checked to stay on loopback instead."""
    settings = idp.settings(public_paths="/public", provider_logout="false")
    if cache_control is not None:
        settings["protected_cache_control"] = cache_control
    context = browser.new_context()
    requests: list[str] = []
    context.on("request", lambda r: requests.append(r.url))
    try:
        with start_gate(tmp_path, settings=settings) as gate:
            page = context.new_page()
            sign_in_cookies(page, Site("back", gate, gate, gate, idp), "alice")
            page.goto(f"{gate.url}/")
            name = page.inner_text("#who")
            assert name and name != "anonymous"
            page.click("#sign-out")  # the app's own form: POST /oauth2/sign_out?rd=/public
            page.wait_for_url(f"{gate.url}/public")
            assert page.inner_text("#who") == "anonymous"
            page.go_back()
            page.wait_for_load_state()
            back_shows = page.locator("#who").count() == 1 and page.inner_text("#who") == name
            assert back_shows is shown, page.url
    finally:
        context.close()
    assert all(is_loopback_url(url) for url in requests), requests


def test_demo_app_page_is_accessible_and_looked_at(page: Page, tmp_path: Path) -> None:
    """The demo's app page (user, groups, userinfo link, API call, sign-out) passes
    axe-core in every variant and is saved as a screenshot."""
    require_axe()
    with start_demo(tmp_path) as demo, httpx.Client() as http:
        landed = dev_idp_sign_in(http, f"{demo.url}/", "alice", provider=demo.idp_url)
        assert landed.status_code == 200
        cookies = [
            {"name": c.name, "value": c.value or "", "url": demo.url} for c in http.cookies.jar
        ]
        page.context.add_cookies(cookies)  # type: ignore[arg-type]
        page.goto(f"{demo.url}/")
        assert "Hello, Alice" in page.inner_text("h1")
        look_at(page, "demo", "app")
