"""``settings.OAKID``: the gate's settings and the Django-side options, read and checked.

::

    OAKID = {
        "issuer": "https://id.oakwall.mom",  # the gate's settings, by the same names
        "public_paths": ["/health", "/static/*"],
        "session_store": "sqlite:///oakid-sessions.db",
        "sync_groups": True,                 # the Django-side options (DJANGO_OPTIONS)
        "staff_groups": ["staff"],
        "superuser_groups": ["admins"],
    }

Every key is either a setting of the gate (:class:`~oakid_gate.settings.Settings`,
with ``config``, ``client_secret_file`` and ``secret_file``) or one of
:data:`DJANGO_OPTIONS`; anything else is :class:`ImproperlyConfigured`, naming it.
As everywhere in oakid-gate, an ``OAKID_<NAME>`` environment variable fills in a
gate setting the dict leaves out (``OAKID_CLIENT_SECRET``, ``OAKID_SECRET``), so
secrets need not be written in ``settings.py``; a key of the dict wins.

The Django-side options:

``sync_groups`` (default ``False``)
    ``True``: the user's Django groups become exactly the groups of the
    ``groups_claim`` claim, created when missing. A list of names: only those
    groups follow the claim (added or removed); the user's other groups are left
    as this site's administrators set them. ``False``: groups are never touched.
``staff_groups``, ``superuser_groups`` (default empty)
    When either is set, both flags follow the claim at each sign-in (and each
    change of the claims): ``is_superuser`` for members of a ``superuser_groups``
    group, ``is_staff`` for members of a ``staff_groups`` or ``superuser_groups``
    group (the admin needs ``is_staff``); local edits of the flags are then
    overwritten. When neither is set the flags are never touched: new users get
    neither, and what an administrator grants stays.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from django.core.exceptions import ImproperlyConfigured

from ..errors import ConfigurationError
from ..settings import Settings, setting_fields
from ..settings.sources import FILE_SETTINGS

__all__ = ["DJANGO_OPTIONS", "GATE_KEYS", "DjangoOptions", "load", "split"]

#: the keys of ``OAKID`` that are the Django side's, not the gate's
DJANGO_OPTIONS: Final = frozenset({"sync_groups", "staff_groups", "superuser_groups"})
#: the keys of ``OAKID`` that are the gate's settings
GATE_KEYS: Final = frozenset(
    {f.name for f in setting_fields()} | {"config", *FILE_SETTINGS.values()}
)
#: the longest issuer a user's link records (:class:`~oakid_gate.django.models.Identity`)
MAX_ISSUER = 255


@dataclass(frozen=True)
class DjangoOptions:
    """The Django-side options of ``OAKID`` (see the module docstring)."""

    #: ``True`` (every group), a tuple of the groups that follow the claim, or ``False``
    sync_groups: bool | tuple[str, ...] = False
    staff_groups: tuple[str, ...] = ()
    superuser_groups: tuple[str, ...] = ()

    @property
    def manages_flags(self) -> bool:
        """Whether ``is_staff`` and ``is_superuser`` follow the groups."""
        return bool(self.staff_groups or self.superuser_groups)


def split(oakid: Any) -> tuple[dict[str, Any], DjangoOptions]:
    """``OAKID`` as the gate's keyword settings and the Django-side options, each key
    checked by name and each option by type (nothing read from the environment)."""
    if oakid is None:
        oakid = {}
    if not isinstance(oakid, Mapping):
        raise ImproperlyConfigured(
            f"settings.OAKID must be a dict of settings, not {type(oakid).__name__}"
        )
    for key in oakid:
        if key not in GATE_KEYS and key not in DJANGO_OPTIONS:
            raise ImproperlyConfigured(
                f"settings.OAKID[{key!r}]: unknown key; OAKID takes the gate's settings "
                f"(see the README's settings table) and {', '.join(sorted(DJANGO_OPTIONS))}"
            )
    gate = {k: v for k, v in oakid.items() if k in GATE_KEYS}
    options = DjangoOptions(
        sync_groups=_sync_groups(oakid.get("sync_groups", False)),
        staff_groups=_group_names("staff_groups", oakid.get("staff_groups", ())),
        superuser_groups=_group_names("superuser_groups", oakid.get("superuser_groups", ())),
    )
    return gate, options


def load(oakid: Any) -> tuple[Settings, DjangoOptions]:
    """The checked settings of the gate (``OAKID`` over ``OAKID_*`` variables) and the
    Django-side options; any mistake is :class:`ImproperlyConfigured` naming the key."""
    gate, options = split(oakid)
    try:
        settings = Settings.load(**gate)
    except ConfigurationError as exc:
        problem = exc.message.removeprefix(f"setting {exc.setting!r}: ")
        where = f"settings.OAKID[{exc.setting!r}] or OAKID_{exc.setting.upper()}"
        raise ImproperlyConfigured(f"{where}: {problem}") from None
    if len(settings.issuer) > MAX_ISSUER:
        raise ImproperlyConfigured(
            f"settings.OAKID['issuer']: longer than {MAX_ISSUER} characters, which "
            "oakid_gate.django cannot record with its users"
        )
    return settings, options


def _sync_groups(value: Any) -> bool | tuple[str, ...]:
    if isinstance(value, bool):
        return value
    return _group_names("sync_groups", value)


def _group_names(key: str, value: Any) -> tuple[str, ...]:
    """A list or tuple of group names (a lone string would read as its letters)."""
    if not isinstance(value, (list, tuple)) or not all(
        isinstance(name, str) and name for name in value
    ):
        kind = "True, False or " if key == "sync_groups" else ""
        raise ImproperlyConfigured(
            f"settings.OAKID[{key!r}]: must be {kind}a list of group names, not {value!r}"
        )
    return tuple(value)
