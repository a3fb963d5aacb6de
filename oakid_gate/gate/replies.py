"""What the gate decides for a request, and every answer it gives itself.

A program ends with an :data:`Outcome`: :class:`Forward` (call the app, with
this session or anonymously) or :class:`Reply` (answer the client directly).
Every error answer is built by :func:`error_reply`: an HTML page for a browser,
``{"error", "error_description"}`` JSON for anything else, ``no-store`` always.
No answer ever holds a token, a code, a cookie value or a stack trace.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

from ..errors import OakIDGateError, ProviderError, StoreUnavailable
from . import pages
from .audit import audit
from .pages import Pages
from .records import Session
from .request import GateRequest, Origin

__all__ = [
    "NO_STORE",
    "UNEXPECTED_ERROR",
    "Forward",
    "Headers",
    "Outcome",
    "Replies",
    "Reply",
    "error_reply",
    "html_reply",
    "json_reply",
    "method_not_allowed",
    "text_reply",
]

log = logging.getLogger("oakid_gate")

Headers = tuple[tuple[str, str], ...]

NO_STORE: Headers = (("cache-control", "no-store"), ("pragma", "no-cache"))


@dataclass(frozen=True, slots=True)
class Forward:
    """Call the app. ``session`` is ``None`` for an anonymous request on a public path."""

    session: Session | None


@dataclass(frozen=True, slots=True)
class Reply:
    """Answer the client directly."""

    status: int
    headers: Headers
    body: bytes = b""

    def with_headers(self, *extra: tuple[str, str]) -> Reply:
        return Reply(self.status, self.headers + extra, self.body)


Outcome = Forward | Reply

#: what an adapter answers when something unforeseen breaks: no detail, no trace
UNEXPECTED_ERROR = Reply(
    500,
    (("content-type", "text/plain; charset=utf-8"), ("cache-control", "no-store")),
    b"The sign-in gate hit an unexpected error. Try again later.",
)


def text_reply(status: int, text: str, extra: Headers = ()) -> Reply:
    return Reply(
        status, (("content-type", "text/plain; charset=utf-8"), *NO_STORE, *extra), text.encode()
    )


def json_reply(status: int, body: Mapping[str, Any], extra: Headers = ()) -> Reply:
    return Reply(
        status,
        (("content-type", "application/json"), *NO_STORE, *extra),
        json.dumps(body, separators=(",", ":")).encode(),
    )


def html_reply(status: int, page: bytes, extra: Headers = ()) -> Reply:
    return Reply(status, (("content-type", "text/html; charset=utf-8"), *NO_STORE, *extra), page)


def method_not_allowed(allow: str) -> Reply:
    return text_reply(405, "Method Not Allowed", (("allow", allow),))


def error_reply(
    status: int,
    error: str,
    title: str,
    message: str,
    *,
    html: bool,
    page: bytes | None = None,
) -> Reply:
    """An error answer: ``page`` (else a plain page) for a browser,
    ``{"error", "error_description"}`` otherwise."""
    if not html:
        return json_reply(status, {"error": error, "error_description": message})
    return html_reply(status, page if page is not None else pages.plain_error_page(title, message))


def _requires(missing: str) -> str:
    return f"You are signed in, but this site requires {missing}."


class Replies:
    """The answers that depend on the gate's ``prefix`` and pages: errors, 401, 403, 404.

    Every error page carries the request's id as its reference, and the log line of
    the event carries it as ``request_id``: what a visitor reads out is what the
    operator finds in the log.
    """

    def __init__(self, prefix: str, pages: Pages, origin: Origin) -> None:
        self._prefix = prefix
        self._prefix_slash = prefix + "/"
        self.pages = pages
        self._origin = origin

    def host(self, req: GateRequest) -> str:
        """The site's host, as the visitor sees it (the pages' default ``app_name``)."""
        return urlsplit(self._origin.of(req)).netloc

    def wants_html(self, req: GateRequest) -> bool:
        """Whether an error is shown as a page: the client accepts HTML, or it is a
        navigation to one of the gate's own endpoints (whatever it accepts)."""
        return req.accepts_html() or (
            req.path.startswith(self._prefix_slash)
            and req.headers.get("sec-fetch-mode") == "navigate"
        )

    def error(
        self, req: GateRequest, exc: OakIDGateError, title: str, *, retry: bool = False
    ) -> Reply:
        """The answer for ``exc``, logged by how much it matters to the operator."""
        status = exc.status_hint if exc.status_hint >= 400 else 500
        level = (
            logging.WARNING
            if status >= 500 or isinstance(exc, (StoreUnavailable, ProviderError))
            else logging.INFO
        )
        log.log(level, "%s: %s", title, exc.message, extra=_reference(req))
        return self._error(req, status, exc.error, title, exc.message, retry=retry)

    def _error(
        self, req: GateRequest, status: int, error: str, title: str, message: str, *, retry: bool
    ) -> Reply:
        html = self.wants_html(req)
        page = None
        if html:
            page = self.pages.error(
                self.host(req),
                status=status,
                title=title,
                message=message,
                reference=req.request_id,
                retry_url=self._prefix + "/start?rd=/" if retry else None,
            )
        return error_reply(status, error, title, message, html=html, page=page)

    def bad_gateway(self, req: GateRequest, message: str, cause: str) -> Reply:
        """502 for the proxy: the service behind the gate did not answer (``message``, for
        the visitor); logged with ``cause`` (for the operator) and the page's reference."""
        log.warning("proxy: %s", cause, extra=_reference(req))
        return self._error(req, 502, "bad_gateway", "Bad gateway", message, retry=False)

    def not_allowed(
        self,
        req: GateRequest,
        missing: str,
        sub: str | None = None,
        session: str | None = None,
        user: str | None = None,
    ) -> Reply:
        """403 for a signed-in user the authorization rules refuse: what was missing, and
        a way to sign out (to switch accounts); JSON for API clients. Never a redirect:
        signing in again would end here again."""
        audit("authorization", "refused", req, reason=missing, sub=sub, session=session)
        if not self.wants_html(req):
            return self._not_allowed_body(missing)
        page = self.pages.not_allowed(
            self.host(req),
            message=_requires(missing),
            missing=missing,
            sign_out_url=self._prefix + "/sign_out",
            user=user,
            reference=req.request_id,
        )
        return html_reply(403, page)

    def not_allowed_json(
        self,
        req: GateRequest | None,
        missing: str,
        sub: str | None = None,
        session: str | None = None,
    ) -> Reply:
        """403 in JSON (API clients, nginx ``auth_request``)."""
        audit("authorization", "refused", req, reason=missing, sub=sub, session=session)
        return self._not_allowed_body(missing)

    def _not_allowed_body(self, missing: str) -> Reply:
        body = {
            "error": "access_denied",
            "error_description": _requires(missing),
            "missing": missing,
        }
        return json_reply(403, body)

    def error_json(self, exc: OakIDGateError) -> Reply:
        """A client's mistake, in JSON, logged at info."""
        log.info("%s", exc.message)
        return json_reply(exc.status_hint, {"error": exc.error, "error_description": exc.message})

    def login_url(self, req: GateRequest) -> str:
        """The gate's sign-in, coming back to ``req``'s path and query."""
        return self._prefix + "/start?" + urlencode({"rd": req.url_path})

    def unauthenticated(self, req: GateRequest) -> Reply:
        """401 for a request that is not a navigation: JSON with where to sign in."""
        return json_reply(
            401,
            {"error": "unauthenticated", "login_url": self.login_url(req)},
            (("www-authenticate", 'Bearer realm="oakid-gate"'),),
        )

    def sign_in(self, req: GateRequest) -> Reply:
        """302 into the gate's sign-in, then back to ``req``'s URL (a navigation that a
        route's own rule met with nobody signed in, on a public path)."""
        return Reply(302, (("location", self.login_url(req)), *NO_STORE))

    def unexpected(self, req: GateRequest) -> Reply:
        """500 after an error nobody expected, called while it is being handled: logged
        with its traceback and the reference its page shows."""
        log.error("oakid-gate: unexpected error", exc_info=True, extra=_reference(req))
        message = "The sign-in gate hit an error it did not expect."
        return self._error(req, 500, "server_error", "Something went wrong", message, retry=False)

    def not_found(self, req: GateRequest) -> Reply:
        """404 for a path under the gate's prefix that is none of its endpoints."""
        log.info("no such gate endpoint", extra=_reference(req))
        message = "There is no such page here."
        page = self.pages.error(
            self.host(req), status=404, title="Not found", message=message, reference=req.request_id
        )
        return error_reply(404, "not_found", "Not found", message, html=True, page=page)


def _reference(req: GateRequest) -> dict[str, Any]:
    """The log record's fields that tie it to the page: the request id (and client)."""
    return {"oakid": {"request_id": req.request_id or None, "client": req.client}}
