"""A one-file Django project behind oakid-gate (WSGI): the user is ``request.META["REMOTE_USER"]``.

Settings come from ``OAKID_*`` variables. Serve it with any WSGI server::

    gunicorn --bind 127.0.0.1:8000 examples.django_app.app:application

For Django's own users, add ``django.contrib.auth`` with
``RemoteUserMiddleware`` and ``RemoteUserBackend``: they read the same key.
"""

from __future__ import annotations

import secrets

from django.conf import settings
from django.core.wsgi import get_wsgi_application
from django.http import HttpRequest, JsonResponse
from django.urls import path

from oakid_gate import OakIDWSGIMiddleware

settings.configure(
    ROOT_URLCONF=__name__,
    ALLOWED_HOSTS=["127.0.0.1", "localhost"],
    SECRET_KEY=secrets.token_urlsafe(32),  # no Django sessions or forms here
)


def home(request: HttpRequest) -> JsonResponse:
    user = request.META["oakid.user"]  # the OakIDUser, with every claim
    return JsonResponse({"remote_user": request.META["REMOTE_USER"], "email": user.email})


def health(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"ok": True, "signed_in": "REMOTE_USER" in request.META})


urlpatterns = [path("", home), path("health", health)]
application = OakIDWSGIMiddleware(get_wsgi_application(), public_paths=["/health"])
