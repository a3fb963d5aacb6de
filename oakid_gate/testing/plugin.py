"""The pytest plugin: fixtures for testing an app behind oakid-gate.

Installed with oakid-gate and loaded by pytest on its own (entry point
``pytest11``; ``-p no:oakid_gate`` turns it off). Nothing is imported until a
test asks for a fixture, and no fixture calls a provider or the network.

``oakid_settings``
    :func:`~oakid_gate.testing.offline_settings`: keyword settings for a gate
    that needs no provider (``OakIDMiddleware(app, **oakid_settings)``).
``oakid_sign_in``
    :func:`~oakid_gate.testing.sign_in` as a fixture: ``oakid_sign_in(client,
    groups=["staff"])`` signs the test client in and returns the user; every
    client it signed in is signed out when the test ends.
``oakid_fake_provider``
    A :class:`~oakid_gate.testing.FakeProvider` (the dev-idp in process, users
    alice, bob and carol) for tests that sign in through the whole flow:
    ``OakIDMiddleware(app, **oakid_fake_provider.settings(),
    http=oakid_fake_provider.async_client())``, then
    ``oakid_fake_provider.sign_in(client, "alice")``.

::

    def test_home_greets_the_user(oakid_sign_in):
        client = TestClient(create_app())
        oakid_sign_in(client, name="Ann")
        assert "Ann" in client.get("/").text
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from ..user import OakIDUser
    from .provider import FakeProvider

__all__ = ["oakid_fake_provider", "oakid_settings", "oakid_sign_in"]


@pytest.fixture
def oakid_settings() -> dict[str, Any]:
    """Keyword settings for a gate under test that needs no provider or network."""
    from .settings import offline_settings

    return offline_settings()


@pytest.fixture
def oakid_sign_in() -> Iterator[Callable[..., OakIDUser]]:
    """``oakid_sign_in(client, claims=None, **options) -> OakIDUser``: sign a test
    client in (see :func:`oakid_gate.testing.sign_in`); signed out after the test."""
    from .clients import sign_in, sign_out

    signed: list[tuple[object, Any]] = []

    def sign_in_client(client: object, *args: Any, **kwargs: Any) -> OakIDUser:
        user = sign_in(client, *args, **kwargs)
        signed.append((client, kwargs.get("gate")))
        return user

    yield sign_in_client
    for client, gate in reversed(signed):
        sign_out(client, gate=gate)


@pytest.fixture
def oakid_fake_provider() -> FakeProvider:
    """The dev-idp in process, for tests that sign in through the whole flow."""
    from .provider import FakeProvider

    return FakeProvider()
