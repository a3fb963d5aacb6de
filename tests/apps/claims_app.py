"""A protected test app: shows what the gate gave it."""

from __future__ import annotations

import hashlib
import os

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import Route


async def private(request: Request) -> JSONResponse:
    view = request.scope.get("oakid")
    return JSONResponse(
        {
            "path": request.url.path,
            "query": request.url.query,
            "authenticated": request.user.is_authenticated,
            "sub": request.user.sub,
            "identity": request.user.identity,
            "display_name": request.user.display_name,
            "email": request.user.email,
            "claims": dict(request.user.claims),
            "scopes": list(request.auth.scopes),
            "access_token_sha256": hashlib.sha256(view.access_token.encode()).hexdigest(),
            "expires_at": view.expires_at,
            "pid": os.getpid(),
        }
    )


async def home(request: Request) -> HTMLResponse:
    return HTMLResponse(
        "<!doctype html><title>home</title>"
        f"<p id=who>{request.user.display_name}</p>"
        '<form method="post" action="/oauth2/sign_out?rd=/public">'
        '<button id="sign-out" type="submit">Sign out</button></form>'
    )


async def public(request: Request) -> HTMLResponse:
    who = request.user.display_name if request.user.is_authenticated else "anonymous"
    return HTMLResponse(f"<!doctype html><title>public</title><p id=who>{who}</p>")


app = Starlette(
    routes=[
        Route("/", home),
        Route("/private", private),
        Route("/api/data", private, methods=["GET", "POST"]),
        Route("/public", public),
    ]
)
