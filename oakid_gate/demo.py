"""The example app that ``oakid-gate demo`` protects: what the gate gives an app, in a minute.

Its page shows the signed-in user and their groups, links to the gate's
``/oauth2/userinfo``, makes an API call with the session's access token (to the
provider's userinfo endpoint, from the server: the token itself never reaches
the page) and has the sign-out button. ``/public`` is a page without sign-in.
"""

from __future__ import annotations

import json
from html import escape

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import Route

__all__ = ["demo_app"]

_STYLE = (
    ":root{color-scheme:light dark;--fg:#1f2328;--bg:#fff;--accent:#0b57d0;--accent-fg:#fff;"
    "--line:#d0d7de;--panel:#f6f8fa}"
    "@media (prefers-color-scheme:dark){:root{--fg:#e6edf3;--bg:#0d1117;--accent:#79b8ff;"
    "--accent-fg:#0d1117;--line:#30363d;--panel:#161b22}}"
    "html{background:var(--bg);color:var(--fg)}"
    "body{font:1rem/1.5 system-ui,sans-serif;max-width:44rem;margin:0 auto;padding:1.5rem 1rem;"
    "overflow-wrap:anywhere}"
    "a{color:var(--accent)}th{text-align:left;padding-right:1em;vertical-align:top}"
    "pre,code{background:var(--panel);border:1px solid var(--line);border-radius:4px}"
    "pre{padding:.5rem;white-space:pre-wrap;overflow-wrap:anywhere}code{padding:0 .3em}"
    "button{font:inherit;font-weight:600;padding:.5rem 1.25rem;border-radius:6px;"
    "border:2px solid var(--accent);background:var(--accent);color:var(--accent-fg)}"
    "section{margin:1.5rem 0}"
)


def _page(title: str, body: str) -> HTMLResponse:
    return HTMLResponse(
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width,initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body><main>{body}</main></body></html>"
    )


def demo_app(api_url: str | None = None) -> Starlette:
    """The demo app; ``api_url`` is called with the user's access token (the provider's
    userinfo endpoint), and its answer shown."""

    async def home(request: Request) -> HTMLResponse:
        user = request.user
        groups = ", ".join(escape(g) for g in user.groups) or "none"
        rows = "".join(
            f"<tr><th scope=row>{escape(str(k))}</th><td>{escape(str(v))}</td></tr>"
            for k, v in sorted(user.claims.items())
        )
        api = await _api_call(api_url, request.scope["oakid"].access_token)
        return _page(
            "oakid-gate demo",
            f"<h1>Hello, {escape(user.display_name)}</h1>"
            f"<p>You are signed in as <strong>{escape(user.identity)}</strong>; "
            f"your groups: <strong>{groups}</strong>. This page is only reachable signed in: "
            "the gate in front of it checked your session and handed the app "
            "<code>request.user</code>.</p>"
            '<section aria-labelledby="api"><h2 id="api">An API call with your access token</h2>'
            f"{api}</section>"
            '<section aria-labelledby="more"><h2 id="more">What else to look at</h2><ul>'
            '<li><a href="/oauth2/userinfo">/oauth2/userinfo</a>: what the gate knows of you, '
            "as JSON</li>"
            '<li><a href="/api/me">/api/me</a>: this app\'s own API, behind the gate</li>'
            '<li><a href="/public">/public</a>: a page open without signing in</li></ul>'
            f"<details><summary>All your claims</summary><table>{rows}</table></details>"
            "</section>"
            '<form method="post" action="/oauth2/sign_out">'
            '<button type="submit">Sign out</button></form>',
        )

    return Starlette(routes=[Route("/", home), Route("/api/me", _me), Route("/public", _public)])


async def _api_call(api_url: str | None, access_token: str) -> str:
    """The answer of ``GET api_url`` with the access token, as HTML (never the token)."""
    if api_url is None:
        return "<p>No API to call.</p>"
    try:
        async with httpx.AsyncClient(timeout=5, trust_env=False) as http:
            answer = await http.get(api_url, headers={"authorization": f"Bearer {access_token}"})
        shown = json.dumps(answer.json(), indent=2, sort_keys=True)
        result = f"{answer.status_code}\n{shown}"
    except (httpx.HTTPError, ValueError) as exc:
        result = f"failed: {type(exc).__name__}"
    return (
        f"<p>The app called <code>GET {escape(api_url)}</code> with "
        "<code>Authorization: Bearer</code> and the access token the gate keeps for your "
        'session (<code>request.scope["oakid"].access_token</code>). The answer:</p>'
        f"<pre>{escape(result)}</pre>"
    )


async def _me(request: Request) -> JSONResponse:
    view = request.scope["oakid"]
    return JSONResponse(
        {
            "sub": request.user.sub,
            "email": request.user.email,
            "groups": list(request.user.groups),
            "expires_at": view.expires_at,
        }
    )


async def _public(request: Request) -> HTMLResponse:
    who = escape(request.user.display_name) if request.user.is_authenticated else "nobody"
    return _page(
        "public",
        f"<h1>A public page</h1><p>This page is open to anyone. Signed in: {who}.</p>"
        '<p><a href="/">Go to the protected page</a></p>',
    )
