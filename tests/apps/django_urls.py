"""The URLs of the Django unit tests (``tests/test_django.py``): views that say who Django
and the gate say the user is.

    GET /                   @login_required: the Django user and the gate's
    GET /async              the same from an async view (``await request.auser()``)
    GET /perm               @permission_required("auth.view_group")
    GET|POST /form          a CSRF-protected form
    GET /public, /public/x  public (``OAKID["public_paths"]``): who, if anyone
    /admin/                 Django's admin; /admin/logout/ goes to the gate's sign-out
    /accounts/login/        LOGIN_URL, into the gate's sign-in
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path
from django.views.decorators.csrf import ensure_csrf_cookie

from oakid_gate.django import views as oakid


def describe(user: Any, request: HttpRequest) -> dict[str, Any]:
    gate_user = getattr(request, "oakid_user", None)
    view = getattr(request, "oakid", None)
    answer: dict[str, Any] = {
        "authenticated": bool(user.is_authenticated),
        "gate_user": getattr(gate_user, "sub", None),
        "access_token": view.access_token if view is not None else None,
        "remote_user": request.META.get("REMOTE_USER"),
    }
    if user.is_authenticated:
        answer.update(
            username=user.username,
            email=user.email,
            first_name=user.first_name,
            last_name=user.last_name,
            is_staff=user.is_staff,
            is_superuser=user.is_superuser,
            groups=sorted(user.groups.values_list("name", flat=True)),
        )
    return answer


@login_required
def home(request: HttpRequest) -> JsonResponse:
    return JsonResponse(describe(request.user, request))


async def async_home(request: HttpRequest) -> JsonResponse:
    from asgiref.sync import sync_to_async

    user = await request.auser()
    return JsonResponse(await sync_to_async(describe)(user, request))


@permission_required("auth.view_group", raise_exception=True)
def perm(request: HttpRequest) -> HttpResponse:
    return HttpResponse("allowed")


@ensure_csrf_cookie
def form(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        return HttpResponse("posted " + request.POST.get("value", ""))
    return HttpResponse("form")


def public(request: HttpRequest, rest: str = "") -> JsonResponse:
    return JsonResponse(describe(request.user, request))


urlpatterns = [
    path("", home),
    path("async", async_home),
    path("perm", perm),
    path("form", form),
    path("public", public),
    path("public/<path:rest>", public),
    path("admin/logout/", oakid.sign_out),
    path("admin/", admin.site.urls),
    path("accounts/login/", oakid.sign_in),
]
