"""Two unprotected apps that say what the gate gave them: ``asgi`` (Starlette) and ``wsgi`` (Flask).

Served by ``oakid-gate run apps.whoami:asgi`` or ``apps.whoami:wsgi``; both
answer the same JSON, with the serving process's id (to tell workers apart)::

    GET /private, GET|POST /api/data    who is signed in (claims, REMOTE_USER, token hash)
    GET /public, /public/...            who, if anyone
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

from flask import Flask, request
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from oakid_gate.flask import current_session, current_user


def _answer(
    interface: str, path: str, query: str, user: Any, view: Any, remote_user: Any
) -> dict[str, Any]:
    signed_in = bool(user.is_authenticated)
    return {
        "interface": interface,
        "pid": os.getpid(),
        "path": path,
        "query": query,
        "authenticated": signed_in,
        "remote_user": remote_user,
        "identity": user.identity if signed_in else None,
        "sub": user.sub if signed_in else None,
        "email": user.email if signed_in else None,
        "claims": dict(user.claims) if signed_in else None,
        "access_token_sha256": (
            hashlib.sha256(view.access_token.encode()).hexdigest() if view is not None else None
        ),
    }


# ---------------------------------------------------------------- ASGI


async def _asgi_whoami(request: Request) -> JSONResponse:
    return JSONResponse(
        _answer(
            "asgi",
            request.url.path,
            request.url.query,
            request.user,
            request.scope.get("oakid"),
            None,
        )
    )


asgi = Starlette(
    routes=[
        Route("/private", _asgi_whoami),
        Route("/api/data", _asgi_whoami, methods=["GET", "POST"]),
        Route("/public", _asgi_whoami),
        Route("/public/{rest:path}", _asgi_whoami),
    ]
)


# ---------------------------------------------------------------- WSGI

wsgi = Flask(__name__)


@wsgi.route("/private")
@wsgi.route("/api/data", methods=["GET", "POST"])
@wsgi.route("/public")
@wsgi.route("/public/<path:rest>")
def _wsgi_whoami(rest: str = "") -> dict[str, Any]:
    return _answer(
        "wsgi",
        request.path,
        request.query_string.decode(),
        current_user,
        current_session(),
        request.environ.get("REMOTE_USER"),
    )


# ---------------------------------------------------------------- not apps, for the refusals


def ambiguous(*args: Any) -> Any:
    """Neither clearly ASGI nor clearly WSGI."""


not_callable = "not an app"
