"""Signing a test client in and out, through the real gate, with no provider.

::

    from starlette.testclient import TestClient
    from oakid_gate.testing import sign_in, sign_out

    client = TestClient(app)                 # app: behind OakIDMiddleware
    user = sign_in(client, email="ann@example.com", groups=["staff"])
    assert client.get("/").status_code == 200  # the app sees request.user
    sign_out(client)

:func:`sign_in` finds the gate serving the client's app
(:func:`~oakid_gate.testing.gates.find_gate`, or ``gate=``), writes a real
session into the store that gate uses (memory, sqlite or redis) and puts the
session cookie on the client, under the name the gate reads for the client's
scheme (``__Host-oakid_session`` on https). Every request of the client then
goes through the real gate as that user: the allow-lists, ``required_claims``
and route rules still apply (a refused user gets the 403 a real one would).

Clients: Starlette's and FastAPI's ``TestClient``, ``httpx.Client`` and
``httpx.AsyncClient`` (with ``WSGITransport`` / ``ASGITransport``; the scheme
is that of ``base_url``), and Flask's ``app.test_client()`` (the cookie is for
``localhost``, or the host of ``SERVER_NAME``; the scheme is http unless
``scheme="https"`` is given). Django's test client has its own function in
:mod:`oakid_gate.testing.django`.

The user's claims are :func:`claims_for`'s defaults (``sub="test-user"``, an
email under ``example.test`` marked verified, a name, no groups) updated with
``claims`` and the keyword claims; a claim given as ``None`` is left out. Claims
named like a parameter of :func:`sign_in` go in the ``claims`` mapping.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Protocol

from ..adapter import GateAdapter
from ..user import OakIDUser
from .gates import find_gate
from .sessions import TEST_ACCESS_TOKEN, write_session

__all__ = ["claims_for", "sign_in", "sign_out", "signed_in"]


def claims_for(sub: str = "test-user", **claims: Any) -> dict[str, Any]:
    """A test user's claims: defaults derived from ``sub``, updated with ``claims``
    (a claim given as ``None`` is left out)."""
    base: dict[str, Any] = {
        "sub": sub,
        "name": "Test User",
        "preferred_username": sub,
        "email": f"{sub}@example.test",
        "email_verified": True,
        "groups": [],
    }
    base.update(claims)
    return {name: value for name, value in base.items() if value is not None}


def sign_in(
    client: object,
    claims: Mapping[str, Any] | None = None,
    *,
    gate: GateAdapter[Any, Any] | None = None,
    scheme: str | None = None,
    access_token: str = TEST_ACCESS_TOKEN,
    expires_in: int | None = 3600,
    scopes: Iterable[str] | None = None,
    **claim_values: Any,
) -> OakIDUser:
    """Sign ``client`` in as a user with these claims; return the user the app will see.

    ``scheme`` overrides the client's (``"https"`` for a secure-cookie site);
    ``access_token``, ``expires_in`` and ``scopes`` shape the session (see
    :func:`~oakid_gate.testing.session_cookie`). A client already signed in
    is signed in again as the new user (the old session is ended).
    """
    found = gate if gate is not None else find_gate(client)
    jar = _jar(client, scheme)
    _end_sessions(found, jar)
    merged = claims_for(**{**(claims or {}), **claim_values})
    sid, session = write_session(
        found, merged, access_token=access_token, expires_in=expires_in, scopes=scopes
    )
    jar.set(found.gate.parts.cookies.session_name_for(jar.scheme), sid)
    return session.user


def sign_out(client: object, *, gate: GateAdapter[Any, Any] | None = None) -> None:
    """End the client's session in the gate's store and drop its cookie, as the
    gate's own sign-out does (without calling the provider). Signed out already:
    nothing happens."""
    found = gate if gate is not None else find_gate(client)
    _end_sessions(found, _jar(client, None))


@contextmanager
def signed_in(
    client: object,
    claims: Mapping[str, Any] | None = None,
    *,
    gate: GateAdapter[Any, Any] | None = None,
    **options: Any,
) -> Iterator[OakIDUser]:
    """``with signed_in(client, groups=["admins"]) as user:``: :func:`sign_in` for the
    block, :func:`sign_out` after it (the other arguments are :func:`sign_in`'s)."""
    found = gate if gate is not None else find_gate(client)
    user = sign_in(client, claims, gate=found, **options)
    try:
        yield user
    finally:
        sign_out(client, gate=found)


def _end_sessions(gate: GateAdapter[Any, Any], jar: _Jar) -> None:
    """Delete the sessions the client's cookies name (either scheme's) and the cookies."""
    parts = gate.gate.parts
    for name in {parts.cookies.session_name_for(s) for s in ("http", "https")}:
        sid = jar.get(name)
        if sid:
            gate.store.delete_session(parts.session_key(sid))
            jar.delete(name)


class _Jar(Protocol):
    """A test client's cookies, whatever the client."""

    scheme: str

    def get(self, name: str) -> str | None: ...
    def set(self, name: str, value: str) -> None: ...
    def delete(self, name: str) -> None: ...


def _jar(client: object, scheme: str | None) -> _Jar:
    if hasattr(client, "set_cookie") and hasattr(client, "get_cookie"):
        return _WerkzeugJar(client, scheme)
    if hasattr(client, "cookies") and hasattr(client, "base_url"):
        return _HttpxJar(client, scheme)
    raise TypeError(
        f"cannot sign in a {type(client).__name__}: use Starlette's TestClient, an httpx "
        "client or Flask's test_client() (Django: oakid_gate.testing.django)"
    )


class _HttpxJar:
    """``httpx`` clients (and Starlette's ``TestClient``, an ``httpx2`` client)."""

    def __init__(self, client: Any, scheme: str | None) -> None:
        self.cookies = client.cookies
        self.scheme = scheme or str(client.base_url.scheme or "http")

    def get(self, name: str) -> str | None:
        for cookie in self.cookies.jar:
            if cookie.name == name:
                return str(cookie.value)
        return None

    def set(self, name: str, value: str) -> None:
        self.delete(name)  # one cookie of the name, whatever domain set it
        self.cookies.set(name, value)

    def delete(self, name: str) -> None:
        self.cookies.delete(name)


class _WerkzeugJar:
    """Flask's (werkzeug's) test client: cookies belong to the ``SERVER_NAME`` host."""

    def __init__(self, client: Any, scheme: str | None) -> None:
        self.client = client
        self.scheme = scheme or "http"
        config = getattr(client.application, "config", None)
        server = config.get("SERVER_NAME") if isinstance(config, Mapping) else None
        self.domain = str(server).rsplit(":", 1)[0] if server else "localhost"

    def get(self, name: str) -> str | None:
        cookie = self.client.get_cookie(name, domain=self.domain)
        return None if cookie is None else str(cookie.value)

    def set(self, name: str, value: str) -> None:
        self.client.set_cookie(name, value, domain=self.domain)

    def delete(self, name: str) -> None:
        self.client.delete_cookie(name, domain=self.domain)
