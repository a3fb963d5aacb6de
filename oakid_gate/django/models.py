"""Which provider identity each user was created for.

A Django user that oakid-gate creates is linked to the provider's ``(issuer,
sub)`` by an :class:`Identity`, and a signed-in user is always found by that
link, never by user name. So a provider user whose ``user_claim`` happens to
be the name of one of the site's own accounts (``admin``, made with
``createsuperuser``) is refused, never signed in as that account; and a user
whose ``user_claim`` changes (a new email, with ``user_claim="email"``) keeps
their Django user, renamed.

To let an existing local account sign in through the gate, link it on purpose:
add an Identity for it (the admin lists them) with the provider's ``issuer``
(as the ``issuer`` setting, without a trailing ``/``) and the user's ``sub``.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

__all__ = ["Identity"]


class Identity(models.Model):  # type: ignore[misc]  # Django ships no type information
    """The provider identity a user was created for, or linked to by an administrator."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="oakid_identity"
    )
    issuer = models.CharField(max_length=255)
    subject = models.CharField(max_length=255, help_text="the provider's sub claim")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "OpenID Connect identity"
        verbose_name_plural = "OpenID Connect identities"
        constraints = [  # noqa: RUF012 - Django's own shape
            models.UniqueConstraint(
                fields=["issuer", "subject"], name="oakid_gate_one_user_per_sub"
            )
        ]

    def __str__(self) -> str:
        return f"{self.subject} at {self.issuer}"
