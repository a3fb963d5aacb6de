"""Testing an app behind oakid-gate without a provider or a network.

See README, "Testing your app". Two ways to a signed-in test client:

- :func:`sign_in` (and :func:`sign_out`, :func:`signed_in`): a real session
  for given claims written into the gate's own store, and its cookie put on the
  client (:mod:`oakid_gate.testing.clients`);
- :class:`FakeProvider`: the whole sign-in flow (code, PKCE, ID token,
  userinfo) against the dev-idp served in process
  (:mod:`oakid_gate.testing.provider`).

The pytest plugin (:mod:`oakid_gate.testing.plugin`, loaded by pytest through
its entry point) offers both as fixtures: ``oakid_settings``,
``oakid_sign_in``, ``oakid_fake_provider``. Django's test client has
:mod:`oakid_gate.testing.django`.

The names below load with the first use of one of them, so that pytest
loading the plugin in every suite of a project costs nothing until a test asks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..lazy import lazy_names

if TYPE_CHECKING:
    from .clients import claims_for, sign_in, sign_out, signed_in
    from .gates import find_gate
    from .provider import DEFAULT_REDIRECT_URIS, FakeProvider, SyncASGITransport
    from .sessions import TEST_ACCESS_TOKEN, session_cookie, write_session
    from .settings import FAKE_CLIENT_ID, FAKE_CLIENT_SECRET, FAKE_ISSUER, offline_settings

#: where each public name lives
_MODULES = {
    "claims_for": "clients",
    "sign_in": "clients",
    "sign_out": "clients",
    "signed_in": "clients",
    "find_gate": "gates",
    "DEFAULT_REDIRECT_URIS": "provider",
    "FakeProvider": "provider",
    "SyncASGITransport": "provider",
    "TEST_ACCESS_TOKEN": "sessions",
    "session_cookie": "sessions",
    "write_session": "sessions",
    "FAKE_CLIENT_ID": "settings",
    "FAKE_CLIENT_SECRET": "settings",
    "FAKE_ISSUER": "settings",
    "offline_settings": "settings",
}

__all__ = [
    "DEFAULT_REDIRECT_URIS",
    "FAKE_CLIENT_ID",
    "FAKE_CLIENT_SECRET",
    "FAKE_ISSUER",
    "TEST_ACCESS_TOKEN",
    "FakeProvider",
    "SyncASGITransport",
    "claims_for",
    "find_gate",
    "offline_settings",
    "session_cookie",
    "sign_in",
    "sign_out",
    "signed_in",
    "write_session",
]

__getattr__, __dir__ = lazy_names(__name__, _MODULES, __all__)
