"""Apps behind the gate, for the mount-prefix attacks (tests/test_mount_prefix.py).

Each routes ``/admin`` (a page only signed-in users may see) and ``/public/...``
(``public_paths``), and the gate's settings come from ``OAKID_*`` variables:

- ``wsgi``: a plain WSGI app routing on ``PATH_INFO``, in ``OakIDWSGIMiddleware``;
- ``asgi``: a Starlette app (routing on ``path`` less ``root_path``), in ``OakIDMiddleware``;
- ``proxy_fix_outside``: ``wsgi`` behind werkzeug's ``ProxyFix(x_prefix=1)`` placed
  *outside* the gate, as the docs say not to.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from werkzeug.middleware.proxy_fix import ProxyFix

from oakid_gate import OakIDMiddleware, OakIDWSGIMiddleware

ADMIN = "the admin page, for signed-in users only"


def _page(path: str) -> str | None:
    if path == "/admin":
        return ADMIN
    if path.startswith("/public/"):
        return "a public page"
    return None


def _wsgi(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    page = _page(environ.get("PATH_INFO", ""))
    status = "200 OK" if page is not None else "404 Not Found"
    start_response(status, [("content-type", "text/plain")])
    return [(page or "not found").encode()]


async def _starlette(request: Request) -> PlainTextResponse:
    page = _page(request.url.path.removeprefix(request.scope.get("root_path", "")))
    return PlainTextResponse(page or "not found", 200 if page is not None else 404)


wsgi = OakIDWSGIMiddleware(_wsgi)
asgi = OakIDMiddleware(
    Starlette(routes=[Route("/admin", _starlette), Route("/public/{rest:path}", _starlette)])
)
proxy_fix_outside = ProxyFix(wsgi, x_prefix=1)
