"""Django's test clients, signed in through the real middleware.

::

    from django.test import Client
    from oakid_gate.testing.django import sign_in_django

    def test_staff_reach_the_admin(db):
        client = Client()
        sign_in_django(client, {"sub": "u-bob", "groups": ["staff"]})
        assert client.get("/admin/").status_code == 200

:func:`sign_in_django` writes a real session for the claims into the store of
the project's gate (:func:`oakid_gate.django.gate_adapter`, built from
``settings.OAKID``) and gives the client its cookie. The client's requests then
go through :class:`~oakid_gate.django.middleware.OakIDMiddleware` as a signed-in
browser's would: the gate admits the session (its authorization rules apply),
and the Django user is created or updated from the claims, its groups and
flags synced as ``OAKID`` says, and signed into Django's session. No provider
is called. ``django.test.Client`` and ``AsyncClient`` alike.

Needs Django's settings (and a database) as the project's own tests have them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .sessions import TEST_ACCESS_TOKEN, session_cookie

__all__ = ["DEFAULT_CLAIMS", "sign_in_django", "sign_out_django"]

#: the claims of :func:`sign_in_django` when none are given
DEFAULT_CLAIMS: Mapping[str, Any] = {"sub": "test-user"}


def sign_in_django(
    client: Any,
    claims: Mapping[str, Any] | None = None,
    *,
    secure: bool = False,
    access_token: str = TEST_ACCESS_TOKEN,
    expires_in: int | None = 3600,
    scopes: Iterable[str] | None = None,
) -> tuple[str, str]:
    """Sign the Django test ``client`` in as a user with ``claims`` (which need ``sub``;
    default :data:`DEFAULT_CLAIMS`); returns the session cookie ``(name, value)`` set.

    ``secure``: the cookie for https requests (``client.get(..., secure=True)``),
    whose name has ``__Host-``. ``access_token``, ``expires_in`` and ``scopes`` are
    :func:`~oakid_gate.testing.session_cookie`'s.
    """
    from ..django import gate_adapter

    name, value = session_cookie(
        gate_adapter(),
        DEFAULT_CLAIMS if claims is None else claims,
        scheme="https" if secure else "http",
        access_token=access_token,
        expires_in=expires_in,
        scopes=scopes,
    )
    client.cookies[name] = value
    return name, value


def sign_out_django(client: Any) -> None:
    """End the gate sessions ``client`` holds (deleted from the store, as a sign-out or an
    expiry would) and drop their cookies: its next request has no gate session."""
    from ..django import gate_adapter

    adapter = gate_adapter()
    parts = adapter.gate.parts
    for scheme in ("http", "https"):
        name = parts.cookies.session_name_for(scheme)
        morsel = client.cookies.pop(name, None)
        if morsel is not None and morsel.value:
            adapter.store.delete_session(parts.session_key(morsel.value))
