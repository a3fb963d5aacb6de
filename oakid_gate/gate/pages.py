"""The few HTML pages the gate shows: errors, sign-out confirmation, signed out.

Every value placed in a page is HTML-escaped. Pages never hold a token, a code,
a cookie or a stack trace.
"""

from __future__ import annotations

from html import escape

__all__ = ["error_page", "not_allowed_page", "sign_out_page", "signed_out_page"]

_STYLE = (
    "body{font:16px/1.5 system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem;"
    "color:#1f2328}h1{font-size:1.4rem}code{background:#f3f4f6;padding:0 .3em}"
    "button{font:inherit;padding:.4em 1.2em}a{color:#0b57d0}"
)


def _page(title: str, body: str) -> bytes:
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width,initial-scale=1">'
        f"<meta name=robots content=noindex><title>{escape(title)}</title>"
        f"<style>{_STYLE}</style></head><body>{body}</body></html>"
    ).encode()


def error_page(title: str, message: str, *, retry_url: str | None = None) -> bytes:
    """A page that says what went wrong and, where it helps, how to try again."""
    retry = (
        f'<p><a href="{escape(retry_url)}">Sign in again</a></p>' if retry_url is not None else ""
    )
    return _page(title, f"<h1>{escape(title)}</h1><p>{escape(message)}</p>{retry}")


def not_allowed_page(message: str, sign_out_url: str) -> bytes:
    """403: what the signed-in user lacks, and sign-out to come back as someone else."""
    return _page(
        "Not allowed",
        f"<h1>Not allowed</h1><p>{escape(message)}</p>"
        f'<p><a href="{escape(sign_out_url)}">Sign out</a> to use another account, '
        "or ask this site's administrator for access.</p>",
    )


def sign_out_page(action: str, csrf_token: str | None) -> bytes:
    """The confirmation form that a GET of the sign-out endpoint shows."""
    if csrf_token is None:
        return _page(
            "Signed out",
            '<h1>You are not signed in</h1><p><a href="/">Continue</a></p>',
        )
    return _page(
        "Sign out",
        "<h1>Sign out?</h1>"
        f'<form method=post action="{escape(action)}">'
        f'<input type=hidden name=csrf value="{escape(csrf_token)}">'
        "<button type=submit>Sign out</button></form>",
    )


def signed_out_page() -> bytes:
    return _page("Signed out", '<h1>You are signed out</h1><p><a href="/">Continue</a></p>')
