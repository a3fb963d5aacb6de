"""Gate settings for tests: complete, valid, and never calling anything.

:func:`offline_settings` gives the keyword settings of a gate that needs no
provider and no network as long as nobody signs in through the provider: the
issuer ``http://127.0.0.1:9`` (the discard port: never contacted by the test
helpers, refused at once if something else tries), a client id and secret
that the :class:`~oakid_gate.testing.FakeProvider` knows, a fresh random
``secret`` and a ``memory://`` store. Override any of them::

    app = OakIDMiddleware(my_app, **offline_settings(allowed_groups=["staff"]))
"""

from __future__ import annotations

import secrets
from typing import Any

__all__ = ["FAKE_CLIENT_ID", "FAKE_CLIENT_SECRET", "FAKE_ISSUER", "offline_settings"]

#: the fake provider's issuer: loopback, the discard port, never contacted
FAKE_ISSUER = "http://127.0.0.1:9"
#: the client the fake provider registers for the gate under test
FAKE_CLIENT_ID = "oakid-test-client"
FAKE_CLIENT_SECRET = "oakid-test-client-secret"  # noqa: S105 - a test value, not a secret


def offline_settings(**overrides: Any) -> dict[str, Any]:
    """Keyword settings for a gate under test (see the module's documentation)."""
    settings: dict[str, Any] = {
        "issuer": FAKE_ISSUER,
        "client_id": FAKE_CLIENT_ID,
        "client_secret": FAKE_CLIENT_SECRET,
        "secret": secrets.token_urlsafe(32),
        "session_store": "memory://",
    }
    settings.update(overrides)
    return settings
