"""The Django user of a gate user: found by its provider identity, created, updated.

:func:`sync_user` is what :class:`~oakid_gate.django.backends.OakIDBackend`
does for a signed-in gate user, in one transaction:

1. the user linked to the provider's ``(issuer, sub)``
   (:class:`~oakid_gate.django.models.Identity`); else a new user named by the
   ``user_claim`` (``USERNAME_FIELD``), with an unusable password, linked;
2. its user name, ``email`` (the *verified* email only, as ``user.email`` of the
   gate), ``first_name`` and ``last_name`` (``given_name``, ``family_name``) set
   from the claims: the claims are the truth, and a claim that goes away empties
   its field;
3. ``is_staff`` / ``is_superuser`` from the groups when ``staff_groups`` or
   ``superuser_groups`` is set, and the Django groups when ``sync_groups`` is
   (:mod:`oakid_gate.django.conf`). Nothing else of the claims is read: a claim
   ``is_superuser: true`` is just a claim.

Refused (:class:`UserRefused`, a 403 from the middleware, never a sign-in as
someone else):

- a user name that is already another account's, in any letter case: a local
  account never becomes a provider user's by its name (link it on purpose, see
  :mod:`oakid_gate.django.models`), nor one provider user another's;
- a linked user that this site deactivated (``is_active`` false);
- a user name longer than ``USERNAME_FIELD`` holds.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import FieldDoesNotExist
from django.db import IntegrityError, transaction

from ..settings import Settings
from ..user import OakIDUser, header_safe
from .conf import DjangoOptions
from .models import Identity

__all__ = ["UserRefused", "claim_groups", "sync_user"]

log = logging.getLogger("oakid_gate")


class UserRefused(Exception):
    """The gate's user cannot be this site's user; ``missing`` says what it lacks, in
    words for the 403 page (after "this site requires ...")."""

    def __init__(self, missing: str) -> None:
        super().__init__(missing)
        self.missing = missing


def claim_groups(claims: Mapping[str, Any], name: str = "groups") -> frozenset[str]:
    """The groups in the claim ``name`` (a list, or one string), as the gate reads them
    (:attr:`~oakid_gate.user.OakIDUser.groups`): only names usable as they are."""
    value = claims.get(name)
    names = value if isinstance(value, list) else [value]
    return frozenset(g for g in names if isinstance(g, str) and header_safe(g) and "," not in g)


def sync_user(user: OakIDUser, settings: Settings, options: DjangoOptions) -> Any:
    """The Django user for ``user``, created or updated from its claims and saved."""
    if not user.has_identity:
        raise UserRefused(f"the claim {settings.user_claim} to name you by")
    model = get_user_model()
    # NFKC, as in create_user: fullwidth "admin" is "admin", and clashes as "admin" would.
    name = model.normalize_username(user.identity)
    limit = model._meta.get_field(model.USERNAME_FIELD).max_length
    if limit is not None and len(name) > limit:
        raise UserRefused(f"a user name of at most {limit} characters")
    issuer = settings.issuer.rstrip("/")
    try:
        with transaction.atomic():
            return _sync(model, user, name, issuer, settings, options)
    except IntegrityError:
        # Another request created this user at the same moment: its link is there now.
        with transaction.atomic():
            return _sync(model, user, name, issuer, settings, options)


def _sync(
    model: Any,
    user: OakIDUser,
    name: str,
    issuer: str,
    settings: Settings,
    options: DjangoOptions,
) -> Any:
    django_user = _linked(model, user, name, issuer)
    changed = _update_fields(django_user, model, user, name)
    groups = claim_groups(user.claims, settings.groups_claim)
    if options.manages_flags:
        changed |= _update_flags(django_user, groups, options)
    if changed:
        django_user.save()
    if options.sync_groups:
        _sync_groups(django_user, groups, options.sync_groups)
    return django_user


def _linked(model: Any, user: OakIDUser, name: str, issuer: str) -> Any:
    """The user linked to ``(issuer, sub)``, or a new one named ``name``, linked; refused
    on a clash."""
    field = model.USERNAME_FIELD
    link = Identity.objects.select_related("user").filter(issuer=issuer, subject=user.sub).first()
    if link is not None:
        django_user = link.user
        if not getattr(django_user, "is_active", True):
            raise UserRefused("an active account: yours was deactivated on this site")
        if getattr(django_user, field) != name and _taken(model, name, django_user.pk):
            raise _clash(name)
        return django_user
    if _taken(model, name, None):
        raise _clash(name)
    django_user = model(**{field: name})
    django_user.set_unusable_password()
    django_user.save()
    Identity.objects.create(user=django_user, issuer=issuer, subject=user.sub)
    log.info("oakid_gate.django: created the user %r for a provider identity", name)
    return django_user


def _taken(model: Any, name: str, pk: Any) -> bool:
    """Whether another user (not ``pk``) has ``name``, in any letter case."""
    others = model._default_manager.filter(**{f"{model.USERNAME_FIELD}__iexact": name})
    return bool(others.exclude(pk=pk).exists() if pk is not None else others.exists())


def _clash(name: str) -> UserRefused:
    log.warning(
        "oakid_gate.django: refused a sign-in as %r: the name belongs to an account that "
        "is not linked to this provider identity",
        name,
    )
    return UserRefused(f"a user name of your own: {name!r} belongs to another account of this site")


def _update_fields(django_user: Any, model: Any, user: OakIDUser, name: str) -> bool:
    """Set the name, email and first and last names from the claims; whether any changed."""
    claims = user.claims
    wanted: dict[str, Any] = {model.USERNAME_FIELD: name}
    email_field = model.get_email_field_name()
    if email_field != model.USERNAME_FIELD:
        wanted[email_field] = user.email or ""
    wanted["first_name"] = claims.get("given_name")
    wanted["last_name"] = claims.get("family_name")
    changed = False
    for field_name, value in wanted.items():
        try:
            field = model._meta.get_field(field_name)
        except FieldDoesNotExist:  # a custom user model without it
            continue
        text = value if isinstance(value, str) else ""
        if field.max_length is not None:
            text = text[: field.max_length]
        if getattr(django_user, field_name) != text:
            setattr(django_user, field_name, text)
            changed = True
    return changed


def _update_flags(django_user: Any, groups: frozenset[str], options: DjangoOptions) -> bool:
    """``is_superuser`` and ``is_staff`` from the groups; whether either changed."""
    superuser = bool(groups.intersection(options.superuser_groups))
    staff = superuser or bool(groups.intersection(options.staff_groups))
    changed = False
    for name, value in (("is_superuser", superuser), ("is_staff", staff)):
        if hasattr(django_user, name) and getattr(django_user, name) != value:
            setattr(django_user, name, value)
            changed = True
    return changed


def _sync_groups(django_user: Any, groups: frozenset[str], which: bool | tuple[str, ...]) -> None:
    """The user's Django groups follow ``groups``: all of them, or only those in ``which``."""
    limit = Group._meta.get_field("name").max_length
    managed = None if which is True else frozenset(which)  # type: ignore[arg-type]
    wanted = {g for g in groups if len(g) <= limit and (managed is None or g in managed)}
    current = {group.name: group for group in django_user.groups.all()}
    gone = [
        group
        for name, group in current.items()
        if name not in wanted and (managed is None or name in managed)
    ]
    if gone:
        django_user.groups.remove(*gone)
    new = [Group.objects.get_or_create(name=name)[0] for name in sorted(wanted - current.keys())]
    if new:
        django_user.groups.add(*new)
