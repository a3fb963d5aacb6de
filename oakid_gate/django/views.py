"""Django's sign-in and sign-out URLs, sent to the gate's.

::

    from oakid_gate.django import views as oakid

    urlpatterns = [
        path("admin/logout/", oakid.sign_out),  # before the admin's own URLs
        path("admin/", admin.site.urls),
        path("accounts/login/", oakid.sign_in),  # Django's default LOGIN_URL
        ...
    ]

:func:`sign_in` is where ``@login_required`` sends an anonymous user (on a
public path: elsewhere the gate has signed them in already): into the gate's
sign-in, coming back to ``next``. :func:`sign_out` ends the gate's session
(Django's own ``logout`` would not: the gate's session would sign the user in
again at the next request): a ``POST`` (the admin's "Log out" button, checked
by Django's CSRF middleware) goes on to the gate's sign-out as the same
``POST`` (307), which signs out at once; a ``GET`` shows the gate's
confirmation form. Both come back to ``next``, or ``LOGOUT_REDIRECT_URL``.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.http import HttpRequest, HttpResponseRedirect
from django.shortcuts import resolve_url

from .adapter import gate_adapter

__all__ = ["sign_in", "sign_out"]


def sign_in(request: HttpRequest) -> HttpResponseRedirect:
    """302 into the gate's sign-in, back to ``next`` (the gate takes same-site paths only)."""
    back = request.GET.get(REDIRECT_FIELD_NAME) or resolve_url(settings.LOGIN_REDIRECT_URL)
    prefix = gate_adapter().settings.prefix
    return HttpResponseRedirect(f"{prefix}/start?" + urlencode({"rd": back}))


def sign_out(request: HttpRequest) -> HttpResponseRedirect:
    """The gate's sign-out: a POST signs out (307), a GET asks first (302)."""
    back = request.GET.get(REDIRECT_FIELD_NAME) or request.POST.get(REDIRECT_FIELD_NAME)
    if not back and settings.LOGOUT_REDIRECT_URL:
        back = resolve_url(settings.LOGOUT_REDIRECT_URL)
    prefix = gate_adapter().settings.prefix
    url = f"{prefix}/sign_out" + ("?" + urlencode({"rd": back}) if back else "")
    response = HttpResponseRedirect(url)
    if request.method == "POST":
        response.status_code = 307  # the same POST: the gate signs out at once
    return response
