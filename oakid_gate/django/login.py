"""Django's sign-in follows the gate's session: ``request.user`` for each request.

The gate's session is the source of truth; Django's session only remembers, for
the requests of one gate session, which Django user that is:

- a request with a gate session whose Django session was signed in for it (the
  gate session's ``sub`` and start, and a digest of its claims, kept in the
  Django session under :data:`MARK`) gets that user back, as Django's own
  ``AuthenticationMiddleware`` would (one query);
- otherwise (the first request of a gate session, or its claims changed) the
  backend finds, creates or updates the user (:mod:`oakid_gate.django.users`)
  and, for a new gate session, ``django.contrib.auth.login`` signs it in: a new
  Django session key, a Django session of another user emptied, the CSRF token
  rotated, ``user_logged_in`` sent, ``last_login`` set;
- a request without a gate session (a public path) is anonymous, and a Django
  session still signed in (the gate session ended: signed out, expired, ended by
  the provider) is signed out with ``django.contrib.auth.logout``. A Django
  session alone never signs anyone in, whatever backend signed it in.
- a request with a bearer token (``Authorization: Bearer``, an API client) gets
  its user on ``request.user`` with no Django session at all, and Django's CSRF
  check is skipped for it: no browser sends that header by itself.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from functools import lru_cache
from typing import Any

from django.conf import settings as django_settings
from django.contrib import auth
from django.contrib.auth.models import AnonymousUser
from django.http import HttpRequest
from django.utils.module_loading import import_string

from ..gate.records import Session
from ..gate.replies import Reply
from .adapter import DjangoGate
from .backends import OakIDBackend
from .users import UserRefused

__all__ = ["MARK", "follow_gate", "needs_database"]

#: the Django session's key for the gate session it was signed in for
MARK = "_oakid_gate"


def needs_database(request: HttpRequest, session: Session | None) -> bool:
    """Whether :func:`follow_gate` may read or write the database (the async middleware
    runs it in a thread then): always with a session, else only to sign a Django
    session out."""
    return session is not None or django_settings.SESSION_COOKIE_NAME in request.COOKIES


def follow_gate(request: HttpRequest, session: Session | None, adapter: DjangoGate) -> Reply | None:
    """Set ``request.user`` (and ``request.oakid``, ``request.oakid_user``) for the gate's
    ``session``; a 403 reply when the user cannot be this site's user."""
    request.oakid = session.view if session is not None else None
    request.oakid_user = session.user if session is not None else adapter.anonymous
    if session is None:
        _sign_out(request)
        return None
    path, backend = _backend()
    try:
        if _is_bearer(request, session):
            _set_user(request, backend.user_for(session.user))
            request._dont_enforce_csrf_checks = True
            return None
        _sign_in(request, session, path, backend)
    except UserRefused as refused:
        _sign_out(request)
        req = adapter.gate_request(request)
        return adapter.gate.parts.replies.not_allowed(req, refused.missing, session.user.sub)
    return None


def _sign_in(request: HttpRequest, session: Session, path: str, backend: OakIDBackend) -> None:
    mark = _mark(session)
    stored = request.session.get(MARK)
    if stored == mark and request.session.get(auth.BACKEND_SESSION_KEY) == path:
        user = auth.get_user(request)
        if user.is_authenticated:
            _set_user(request, user)
            return
    user = backend.user_for(session.user)
    same_session = (
        isinstance(stored, list)
        and stored[:2] == mark[:2]
        and request.session.get(auth.SESSION_KEY) == user._meta.pk.value_to_string(user)
        and request.session.get(auth.BACKEND_SESSION_KEY) == path
    )
    if not same_session:  # the claims alone changed: the user stays signed in
        auth.login(request, user, backend=path)
    request.session[MARK] = mark
    _set_user(request, user)


def _sign_out(request: HttpRequest) -> None:
    """Anonymous; a Django session still signed in is signed out."""
    if (
        django_settings.SESSION_COOKIE_NAME in request.COOKIES
        and hasattr(request, "session")
        and auth.SESSION_KEY in request.session
    ):
        auth.logout(request)
    _set_user(request, AnonymousUser())


def _set_user(request: HttpRequest, user: Any) -> None:
    async def auser() -> Any:
        return user

    request.user = user
    request.auser = auser
    request._cached_user = user


def _mark(session: Session) -> list[Any]:
    """The gate session a Django session is signed in for: its ``sub``, its start, and
    a digest of its claims (a change of claims updates the user)."""
    claims = json.dumps(session.claims, sort_keys=True, default=str, separators=(",", ":"))
    digest = hashlib.sha256(claims.encode()).hexdigest()[:32]
    return [session.claims.get("sub"), session.created_at, digest]


def _is_bearer(request: HttpRequest, session: Session) -> bool:
    """Whether the gate admitted ``request`` by its bearer token, not a cookie session."""
    kind, _, token = str(request.META.get("HTTP_AUTHORIZATION", "")).partition(" ")
    return kind.lower() == "bearer" and hmac.compare_digest(
        token.strip().encode(), session.access_token.encode()
    )


def _backend() -> tuple[str, OakIDBackend]:
    """The listed backend that is an :class:`OakIDBackend` (a subclass counts)."""
    return _find_backend(tuple(django_settings.AUTHENTICATION_BACKENDS))


@lru_cache(maxsize=8)
def _find_backend(paths: tuple[str, ...]) -> tuple[str, OakIDBackend]:
    for path in paths:
        backend = import_string(path)
        if isinstance(backend, type) and issubclass(backend, OakIDBackend):
            return path, backend()
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(
        "AUTHENTICATION_BACKENDS must list 'oakid_gate.django.backends.OakIDBackend' "
        "(or a subclass) for oakid_gate.django to sign users in"
    )
