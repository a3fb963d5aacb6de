"""Attacks on the sign-in, in process: every one must fail closed.

A hostile provider double (:mod:`support.hostile_idp`) sits behind the gate's
``http=`` client; a browser is an ``httpx.AsyncClient`` on the gate with a
cookie jar, stepped by hand. Failing closed means: a 4xx/5xx answer (an HTML
page with a message for a browser), no session cookie, a protected page that
sends the browser to sign in again, and no token, code, secret or cookie value
in the log or in any page.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import html
import json
import logging
import re
import secrets
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, parse_qsl, quote, unquote, urlencode, urljoin, urlsplit

import httpx
import pytest
import uvicorn
from starlette.types import Receive, Scope, Send
from support.hostile_idp import USERS, Faults, HostileIdP

import oakid_gate.asgi
from oakid_gate import OakIDMiddleware
from oakid_gate.gate.redirects import safe_return_to

ISSUER = "http://127.0.0.1:9"
AUTHORIZE = ISSUER + "/authorize?"
SITE = "http://testserver"
PREFIX = "/oauth2"
COOKIE = "oakid_session"
HTML = "text/html,application/xhtml+xml"
ES_RS = ("ES256", "RS256")
WITH_HS = ("ES256", "RS256", "HS256")
CLIENT_ID = "gate-client"
# ../shared beside the checkout (as CI lays it out), else this workplace's copy
CORPORA = next(
    (
        path
        for path in (
            Path(__file__).resolve().parents[2] / "shared" / "corpora",
            Path("/work/shared/corpora"),
        )
        if path.is_dir()
    ),
    Path(__file__).resolve().parents[2] / "shared" / "corpora",
)
PRINTABLE = "".join(chr(c) for c in range(0x21, 0x7F))


# ---------------------------------------------------------------- the site


async def protected_app(scope: Scope, receive: Receive, send: Send) -> None:
    """The app behind the gate: says who is signed in and where."""
    body = f"app: {scope['user'].display_name} at {scope['path']}".encode()
    headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class Clock:
    """The gate's ``time.time``, which a test may move forward."""

    def __init__(self) -> None:
        self.offset = 0.0

    def time(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


class Browser:
    """One browser: a cookie jar on the gate, every answer kept."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self.http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=site.gate),
            base_url=SITE,
            headers={"accept": HTML},
            follow_redirects=False,
        )
        self.responses: list[httpx.Response] = []

    async def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        response = await self.http.request(method, url, **kwargs)
        self.responses.append(response)
        return response

    async def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.request("GET", url, **kwargs)

    async def start(self, url: str = "/private") -> str:
        """Navigate to ``url`` and return where the gate sends the browser to sign in."""
        response = await self.get(url)
        assert response.status_code == 302, response.text
        assert response.headers["location"].startswith(AUTHORIZE)
        return response.headers["location"]

    async def sign_in(self, url: str = "/private", user: str = "alice") -> httpx.Response:
        """The whole sign-in; returns the gate's answer to the callback."""
        callback = await self.site.idp.authorize(await self.start(url), user=user)
        return await self.get(callback)

    async def attempt(self, url: str = "/private") -> httpx.Response:
        """Try to sign in; returns the first answer that is not a step of the flow."""
        response = await self.get(url)
        location = response.headers.get("location", "")
        if response.status_code != 302 or not location.startswith(AUTHORIZE):
            return response
        return await self.get(await self.site.idp.authorize(location))

    def session_cookie(self) -> str | None:
        return next((c.value for c in self.http.cookies.jar if c.name == COOKIE), None)

    def cookie_values(self) -> list[str]:
        values = [c.value or "" for c in self.http.cookies.jar]
        for response in self.responses:
            for header in response.headers.get_list("set-cookie"):
                values.append(header.partition("=")[2].partition(";")[0].strip('"'))
        return [v for v in values if v]


class Site:
    """A gate in front of :func:`protected_app`, its provider double and browsers."""

    def __init__(self, idp: HostileIdP, clock: Clock, **settings: Any) -> None:
        self.idp = idp
        self.clock = clock
        options: dict[str, Any] = {
            "issuer": idp.issuer,
            "client_id": idp.client_id,
            "client_secret": idp.client_secret,
            "secret": "s" * 32,
            "http": idp.http_client(),
            **settings,
        }
        self.gate = OakIDMiddleware(protected_app, **options)
        self.browsers: list[Browser] = []

    def browser(self) -> Browser:
        browser = Browser(self)
        self.browsers.append(browser)
        return browser

    async def aclose(self) -> None:
        for browser in self.browsers:
            await browser.http.aclose()
        await self.gate.aclose()


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(oakid_gate.asgi, "time", clock)
    return clock


@pytest.fixture(autouse=True)
def _debug_log(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="oakid_gate")


@pytest.fixture
async def make_site(clock: Clock) -> AsyncIterator[Callable[..., Site]]:
    sites: list[Site] = []

    def make(idp: HostileIdP | None = None, **settings: Any) -> Site:
        sites.append(Site(idp or HostileIdP(ISSUER), clock, **settings))
        return sites[-1]

    yield make
    for site in sites:
        await site.aclose()


@pytest.fixture
def site(make_site: Callable[..., Site]) -> Site:
    return make_site()


# ---------------------------------------------------------------- checks


def sets_session(response: httpx.Response) -> bool:
    for header in response.headers.get_list("set-cookie"):
        name, _, rest = header.partition("=")
        if name.strip() == COOKIE and rest.partition(";")[0].strip('"'):
            return True
    return False


def assert_error_page(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("text/html")
    assert re.search(r"<h1>[^<]+</h1><p>[^<]{10,}</p>", response.text), response.text
    assert "Traceback" not in response.text
    assert "location" not in response.headers
    assert not sets_session(response)


async def assert_signed_out(site: Site, browser: Browser) -> None:
    """No session in ``browser``; once the provider behaves, a page asks for a sign-in."""
    assert browser.session_cookie() is None
    assert (await browser.get(PREFIX + "/auth")).status_code == 401
    site.idp.faults = Faults()
    site.clock.advance(2)  # past the gate's one-second memory of a failed discovery
    response = await browser.get("/private")
    assert response.status_code == 302
    assert response.headers["location"].startswith(AUTHORIZE)


def assert_nothing_leaked(site: Site, caplog: pytest.LogCaptureFixture) -> None:
    """No secret handed out in this test is in the log or in a page the gate served."""
    values = site.idp.secrets() + [v for b in site.browsers for v in b.cookie_values()]
    pages = [caplog.text] + [r.text for b in site.browsers for r in b.responses]
    leaked = [v for v in values if len(v) >= 16 and any(v in page for page in pages)]
    assert not leaked, leaked


async def assert_fails_closed(
    site: Site,
    browser: Browser,
    response: httpx.Response,
    status: int,
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert_error_page(response, status)
    await assert_signed_out(site, browser)
    assert_nothing_leaked(site, caplog)


def assert_signed_in(response: httpx.Response, path: str = "/private") -> None:
    assert response.status_code == 302, response.text
    assert response.headers["location"] == SITE + path
    assert sets_session(response)


def browser_destination(location: str, base: str = SITE + "/") -> tuple[str, str]:
    """(scheme, host) a browser navigates to for ``location`` on ``base``.

    The WHATWG URL rules that open redirects rely on: leading and trailing C0
    controls and spaces are stripped, tabs and newlines anywhere removed, a
    backslash is a slash in http(s), and any number of slashes starts an
    authority (``////evil`` is ``evil``).
    """
    url = location.strip("".join(chr(c) for c in range(0x21)))
    url = re.sub(r"[\t\n\r]", "", url).replace("\\", "/")
    base_scheme = urlsplit(base).scheme
    match = re.match(r"([A-Za-z][A-Za-z0-9+.-]*):(.*)", url, re.DOTALL)
    if match:
        scheme, rest = match.group(1).lower(), match.group(2)
        if scheme != base_scheme:
            special = scheme in ("http", "https", "ws", "wss", "ftp", "file")
            return scheme, _authority(rest) if special else ""
        if rest.startswith("//"):
            return scheme, _authority(rest)
        url = rest  # "http:path" on an http page is a relative reference
    if url.startswith("//"):
        return base_scheme, _authority(url)
    parts = urlsplit(urljoin(base, url))
    return parts.scheme, parts.netloc.lower()


def _authority(rest: str) -> str:
    host = re.split(r"[/?#]", rest.lstrip("/"), maxsplit=1)[0]
    return host.rpartition("@")[2].lower()


def assert_on_site(location: str) -> None:
    assert all(0x20 < ord(c) < 0x7F for c in location), repr(location)
    assert browser_destination(location) == ("http", "testserver"), repr(location)
    assert urlsplit(urljoin(SITE + "/", location)).netloc == "testserver", repr(location)


# ---------------------------------------------------------------- ID token


ID_TOKEN_ATTACKS = [
    pytest.param(Faults(claims={"iss": "https://evil.example"}), ES_RS, id="iss-another-issuer"),
    pytest.param(Faults(claims={"iss": ISSUER + "/"}), ES_RS, id="iss-trailing-slash"),
    pytest.param(Faults(claims={"aud": "another-client"}), ES_RS, id="aud-another-client"),
    pytest.param(
        Faults(claims={"aud": [CLIENT_ID, "another-client"]}), ES_RS, id="aud-several-no-azp"
    ),
    pytest.param(
        Faults(claims={"aud": [CLIENT_ID, "another-client"], "azp": "another-client"}),
        ES_RS,
        id="aud-several-azp-another-client",
    ),
    pytest.param(Faults(claims={"azp": "another-client"}), ES_RS, id="azp-another-client"),
    pytest.param(Faults(claims={"nonce": "not-the-nonce"}), ES_RS, id="nonce-wrong"),
    pytest.param(Faults(drop_claims=("nonce",)), ES_RS, id="nonce-missing"),
    pytest.param(Faults(exp_offset=-3600, iat_offset=-3700), ES_RS, id="exp-expired"),
    pytest.param(Faults(drop_claims=("exp",)), ES_RS, id="exp-missing"),
    pytest.param(Faults(iat_offset=3600, exp_offset=7200), ES_RS, id="iat-in-the-future"),
    pytest.param(Faults(drop_claims=("sub",)), ES_RS, id="sub-missing"),
    pytest.param(Faults(signing="bad_signature"), ES_RS, id="signature-bad"),
    pytest.param(Faults(signing="none"), ES_RS, id="alg-none"),
    pytest.param(Faults(signing="NoNe"), ES_RS, id="alg-none-mixed-case"),
    pytest.param(Faults(signing="none"), ("none", "ES256"), id="alg-none-advertised"),
    pytest.param(Faults(signing="hs256_rsa_pem"), ES_RS, id="alg-confusion-pem-hs-not-listed"),
    pytest.param(Faults(signing="hs256_rsa_pem"), WITH_HS, id="alg-confusion-pem"),
    pytest.param(Faults(signing="hs256_rsa_jwk"), WITH_HS, id="alg-confusion-jwk"),
    pytest.param(Faults(signing="hs256_wrong_secret"), WITH_HS, id="hs256-wrong-secret"),
    pytest.param(Faults(signing="HS256"), ES_RS, id="hs256-not-listed"),
    pytest.param(Faults(signing="RS256"), ("ES256",), id="rs256-when-only-es256"),
    pytest.param(Faults(signing="rs256_names_ec_key"), ES_RS, id="rs256-names-the-ec-key"),
    pytest.param(Faults(signing="attacker_kid"), ES_RS, id="kid-unknown"),
    pytest.param(Faults(signing="rotated"), ES_RS, id="kid-not-yet-published"),
    pytest.param(Faults(signing="header_jwk"), ES_RS, id="header-jwk-attacker-key"),
    pytest.param(Faults(signing="header_jku"), ES_RS, id="header-jku-attacker-keys"),
    pytest.param(Faults(signing="jwe_shape"), ES_RS, id="not-a-jws"),
    pytest.param(Faults(omit_id_token=True), ES_RS, id="id-token-missing"),
]


@pytest.mark.parametrize(("faults", "algs"), ID_TOKEN_ATTACKS)
async def test_id_token_attack_fails_closed(
    site: Site, faults: Faults, algs: tuple[str, ...], caplog: pytest.LogCaptureFixture
) -> None:
    """An ID token that fails any check of OIDC Core 3.1.3.7 ends on a 401 page with no session."""
    site.idp.id_token_algs = algs
    site.idp.faults = dataclasses.replace(faults)
    browser = site.browser()
    response = await browser.attempt()
    assert site.idp.token_answers, "the attack never reached the token endpoint"
    await assert_fails_closed(site, browser, response, 401, caplog)
    assert site.idp.attacker_jwks_fetches == 0


ID_TOKEN_HONEST = [
    pytest.param(Faults(signing="ES256"), ES_RS, id="es256"),
    pytest.param(Faults(signing="RS256"), ES_RS, id="rs256"),
    pytest.param(Faults(signing="HS256"), WITH_HS, id="hs256-client-secret"),
    pytest.param(
        Faults(claims={"aud": [CLIENT_ID, "another-client"], "azp": CLIENT_ID}),
        ES_RS,
        id="aud-several-azp-us",
    ),
    pytest.param(Faults(iat_offset=30), ES_RS, id="iat-within-clock-skew"),
]


@pytest.mark.parametrize(("faults", "algs"), ID_TOKEN_HONEST)
async def test_honest_id_token_signs_in(
    site: Site, faults: Faults, algs: tuple[str, ...], caplog: pytest.LogCaptureFixture
) -> None:
    """The controls: the same double, honest, signs the browser in and back to its page."""
    site.idp.id_token_algs = algs
    site.idp.faults = dataclasses.replace(faults)
    browser = site.browser()
    assert_signed_in(await browser.sign_in())
    page = await browser.get("/private")
    assert (page.status_code, page.text) == (200, "app: Alice at /private")
    assert_nothing_leaked(site, caplog)


async def test_rotated_key_is_accepted_after_one_jwks_refetch(site: Site) -> None:
    """A newly published signing key is fetched once the cached JWKS is older than the retry interval."""
    assert_signed_in(await site.browser().sign_in())
    fetches = site.idp.jwks_fetches
    site.idp.rotate_key()
    refused = await site.browser().attempt()  # the JWKS was fetched just now: no refetch yet
    assert refused.status_code == 401
    assert site.idp.jwks_fetches == fetches
    site.clock.advance(11)
    assert_signed_in(await site.browser().sign_in())
    assert site.idp.jwks_fetches == fetches + 1


async def test_unknown_kid_cannot_make_the_gate_hammer_the_jwks(site: Site) -> None:
    """Tokens naming an unknown key cause at most one JWKS refetch per retry interval."""
    site.idp.faults.signing = "attacker_kid"
    for _ in range(5):
        assert (await site.browser().attempt()).status_code == 401
    assert site.idp.jwks_fetches == 1
    site.clock.advance(11)
    for _ in range(5):
        assert (await site.browser().attempt()).status_code == 401
    assert site.idp.jwks_fetches == 2


# ---------------------------------------------------------------- the provider


HUGE = b'{"access_token": "' + b"A" * (2 << 20) + b'", "token_type": "Bearer"}'

PROVIDER_FAILURES = [
    pytest.param(Faults(discovery_status=500), 503, id="discovery-500"),
    pytest.param(Faults(discovery_issuer="https://evil.example"), 502, id="discovery-issuer"),
    pytest.param(Faults(unreachable=True), 503, id="provider-unreachable"),
    pytest.param(Faults(jwks_status=500), 503, id="jwks-500"),
    pytest.param(Faults(token_status=500), 503, id="token-500"),
    # The code refused (used, expired, not ours): the client starts again (issue 9: 4xx).
    pytest.param(Faults(token_error="invalid_grant"), 400, id="token-invalid-grant"),
    # Any other refusal says the gate or the provider is wrong: 502.
    pytest.param(Faults(token_error="invalid_client"), 502, id="token-invalid-client"),
    pytest.param(Faults(token_body=b"<html>Oops</html>"), 502, id="token-not-json"),
    pytest.param(Faults(token_body=HUGE), 502, id="token-huge-body"),
    pytest.param(Faults(token_extra={"token_type": "mac"}), 502, id="token-type-unknown"),
    pytest.param(Faults(token_extra={"access_token": None}), 502, id="token-no-access-token"),
    pytest.param(Faults(userinfo_sub="mallory-sub"), 401, id="userinfo-sub-swapped"),
    pytest.param(Faults(userinfo_drop=("sub",)), 401, id="userinfo-sub-missing"),
    pytest.param(Faults(userinfo_status=401), 401, id="userinfo-401"),
    pytest.param(Faults(userinfo_status=500), 503, id="userinfo-500"),
]


@pytest.mark.parametrize(("faults", "status"), PROVIDER_FAILURES)
async def test_provider_misbehaviour_fails_closed(
    site: Site, faults: Faults, status: int, caplog: pytest.LogCaptureFixture
) -> None:
    """A provider that fails or lies at any step leaves an error page and no session."""
    site.idp.faults = dataclasses.replace(faults)
    browser = site.browser()
    response = await browser.attempt()
    await assert_fails_closed(site, browser, response, status, caplog)


AUTHORIZATION_RESPONSES = [
    pytest.param(Faults(iss_param="missing"), True, 400, id="rfc9207-iss-missing"),
    pytest.param(Faults(iss_param="wrong"), True, 400, id="rfc9207-iss-wrong"),
    pytest.param(Faults(iss_param="wrong"), False, 400, id="rfc9207-iss-wrong-unadvertised"),
    pytest.param(Faults(authorize_error="access_denied"), True, 403, id="error-access-denied"),
    pytest.param(Faults(authorize_error="<script>x</script>"), True, 403, id="error-markup"),
]


@pytest.mark.parametrize(("faults", "iss_supported", "status"), AUTHORIZATION_RESPONSES)
async def test_bad_authorization_response_fails_closed(
    site: Site,
    faults: Faults,
    iss_supported: bool,
    status: int,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A callback with a provider error or without the right RFC 9207 ``iss`` shows a page and signs no one in."""
    site.idp.iss_parameter_supported = iss_supported
    site.idp.faults = dataclasses.replace(faults)
    browser = site.browser()
    response = await browser.attempt()
    assert "<script>" not in response.text
    assert not site.idp.token_requests, "the code must not be redeemed"
    await assert_fails_closed(site, browser, response, status, caplog)


async def test_iss_may_be_absent_when_the_provider_does_not_announce_it(site: Site) -> None:
    """The control for RFC 9207: without the metadata flag, a callback without ``iss`` signs in."""
    site.idp.iss_parameter_supported = False
    site.idp.faults.iss_param = "missing"
    assert_signed_in(await site.browser().sign_in())


async def test_provider_error_page_says_what_happened(site: Site) -> None:
    """``error=access_denied`` from the provider shows a page saying the sign-in was refused."""
    site.idp.faults.authorize_error = "access_denied"
    response = await site.browser().attempt()
    assert response.status_code == 403
    assert "cancelled or refused" in response.text


async def test_slow_token_endpoint_times_out(
    make_site: Callable[..., Site], caplog: pytest.LogCaptureFixture
) -> None:
    """A token endpoint slower than ``http_timeout`` (0.5 s) ends on a 503 page, not a hung request."""
    site = make_site(http_timeout=0.5)
    site.idp.faults.token_delay = 30
    browser = site.browser()
    callback = await site.idp.authorize(await browser.start())
    try:
        response = await asyncio.wait_for(browser.get(callback), 1.2)
    except TimeoutError:
        pytest.fail("the gate waited for the provider far past its http_timeout")
    await assert_fails_closed(site, browser, response, 503, caplog)


@contextlib.asynccontextmanager
async def serve_on_loopback(make_app: Callable[[str], Any]) -> AsyncIterator[Any]:
    """Serve ``make_app(origin)`` with uvicorn on a free 127.0.0.1 port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    app = make_app(f"http://127.0.0.1:{sock.getsockname()[1]}")
    config = uvicorn.Config(
        app, lifespan="off", log_level="warning", ws="none", timeout_graceful_shutdown=1
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            await asyncio.sleep(0.01)
        yield app
    finally:
        server.should_exit = True
        await task
        sock.close()


async def test_trickling_token_endpoint_times_out() -> None:
    """A token endpoint that sends one byte every 0.2 s is cut off near ``http_timeout``, over a real socket."""
    async with serve_on_loopback(HostileIdP) as idp:
        idp.faults.token_trickle = 0.2
        gate = OakIDMiddleware(
            protected_app,
            issuer=idp.issuer,
            client_id=idp.client_id,
            client_secret=idp.client_secret,
            secret="s" * 32,
            http_timeout=0.5,
        )
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=gate), base_url=SITE, headers={"accept": HTML}
        ) as browser:
            start = await browser.get("/private")
            assert start.status_code == 302, start.text  # discovery over the socket worked
            callback = await idp.authorize(start.headers["location"])
            try:
                response = await asyncio.wait_for(browser.get(callback), 1.2)
            except TimeoutError:
                response = None
        await gate.aclose()
    assert len(idp.token_requests) == 1
    assert response is not None, "the gate was still reading the token answer after 1.2 s"
    assert response.status_code == 503


@pytest.mark.parametrize("interface", ["asgi", "wsgi"])
async def test_a_provider_trickling_its_headers_is_cut_off_at_the_deadline(interface: str) -> None:
    """A provider that sends its status line a byte at a time never trips a per-read
    timeout; the one total deadline (``http_timeout``) ends the request with a 503, in
    both drivers (under WSGI it once held the thread for 30 s)."""
    from support.trickle import trickling_provider

    from oakid_gate import OakIDWSGIMiddleware

    settings = {"client_id": "c", "client_secret": "cs", "secret": "s" * 32, "http_timeout": 0.5}
    with trickling_provider(interval=0.1) as issuer:
        started = time.monotonic()
        if interface == "asgi":
            gate = OakIDMiddleware(protected_app, issuer=issuer, **settings)
            transport: Any = httpx.ASGITransport(app=gate)
            async with httpx.AsyncClient(transport=transport, base_url=SITE, headers={"accept": HTML}) as c:
                response = await c.get("/private")
            await gate.aclose()
        else:
            wsgi = OakIDWSGIMiddleware(lambda e, s: [b""], issuer=issuer, **settings)
            with httpx.Client(transport=httpx.WSGITransport(app=wsgi), base_url=SITE,
                              headers={"accept": HTML}) as c:
                response = await asyncio.to_thread(c.get, "/private")
            wsgi.close()
        elapsed = time.monotonic() - started
    assert response.status_code == 503
    assert elapsed < 1.5, f"the gate waited {elapsed:.1f} s for a provider past http_timeout=0.5"


async def test_concurrent_requests_at_start_up_fetch_discovery_once(
    make_site: Callable[..., Site],
) -> None:
    """Twenty navigations arriving together at a fresh gate make one discovery request;
    the others wait for its result (single flight per process)."""
    site = make_site()
    site.idp.faults.discovery_delay = 0.2
    browsers = [site.browser() for _ in range(20)]
    answers = await asyncio.gather(*(b.get("/private") for b in browsers))
    assert {a.status_code for a in answers} == {302}
    assert site.idp.discovery_fetches == 1


def test_concurrent_threads_at_start_up_fetch_discovery_once(tmp_path: Path) -> None:
    """The same for a WSGI server's threads: one discovery request for eight of them."""
    import threading

    from oakid_gate import OakIDWSGIMiddleware

    async def serve() -> tuple[int, list[int]]:
        async with serve_on_loopback(HostileIdP) as idp:
            idp.faults.discovery_delay = 0.2
            wsgi = OakIDWSGIMiddleware(
                lambda e, s: [b""], issuer=idp.issuer, client_id=idp.client_id,
                client_secret=idp.client_secret, secret="s" * 32,
            )
            statuses: list[int] = []

            def navigate() -> None:
                with httpx.Client(transport=httpx.WSGITransport(app=wsgi), base_url=SITE,
                                  headers={"accept": HTML}) as c:
                    statuses.append(c.get("/private").status_code)

            threads = [threading.Thread(target=navigate) for _ in range(8)]
            await asyncio.to_thread(lambda: [t.start() for t in threads] and [t.join(10) for t in threads])
            wsgi.close()
            return idp.discovery_fetches, statuses

    fetches, statuses = asyncio.run(serve())
    assert statuses == [302] * 8
    assert fetches == 1


ABSURD_NUMBERS = [
    pytest.param(Faults(token_extra={"expires_in": 10**400}), 502, id="expires-in-10e400"),
    pytest.param(Faults(claims={"iat": 10**400}), 401, id="iat-10e400"),
]


@pytest.mark.parametrize(("faults", "status"), ABSURD_NUMBERS)
async def test_absurd_numbers_fail_with_a_page(
    site: Site, faults: Faults, status: int, caplog: pytest.LogCaptureFixture
) -> None:
    """Numbers too large for a float in the provider's answers end on a sign-in error page."""
    site.idp.faults = dataclasses.replace(faults)
    browser = site.browser()
    response = await browser.attempt()
    assert not any(r.exc_info for r in caplog.records), "a traceback was logged"
    await assert_fails_closed(site, browser, response, status, caplog)


# ---------------------------------------------------------------- state and code


def _with_query(url: str, **changes: str | None) -> str:
    parts = urlsplit(url)
    query = {k: v for k, v in parse_qsl(parts.query)}
    for name, value in changes.items():
        if value is None:
            query.pop(name, None)
        else:
            query[name] = value
    return parts._replace(query=urlencode(query)).geturl()


Scenario = Callable[[Site, Browser, Browser, str], Awaitable[httpx.Response]]


async def _state_missing(site: Site, a: Browser, b: Browser, callback: str) -> httpx.Response:
    return await a.get(_with_query(callback, state=None))


async def _state_unknown(site: Site, a: Browser, b: Browser, callback: str) -> httpx.Response:
    return await a.get(_with_query(callback, state=secrets.token_urlsafe(32)))


async def _state_empty(site: Site, a: Browser, b: Browser, callback: str) -> httpx.Response:
    return await a.get(_with_query(callback, state=""))


async def _other_browser(site: Site, a: Browser, b: Browser, callback: str) -> httpx.Response:
    return await b.get(callback)


async def _expired(site: Site, a: Browser, b: Browser, callback: str) -> httpx.Response:
    site.clock.advance(601)  # past login_timeout
    return await a.get(callback)


async def _code_missing(site: Site, a: Browser, b: Browser, callback: str) -> httpx.Response:
    return await a.get(_with_query(callback, code=None))


STATE_ATTACKS = [
    pytest.param(_state_missing, 400, id="state-missing"),
    pytest.param(_state_empty, 400, id="state-empty"),
    pytest.param(_state_unknown, 400, id="state-unknown"),
    pytest.param(_other_browser, 400, id="state-from-another-browser"),
    pytest.param(_expired, 400, id="state-expired"),
    pytest.param(_code_missing, 400, id="code-missing"),
]


@pytest.mark.parametrize(("scenario", "status"), STATE_ATTACKS)
async def test_callback_tampering_fails_closed(
    site: Site, scenario: Scenario, status: int, caplog: pytest.LogCaptureFixture
) -> None:
    """A callback whose state is missing, unknown, expired or from another browser signs no one in."""
    victim, attacker = site.browser(), site.browser()
    callback = await site.idp.authorize(await victim.start())
    response = await scenario(site, victim, attacker, callback)
    assert not site.idp.token_requests, "the code must not be redeemed"
    for browser in (victim, attacker):
        await assert_fails_closed(site, browser, response, status, caplog)


def _repeated(callback: str, name: str, genuine_first: bool) -> str:
    """``callback`` with ``name`` twice: its own value (or a plausible one) and an attacker's."""
    parts = urlsplit(callback)
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    own = dict(pairs).get(name)
    if own is None:  # a parameter the genuine answer lacks: both values are added
        pairs.append((name, "access_denied" if name == "error" else "x"))
    attacker = (name, "access_denied" if name == "error" else "attacker-" + name)
    pairs = [*pairs, attacker] if genuine_first else [attacker, *pairs]
    return parts._replace(query=urlencode(pairs)).geturl()


@pytest.mark.parametrize("name", ["state", "code", "iss", "error", "error_description"])
@pytest.mark.parametrize("genuine_first", [True, False], ids=["genuine-first", "genuine-last"])
async def test_repeated_callback_parameter_signs_no_one_in(
    site: Site, name: str, genuine_first: bool, caplog: pytest.LogCaptureFixture
) -> None:
    """RFC 6749 3.1: a callback with any parameter twice, the genuine value first or last,
    redeems no code and creates no session."""
    victim = site.browser()
    callback = await site.idp.authorize(await victim.start())
    response = await victim.get(_repeated(callback, name, genuine_first))
    assert not site.idp.token_requests, "the code must not be redeemed"
    await assert_fails_closed(site, victim, response, 400, caplog)


async def test_replayed_callback_fails_closed(site: Site, caplog: pytest.LogCaptureFixture) -> None:
    """The same callback URL a second time, in the same or another browser, is refused."""
    browser, other = site.browser(), site.browser()
    callback = await site.idp.authorize(await browser.start())
    assert_signed_in(await browser.get(callback))
    session = browser.session_cookie()
    again = await browser.get(callback)
    assert_error_page(again, 400)
    assert browser.session_cookie() == session
    await assert_fails_closed(site, other, await other.get(callback), 400, caplog)
    assert len(site.idp.token_requests) == 1


async def test_injected_code_fails_closed(site: Site, caplog: pytest.LogCaptureFixture) -> None:
    """An attacker's code slipped into the victim's callback fails PKCE and signs no one in."""
    victim, attacker = site.browser(), site.browser()
    attacker_callback = await site.idp.authorize(await attacker.start(), user="mallory")
    victim_callback = await site.idp.authorize(await victim.start())
    stolen_code = parse_qs(urlsplit(attacker_callback).query)["code"][0]
    response = await victim.get(_with_query(victim_callback, code=stolen_code))
    await assert_fails_closed(site, victim, response, 400, caplog)  # invalid_grant: start again
    assert not site.idp.token_answers


async def test_parallel_tabs_each_sign_in(site: Site) -> None:
    """Three sign-ins started in one browser all succeed when finished in reverse order."""
    browser = site.browser()
    paths = ["/tab-a", "/tab-b?x=1", "/tab-c"]
    callbacks = [await site.idp.authorize(await browser.start(p)) for p in paths]
    for path, callback in reversed(list(zip(paths, callbacks, strict=True))):
        assert_signed_in(await browser.get(callback), path)
    page = await browser.get("/private")
    assert (page.status_code, page.text) == (200, "app: Alice at /private")


@pytest.mark.parametrize(
    "valid", [pytest.param(False, id="made-up"), pytest.param(True, id="attackers-own")]
)
async def test_planted_session_id_is_replaced_at_sign_in(site: Site, valid: bool) -> None:
    """A session id planted in the victim's browser (fixation) is never the one the victim's sign-in uses."""
    attacker = site.browser()
    planted = "planted-" + secrets.token_urlsafe(32)
    if valid:
        assert_signed_in(await attacker.sign_in(user="mallory"))
        planted = attacker.session_cookie() or ""
    victim = site.browser()
    victim.http.cookies.set(COOKIE, planted, domain="testserver.local", path="/")
    response = await victim.sign_in(PREFIX + "/start?rd=/private")
    assert_signed_in(response)
    assert victim.session_cookie() not in (None, planted)
    assert (await victim.get("/private")).text == "app: Alice at /private"
    stale = site.browser()
    stale.http.cookies.set(COOKIE, planted, domain="testserver.local", path="/")
    assert (await stale.get(PREFIX + "/auth")).status_code == 401


def _raises(user: Any) -> bool:
    raise RuntimeError("the deployer's rule broke")


#: (settings, claims the provider sends, words the refusal must name)
RULE_REFUSALS = [
    pytest.param({"allowed_domains": "example.org"}, {"email": "mallory@evil.example"}, "@example.org", id="email-outside-the-domain"),
    pytest.param({"allowed_domains": "example.org"}, {"email_verified": False}, "verified email", id="email-verified-false"),
    pytest.param({"allowed_domains": "example.org"}, {"email_verified": "false"}, "verified email", id="email-verified-string-false"),
    pytest.param({"allowed_domains": "example.org"}, {"email": "alice@sub.example.org"}, "@example.org", id="email-in-a-subdomain"),
    pytest.param({"allowed_emails": "bob@example.org"}, {}, "bob@example.org", id="another-email"),
    pytest.param({"allowed_groups": "admins"}, {"groups": ["staff"]}, "admins", id="not-in-the-group"),
    pytest.param({"allowed_groups": "admins"}, {"groups": "staff"}, "admins", id="group-string-claim"),
    pytest.param({"allowed_groups": "admins"}, {}, "admins", id="no-groups-claim"),
    pytest.param({"allowed_groups": "admins"}, {"groups": [["admins"]]}, "admins", id="group-nested-list"),
    pytest.param({"allowed_groups": "admins"}, {"groups": "admins,staff"}, "admins", id="group-string-is-one-group"),
    pytest.param({"allowed_groups": "admins", "groups_claim": "roles"}, {"groups": ["admins"]}, "admins", id="groups-in-another-claim"),
    pytest.param({"required_claims": "department=eng"}, {"department": "sales"}, "department=eng", id="claim-differs"),
    pytest.param({"required_claims": "department=eng"}, {}, "department=eng", id="claim-missing"),
    pytest.param({"required_claims": "department=eng"}, {"department": ["sales"]}, "department=eng", id="claim-list-without"),
    pytest.param({"required_claims": "org.tier=gold"}, {"org": {"tier": "silver"}}, "org.tier=gold", id="nested-claim-differs"),
    pytest.param({"required_claims": "mfa=true"}, {"mfa": "yes"}, "mfa=true", id="boolean-claim-as-text"),
    pytest.param({"required_claims": "department=eng,level=3"}, {"department": "eng", "level": 2}, "level=3", id="second-claim-fails"),
    pytest.param({"authorize": lambda user: False}, {}, "access rule", id="authorize-says-no"),
    pytest.param({"authorize": lambda user: "yes"}, {}, "access rule", id="authorize-truthy-is-not-true"),
    pytest.param({"authorize": _raises}, {}, "access rule", id="authorize-raises"),
]


@pytest.mark.parametrize(("settings", "claims", "missing"), RULE_REFUSALS)
async def test_a_user_the_rules_refuse_gets_403_and_never_a_sign_in_loop(
    make_site: Callable[..., Site],
    settings: dict[str, Any],
    claims: dict[str, Any],
    missing: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Signed in but not allowed: a 403 page that names what was missing and offers
    sign-out, at sign-in and on every request after (never a 302 back into the
    provider); the session is kept for that sign-out; the app is never reached; API
    clients and nginx get the same 403 in JSON."""
    site = make_site(**settings)
    site.idp.faults.claims = claims
    site.idp.faults.userinfo_claims = claims
    browser = site.browser()
    response = await browser.attempt()
    assert response.status_code == 403, response.text
    assert "location" not in response.headers
    assert missing in html.unescape(response.text)
    assert f'href="{PREFIX}/sign_out"' in response.text
    assert sets_session(response)  # kept, so that signing out (to switch account) works
    assert site.idp.revocations == []
    again = await browser.get("/private")
    assert again.status_code == 403 and "location" not in again.headers
    api = await browser.get("/private", headers={"accept": "application/json"})
    assert api.status_code == 403 and api.json()["error"] == "access_denied"
    assert missing in api.json()["missing"]
    assert (await browser.get(PREFIX + "/auth")).status_code == 403
    assert not any(r.text.startswith("app:") for r in browser.responses)
    form = await browser.get(PREFIX + "/sign_out")
    assert form.status_code == 200 and "csrf" in form.text
    assert_nothing_leaked(site, caplog)


ALLOWED_BY_RULES = [
    pytest.param({"allowed_domains": "example.org"}, {}, id="domain"),
    pytest.param({"allowed_emails": "ALICE@example.org"}, {}, id="email-any-case"),
    pytest.param({"allowed_groups": "admins,ops"}, {"groups": ["staff", "ops"]}, id="one-of-the-groups"),
    pytest.param({"allowed_groups": "admins"}, {"groups": "admins"}, id="group-string-claim"),
    pytest.param({"allowed_groups": "admins", "groups_claim": "roles"}, {"roles": ["admins"]}, id="groups-claim"),
    pytest.param({"required_claims": "department=eng"}, {"department": ["sales", "eng"]}, id="claim-list-member"),
    pytest.param({"required_claims": "org.tier=gold,mfa=true,level=3"}, {"org": {"tier": "gold"}, "mfa": True, "level": 3}, id="nested-boolean-number"),
    pytest.param({"authorize": lambda user: user.email == "alice@example.org"}, {}, id="authorize"),
    pytest.param({"authorize": "support.rules:admins_only", "allowed_groups": "admins"}, {"groups": ["admins"]}, id="authorize-import-path"),
]


@pytest.mark.parametrize(("settings", "claims"), ALLOWED_BY_RULES)
async def test_a_user_the_rules_allow_reaches_the_app(
    make_site: Callable[..., Site], settings: dict[str, Any], claims: dict[str, Any]
) -> None:
    """Every rule that is set holds: the sign-in completes and the app is reached, on the
    hot path and after it."""
    site = make_site(**settings)
    site.idp.faults.claims = claims
    site.idp.faults.userinfo_claims = claims
    browser = site.browser()
    assert_signed_in(await browser.attempt())
    assert (await browser.get("/private")).text.startswith("app: ")
    assert (await browser.get("/other")).text.startswith("app: ")
    assert (await browser.get(PREFIX + "/auth")).status_code == 202


async def test_claims_changed_at_the_provider_apply_at_the_next_re_read(
    make_site: Callable[..., Site],
) -> None:
    """Rules are checked on every request: a user removed from the group at the provider
    is refused once userinfo is read again, and let back in when added again."""
    site = make_site(allowed_groups="admins", claims_refresh_interval=60)
    site.idp.faults.claims = {"groups": ["admins"]}
    site.idp.faults.userinfo_claims = {"groups": ["admins"]}
    browser = site.browser()
    assert_signed_in(await browser.attempt())
    site.idp.faults.userinfo_claims = {"groups": ["staff"]}
    site.clock.advance(61)
    assert (await browser.get("/private")).status_code == 403
    site.idp.faults.userinfo_claims = {"groups": ["admins"]}
    site.clock.advance(61)
    assert (await browser.get("/private")).text.startswith("app: ")


AUTH_QUERIES = [
    pytest.param("allowed_groups=admins", 202, id="group-held"),
    pytest.param("allowed_groups=ops,admins", 202, id="one-of-groups"),
    pytest.param("allowed_groups=ops", 403, id="group-not-held"),
    pytest.param("allowed_emails=alice@example.org", 202, id="email"),
    pytest.param("allowed_emails=bob@example.org", 403, id="other-email"),
    pytest.param("allowed_domains=example.org", 202, id="domain"),
    pytest.param("allowed_domains=example.com", 403, id="other-domain"),
    pytest.param("allowed_groups=admins&allowed_domains=example.com", 403, id="all-must-hold"),
    pytest.param("allowed_groups=admins&allowed_groups=ops", 400, id="parameter-twice"),
    pytest.param("allowed_groups=", 400, id="empty-list"),
    pytest.param("allowed_emails=example.org", 400, id="email-without-at"),
    pytest.param("unrelated=1", 202, id="other-parameters-ignored"),
]


@pytest.mark.parametrize(("query", "status"), AUTH_QUERIES)
@pytest.mark.parametrize("hot", [True, False], ids=["hot-path", "full-path"])
async def test_auth_endpoint_takes_per_location_rules_from_its_query(
    make_site: Callable[..., Site], query: str, status: int, hot: bool
) -> None:
    """nginx ``auth_request /oauth2/auth?allowed_groups=admins``: one gate answers each
    location's own rules, on the hot path and the full path alike; a bad query is a 400,
    never a pass."""
    site = make_site(**({} if hot else {"trusted_proxies": "10.0.0.0/8"}))
    site.idp.faults.claims = {"groups": ["admins"]}
    site.idp.faults.userinfo_claims = {"groups": ["admins"]}
    browser = site.browser()
    assert_signed_in(await browser.attempt())
    response = await browser.get(f"{PREFIX}/auth?{query}")
    assert response.status_code == status, response.text
    if status == 202:
        assert response.headers["x-auth-request-user"] == "alice-sub"
    else:
        assert "x-auth-request-user" not in response.headers
        assert response.json()["error"] in ("access_denied", "invalid_request")


async def test_auth_query_rules_never_widen_the_gates_own(make_site: Callable[..., Site]) -> None:
    """A location's rules narrow the gate's; they cannot let in a user the gate refuses."""
    site = make_site(allowed_groups="admins")
    site.idp.faults.claims = {"groups": ["staff"]}
    site.idp.faults.userinfo_claims = {"groups": ["staff"]}
    browser = site.browser()
    assert (await browser.attempt()).status_code == 403
    assert (await browser.get(f"{PREFIX}/auth?allowed_groups=staff")).status_code == 403



# ---------------------------------------------------------------- floods and cookie tossing

STORE_WRITES = ("put_session", "update_session", "acquire_lock", "delete_session")


@pytest.mark.parametrize("store", ["memory", "sqlite"])
async def test_a_flood_of_sign_in_starts_keeps_nothing_and_evicts_nothing(
    make_site: Callable[..., Site], store: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two thousand anonymous navigations each start a sign-in, and the store is never
    written (the sign-in is sealed into its own cookie): no store grows, and a genuine
    sign-in started before the flood still completes."""
    url = "memory://" if store == "memory" else f"sqlite:///{tmp_path / 'flood.db'}"
    site = make_site(session_store=url)
    victim = site.browser()
    started = await victim.start()
    writes: list[str] = []
    for name in STORE_WRITES:
        for form in (name, "a" + name):
            original = getattr(site.gate.store, form)

            def spy(*args: Any, _name: str = form, _original: Any = original) -> Any:
                writes.append(_name)
                return _original(*args)

            monkeypatch.setattr(site.gate.store, form, spy)
    flood = site.browser()
    for _ in range(2000):
        assert (await flood.get("/private")).status_code == 302
        flood.http.cookies.clear()  # a flood keeps no cookies (a browser would: see below)
    assert writes == []
    assert_signed_in(await victim.get(await site.idp.authorize(started)))


async def test_a_browser_keeps_few_sign_in_cookies(make_site: Callable[..., Site]) -> None:
    """Sign-in cookies go with every request (``Path=/``, as ``__Host-`` requires), so a
    browser that starts many sign-ins (tabs left at the provider) keeps at most a few."""
    from oakid_gate.gate.signin import MAX_PENDING

    site = make_site()
    browser = site.browser()
    for _ in range(3 * MAX_PENDING):
        await browser.start()
        pending = [c for c in browser.http.cookies.jar if "_login_" in c.name]
        assert 1 <= len(pending) <= MAX_PENDING
    started = await browser.start()  # the newest sign-in still completes
    assert_signed_in(await browser.get(await site.idp.authorize(started)))


async def test_a_sign_in_cookie_tossed_from_a_sibling_subdomain_is_ignored(
    make_site: Callable[..., Site], caplog: pytest.LogCaptureFixture
) -> None:
    """Login CSRF by cookie tossing: on https the sign-in's cookie is ``__Host-`` with
    ``Path=/``, so one planted without the prefix (all a sibling subdomain can set) is not
    read: the attacker's callback in the victim's browser signs no one in."""
    site = make_site(base_url="https://testserver")

    def https_browser() -> httpx.AsyncClient:
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=site.gate),
            base_url="https://testserver",
            headers={"accept": HTML},
        )

    async with https_browser() as attacker, https_browser() as victim:
        started = await attacker.get("/private")
        assert started.status_code == 302
        set_cookie = started.headers["set-cookie"]
        name, _, rest = set_cookie.partition("=")
        assert name.startswith("__Host-oakid_session_login_")
        assert "Path=/" in set_cookie and "Secure" in set_cookie and "HttpOnly" in set_cookie
        value = rest.partition(";")[0]
        callback = await site.idp.authorize(started.headers["location"], user="mallory")
        # A sibling subdomain can set oakid_session_login_... (no __Host-) for the site.
        victim.cookies.set(name.removeprefix("__Host-"), value, domain="testserver")
        response = await victim.get(callback.replace("http://testserver", "https://testserver"))
        assert response.status_code == 400
        assert not any(c.name.endswith("oakid_session") for c in victim.cookies.jar)
    assert not site.idp.token_requests


@pytest.mark.parametrize("shared", ["sqlite", "memory"])
async def test_a_cookie_of_another_app_sharing_the_store_is_no_session(
    make_site: Callable[..., Site], tmp_path: Path, shared: str
) -> None:
    """Two apps sharing one store and one secret (another client at the same provider):
    the session cookie of one is, for the other, no session at all (401), never a user."""
    from oakid_gate.stores import MemoryStore

    if shared == "sqlite":
        options: dict[str, Any] = {"session_store": f"sqlite:///{tmp_path / 'shared.db'}"}
    else:
        options = {"store": MemoryStore()}
    app_a = make_site(**options)
    app_b = make_site(client_id="another-app", **options)
    browser = app_a.browser()
    assert_signed_in(await browser.sign_in())
    sid = browser.session_cookie()
    assert sid
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app_b.gate), base_url=SITE, cookies={COOKIE: sid}
    ) as other:
        response = await other.get("/private", headers={"accept": "application/json"})
    assert response.status_code == 401
    assert (await browser.get("/private")).status_code == 200  # still a session at app A


# ---------------------------------------------------------------- verified identities only


@pytest.mark.parametrize("flag", [False, "false"], ids=["false", "string-false"])
async def test_unverified_email_is_never_an_identity(make_site: Callable[..., Site], flag: Any) -> None:
    """An email the provider marks unverified signs in as the subject, but reaches neither
    the app's user nor an identity header."""
    site = make_site()
    site.idp.faults.claims = site.idp.faults.userinfo_claims = {"email_verified": flag}
    browser = site.browser()
    assert_signed_in(await browser.sign_in())
    assert (await browser.get("/private")).text == "app: Alice at /private"
    auth = await browser.get("/oauth2/auth")
    assert auth.status_code == 202
    assert auth.headers["x-auth-request-user"] == USERS["alice"]["sub"]
    assert "x-auth-request-email" not in auth.headers


async def test_unverified_email_cannot_sign_in_where_the_email_is_the_identity(
    make_site: Callable[..., Site], caplog: pytest.LogCaptureFixture
) -> None:
    """With ``user_claim=email`` an unverified email is refused (403) and its tokens revoked."""
    site = make_site(user_claim="email")
    site.idp.faults.claims = site.idp.faults.userinfo_claims = {"email_verified": False}
    browser = site.browser()
    response = await browser.attempt()
    assert [hint for _, hint in site.idp.revocations] == ["refresh_token"]
    await assert_fails_closed(site, browser, response, 403, caplog)
    assert "not verified" in response.text


async def test_allow_unverified_email_opts_in(make_site: Callable[..., Site]) -> None:
    """``allow_unverified_email`` takes the provider's email as it is, as the deployer chose."""
    site = make_site(user_claim="email", allow_unverified_email=True)
    site.idp.faults.claims = site.idp.faults.userinfo_claims = {"email_verified": False}
    browser = site.browser()
    assert_signed_in(await browser.sign_in())
    auth = await browser.get("/oauth2/auth")
    assert auth.headers["x-auth-request-user"] == auth.headers["x-auth-request-email"]
    assert auth.headers["x-auth-request-email"] == USERS["alice"]["email"]


LOOKALIKES = [
    pytest.param("preferred_username", "adm\u200bin", id="zero-width-space"),
    pytest.param("preferred_username", "admin\u202e", id="bidi-override"),
    pytest.param("preferred_username", "admin\r\nX-Forwarded-User: root", id="crlf"),
    pytest.param("email", "alice\u200d@example.org", id="email-zero-width-joiner"),
]


@pytest.mark.parametrize(("claim", "value"), LOOKALIKES)
async def test_an_identity_that_cannot_travel_unaltered_cannot_sign_in(
    make_site: Callable[..., Site], claim: str, value: str, caplog: pytest.LogCaptureFixture
) -> None:
    """``adm\u200bin`` must never become ``admin``: where the claim is the identity
    (``user_claim``), such a sign-in is refused (403) and its tokens revoked."""
    site = make_site(user_claim=claim)
    site.idp.faults.claims = site.idp.faults.userinfo_claims = {claim: value}
    browser = site.browser()
    response = await browser.attempt()
    assert [hint for _, hint in site.idp.revocations] == ["refresh_token"]
    await assert_fails_closed(site, browser, response, 403, caplog)


@pytest.mark.parametrize(("claim", "value"), LOOKALIKES)
async def test_a_claim_that_cannot_travel_unaltered_is_never_forwarded(
    make_site: Callable[..., Site], claim: str, value: str
) -> None:
    """Where the claim is not the identity, its header is left out, never altered."""
    site = make_site()
    site.idp.faults.claims = site.idp.faults.userinfo_claims = {claim: value}
    browser = site.browser()
    assert_signed_in(await browser.sign_in())
    auth = await browser.get("/oauth2/auth")
    assert auth.status_code == 202
    header = "x-auth-request-" + claim.replace("_", "-")
    assert header not in auth.headers
    assert auth.headers["x-auth-request-user"] == USERS["alice"]["sub"]


async def test_a_missing_identity_claim_is_not_replaced_by_the_subject(
    make_site: Callable[..., Site], caplog: pytest.LogCaptureFixture
) -> None:
    """With ``user_claim=preferred_username`` and none sent, the sign-in is refused: falling
    back to ``sub`` would mix two namespaces (one user's sub, another's username)."""
    site = make_site(user_claim="preferred_username")
    site.idp.faults.drop_claims = ("preferred_username",)
    site.idp.faults.userinfo_drop = ("preferred_username",)
    browser = site.browser()
    response = await browser.attempt()
    await assert_fails_closed(site, browser, response, 403, caplog)


# ---------------------------------------------------------------- return targets


def _corpus(name: str) -> list[str]:
    lines = (CORPORA / name).read_text(encoding="utf-8").split("\n")
    return lines[:-1] if lines and lines[-1] == "" else lines


OAUTH2_PROXY = [unquote(line) for line in _corpus("oauth2-proxy-openredirects.txt")]
MOD_AUTH_OPENIDC = _corpus("mod_auth_openidc-open-redirect-payloads.txt")
CORPUS_TARGETS = [
    pytest.param(OAUTH2_PROXY, id="oauth2-proxy"),
    pytest.param(MOD_AUTH_OPENIDC, id="mod_auth_openidc"),
]


@pytest.mark.parametrize("targets", CORPUS_TARGETS)
def test_safe_return_to_keeps_every_corpus_line_on_the_site(targets: list[str]) -> None:
    """``safe_return_to`` of every corpus line is a path that keeps the browser on the site."""
    assert len(targets) > 500
    off_site = []
    for target in targets:
        path = safe_return_to(target)
        try:
            assert path.startswith("/")
            assert_on_site(path)  # even as a relative reference on its own
            assert_on_site(SITE + path)  # as the gate sends it
        except AssertionError:
            off_site.append((target, path))
    assert not off_site, off_site[:20]


JUDGED_LOCATIONS = [
    pytest.param("/reports?x=1", ("http", "testserver"), id="path"),
    pytest.param(SITE + "//evil.example", ("http", "testserver"), id="site-then-slashes"),
    pytest.param("http:reports", ("http", "testserver"), id="same-scheme-relative"),
    pytest.param("//evil.example", ("http", "evil.example"), id="scheme-relative"),
    pytest.param("////evil.example/", ("http", "evil.example"), id="many-slashes"),
    pytest.param("/\\evil.example", ("http", "evil.example"), id="slash-backslash"),
    pytest.param("/\t/evil.example", ("http", "evil.example"), id="slash-tab-slash"),
    pytest.param(" \n//evil.example", ("http", "evil.example"), id="leading-space-newline"),
    pytest.param("https:evil.example", ("https", "evil.example"), id="other-scheme-no-slashes"),
    pytest.param("http://testserver@evil.example", ("http", "evil.example"), id="userinfo"),
    pytest.param("javascript:alert(1)", ("javascript", ""), id="javascript"),
]


@pytest.mark.parametrize(("location", "expected"), JUDGED_LOCATIONS)
def test_browser_destination_judges_like_a_browser(
    location: str, expected: tuple[str, str]
) -> None:
    """The test's own judge of a Location resolves the classic open-redirect shapes as browsers do."""
    assert browser_destination(location) == expected


SAME_SITE_TARGETS = [
    pytest.param("/", "/", id="root"),
    pytest.param("/reports", "/reports", id="path"),
    pytest.param("/a/b?c=d&e=f", "/a/b?c=d&e=f", id="query"),
    pytest.param("/search?q=a+b", "/search?q=a+b", id="query-plus"),
    pytest.param("/search?q=a%20b", "/search?q=a%20b", id="encoded-space"),
    pytest.param("/caf%C3%A9", "/caf%C3%A9", id="encoded-non-ascii"),
    pytest.param("//evil.example", "/", id="scheme-relative"),
    pytest.param("https://evil.example/", "/", id="absolute"),
    pytest.param("/\\evil.example", "/", id="backslash"),
    pytest.param("/\t/evil.example", "/", id="tab"),
    pytest.param("/%0a/evil.example", "/", id="encoded-newline"),
    pytest.param("/%252f%252fevil.example", "/", id="double-encoded-slashes"),
    pytest.param("javascript:alert(1)", "/", id="javascript"),
]


@pytest.mark.parametrize(("target", "expected"), SAME_SITE_TARGETS)
def test_safe_return_to_keeps_paths_and_drops_the_rest(target: str, expected: str) -> None:
    """Plain paths survive ``safe_return_to`` unchanged; anything that could leave the site becomes ``/``."""
    assert safe_return_to(target) == expected


def _sample(lines: list[str], n: int) -> list[str]:
    return lines[:: max(1, len(lines) // n)][:n]


RD_SAMPLE = [
    pytest.param(line, id=f"{name}-{i}")
    for name, lines in (("oauth2-proxy", OAUTH2_PROXY), ("mod_auth_openidc", MOD_AUTH_OPENIDC))
    for i, line in enumerate(_sample(lines, 15))
]
PATH_SAMPLE = [
    pytest.param(line, id=f"{name}-{i}")
    for name, lines in (("oauth2-proxy", OAUTH2_PROXY), ("mod_auth_openidc", MOD_AUTH_OPENIDC))
    for i, line in enumerate(_sample([x for x in lines if x.startswith("/")], 15))
]


@pytest.mark.parametrize("target", RD_SAMPLE)
async def test_sign_in_with_rd_from_the_corpora_returns_to_the_site(
    site: Site, target: str
) -> None:
    """``/oauth2/start?rd=<corpus line>`` ends, after a complete sign-in, on the site's own origin."""
    browser = site.browser()
    response = await browser.sign_in(PREFIX + "/start?" + urlencode({"rd": target}))
    assert response.status_code == 302 and sets_session(response)
    assert_on_site(response.headers["location"])


@pytest.mark.parametrize("target", PATH_SAMPLE)
async def test_sign_in_at_a_corpus_path_returns_to_the_site(site: Site, target: str) -> None:
    """A protected URL whose path is a corpus line comes back, after sign-in, to the site's own origin."""
    browser = site.browser()
    response = await browser.sign_in(SITE + quote(target, safe=PRINTABLE))
    assert response.status_code == 302 and sets_session(response)
    assert_on_site(response.headers["location"])


@pytest.mark.parametrize(
    "page",
    [
        pytest.param("/reports/2024?sort=desc&q=a+b", id="plain"),
        pytest.param("/search?q=a%20b", id="encoded-space"),
        pytest.param("/caf%C3%A9/menu", id="encoded-non-ascii"),
    ],
)
async def test_return_after_sign_in_keeps_the_page_and_query(site: Site, page: str) -> None:
    """The control: the page the browser asked for, query included, is where it lands after signing in."""
    assert_signed_in(await site.browser().sign_in(page), page)


# ---------------------------------------------------------------- sign-out


async def _signed_in(site: Site) -> Browser:
    browser = site.browser()
    assert_signed_in(await browser.sign_in())
    return browser


async def _assert_still_signed_in(browser: Browser) -> None:
    assert (await browser.get(PREFIX + "/auth")).status_code == 202
    assert (await browser.get("/private")).status_code == 200


CROSS_SITE_SIGN_OUTS = [
    pytest.param({"sec-fetch-site": "cross-site"}, id="sec-fetch-site-cross-site"),
    pytest.param({"sec-fetch-site": "same-site"}, id="sec-fetch-site-same-site"),
    pytest.param({"origin": "https://evil.example"}, id="origin-foreign"),
    pytest.param({"origin": "http://testserver.evil.example"}, id="origin-lookalike"),
    pytest.param({"origin": "https://testserver"}, id="origin-other-scheme"),
    pytest.param({"origin": "null"}, id="origin-null-without-token"),
    pytest.param({}, id="no-headers-without-token"),
    pytest.param(
        {"sec-fetch-site": "same-origin", "origin": "https://evil.example"}, id="mixed-signals"
    ),
]


@pytest.mark.parametrize("headers", CROSS_SITE_SIGN_OUTS)
async def test_cross_site_sign_out_is_refused(
    site: Site, headers: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    """A sign-out POST that is not provably from this site gets a 403 page and signs no one out."""
    browser = await _signed_in(site)
    response = await browser.request(
        "POST", PREFIX + "/sign_out?rd=/", headers=headers, data={"csrf": "guess"}
    )
    assert_error_page(response, 403)
    assert not site.idp.revocations
    await _assert_still_signed_in(browser)
    assert_nothing_leaked(site, caplog)


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="plain"),
        pytest.param({"sec-fetch-site": "cross-site"}, id="cross-site"),
    ],
)
async def test_sign_out_get_only_shows_a_form(site: Site, headers: dict[str, str]) -> None:
    """A GET of the sign-out endpoint shows a POST confirmation form and signs no one out."""
    browser = await _signed_in(site)
    response = await browser.get(PREFIX + "/sign_out", headers=headers)
    assert response.status_code == 200
    assert "<form method=post" in response.text and 'name=csrf value="' in response.text
    assert response.headers.get("x-frame-options") == "DENY"
    assert not site.idp.revocations
    await _assert_still_signed_in(browser)


async def _post_with_origin(browser: Browser, url: str) -> httpx.Response:
    return await browser.request("POST", url, headers={"origin": SITE})


async def _post_same_origin_fetch(browser: Browser, url: str) -> httpx.Response:
    return await browser.request("POST", url, headers={"sec-fetch-site": "same-origin"})


async def _post_the_form(browser: Browser, url: str) -> httpx.Response:
    form = await browser.get(url)
    token = re.search(r'name=csrf value="([0-9a-f]+)"', form.text)
    assert token is not None
    return await browser.request("POST", url, data={"csrf": token.group(1)})


SAME_SITE_SIGN_OUTS = [
    pytest.param(_post_with_origin, id="origin-this-site"),
    pytest.param(_post_same_origin_fetch, id="sec-fetch-site-same-origin"),
    pytest.param(_post_the_form, id="confirmation-form-token"),
]


@pytest.mark.parametrize("post", SAME_SITE_SIGN_OUTS)
async def test_same_site_sign_out_revokes_and_ends_the_session(
    site: Site,
    post: Callable[[Browser, str], Awaitable[httpx.Response]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A sign-out from this site revokes the refresh token at the provider and the old cookie stops working."""
    browser = await _signed_in(site)
    old_cookie = browser.session_cookie()
    assert old_cookie is not None
    response = await post(browser, PREFIX + "/sign_out")
    assert response.status_code == 200 and "signed out" in response.text
    refresh_token = site.idp.token_answers[-1]["refresh_token"]
    assert site.idp.revocations == [(refresh_token, "refresh_token")]
    assert browser.session_cookie() is None
    replay = site.browser()
    replay.http.cookies.set(COOKIE, old_cookie, domain="testserver.local", path="/")
    assert (await replay.get(PREFIX + "/auth")).status_code == 401
    page = await replay.get("/private")
    assert page.status_code == 302 and page.headers["location"].startswith(AUTHORIZE)
    assert_nothing_leaked(site, caplog)


SIGN_OUT_RD = [
    pytest.param("/bye", SITE + "/bye", id="path"),
    *(
        pytest.param(target, None, id=f"corpus-{i}")
        for i, target in enumerate(_sample(OAUTH2_PROXY, 6) + _sample(MOD_AUTH_OPENIDC, 6))
    ),
]


@pytest.mark.parametrize(("rd", "expected"), SIGN_OUT_RD)
async def test_sign_out_rd_stays_on_the_site(site: Site, rd: str, expected: str | None) -> None:
    """The sign-out's ``rd`` leads only to a page of this site."""
    browser = await _signed_in(site)
    url = PREFIX + "/sign_out?" + urlencode({"rd": rd})
    response = await browser.request("POST", url, headers={"origin": SITE})
    if response.status_code == 200:  # an empty rd: the signed-out page
        assert rd == "" and "signed out" in response.text
        return
    assert response.status_code == 303
    assert_on_site(response.headers["location"])
    if expected is not None:
        assert response.headers["location"] == expected


# ---------------------------------------------------------------- APIs and auth_request


API_REQUESTS = [
    pytest.param("GET", {"accept": "application/json"}, id="json"),
    pytest.param("GET", {"accept": "*/*"}, id="any"),
    pytest.param("GET", {"x-requested-with": "XMLHttpRequest"}, id="xhr"),
    pytest.param("GET", {"sec-fetch-mode": "cors"}, id="fetch"),
    pytest.param("POST", {}, id="post"),
    pytest.param("DELETE", {"accept": "application/json"}, id="delete"),
]


@pytest.mark.parametrize(("method", "headers"), API_REQUESTS)
async def test_api_request_without_session_gets_401_json(
    site: Site, method: str, headers: dict[str, str]
) -> None:
    """A request that is not a browser navigation gets 401 JSON with a ``login_url``, never a redirect."""
    browser = site.browser()
    response = await browser.request(method, "/api/items?id=7", headers=headers)
    assert response.status_code == 401
    assert "location" not in response.headers
    assert response.headers["www-authenticate"].startswith("Bearer")
    body = response.json()
    assert body["error"] == "unauthenticated"
    login = urlsplit(body["login_url"])
    assert (login.scheme, login.netloc, login.path) == ("", "", PREFIX + "/start")
    assert parse_qs(login.query)["rd"] == ["/api/items?id=7"]
    assert not site.idp.authorize_requests and not sets_session(response)


async def test_auth_request_endpoint_is_401_then_202_with_identity(site: Site) -> None:
    """``/oauth2/auth`` answers 401 signed out and 202 with ``X-Auth-Request-*`` once signed in."""
    browser = site.browser()
    before = await browser.get(PREFIX + "/auth")
    assert before.status_code == 401
    assert "x-auth-request-user" not in before.headers
    assert_signed_in(await browser.sign_in())
    after = await browser.get(PREFIX + "/auth")
    assert after.status_code == 202
    assert after.headers["x-auth-request-user"] == USERS["alice"]["sub"]
    assert after.headers["x-auth-request-email"] == USERS["alice"]["email"]
    assert after.headers["x-auth-request-preferred-username"] == "alice"


# ---------------------------------------------------------------- readiness


async def test_readiness_says_only_ready_or_not_and_spares_a_failing_provider(
    make_site: Callable[..., Site], caplog: pytest.LogCaptureFixture
) -> None:
    """Anyone may ask /oauth2/ready: the answer is "not ready", the reason goes to the log
    once, and a failing JWKS is not fetched again for every probe."""
    site = make_site()
    site.idp.faults.jwks_status = 500
    browser = site.browser()
    answers = [await browser.get("/oauth2/ready") for _ in range(20)]
    assert {(a.status_code, a.text) for a in answers} == {(503, "not ready")}
    assert site.idp.jwks_fetches == 1
    assert caplog.text.count("not ready: provider") == 1


# ---------------------------------------------------------------- bearer tokens (issue 10)


def bearer(token: str, accept: str = "application/json") -> dict[str, str]:
    return {"authorization": f"Bearer {token}", "accept": accept}


def assert_invalid_token(response: httpx.Response) -> None:
    """RFC 6750: 401, ``WWW-Authenticate: Bearer error="invalid_token"``, JSON; never a
    redirect, never a session, never the app."""
    assert response.status_code == 401, response.text
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    assert response.headers["www-authenticate"].startswith("Bearer ")
    assert response.json()["error"] == "invalid_token"
    assert "location" not in response.headers
    assert not sets_session(response)
    assert not response.text.startswith("app:")


async def test_a_valid_bearer_token_reaches_the_app_as_its_user_and_makes_no_session(
    site: Site,
) -> None:
    """An API client with a token the provider vouches for (introspection) reaches the app
    as the token's user; no cookie is set; the answer is cached, so the next requests cost
    no provider call."""
    token = site.idp.access_token("alice")
    client = site.browser()
    for _ in range(5):
        response = await client.get("/private", headers=bearer(token))
        assert response.status_code == 200, response.text
        assert response.text.startswith("app: ")
        assert "set-cookie" not in response.headers
    assert site.idp.introspections == 1
    assert client.session_cookie() is None
    auth = await client.get(PREFIX + "/auth", headers=bearer(token))
    assert auth.status_code == 202 and auth.headers["x-auth-request-user"] == "alice-sub"


async def test_bearer_scopes_and_user_are_injected_as_for_a_session(site: Site) -> None:
    """``scope["user"]`` is the token's user and ``scope["auth"]`` holds its scopes."""
    seen: list[Any] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope)
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    gate = OakIDMiddleware(app, issuer=site.idp.issuer, client_id=site.idp.client_id,
                           client_secret=site.idp.client_secret, secret="s" * 32,
                           http=site.idp.http_client())
    token = site.idp.jwt_access_token("alice", scope="openid read:reports")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=gate), base_url=SITE) as c:
        assert (await c.get("/api", headers=bearer(token))).status_code == 204
    await gate.aclose()
    assert seen[0]["user"].sub == "alice-sub" and seen[0]["user"].is_authenticated
    assert set(seen[0]["auth"].scopes) == {"authenticated", "openid", "read:reports"}
    assert seen[0]["oakid"].access_token == token


def _forge_hs256(idp: HostileIdP) -> str:
    """An at+jwt keyed with the client secret: proves nothing about the provider."""
    now = int(time.time())
    claims = {"iss": idp.issuer, "sub": "mallory-sub", "aud": idp.client_id, "exp": now + 300}
    signing = json.dumps({"alg": "HS256", "typ": "at+jwt"}).encode()
    import base64
    import hmac as hmac_

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    head = b64(signing) + "." + b64(json.dumps(claims).encode())
    return head + "." + b64(hmac_.new(idp.client_secret.encode(), head.encode(), "sha256").digest())


def _tampered(token: str) -> str:
    head, body, signature = token.split(".")
    claims = json.loads(base64url_decode(body))
    claims["sub"] = "mallory-sub"
    return head + "." + base64url_encode(json.dumps(claims).encode()) + "." + signature


def base64url_decode(text: str) -> bytes:
    import base64

    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def base64url_encode(data: bytes) -> str:
    import base64

    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


#: (how the attacker's token is made, settings) -> always 401 invalid_token
BEARER_ATTACKS = [
    pytest.param(lambda idp: "not-a-token-anyone-issued", {}, id="unknown-token"),
    pytest.param(lambda idp: _revoked(idp), {}, id="revoked-token"),
    pytest.param(lambda idp: _with_faults(idp, {"client_id": "another-client", "aud": None}), {}, id="introspected-for-another-client"),
    pytest.param(lambda idp: _with_faults(idp, {"client_id": None, "aud": "another-api"}), {}, id="introspected-for-another-audience"),
    pytest.param(lambda idp: _with_faults(idp, {"exp": int(time.time()) - 3600}), {}, id="introspected-expired"),
    pytest.param(lambda idp: _with_faults(idp, {"active": "true"}), {}, id="active-not-boolean-true"),
    pytest.param(lambda idp: _with_faults(idp, {"sub": None}), {}, id="introspection-names-no-user"),
    pytest.param(lambda idp: idp.jwt_access_token(exp=int(time.time()) - 3600), {}, id="jwt-expired"),
    pytest.param(lambda idp: idp.jwt_access_token(aud="another-api", client_id="another-client"), {}, id="jwt-for-another-audience"),
    pytest.param(lambda idp: idp.jwt_access_token(iss="https://evil.example"), {}, id="jwt-another-issuer"),
    pytest.param(lambda idp: idp.jwt_access_token(nbf=int(time.time()) + 3600), {}, id="jwt-not-yet-valid"),
    pytest.param(lambda idp: idp.jwt_access_token(drop=("sub",)), {}, id="jwt-without-subject"),
    pytest.param(lambda idp: idp.jwt_access_token(drop=("exp",)), {}, id="jwt-without-expiry"),
    pytest.param(lambda idp: idp.jwt_access_token(key="attacker-1"), {}, id="jwt-signed-by-the-attacker"),
    pytest.param(lambda idp: _tampered(idp.jwt_access_token()), {}, id="jwt-tampered"),
    pytest.param(lambda idp: _forge_hs256(idp), {}, id="jwt-hs256-with-the-client-secret"),
    pytest.param(lambda idp: _hand_made(idp, {"alg": "none", "typ": "at+jwt"}), {}, id="jwt-alg-none"),
    pytest.param(lambda idp: _hand_made(idp, {"alg": "ES256", "typ": "at+jwt", "kid": "ec-1", "crit": ["x"], "x": 1}), {}, id="jwt-critical-header"),
    pytest.param(lambda idp: idp.jwt_access_token(header={"typ": "JWT"}), {}, id="id-token-shaped-jwt"),
    pytest.param(lambda idp: idp._id_token("alice", None), {}, id="an-id-token-as-access-token"),
    pytest.param(lambda idp: idp.access_token() + "\u00e9", {}, id="non-ascii-token"),
    pytest.param(lambda idp: "a" * 9000, {}, id="oversized-token"),
    pytest.param(lambda idp: idp.access_token(), {"bearer_audiences": "reports-api", "client_id_override": True}, id="issued-to-the-gate-of-another-app"),
]


def _hand_made(idp: HostileIdP, header: dict[str, Any]) -> str:
    """A token joserfc rightly refuses to make (``alg: none``, ``crit``), built by hand."""
    from support.hostile_idp import _jws

    now = int(time.time())
    claims = {"iss": idp.issuer, "sub": "alice-sub", "aud": idp.client_id, "exp": now + 300}
    return _jws(header, claims, None)


def _revoked(idp: HostileIdP) -> str:
    token = idp.access_token()
    idp.revoke_access_token(token)
    return token


def _with_faults(idp: HostileIdP, extra: dict[str, Any]) -> str:
    idp.faults.introspection_extra = extra
    return idp.access_token()


@pytest.mark.parametrize("accept", [HTML, "application/json"], ids=["browser", "api"])
@pytest.mark.parametrize(("make_token", "settings"), BEARER_ATTACKS)
async def test_a_bearer_token_not_issued_for_this_gate_is_refused(
    make_site: Callable[..., Site],
    make_token: Callable[[HostileIdP], str],
    settings: dict[str, Any],
    accept: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Unknown, revoked, expired, for another client or audience, signed by someone else,
    tampered, an ID token, malformed: 401 invalid_token, even for a browser (never a
    redirect), no session, the app never reached, the token in no log line."""
    settings = dict(settings)
    if settings.pop("client_id_override", False):
        # The same provider, another app (client) behind another gate: its tokens are
        # introspected as issued to that client, not to this gate.
        settings["bearer_audiences"] = "reports-api"
        make_site_idp = HostileIdP(ISSUER)
        site = make_site(make_site_idp, **settings)
        site.idp.faults.introspection_extra = {"client_id": "other-app"}
    else:
        site = make_site(**settings)
    token = make_token(site.idp)
    client = site.browser()
    try:
        response = await client.request("GET", "/private", headers=bearer(token, accept))
    except UnicodeEncodeError:
        return  # the client cannot even send it; nothing to refuse
    assert_invalid_token(response)
    assert token not in caplog.text


async def test_a_refused_token_is_remembered_briefly(site: Site) -> None:
    """A flood of one bad token costs the provider one introspection, not one per request."""
    client = site.browser()
    for _ in range(20):
        assert_invalid_token(await client.get("/private", headers=bearer("bad-token-value")))
    assert site.idp.introspections == 1


async def test_a_request_with_a_cookie_and_a_token_uses_the_cookie(site: Site) -> None:
    """A signed-in browser that also sends another user's token stays its own user."""
    browser = site.browser()
    assert_signed_in(await browser.sign_in())
    token = site.idp.access_token("mallory")
    response = await browser.get("/private", headers={"authorization": f"Bearer {token}"})
    assert response.text == "app: Alice at /private"
    assert site.idp.introspections == 0


async def test_bearer_tokens_off_ignores_them(make_site: Callable[..., Site]) -> None:
    site = make_site(bearer_tokens="off")
    response = await site.browser().get("/private", headers=bearer(site.idp.access_token()))
    assert response.status_code == 401 and response.json()["error"] == "unauthenticated"
    assert site.idp.introspections == 0


async def test_userinfo_vouches_only_when_the_deployer_opts_in(make_site: Callable[..., Site]) -> None:
    """Without introspection (OakID), a token is only accepted with bearer_tokens=userinfo."""
    strict = make_site()
    strict.idp.faults.discovery_drop = ("introspection_endpoint",)
    assert_invalid_token(await strict.browser().get("/private", headers=bearer(strict.idp.access_token())))
    lenient = make_site(bearer_tokens="userinfo")
    lenient.idp.faults.discovery_drop = ("introspection_endpoint",)
    token = lenient.idp.access_token()
    response = await lenient.browser().get("/private", headers=bearer(token))
    assert response.status_code == 200 and response.text == "app: Alice at /private"
    assert_invalid_token(await lenient.browser().get("/private", headers=bearer("nobody-issued-this")))


async def test_authorization_rules_apply_to_bearer_users(make_site: Callable[..., Site]) -> None:
    site = make_site(allowed_groups="admins")
    response = await site.browser().get("/private", headers=bearer(site.idp.access_token()))
    assert response.status_code == 403 and response.json()["error"] == "access_denied"


async def test_a_provider_failing_at_introspection_is_a_502_and_not_remembered(site: Site) -> None:
    token = site.idp.access_token()
    site.idp.faults.introspection_status = 500
    response = await site.browser().get("/private", headers=bearer(token))
    assert response.status_code in (502, 503) and "location" not in response.headers
    site.idp.faults.introspection_status = 200
    assert (await site.browser().get("/private", headers=bearer(token))).status_code == 200


async def test_a_jwt_access_token_needs_no_provider_call_and_follows_key_rotation(site: Site) -> None:
    """RFC 9068 tokens are checked against the JWKS: no introspection; a token signed with
    a key the provider rotated in is accepted after one JWKS refetch."""
    client = site.browser()
    response = await client.get("/private", headers=bearer(site.idp.jwt_access_token()))
    assert response.status_code == 200, response.text
    assert site.idp.introspections == 0
    site.idp.rotated = True
    site.clock.advance(30)
    fetches = site.idp.jwks_fetches
    response = await client.get("/private", headers=bearer(site.idp.jwt_access_token(key="ec-2")))
    assert response.status_code == 200, response.text
    assert site.idp.jwks_fetches == fetches + 1


async def test_a_jwt_for_a_configured_audience_is_accepted(make_site: Callable[..., Site]) -> None:
    site = make_site(bearer_audiences="https://reports.example/api")
    token = site.idp.jwt_access_token(aud="https://reports.example/api", client_id="cli-app")
    assert (await site.browser().get("/private", headers=bearer(token))).status_code == 200


# ---------------------------------------------------------------- logout at the provider (issue 11)


async def _signed_out_at(site: Site, rd: str | None = "/bye") -> tuple[Browser, httpx.Response]:
    browser = site.browser()
    assert_signed_in(await browser.sign_in())
    query = f"?rd={rd}" if rd is not None else ""
    response = await browser.request(
        "POST", f"{PREFIX}/sign_out{query}", headers={"sec-fetch-site": "same-origin", "accept": HTML}
    )
    return browser, response


async def test_sign_out_goes_on_to_the_providers_logout_with_the_id_token_hint(
    make_site: Callable[..., Site], caplog: pytest.LogCaptureFixture
) -> None:
    """RP-initiated logout: signed out here first, then sent to end_session_endpoint with
    id_token_hint, client_id, the gate's post-logout URI and a state; back at
    /oauth2/signed_out with that state, to the same-origin rd."""
    site = make_site()
    site.idp.faults.end_session = True
    browser, response = await _signed_out_at(site)
    assert response.status_code == 303
    location = httpx.URL(response.headers["location"])
    assert str(location).startswith(ISSUER + "/logout?")
    params = dict(location.params)
    assert params["client_id"] == site.idp.client_id
    assert params["post_logout_redirect_uri"] == SITE + PREFIX + "/signed_out"
    assert params["id_token_hint"].count(".") == 2 and params["state"]
    assert browser.session_cookie() is None  # ended here already
    assert (await browser.get("/private")).status_code == 302
    back = await browser.get(f"{PREFIX}/signed_out?state={params['state']}")
    assert back.status_code == 303 and back.headers["location"] == SITE + "/bye"
    assert params["id_token_hint"] not in caplog.text and params["state"] not in caplog.text


@pytest.mark.parametrize(
    "returned",
    [pytest.param("another-state", id="forged-state"), pytest.param(None, id="no-state")],
)
async def test_a_return_from_logout_with_another_state_goes_nowhere(
    make_site: Callable[..., Site], returned: str | None
) -> None:
    """Without this browser's state the return shows the signed-out page: rd is not followed
    (no open door for someone else's redirect), and the cookie goes."""
    site = make_site()
    site.idp.faults.end_session = True
    browser, response = await _signed_out_at(site, rd="/bye")
    assert response.status_code == 303
    query = f"?state={returned}" if returned else ""
    back = await browser.get(f"{PREFIX}/signed_out{query}")
    assert back.status_code == 200 and "signed out" in back.text
    assert "location" not in back.headers
    assert "oakid_session_logout=\"\"" in back.headers["set-cookie"] or "Max-Age=0" in back.headers["set-cookie"]


@pytest.mark.parametrize(
    ("settings", "end_session", "discovery_status"),
    [
        pytest.param({"provider_logout": False}, True, 200, id="turned-off"),
        pytest.param({}, False, 200, id="provider-offers-none"),
        pytest.param({}, True, 500, id="provider-down"),
    ],
)
async def test_sign_out_stays_local_when_the_provider_cannot_log_out(
    make_site: Callable[..., Site], settings: dict[str, Any], end_session: bool, discovery_status: int
) -> None:
    site = make_site(**settings)
    site.idp.faults.end_session = end_session
    browser = site.browser()
    assert_signed_in(await browser.sign_in())
    if discovery_status != 200:
        # Down, and its metadata not known here (a restarted or another worker).
        site.idp.faults.discovery_status = discovery_status
        site.gate.gate.parts.provider.state = None
    response = await browser.request(
        "POST", f"{PREFIX}/sign_out?rd=/bye", headers={"sec-fetch-site": "same-origin", "accept": HTML}
    )
    assert response.status_code == 303 and response.headers["location"] == SITE + "/bye"
    assert browser.session_cookie() is None


async def test_the_id_token_is_kept_only_for_a_logout_at_the_provider(
    make_site: Callable[..., Site],
) -> None:
    """A provider without RP-initiated logout: no ID token is kept in the session."""
    plain = make_site()
    browser = plain.browser()
    assert_signed_in(await browser.sign_in())
    key = plain.gate.gate.parts.session_key(browser.session_cookie() or "")
    stored = plain.gate.store.get_session(key)
    assert stored is not None and stored.id_token is None
    with_logout = make_site()
    with_logout.idp.faults.end_session = True
    browser = with_logout.browser()
    assert_signed_in(await browser.sign_in())
    key = with_logout.gate.gate.parts.session_key(browser.session_cookie() or "")
    stored = with_logout.gate.store.get_session(key)
    assert stored is not None and stored.id_token is not None
    assert stored.id_token not in repr(stored)


# ---------------------------------------------------------------- back-channel logout (issue 11)


async def _backchannel(site: Site, token: str | None) -> httpx.Response:
    data = {} if token is None else {"logout_token": token}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=site.gate), base_url=SITE) as provider:
        return await provider.post(f"{PREFIX}/backchannel_logout", data=data)


@pytest.mark.parametrize("store", ["memory", "sqlite", pytest.param("redis", marks=pytest.mark.e2e)])
async def test_a_backchannel_logout_ends_every_session_of_the_user(
    make_site: Callable[..., Site], store: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """The provider's logout token for a user ends each of their sessions here (two
    browsers), in every store; another user's session stays."""
    url = {"memory": "memory://", "sqlite": f"sqlite:///{tmp_path / 'bc.db'}"}.get(store)
    site = make_site(session_store=url or request.getfixturevalue("redis_url"))
    first, second, other = site.browser(), site.browser(), site.browser()
    assert_signed_in(await first.sign_in())
    assert_signed_in(await second.sign_in())
    assert_signed_in(await other.sign_in(user="mallory"))
    response = await _backchannel(site, site.idp.logout_token("alice"))
    assert response.status_code == 200 and "no-store" in response.headers["cache-control"]
    for browser in (first, second):
        assert (await browser.get("/private")).status_code == 302  # signed out
    assert (await other.get("/private")).text.startswith("app: ")


async def test_a_backchannel_logout_by_sid_ends_that_provider_session_only(
    make_site: Callable[..., Site],
) -> None:
    site = make_site()
    first, second = site.browser(), site.browser()
    site.idp.faults.claims = {"sid": "provider-session-1"}
    assert_signed_in(await first.sign_in())
    site.idp.faults.claims = {"sid": "provider-session-2"}
    assert_signed_in(await second.sign_in())
    token = site.idp.logout_token("alice", sid="provider-session-1")
    assert (await _backchannel(site, token)).status_code == 200
    assert (await first.get("/private")).status_code == 302
    assert (await second.get("/private")).text.startswith("app: ")


def _now() -> int:
    return int(time.time())


#: a logout token an attacker (or a broken provider) sends: always 400, nothing ends
LOGOUT_TOKEN_ATTACKS = [
    pytest.param(lambda idp: None, id="no-token"),
    pytest.param(lambda idp: "not.a.jwt", id="garbage"),
    pytest.param(lambda idp: idp.logout_token(key="attacker-1"), id="signed-by-the-attacker"),
    pytest.param(lambda idp: _tampered(idp.logout_token()), id="tampered"),
    pytest.param(lambda idp: idp.logout_token(iss="https://evil.example"), id="another-issuer"),
    pytest.param(lambda idp: idp.logout_token(aud="another-client"), id="another-audience"),
    pytest.param(lambda idp: idp.logout_token(nonce="n"), id="holds-a-nonce"),
    pytest.param(lambda idp: idp.logout_token(drop=("events",)), id="no-event"),
    pytest.param(lambda idp: idp.logout_token(events={"other": {}}), id="another-event"),
    pytest.param(lambda idp: idp.logout_token(None), id="neither-sub-nor-sid"),
    pytest.param(lambda idp: idp.logout_token(drop=("jti",)), id="no-jti"),
    pytest.param(lambda idp: idp.logout_token(drop=("iat",)), id="no-iat"),
    pytest.param(lambda idp: idp.logout_token(iat=_now() - 3600, exp=_now() + 60), id="issued-long-ago"),
    pytest.param(lambda idp: idp.logout_token(iat=_now() + 3600), id="issued-in-the-future"),
    pytest.param(lambda idp: idp.logout_token(exp=_now() - 600), id="expired"),
    pytest.param(lambda idp: idp._id_token("alice", None), id="an-id-token"),
]


@pytest.mark.parametrize("make_token", LOGOUT_TOKEN_ATTACKS)
async def test_a_forged_logout_token_ends_no_session(
    make_site: Callable[..., Site], make_token: Callable[[HostileIdP], str | None],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Anyone can POST to the back-channel endpoint: a token the provider did not make
    for this client, for a logout, recently, is a 400 and signs nobody out."""
    site = make_site()
    browser = site.browser()
    assert_signed_in(await browser.sign_in())
    token = make_token(site.idp)
    response = await _backchannel(site, token)
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_request"
    assert (await browser.get("/private")).text.startswith("app: ")
    if token:
        assert token not in caplog.text


async def test_a_replayed_logout_token_is_refused(make_site: Callable[..., Site]) -> None:
    """A logout token works once (its jti is kept in the store): replayed after the user
    signed in again, it ends nothing."""
    site = make_site()
    token = site.idp.logout_token("alice")
    first = site.browser()
    assert_signed_in(await first.sign_in())
    assert (await _backchannel(site, token)).status_code == 200
    again = site.browser()
    assert_signed_in(await again.sign_in())
    assert (await _backchannel(site, token)).status_code == 400
    assert (await again.get("/private")).text.startswith("app: ")


@pytest.mark.parametrize("order", ["valid-first", "valid-last"])
async def test_two_authorization_headers_are_refused(site: Site, order: str) -> None:
    """Parameter pollution for bearer tokens: two ``Authorization`` lines (a valid token
    and another) are not one token; the request is refused, never passed as either."""
    token = site.idp.access_token("alice")
    lines = [("authorization", f"Bearer {token}"), ("authorization", "Bearer other-token")]
    if order == "valid-last":
        lines.reverse()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=site.gate), base_url=SITE) as api:
        response = await api.get("/private", headers=[*lines, ("accept", "application/json")])
    assert_invalid_token(response)
    assert site.idp.introspections == 0
