"""Real sign-ins for the load runs, each returning the one cookie the load carries.

- the gate (``OakIDMiddleware``, ``oakid-gate run``, ``oakid-gate proxy``): the
  scripted browser (:func:`peers.oidc_provider.sign_in`) from the gate's
  ``/oauth2/start`` through node oidc-provider's sign-in and consent pages;
- Apache + mod_auth_openidc: the same browser from ``/`` (redirects followed by
  hand with a cookie jar);
- Starlette ``SessionMiddleware`` (a reference row): its ``/login`` route.

Each uses a fresh cookie jar (the provider remembers a browser by cookies
that every port of 127.0.0.1 shares) and keeps only the server's own session
cookie, as PERF.md says.
"""

from __future__ import annotations

import httpx
from peers.oidc_provider import sign_in

__all__ = ["USER", "apache_sign_in", "gate_sign_in", "sessions_sign_in"]

USER = "alice"
GATE_COOKIE = "oakid_session"
APACHE_COOKIE = "mod_auth_openidc_session"
SESSIONS_COOKIE = "session"


def _client() -> httpx.Client:
    return httpx.Client(timeout=30, trust_env=False)


def _only_cookie(http: httpx.Client, name: str, where: str) -> str:
    values = [c.value for c in http.cookies.jar if c.name == name and c.value]
    if len(values) != 1:
        names = sorted({c.name for c in http.cookies.jar})
        raise RuntimeError(f"{where}: expected one {name} cookie after signing in, got {names}")
    return f"{name}={values[0]}"


def _check_landing(response: httpx.Response, body: bytes, where: str) -> None:
    if response.status_code != 200 or response.content != body:
        raise RuntimeError(
            f"{where}: signing in ended at {response.status_code} {response.url}: "
            f"{response.text[:300]!r}"
        )


def gate_sign_in(url: str, body: bytes) -> str:
    """Sign in at the gate at ``url``; the ``Cookie`` value that carries the session."""
    with _client() as http:
        landing = sign_in(http, f"{url}/oauth2/start?rd=/", login=USER)
        _check_landing(landing, body, url)
        return _only_cookie(http, GATE_COOKIE, url)


def apache_sign_in(url: str, body: bytes) -> str:
    """Sign in at Apache + mod_auth_openidc at ``url``; the session's ``Cookie`` value."""
    with _client() as http:
        landing = sign_in(http, f"{url}/", login=USER)
        _check_landing(landing, body, url)
        return _only_cookie(http, APACHE_COOKIE, url)


def sessions_sign_in(url: str, body: bytes) -> str:
    """Put a user in a SessionMiddleware session at ``url``; its ``Cookie`` value."""
    with _client() as http:
        response = http.get(f"{url}/login")
        if response.status_code != 200:
            raise RuntimeError(f"{url}/login answered {response.status_code}")
        _check_landing(http.get(f"{url}/"), body, url)
        return _only_cookie(http, SESSIONS_COOKIE, url)
