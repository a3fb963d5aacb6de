"""Settings: keyword arguments, ``OAKID_*`` environment variables and CLI flags.

Every setting is a field of :class:`Settings`. The same name is a keyword
argument, an environment variable ``OAKID_<NAME>`` and a CLI flag
``--<name-with-dashes>``; explicit arguments win over the environment. Lists
are comma-separated in the environment. Everything is checked when the
settings are loaded, so a mistake is a :class:`ConfigurationError` at start-up
that names the setting, never a failure at the first request.

Secrets (``client_secret``, ``secret``) are held in :class:`Secret`, whose
``repr`` never shows the value.
"""

from __future__ import annotations

from .fields import DEFAULT_ISSUER, Settings, setting_fields
from .values import Secret, claim_pairs, is_loopback_host

__all__ = [
    "DEFAULT_ISSUER",
    "Secret",
    "Settings",
    "claim_pairs",
    "is_loopback_host",
    "setting_fields",
]
