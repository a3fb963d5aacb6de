"""The HTML pages the gate shows: errors, not allowed, sign-out confirmation, signed out.

:class:`Pages` works out what each page says (the site's name, who is signed
in, what happened, what to do next, a reference id) and has a
:class:`Renderer` write it: the templates of :mod:`oakid_gate.templates`,
compiled at start-up and handed over as a value, so that nothing here reads a
file. Every value placed in a page is HTML-escaped (by the templates'
autoescaping; :func:`plain_error_page` by hand). Pages never hold a token, a
code, a cookie or a stack trace.
"""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from typing import Any, Protocol

__all__ = ["Pages", "Renderer", "next_step", "plain_error_page"]


class Renderer(Protocol):
    """Writes page ``name`` (``error.html``, ...) with ``context``, from memory."""

    def render(self, name: str, context: Mapping[str, Any]) -> str: ...


def next_step(status: int, *, retry: bool) -> str:
    """What a visitor can do after an error with ``status``."""
    if retry:
        return "Sign in again: it starts afresh and usually works."
    if status >= 500:
        return (
            "This is not your fault. Try again in a moment; if it keeps happening, tell "
            "the site's administrator and give them the reference below."
        )
    return "Go back to the start page and try again from there."


class Pages:
    """The gate's pages for one site: ``app_name`` (else each request's host) and
    ``logo_url`` on every page; the sign-in link under ``prefix``."""

    def __init__(
        self, renderer: Renderer, *, prefix: str, app_name: str | None, logo_url: str | None
    ) -> None:
        self._renderer = renderer
        self._app_name = app_name
        self._logo_url = logo_url
        self._sign_in_url = prefix + "/start?rd=/"

    def error(
        self,
        host: str,
        *,
        status: int,
        title: str,
        message: str,
        reference: str | None,
        retry_url: str | None = None,
    ) -> bytes:
        """A page that says what went wrong, what to do, and the reference in the log."""
        return self._page(
            "error.html",
            host,
            title=title,
            reference=reference,
            status=status,
            message=message,
            next_step=next_step(status, retry=retry_url is not None),
            retry_url=retry_url,
        )

    def not_allowed(
        self,
        host: str,
        *,
        message: str,
        missing: str,
        sign_out_url: str,
        user: str | None,
        reference: str | None,
    ) -> bytes:
        """403: what the signed-in user lacks, and sign-out to come back as someone else."""
        return self._page(
            "not_allowed.html",
            host,
            title="Not allowed",
            user=user,
            reference=reference,
            message=message,
            missing=missing,
            sign_out_url=sign_out_url,
        )

    def sign_out(
        self,
        host: str,
        *,
        action: str,
        csrf_token: str | None,
        user: str | None,
        cancel_url: str,
    ) -> bytes:
        """The confirmation form a GET of the sign-out endpoint shows (``csrf_token``
        ``None``: nobody is signed in, so there is nothing to confirm)."""
        return self._page(
            "sign_out.html",
            host,
            title="Sign out" if csrf_token is not None else "Not signed in",
            user=user,
            action=action,
            csrf_token=csrf_token,
            cancel_url=cancel_url,
        )

    def signed_out(self, host: str) -> bytes:
        return self._page("signed_out.html", host, title="Signed out")

    def _page(
        self,
        name: str,
        host: str,
        *,
        title: str,
        user: str | None = None,
        reference: str | None = None,
        **values: Any,
    ) -> bytes:
        context = {
            "app_name": self._app_name or host or "this site",
            "logo_url": self._logo_url,
            "user": user,
            "title": title,
            "reference": reference or None,
            "home_url": "/",
            "sign_in_url": self._sign_in_url,
            **values,
        }
        return self._renderer.render(name, context).encode()


def plain_error_page(title: str, message: str) -> bytes:
    """A bare error page, for an answer made without a gate's :class:`Pages`."""
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width,initial-scale=1">'
        f"<meta name=robots content=noindex><title>{escape(title)}</title>"
        "<style>body{font:16px/1.5 system-ui,sans-serif;max-width:36rem;margin:4rem auto;"
        "padding:0 1rem}</style></head>"
        f"<body><main><h1>{escape(title)}</h1><p>{escape(message)}</p></main></body></html>"
    ).encode()
