"""Debian's Chromium, driven by Playwright's sync API, kept on loopback.

::

    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        context = new_loopback_context(browser)
        page = context.new_page()
        page.goto("http://127.0.0.1:8000/")

Never ``playwright install``: the browser is ``/usr/bin/chromium``. Every
context made here aborts each request whose host is not loopback (the
provider's pages import web fonts, and this machine has no internet).

Playwright's sync API and asyncio share one thread badly. The sync API refuses
to start inside a running asyncio loop, so browser fixtures and tests stay
synchronous. The other way round is worse: after every sync call Playwright
marks its own loop as the thread's running loop (``asyncio._set_running_loop``)
and leaves it so, and from then on ``asyncio.run`` and every pytest-asyncio
test or fixture in the process fail with "cannot be called from a running
event loop". :class:`PlaywrightSession` keeps one browser for a whole test
session and *parks* that mark whenever Playwright is not in use, restoring it
around Playwright work (:meth:`PlaywrightSession.active`). Clearing the mark
for good is not an option: Playwright's next call then loses its connection.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Playwright, Route

__all__ = [
    "CHROMIUM",
    "CHROMIUM_ARGS",
    "LOOPBACK_HOSTS",
    "PlaywrightSession",
    "guard_loopback",
    "is_loopback_url",
    "launch_chromium",
    "launch_persistent_chromium",
    "missing_chromium",
    "new_loopback_context",
]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
_NETWORK_SCHEMES = frozenset({"http", "https", "ws", "wss", "ftp"})


def missing_chromium() -> str | None:
    """Say what is missing to drive Chromium, or None when it can run."""
    if not os.access(CHROMIUM, os.X_OK):
        return f"{CHROMIUM} is not installed (Debian package chromium; scripts/install-peers.sh)"
    if importlib.util.find_spec("playwright") is None:
        return "the playwright Python package is not installed (pip install -e '.[test]')"
    return None


def is_loopback_url(url: str) -> bool:
    """True for URLs that stay on this machine (and for data:, blob:, about: ...)."""
    parts = urlsplit(url)
    if parts.scheme not in _NETWORK_SCHEMES:
        return True
    return parts.hostname in LOOPBACK_HOSTS


def launch_chromium(playwright: Playwright, **launch_options: Any) -> Browser:
    """Launch headless ``/usr/bin/chromium`` with the flags this machine needs.

    Playwright gives each launch a fresh temporary profile.
    """
    return playwright.chromium.launch(
        executable_path=str(CHROMIUM),
        headless=True,
        args=list(CHROMIUM_ARGS),
        **launch_options,
    )


def guard_loopback(context: BrowserContext, blocked: list[str] | None = None) -> None:
    """Abort every request of ``context`` to a host that is not loopback.

    The aborted URLs are appended to ``blocked`` when it is given.
    """

    def handle(route: Route) -> None:
        url = route.request.url
        if is_loopback_url(url):
            route.continue_()
        else:
            if blocked is not None:
                blocked.append(url)
            route.abort("blockedbyclient")

    context.route("**/*", handle)


def new_loopback_context(
    browser: Browser, *, blocked: list[str] | None = None, **context_options: Any
) -> BrowserContext:
    """A new context (own cookies and storage) whose requests stay on loopback."""
    context = browser.new_context(**context_options)
    guard_loopback(context, blocked)
    return context


def launch_persistent_chromium(
    playwright: Playwright,
    user_data_dir: Path,
    *,
    blocked: list[str] | None = None,
    **options: Any,
) -> BrowserContext:
    """Chromium with a profile in ``user_data_dir`` (give it a fresh directory),
    for tests that need a profile across restarts; loopback only, like the rest."""
    context = playwright.chromium.launch_persistent_context(
        str(user_data_dir),
        executable_path=str(CHROMIUM),
        headless=True,
        args=list(CHROMIUM_ARGS),
        **options,
    )
    guard_loopback(context, blocked)
    return context


class PlaywrightSession:
    """Playwright's sync API and one Chromium, shareable with asyncio code.

    Use Playwright objects only inside ``with session.active():`` (the test
    fixtures do this around a browser test's call phase); outside it the
    thread has no running loop, so asyncio code runs as usual.
    """

    def __init__(self) -> None:
        from playwright.sync_api import sync_playwright

        self.playwright = sync_playwright().start()
        # Right after start the running-loop mark is Playwright's own loop.
        self._loop = asyncio._get_running_loop()
        try:
            self.browser = launch_chromium(self.playwright)
        except BaseException:
            self.playwright.stop()
            raise
        finally:
            self.park()

    def park(self) -> None:
        """Clear the thread's running-loop mark if it is Playwright's."""
        if self._loop is not None and asyncio._get_running_loop() is self._loop:
            asyncio._set_running_loop(None)

    def resume(self) -> None:
        """Give Playwright its running-loop mark back (no-op inside another loop)."""
        if (
            self._loop is not None
            and not self._loop.is_closed()
            and asyncio._get_running_loop() is None
        ):
            asyncio._set_running_loop(self._loop)

    @contextmanager
    def active(self) -> Iterator[None]:
        """Within this block Playwright works and asyncio does not."""
        self.resume()
        try:
            yield
        finally:
            self.park()

    def new_context(
        self, *, blocked: list[str] | None = None, **context_options: Any
    ) -> BrowserContext:
        """A fresh loopback-only context of the shared browser."""
        with self.active():
            return new_loopback_context(self.browser, blocked=blocked, **context_options)

    def close(self) -> None:
        """Close the browser and stop Playwright (and its driver process)."""
        self.resume()
        try:
            self.browser.close()
        finally:
            self.playwright.stop()  # also clears the running-loop mark
            self.park()
