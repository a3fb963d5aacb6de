"""``OakIDBackend``: Django users from the gate's users, and their permissions.

::

    AUTHENTICATION_BACKENDS = ["oakid_gate.django.backends.OakIDBackend"]

:class:`~oakid_gate.django.middleware.OakIDMiddleware` signs the Django user in
with this backend; it must be listed, or Django would not load the user of a
session again. It authenticates only a gate user, never a user name and a
password (so the admin's login form signs no one in through it), and it is a
``ModelBackend`` for everything else: ``user.has_perm``, groups' permissions,
``is_active``, so the admin's permissions work as usual.

Subclass it to shape users further (and list the subclass instead)::

    class Backend(OakIDBackend):
        def update_user(self, user, oakid_user):
            user.is_staff = oakid_user.claims.get("department") == "it"
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.backends import ModelBackend
from django.http import HttpRequest

from ..user import OakIDUser
from .adapter import gate_adapter
from .users import UserRefused, sync_user

__all__ = ["OakIDBackend"]


class OakIDBackend(ModelBackend):  # type: ignore[misc]  # Django ships no type information
    """Authenticates the gate's signed-in user (``oakid_user=``), and nothing else."""

    def authenticate(
        self, request: HttpRequest | None, oakid_user: OakIDUser | None = None, **kwargs: Any
    ) -> Any:
        """The Django user of ``oakid_user``, created or updated; ``None`` when refused
        (why is in :meth:`user_for`'s :class:`~oakid_gate.django.users.UserRefused`)."""
        if oakid_user is None or not oakid_user.is_authenticated:
            return None
        try:
            return self.user_for(oakid_user)
        except UserRefused:
            return None

    def user_for(self, oakid_user: OakIDUser) -> Any:
        """The Django user of ``oakid_user``, or :class:`~oakid_gate.django.users.UserRefused`
        saying what it lacks (:mod:`oakid_gate.django.users`)."""
        adapter = gate_adapter()
        user = sync_user(oakid_user, adapter.settings, adapter.options)
        before = _state(user)
        self.update_user(user, oakid_user)
        if _state(user) != before:
            user.save()
        return user

    def update_user(self, user: Any, oakid_user: OakIDUser) -> None:
        """Change ``user`` further from ``oakid_user``'s claims (saved when it changed);
        called at each sign-in and change of the claims. Does nothing here."""


def _state(user: Any) -> dict[str, Any]:
    return {f.attname: getattr(user, f.attname) for f in user._meta.concrete_fields}
