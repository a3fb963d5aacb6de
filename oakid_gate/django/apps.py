"""The Django app ``oakid_gate.django`` (label ``oakid_gate``): its model and its checks."""

from __future__ import annotations

from django.apps import AppConfig

__all__ = ["OakIDGateConfig"]


class OakIDGateConfig(AppConfig):  # type: ignore[misc]  # Django ships no type information
    name = "oakid_gate.django"
    label = "oakid_gate"
    verbose_name = "oakid-gate"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.core import checks

        from .checks import check_installation

        checks.register(check_installation, checks.Tags.security)
