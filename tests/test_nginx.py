"""nginx ``auth_request`` in front of a backend, with the gate's ``/oauth2/auth``.

Runs ``examples/nginx/nginx.conf.template`` as it is, rendered with free
ports, under Debian's ``nginx``, in front of the test upstream
(:mod:`apps.upstream`) as the backend, with ``oakid-gate proxy`` as the gate
(nginx sends it only ``/oauth2/...``), against the dev-idp and node
``oidc-provider``. Without nginx the tests are skipped, or fail under ``CI=true``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from apps.upstream import start_upstream
from peers.gate import (
    NAVIGATION_HEADERS,
    DevIdP,
    GateProcess,
    dev_idp_sign_in,
    start_dev_idp,
    start_gate,
)
from peers.oidc_provider import OidcProvider, sign_in
from peers.ports import free_port, wait_for_port
from peers.process import Running, spawn

TEMPLATE = Path(__file__).resolve().parent.parent / "examples" / "nginx" / "nginx.conf.template"
PLACEHOLDERS = ("OAKID_LISTEN", "OAKID_GATE", "OAKID_BACKEND")

IDENTITY = (
    "x-forwarded-user",
    "x-forwarded-email",
    "x-forwarded-preferred-username",
    "x-forwarded-groups",
    "x-forwarded-access-token",
)

FORGED = [
    ("X-Forwarded-User", "forged"),
    ("x-forwarded-user", "forged"),
    ("X-FORWARDED-USER", "forged"),
    ("X_Forwarded_User", "forged"),
    ("X-Forwarded-Email", "forged@evil.test"),
    ("X-Forwarded-Groups", "admins"),
    ("x_forwarded_groups", "admins"),
    ("X-Forwarded-Preferred-Username", "forged"),
    ("X-Forwarded-Access-Token", "forged"),
    ("X-Auth-Request-User", "forged"),
    ("X-Auth-Request-Email", "forged@evil.test"),
    ("x_auth_request_user", "forged"),
]


def nginx_binary() -> str | None:
    return shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")


def require_nginx() -> str:
    """The nginx binary; skip without one, or fail under ``CI=true``."""
    binary = nginx_binary()
    if binary is None:
        reason = "nginx is not installed (apt-get install nginx)"
        if os.environ.get("CI", "").lower() in {"true", "1", "yes"}:
            pytest.fail(f"test peer missing under CI=true: {reason}", pytrace=False)
        pytest.skip(f"test peer missing: {reason}")
    return binary


def render(template: str, **values: str) -> str:
    """``envsubst`` limited to :data:`PLACEHOLDERS`: nginx's own ``$variables`` stay."""
    for name in PLACEHOLDERS:
        template = template.replace("${" + name + "}", values[name])
    assert "${OAKID_" not in template
    return template


def identity_seen(headers: list[list[str]]) -> list[tuple[str, str]]:
    def norm(name: str) -> str:
        return name.lower().replace("_", "-")

    return sorted(
        (norm(k), v)
        for k, v in headers
        if norm(k) in IDENTITY or norm(k).startswith("x-auth-request-")
    )


# ---------------------------------------------------------------- processes


@dataclass
class Site:
    """nginx in front of the backend, the gate behind /oauth2/, one provider."""

    name: str
    url: str
    sign_in: Callable[[httpx.Client, str], httpx.Response]
    identity: list[tuple[str, str]]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The work directory of the scenarios, which all need nginx: skipped without it."""
    require_nginx()
    return tmp_path_factory.mktemp("nginx")


@pytest.fixture(scope="module")
def backend(workdir: Path) -> Iterator[Running]:
    with start_upstream(workdir) as server:
        yield server


def start_nginx(workdir: Path, port: int, gate: GateProcess, backend: Running) -> Running:
    binary = require_nginx()
    prefix = workdir / f"nginx-{port}"
    prefix.mkdir()
    conf = prefix / "nginx.conf"
    conf.write_text(
        render(
            TEMPLATE.read_text(),
            OAKID_LISTEN=f"127.0.0.1:{port}",
            OAKID_GATE=f"127.0.0.1:{gate.port}",
            OAKID_BACKEND=f"127.0.0.1:{backend.port}",
        )
    )
    # Under root, nginx's workers would switch to an unprivileged user, which
    # cannot enter pytest's private temporary directory.
    directives = "daemon off;" + (" user root;" if os.geteuid() == 0 else "")
    log_path = prefix / "stderr.log"
    process = spawn(
        [binary, "-e", "stderr", "-p", str(prefix), "-c", str(conf), "-g", directives],
        log_path=log_path,
    )
    try:
        wait_for_port(port, process=process)
    except (RuntimeError, TimeoutError) as exc:
        raise RuntimeError(f"nginx did not start: {exc}\n{log_path.read_text()}") from None
    return Running(process, port, log_path)


@pytest.fixture(scope="module")
def dev_idp(workdir: Path) -> Iterator[DevIdP]:
    with start_dev_idp(workdir) as idp:
        yield idp


@contextmanager
def nginx_and_proxy(
    workdir: Path, port: int, backend: Running, settings: dict[str, str]
) -> Iterator[Running]:
    """nginx on ``port`` in front of ``backend``, with ``oakid-gate proxy`` behind its
    /oauth2/ (``settings`` for the provider, nginx its trusted proxy)."""
    settings = {
        **settings,
        "upstream": backend.url,
        "base_url": f"http://127.0.0.1:{port}",
        "trusted_proxies": "127.0.0.1",
    }
    with (
        start_gate(workdir, ["proxy"], settings=settings) as gate,
        start_nginx(workdir, port, gate, backend) as nginx,
    ):
        yield nginx


@pytest.fixture(scope="module")
def dev_idp_site(workdir: Path, backend: Running, dev_idp: DevIdP) -> Iterator[Site]:
    with nginx_and_proxy(workdir, free_port(), backend, dev_idp.settings()) as nginx:
        yield Site(
            "dev-idp",
            nginx.url,
            lambda http, url: dev_idp_sign_in(http, url, "alice"),
            [
                ("x-forwarded-email", "alice@example.test"),
                ("x-forwarded-groups", "admins,staff"),
                ("x-forwarded-preferred-username", "alice"),
                ("x-forwarded-user", "u-alice"),
            ],
        )


@pytest.fixture(scope="module")
def node_site(workdir: Path, backend: Running, oidc_provider: OidcProvider) -> Iterator[Site]:
    port = free_port()
    with nginx_and_proxy(workdir, port, backend, oidc_provider.gate_settings(port)) as nginx:
        yield Site(
            "oidc-provider",
            nginx.url,
            lambda http, url: sign_in(http, url, login="alice"),
            [
                ("x-forwarded-email", "alice@example.test"),
                ("x-forwarded-groups", "staff"),
                ("x-forwarded-preferred-username", "alice"),
                ("x-forwarded-user", "alice"),
            ],
        )


@pytest.fixture(params=["dev-idp", "oidc-provider"])
def site(request: pytest.FixtureRequest) -> Site:
    """nginx and the gate behind each provider in turn."""
    value: Site = request.getfixturevalue(
        "dev_idp_site" if request.param == "dev-idp" else "node_site"
    )
    return value


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=30, trust_env=False) as client:
        yield client


# ---------------------------------------------------------------- tests


def test_template_renders_only_its_placeholders() -> None:
    """Rendering fills the three placeholders and leaves nginx's variables alone."""
    text = render(TEMPLATE.read_text(), OAKID_LISTEN="l:1", OAKID_GATE="g:2", OAKID_BACKEND="b:3")
    assert "listen l:1;" in text and "server g:2;" in text and "server b:3;" in text
    assert "$upstream_http_x_auth_request_user" in text
    assert "$request_uri" in text


@pytest.mark.e2e
def test_browser_is_sent_to_sign_in_and_backend_sees_the_user(
    site: Site, http: httpx.Client
) -> None:
    """Without a session nginx redirects a browser to /oauth2/start?rd=<page>; after the
    sign-in at the provider it is back at the page, and the backend gets the user."""
    first = http.get(f"{site.url}/private/page?x=1", headers=NAVIGATION_HEADERS)
    assert first.status_code == 302
    assert first.headers["location"] == "/oauth2/start?rd=/private/page?x=1"

    response = site.sign_in(http, f"{site.url}/private/page?x=1")
    assert response.status_code == 200, response.text
    assert str(response.url) == f"{site.url}/private/page?x=1"
    body = response.json()
    assert body["path"] == "/private/page"
    assert identity_seen(body["headers"]) == site.identity


@pytest.mark.e2e
def test_api_request_without_session_is_401(site: Site) -> None:
    """An API client without a session gets a JSON 401 from nginx, never a redirect."""
    response = httpx.get(f"{site.url}/api/items", headers={"Accept": "application/json"})
    assert response.status_code == 401
    assert response.json()["error"] == "unauthenticated"
    assert response.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.e2e
def test_forged_identity_headers_never_reach_the_backend(site: Site, http: httpx.Client) -> None:
    """X-Forwarded-User, X-Auth-Request-User and friends sent by the client, in any
    spelling, are replaced by the gate's values or removed."""
    unauthenticated = http.get(f"{site.url}/api", headers=FORGED)
    assert unauthenticated.status_code == 401

    site.sign_in(http, f"{site.url}/")
    response = http.get(f"{site.url}/api", headers=FORGED)
    assert response.status_code == 200
    assert identity_seen(response.json()["headers"]) == site.identity


@pytest.mark.e2e
def test_sign_out_through_nginx(site: Site, http: httpx.Client) -> None:
    """Signing out at /oauth2/sign_out through nginx ends the session for nginx too."""
    site.sign_in(http, f"{site.url}/")
    api = {"Accept": "application/json"}
    assert http.get(f"{site.url}/api", headers=api).status_code == 200
    out = http.post(f"{site.url}/oauth2/sign_out?rd=/", headers={"Origin": site.url})
    assert out.status_code == 303
    assert http.get(f"{site.url}/api", headers=api).status_code == 401


@pytest.mark.e2e
def test_a_location_with_a_group_rule_admits_members_only(site: Site, http: httpx.Client) -> None:
    """``/admins/`` asks ``/oauth2/auth?allowed_groups=admins``: the dev-idp's alice is in
    admins and passes; oidc-provider's alice (staff) gets 403 from nginx, not a sign-in."""
    site.sign_in(http, f"{site.url}/private")
    response = http.get(f"{site.url}/admins/report", headers=NAVIGATION_HEADERS)
    member = ("x-forwarded-groups", "admins,staff") in site.identity
    assert response.status_code == (200 if member else 403), response.text
    assert "location" not in response.headers
    if member:
        assert response.json()["path"] == "/admins/report"
