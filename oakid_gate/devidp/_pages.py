"""The dev-idp's HTML pages: sign-in, consent, errors and an index.

Every value that reaches the markup goes through :func:`html.escape`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape

from ._request import AuthorizeRequest
from .config import DEMO_USERS, DevUser

__all__ = ["consent_page", "error_page", "index_page", "sign_in_page"]

_SCOPE_TEXT = {
    "openid": "your user identifier (sub)",
    "profile": "your name, username and groups",
    "email": "your email address",
}

_STYLE = """
body { font: 16px/1.5 system-ui, sans-serif; max-width: 40rem; margin: 2rem auto; padding: 0 1rem; }
.banner { background: #fff4ce; border: 1px solid #e0c060; padding: .5rem 1rem; }
.error { background: #fde7e9; border: 1px solid #d08080; padding: .5rem 1rem; }
table { border-collapse: collapse; } td, th { border: 1px solid #ccc; padding: .2rem .6rem; }
label { display: block; margin: .5rem 0; } button { margin: .5rem .5rem 0 0; }
code { background: #f2f2f2; padding: 0 .2rem; }
"""


def _page(title: str, body: str) -> str:
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body>"
        '<p class="banner">oakid-gate <strong>dev-idp</strong>: a local test provider. '
        "Never use real passwords here.</p>"
        f"<h1>{escape(title)}</h1>{body}</body></html>"
    )


def _hidden(fields: Iterable[tuple[str, str]]) -> str:
    return "".join(
        f'<input type="hidden" name="{escape(name)}" value="{escape(value)}">'
        for name, value in fields
    )


def _message(message: str | None) -> str:
    return f'<p class="error" role="alert">{escape(message)}</p>' if message else ""


def _users_table(users: Sequence[DevUser]) -> str:
    rows = []
    for user in users:
        groups = user.claims.get("groups") or []
        password = user.password if user in DEMO_USERS else "(configured)"
        cells = (
            user.username,
            password,
            str(user.claims.get("name", "")),
            str(user.claims.get("email", "")),
            ", ".join(str(group) for group in groups),
        )
        rows.append("<tr>" + "".join(f"<td>{escape(cell)}</td>" for cell in cells) + "</tr>")
    return (
        "<h2>Users</h2><table><tr><th>username</th><th>password</th><th>name</th>"
        "<th>email</th><th>groups</th></tr>" + "".join(rows) + "</table>"
    )


def sign_in_page(
    request: AuthorizeRequest,
    users: Sequence[DevUser],
    action: str,
    *,
    message: str | None = None,
    username: str = "",
) -> str:
    """The sign-in form; the authorize parameters ride along as hidden fields."""
    body = (
        f"<p>Sign in to continue to <code>{escape(request.client_id)}</code>.</p>"
        f"{_message(message)}"
        f'<form method="post" action="{escape(action)}">{_hidden(request.form_fields())}'
        f'<label>Username <input name="username" value="{escape(username)}" '
        'autocomplete="username" required autofocus></label>'
        '<label>Password <input name="password" type="password" '
        'autocomplete="current-password" required></label>'
        '<button type="submit">Sign in</button></form>'
        f"{_users_table(users)}"
    )
    return _page("Sign in", body)


def consent_page(request: AuthorizeRequest, user: DevUser, action: str, ticket: str) -> str:
    """Ask the user to approve the requested scopes for the client."""
    items = "".join(
        f"<li><code>{escape(scope)}</code>: {escape(_SCOPE_TEXT.get(scope, scope))}</li>"
        for scope in request.scope
    )
    name = str(user.claims.get("name") or user.username)
    body = (
        f"<p>Signed in as <strong>{escape(name)}</strong>. The application "
        f"<code>{escape(request.client_id)}</code> asks for:</p><ul>{items}</ul>"
        f'<form method="post" action="{escape(action)}">'
        f"{_hidden([*request.form_fields(), ('login_ticket', ticket)])}"
        '<button type="submit" name="consent" value="approve">Allow</button>'
        '<button type="submit" name="consent" value="deny">Deny</button></form>'
    )
    return _page("Allow access?", body)


def error_page(message: str) -> str:
    """A request that cannot be sent back to the client."""
    body = (
        f"{_message(message)}<p>Because the client or its redirect URI could not be "
        "verified, you were not sent back to the application.</p>"
    )
    return _page("Sign-in request rejected", body)


def index_page(issuer: str, users: Sequence[DevUser]) -> str:
    """What this server is and where its endpoints are."""
    body = (
        f"<p>Issuer <code>{escape(issuer)}</code>. Discovery: "
        f'<a href="{escape(issuer)}/.well-known/openid-configuration">'
        "/.well-known/openid-configuration</a>.</p>"
        f"{_users_table(users)}"
    )
    return _page("OakID-compatible dev provider", body)
