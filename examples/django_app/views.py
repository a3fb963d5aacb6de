"""The example project's views: Django's own user, as ``@login_required`` knows it."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, JsonResponse


@login_required
def home(request: HttpRequest) -> JsonResponse:
    """Who is signed in: the Django user the gate's sign-in made."""
    user = request.user
    return JsonResponse(
        {
            "username": user.username,
            "email": user.email,
            "name": request.oakid_user.display_name,  # the gate's user, with every claim
            "is_staff": user.is_staff,
            "is_superuser": user.is_superuser,
            "groups": sorted(user.groups.values_list("name", flat=True)),
        }
    )


def health(request: HttpRequest) -> JsonResponse:
    """Public: answers without a sign-in (anonymous unless a session came along)."""
    return JsonResponse({"ok": True, "signed_in": request.user.is_authenticated})
