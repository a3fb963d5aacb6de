"""The example app that ``oakid-gate demo`` protects: it shows who signed in."""

from __future__ import annotations

from html import escape

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import Route

__all__ = ["demo_app"]


async def _home(request: Request) -> HTMLResponse:
    user = request.user
    rows = "".join(
        f"<tr><th>{escape(str(k))}</th><td>{escape(str(v))}</td></tr>"
        for k, v in sorted(user.claims.items())
    )
    return HTMLResponse(
        "<!doctype html><title>oakid-gate demo</title>"
        "<style>body{font:16px/1.5 system-ui;max-width:40rem;margin:3rem auto}"
        "th{text-align:left;padding-right:1em}</style>"
        f"<h1>Hello, {escape(user.display_name)}</h1>"
        "<p>This page is only reachable when signed in. Your claims:</p>"
        f"<table>{rows}</table>"
        '<p><a href="/api/me">/api/me</a> (JSON) · <a href="/public">a public page</a></p>'
        '<form method="post" action="/oauth2/sign_out?rd=/public">'
        '<button type="submit">Sign out</button></form>'
    )


async def _me(request: Request) -> JSONResponse:
    view = request.scope["oakid"]
    return JSONResponse(
        {"sub": request.user.sub, "email": request.user.email, "expires_at": view.expires_at}
    )


async def _public(request: Request) -> HTMLResponse:
    who = escape(request.user.display_name) if request.user.is_authenticated else "nobody"
    return HTMLResponse(
        f"<!doctype html><title>public</title><p>This page is public. Signed in: {who}.</p>"
        '<p><a href="/">Go to the protected page</a></p>'
    )


def demo_app() -> Starlette:
    return Starlette(routes=[Route("/", _home), Route("/api/me", _me), Route("/public", _public)])
