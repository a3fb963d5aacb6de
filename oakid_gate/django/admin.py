"""The links of users to provider identities, in the admin (read them; add one to let a
local account sign in through the gate, see :mod:`oakid_gate.django.models`)."""

from __future__ import annotations

from django.contrib import admin

from .models import Identity

__all__ = ["IdentityAdmin"]


@admin.register(Identity)
class IdentityAdmin(admin.ModelAdmin):  # type: ignore[misc]  # Django ships no type information
    list_display = ("user", "subject", "issuer", "created_at")
    search_fields = ("subject", "user__username")
    readonly_fields = ("created_at",)
    raw_id_fields = ("user",)
