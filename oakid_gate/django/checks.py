"""System checks (``manage.py check``, ``runserver``, ``migrate``): the installation.

- ``oakid_gate.E001``: ``OakIDMiddleware`` is not in ``MIDDLEWARE``: nothing is protected.
- ``oakid_gate.E002``: ``SessionMiddleware`` is missing or comes after it.
- ``oakid_gate.E003``: ``AuthenticationMiddleware`` comes after it (it would replace
  ``request.user``).
- ``oakid_gate.E004``: ``AUTHENTICATION_BACKENDS`` lacks ``OakIDBackend``.
- ``oakid_gate.E005``: ``RemoteUserMiddleware`` is in ``MIDDLEWARE``: it signs in whoever
  a ``REMOTE_USER`` names, which is not the gate's to vouch for here.
- ``oakid_gate.E006``: ``OAKID`` has an unknown key or an option of the wrong type
  (the gate's settings themselves are checked when the middleware starts).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from .conf import split

__all__ = ["check_installation"]

MIDDLEWARE = "oakid_gate.django.middleware.OakIDMiddleware"
SESSIONS = "django.contrib.sessions.middleware.SessionMiddleware"
AUTHENTICATION = "django.contrib.auth.middleware.AuthenticationMiddleware"


def check_installation(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Every mistake of the installation, as Django check messages (registered by the
    app's ``ready``)."""
    errors: list[checks.CheckMessage] = []
    classes = [(path, _load(path)) for path in settings.MIDDLEWARE]
    mine = _index(classes, MIDDLEWARE)
    if mine is None:
        errors.append(checks.Error(f"add {MIDDLEWARE!r} to MIDDLEWARE", id="oakid_gate.E001"))
    else:
        sessions = _index(classes, SESSIONS)
        if sessions is None or sessions > mine:
            errors.append(
                checks.Error(f"{SESSIONS!r} must come before OakIDMiddleware", id="oakid_gate.E002")
            )
        authentication = _index(classes, AUTHENTICATION)
        if authentication is not None and authentication > mine:
            errors.append(
                checks.Error(
                    f"{AUTHENTICATION!r} must come before OakIDMiddleware", id="oakid_gate.E003"
                )
            )
    if not any(_is_backend(path) for path in settings.AUTHENTICATION_BACKENDS):
        errors.append(
            checks.Error(
                "add 'oakid_gate.django.backends.OakIDBackend' to AUTHENTICATION_BACKENDS",
                id="oakid_gate.E004",
            )
        )
    if _index(classes, "django.contrib.auth.middleware.RemoteUserMiddleware") is not None:
        errors.append(
            checks.Error(
                "remove RemoteUserMiddleware: with oakid_gate.django the gate signs users in",
                id="oakid_gate.E005",
            )
        )
    try:
        split(getattr(settings, "OAKID", {}))
    except ImproperlyConfigured as exc:
        errors.append(checks.Error(str(exc), id="oakid_gate.E006"))
    return errors


def _load(path: str) -> type | None:
    try:
        loaded = import_string(path)
    except ImportError:
        return None
    return loaded if isinstance(loaded, type) else None


def _index(classes: list[tuple[str, type | None]], wanted: str) -> int | None:
    """Where ``wanted``, or a subclass of it, first is in ``MIDDLEWARE``."""
    target = _load(wanted)
    for index, (path, cls) in enumerate(classes):
        if path == wanted or (target is not None and cls is not None and issubclass(cls, target)):
            return index
    return None


def _is_backend(path: str) -> bool:
    from .backends import OakIDBackend

    loaded = _load(path)
    return loaded is not None and issubclass(loaded, OakIDBackend)
