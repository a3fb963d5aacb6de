"""oakid_gate.django: the gate as a Django app, and Django's users from the gate's.

::

    INSTALLED_APPS = [..., "django.contrib.auth", "django.contrib.sessions", "oakid_gate.django"]
    MIDDLEWARE = [
        ...,
        "django.contrib.sessions.middleware.SessionMiddleware",
        ...,
        "django.contrib.auth.middleware.AuthenticationMiddleware",
        "oakid_gate.django.middleware.OakIDMiddleware",
        ...,
    ]
    AUTHENTICATION_BACKENDS = ["oakid_gate.django.backends.OakIDBackend"]
    OAKID = {"public_paths": ["/health"], "sync_groups": True, "staff_groups": ["staff"]}
    # client_id, client_secret and secret: in OAKID or OAKID_* environment variables

The gate runs inside Django's middleware chain
(:mod:`~oakid_gate.django.middleware`), so it protects the project however it
is served (WSGI, ASGI) and Django's test clients go through it. ``request.user``
is a Django user: found by the provider identity it was created for
(:mod:`~oakid_gate.django.models`), created and updated from the claims
(:mod:`~oakid_gate.django.users`), its groups and ``is_staff`` /
``is_superuser`` following the ``groups`` claim when ``OAKID`` asks
(:mod:`~oakid_gate.django.conf`), so ``@login_required``, permissions and the
admin work as they always do.

Django's session and the gate's: the gate's session is the source of truth.
Each gate session signs Django's user in once (``django.contrib.auth.login``:
a fresh Django session key, another user's Django session emptied, the CSRF
token rotated, ``last_login``); the Django session remembers for which gate
session, so the following requests find the user as Django always does (one
query). When the gate session ends (sign-out, expiry, the provider's logout),
the Django session is signed out at its next request: a Django session alone
never signs anyone in, and the admin's login form cannot either (the backend
takes no passwords). Why this and not a user set afresh on each request with
no Django session: the admin, ``messages`` and CSRF-in-session need Django's
session, and Django keeps one user's session data from the next user's only
through ``login`` and ``logout`` (:mod:`~oakid_gate.django.login`).

:func:`gate_adapter` is the gate of the process (its store is where
:func:`oakid_gate.testing.django.sign_in_django` writes test sessions);
:mod:`~oakid_gate.django.views` sends ``LOGIN_URL`` and the admin's "Log out"
to the gate.

This package needs Django: ``pip install 'oakid-gate[django]'``.
"""

from __future__ import annotations

try:
    import django  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised without Django installed
    raise ImportError(
        "oakid_gate.django needs Django, which is not installed: pip install 'oakid-gate[django]'"
    ) from exc

from .adapter import DjangoGate, gate_adapter, set_gate_adapter

__all__ = ["DjangoGate", "gate_adapter", "set_gate_adapter"]
