"""Shared fixtures: the independently written test peers, started on loopback.

Peers start lazily, once per session, the first time a test asks for them,
and are stopped (by process id) when the session ends, whatever happened.

``gate_port`` / ``gate_url``
    A free loopback port chosen up front for the gate under test, and its
    origin. The session's provider already knows
    ``{gate_url}/oauth2/callback`` as a redirect URI, so an e2e module runs
    its gate there and signs in with ``gate-basic`` or ``gate-post`` at once.
    Gates on this port must be stopped at the end of the module (or test)
    that started them, so that the next one can bind it.
``oidc_provider``
    node ``oidc-provider`` for the session (:class:`peers.oidc_provider.OidcProvider`),
    clients ``gate-basic`` (client_secret_basic, ES256) and ``gate-post``
    (client_secret_post, RS256). A test that needs another redirect URI, or
    short-lived access tokens, registers a client of its own:
    ``oidc_provider.register_client(redirect_uris=[...], access_token_ttl=2)``.
``oidc_provider_factory``
    Starts a dedicated provider, for a test that needs other accounts or
    provider-wide settings: ``oidc_provider_factory(redirect_uris=[...])``.
``redis_server`` / ``redis_url``
    One ``redis-server`` for the session; ``redis_url`` flushes it (and
    restarts it if a test stopped it) before handing out its URL.
``browser`` / ``browser_context`` / ``page``
    Headless Debian Chromium through Playwright's *sync* API, one browser for
    the session, a fresh loopback-only context per test. Browser tests are
    plain ``def`` tests; see :mod:`peers.browser` for how they coexist with
    pytest-asyncio tests in one session.

A test using any of these is marked ``e2e``. A missing peer skips the test,
with the reason, except under ``CI=true``, where it fails it.
"""

from __future__ import annotations

import inspect
import os
import shutil
from collections.abc import Callable, Generator, Iterator
from typing import TYPE_CHECKING, Any

import pytest
from peers.browser import PlaywrightSession, missing_chromium
from peers.oidc_provider import OidcProvider, missing_oidc_provider, start_oidc_provider
from peers.ports import free_port
from peers.redis_server import RedisServer, redis_server_path, start_redis
from peers.redis_topologies import Cluster, SentinelSet, start_cluster, start_sentinel
from support import log_watch

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page

OidcProviderFactory = Callable[..., OidcProvider]

_PEER_FIXTURES = frozenset(
    {
        "oidc_provider",
        "oidc_provider_factory",
        "redis_server",
        "redis_url",
        "redis_sentinel_set",
        "sentinel_url",
        "redis_cluster",
        "cluster_url",
        "playwright_session",
        "browser",
        "browser_context",
        "page",
    }
)
_BROWSER_FIXTURES = frozenset({"playwright_session", "browser", "browser_context", "page"})
_PLAYWRIGHT_KEY = pytest.StashKey[PlaywrightSession]()


def require_peer(missing: str | None) -> None:
    """Skip the test when a peer is missing, or fail it when ``CI`` is true."""
    if missing is None:
        return
    if os.environ.get("CI", "").lower() in {"true", "1", "yes"}:
        pytest.fail(f"test peer missing under CI=true: {missing}", pytrace=False)
    pytest.skip(f"test peer missing: {missing}")


# -- markers and failure reports ------------------------------------------------


def pytest_configure(config: pytest.Config) -> None:
    # Every log record of the session, for tests/test_logs.py (which runs last).
    log_watch.install()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _PEER_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.e2e)
    # The log check reads what every other test logged: it goes last.
    items.sort(key=lambda item: item.nodeid.startswith("tests/test_logs.py"))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, object, object]:
    # Browser tests call Playwright's sync API in their body: give it its
    # running loop for exactly that long (see peers.browser).
    # A coroutine test is never one (it runs on pytest-asyncio's loop), whatever its
    # arguments are called (a parametrized ``page`` that is a path is not the fixture).
    session: PlaywrightSession | None = item.config.stash.get(_PLAYWRIGHT_KEY, None)
    uses_browser = _BROWSER_FIXTURES.intersection(getattr(item, "fixturenames", ()))
    if session is not None and uses_browser and not inspect.iscoroutinefunction(getattr(item, "obj", None)):
        with session.active():
            return (yield)
    return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed:
        # The provider's side of a failure: its error bodies say little, its
        # log says why ("grant request is invalid" -> err.error_detail).
        for name, value in getattr(item, "funcargs", {}).items():
            if isinstance(value, OidcProvider):
                tail = "\n".join(value.log_lines()[-40:])
                report.sections.append((f"oidc-provider log ({name}, last lines)", tail))
    return report


# -- the gate's place ------------------------------------------------------------


@pytest.fixture(scope="session")
def gate_port() -> int:
    """A loopback port for the gate under test, known before the provider starts."""
    return free_port()


@pytest.fixture(scope="session")
def gate_url(gate_port: int) -> str:
    """The gate's origin, ``http://127.0.0.1:{gate_port}``."""
    return f"http://127.0.0.1:{gate_port}"


# -- oidc-provider ---------------------------------------------------------------


@pytest.fixture(scope="session")
def oidc_provider_factory(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[OidcProviderFactory]:
    """Start providers with :func:`peers.oidc_provider.start_oidc_provider`'s
    keyword arguments; all are stopped at the end of the session."""
    require_peer(missing_oidc_provider())
    started: list[OidcProvider] = []

    def start(**options: Any) -> OidcProvider:
        workdir = tmp_path_factory.mktemp("oidc-provider")
        provider = start_oidc_provider(workdir, **options)
        started.append(provider)
        return provider

    try:
        yield start
    finally:
        for provider in started:
            provider.stop()


@pytest.fixture(scope="session")
def oidc_provider(oidc_provider_factory: OidcProviderFactory, gate_url: str) -> OidcProvider:
    """The session's provider; its default clients redirect to ``{gate_url}/oauth2/callback``."""
    return oidc_provider_factory(redirect_uris=[f"{gate_url}/oauth2/callback"])


# -- redis -----------------------------------------------------------------------


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One ``redis-server`` for the session, on a free loopback port."""
    require_peer(None if redis_server_path() else "redis-server is not installed")
    server = start_redis(tmp_path_factory.mktemp("redis"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The session's redis, running and empty, as ``redis://127.0.0.1:PORT/0``."""
    if not redis_server.running:
        redis_server.start()
    redis_server.flush()
    return redis_server.url


@pytest.fixture(scope="session")
def redis_sentinel_set(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentinelSet]:
    """A primary, a replica and ``redis-sentinel`` for the session (never failed over)."""
    require_peer(None if shutil.which("redis-sentinel") else "redis-sentinel is not installed")
    found = start_sentinel(tmp_path_factory.mktemp("sentinel"))
    try:
        yield found
    finally:
        found.stop()


@pytest.fixture
def sentinel_url(redis_sentinel_set: SentinelSet) -> str:
    """The session's sentinel set, empty, as ``redis+sentinel://127.0.0.1:PORT/oakid/0``."""
    redis_sentinel_set.flush()
    return redis_sentinel_set.url


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A Redis Cluster of three primaries for the session."""
    require_peer(None if shutil.which("redis-cli") else "redis-cli is not installed")
    found = start_cluster(tmp_path_factory.mktemp("cluster"))
    try:
        yield found
    finally:
        found.stop()


@pytest.fixture
def cluster_url(redis_cluster: Cluster) -> str:
    """The session's cluster, empty, as ``redis+cluster://127.0.0.1:A,...``."""
    redis_cluster.flush()
    return redis_cluster.url


# -- Django ----------------------------------------------------------------------


@pytest.fixture
def django_project() -> Iterator[None]:
    """Django configured in this process (support/django_project.py), emptied after."""
    from support import django_project as project

    yield from project.django_project()


# -- Chromium --------------------------------------------------------------------


@pytest.fixture(scope="session")
def playwright_session(pytestconfig: pytest.Config) -> Iterator[PlaywrightSession]:
    """Playwright and one headless Chromium for the whole session."""
    require_peer(missing_chromium())
    session = PlaywrightSession()
    pytestconfig.stash[_PLAYWRIGHT_KEY] = session
    try:
        yield session
    finally:
        del pytestconfig.stash[_PLAYWRIGHT_KEY]
        session.close()


@pytest.fixture(scope="session")
def browser(playwright_session: PlaywrightSession) -> Browser:
    """The session's Chromium; make contexts with ``peers.browser.new_loopback_context``."""
    return playwright_session.browser


@pytest.fixture
def blocked_requests() -> list[str]:
    """URLs the test's browser context refused to fetch (not loopback)."""
    return []


@pytest.fixture
def browser_context(
    playwright_session: PlaywrightSession, blocked_requests: list[str]
) -> Iterator[BrowserContext]:
    """A fresh context (no cookies) whose requests to non-loopback hosts are aborted."""
    context = playwright_session.new_context(blocked=blocked_requests)
    try:
        yield context
    finally:
        with playwright_session.active():
            context.close()


@pytest.fixture
def page(playwright_session: PlaywrightSession, browser_context: BrowserContext) -> Page:
    """A new page in :func:`browser_context`."""
    with playwright_session.active():
        return browser_context.new_page()
