"""A Starlette app behind oakid-gate: ``request.user`` is the signed-in user.

Settings come from ``OAKID_*`` variables. Serve it with uvicorn::

    uvicorn --host 127.0.0.1 --port 8000 examples.starlette_app:app
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from oakid_gate import OakIDMiddleware
from oakid_gate.starlette import requires


async def home(request: Request) -> JSONResponse:
    user = request.user  # an OakIDUser; request.auth.scopes holds the granted scopes
    return JSONResponse({"hello": user.display_name, "email": user.email, "sub": user.sub})


async def health(request: Request) -> JSONResponse:
    # On a public path without a session, request.user is the anonymous user: the
    # same attributes (email None, groups ()), is_authenticated False.
    return JSONResponse({"ok": True, "signed_in": request.user.is_authenticated})


@requires(groups=["admins"])  # 403 for a signed-in user outside "admins"
async def admin(request: Request) -> JSONResponse:
    return JSONResponse({"admin": request.user.display_name})


routes = [Route("/", home), Route("/health", health), Route("/admin", admin)]
# Wrapping here (rather than in Starlette's middleware list, built at the first
# request) checks the settings when the module is imported.
app = OakIDMiddleware(Starlette(routes=routes), public_paths=["/health"])
