"""An ``authorize`` rule given by its import path (``support.rules:admins_only``), as the
commands take it."""

from __future__ import annotations

from oakid_gate.user import OakIDUser


def admins_only(user: OakIDUser) -> bool:
    return "admins" in user.groups
