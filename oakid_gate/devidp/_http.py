"""HTTP in and out for the dev-idp's Starlette app: parameters and responses.

Reading a query or an ``application/x-www-form-urlencoded`` body (bounded in
size and field count), and the response shapes: HTML pages (no caching,
framing or referrers), redirects, JSON and OAuth JSON errors.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse

from ._errors import InvalidRequest, OAuthError

__all__ = [
    "NO_STORE",
    "client_auth_error",
    "html",
    "json_error",
    "json_no_store",
    "query_params",
    "read_form",
    "redirect",
]

_FORM = "application/x-www-form-urlencoded"
_MAX_BODY = 64 * 1024
_MAX_FIELDS = 100
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_PAGE_HEADERS = {
    **NO_STORE,
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    # same-origin, not no-referrer: with no-referrer Chromium sends "Origin: null" on
    # the sign-in form POST, which the login-CSRF check must refuse.
    "Referrer-Policy": "same-origin",
}
_BASIC_CHALLENGE = 'Basic realm="oakid-gate dev-idp", charset="UTF-8"'


def _multi(pairs: list[tuple[str, str]]) -> dict[str, list[str]]:
    params: dict[str, list[str]] = {}
    for name, value in pairs:
        params.setdefault(name, []).append(value)
    return params


def query_params(request: Request) -> dict[str, list[str]]:
    """The query string, every value of every parameter."""
    return _multi(parse_qsl(request.url.query, keep_blank_values=True))


async def read_form(request: Request) -> dict[str, list[str]]:
    """An ``application/x-www-form-urlencoded`` body; InvalidRequest otherwise."""
    content_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if content_type != _FORM:
        raise InvalidRequest(f"the body must be {_FORM}")
    body = await request.body()
    if len(body) > _MAX_BODY:
        raise InvalidRequest("request body too large")
    try:
        text = body.decode("utf-8")
        pairs = parse_qsl(text, keep_blank_values=True, max_num_fields=_MAX_FIELDS)
    except (UnicodeDecodeError, ValueError):
        raise InvalidRequest("malformed form body") from None
    return _multi(pairs)


def html(content: str, status_code: int = 200) -> HTMLResponse:
    """A page: not cached, not framed, no cross-site referrer."""
    return HTMLResponse(content, status_code=status_code, headers=_PAGE_HEADERS)


def redirect(url: str) -> RedirectResponse:
    """A 302 that is not cached (it may carry a code)."""
    return RedirectResponse(url, status_code=302, headers=NO_STORE)


def json_no_store(content: Any) -> JSONResponse:
    """A JSON answer that holds tokens or claims, so is not cached (RFC 6749 5.1)."""
    return JSONResponse(content, headers=NO_STORE)


def json_error(error: OAuthError, headers: Mapping[str, str] | None = None) -> JSONResponse:
    """The RFC 6749 5.2 error body with the error's status."""
    return JSONResponse(error.as_json(), status_code=error.status_hint, headers=headers)


def client_auth_error(error: OAuthError, headers: Mapping[str, str]) -> JSONResponse:
    """An error where clients authenticate: a 401 asks for HTTP Basic (RFC 6749 5.2)."""
    if error.status_hint == 401:
        headers = {**headers, "WWW-Authenticate": _BASIC_CHALLENGE}
    return json_error(error, headers or None)
