"""``OakIDMiddleware``: the gate in Django's middleware chain, under WSGI and ASGI alike.

::

    MIDDLEWARE = [
        "django.middleware.security.SecurityMiddleware",
        "django.contrib.sessions.middleware.SessionMiddleware",
        "django.middleware.common.CommonMiddleware",
        "django.middleware.csrf.CsrfViewMiddleware",
        "django.contrib.auth.middleware.AuthenticationMiddleware",
        "oakid_gate.django.middleware.OakIDMiddleware",  # after sessions and auth
        "django.contrib.messages.middleware.MessageMiddleware",
        "django.middleware.clickjacking.XFrameOptionsMiddleware",
    ]

For each request it does what the WSGI and ASGI middleware do, on the same core
(:class:`~oakid_gate.django.adapter.DjangoGate`): it answers the gate's own
paths (``/oauth2/callback``, ``/oauth2/sign_out``, ...), sends a browser without
a session into the sign-in (an API call gets 401), refuses what the
authorization rules refuse, and lets the rest reach the view; then it sets
``request.user`` to the Django user of the gate's user
(:mod:`oakid_gate.django.login`), so ``@login_required``, permissions and the
admin work. The view also gets ``request.oakid`` (the
:class:`~oakid_gate.user.SessionView`: a fresh access token, or ``None``) and
``request.oakid_user`` (the gate's user with every claim; anonymous on a public
path). Identities sent by a client or a server (``REMOTE_USER``,
``X-Forwarded-User``, ...) are removed from ``request.META`` first.

Being in the chain, it is what Django's test ``Client`` and ``AsyncClient`` go
through too (they call Django's handler, never a WSGI or ASGI wrapper around
it): :func:`oakid_gate.testing.django.sign_in_django` signs them in.

It is sync- and async-capable: under ASGI Django calls it on the event loop,
where the gate's work runs on the async driver and the database work of the
sign-in in a thread (``sync_to_async``), once per request; under WSGI
everything runs in the server's thread.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.apps import apps
from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse

from ..gate.caching import from_browser
from ..gate.records import Session
from ..gate.replies import Reply
from .adapter import DjangoGate, gate_adapter
from .login import follow_gate, needs_database
from .responses import reply_response

__all__ = ["OakIDMiddleware"]

GetResponse = Callable[[HttpRequest], Any]


class OakIDMiddleware:
    """Require a sign-in at the gate for every request, and sign Django's user in."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response
        self.async_mode = iscoroutinefunction(get_response)
        if self.async_mode:
            markcoroutinefunction(self)
        if not apps.is_installed("oakid_gate.django"):
            raise ImproperlyConfigured(
                "add 'oakid_gate.django' to INSTALLED_APPS (its model links users to the "
                "provider's identities; then run manage.py migrate)"
            )
        gate_adapter()  # the settings, checked at start-up: a mistake names its key

    def __call__(self, request: HttpRequest) -> Any:
        if self.async_mode:
            return self.__acall__(request)
        adapter = gate_adapter()
        outcome = adapter.decide(request)
        if isinstance(outcome, Reply):
            return reply_response(outcome, request)
        _has_session(request)
        refused = follow_gate(request, outcome.session, adapter)
        if refused is not None:
            return reply_response(refused, request)
        return _private(request, self.get_response(request), outcome.session, adapter)

    async def __acall__(self, request: HttpRequest) -> HttpResponse:
        adapter = gate_adapter()
        outcome = await adapter.adecide(request)
        if isinstance(outcome, Reply):
            return reply_response(outcome, request)
        _has_session(request)
        if needs_database(request, outcome.session):
            refused = await sync_to_async(follow_gate)(request, outcome.session, adapter)
        else:
            refused = follow_gate(request, outcome.session, adapter)
        if refused is not None:
            return reply_response(refused, request)
        get_response: Callable[[HttpRequest], Awaitable[HttpResponse]] = self.get_response
        return _private(request, await get_response(request), outcome.session, adapter)


def _private(
    request: HttpRequest, response: HttpResponse, session: Session | None, adapter: DjangoGate
) -> HttpResponse:
    """A signed-in browser's response gets ``protected_cache_control`` unless the view set
    a ``Cache-Control`` of its own (the back button after sign-out shows nothing), as
    under the ASGI and WSGI middleware (:mod:`oakid_gate.gate.caching`)."""
    value = adapter.settings.protected_cache_control
    meta = request.META
    if (
        session is not None
        and value
        and not response.has_header("Cache-Control")
        and from_browser(meta.get("HTTP_SEC_FETCH_MODE"), meta.get("HTTP_USER_AGENT"))
    ):
        response["Cache-Control"] = value
    return response


def _has_session(request: HttpRequest) -> None:
    if not hasattr(request, "session"):
        raise ImproperlyConfigured(
            "oakid_gate.django needs Django's sessions: put "
            "'django.contrib.sessions.middleware.SessionMiddleware' before "
            f"OakIDMiddleware in MIDDLEWARE (now: {django_settings.MIDDLEWARE!r})"
        )
