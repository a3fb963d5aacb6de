"""oakid-gate: OpenID Connect login in front of any Python web app or HTTP service.

The public API; everything else is internal.
"""

from __future__ import annotations

from .asgi import OakIDMiddleware
from .errors import (
    AccessDenied,
    AuthenticationError,
    ConfigurationError,
    OakIDGateError,
    ProviderError,
    ProviderUnavailable,
    StoreUnavailable,
)
from .protect import protect
from .settings import Settings
from .user import OakIDAnonymousUser, OakIDUser, SessionView
from .wsgi import OakIDWSGIMiddleware

__all__ = [
    "AccessDenied",
    "AuthenticationError",
    "ConfigurationError",
    "OakIDAnonymousUser",
    "OakIDGateError",
    "OakIDMiddleware",
    "OakIDUser",
    "OakIDWSGIMiddleware",
    "ProviderError",
    "ProviderUnavailable",
    "SessionView",
    "Settings",
    "StoreUnavailable",
    "__version__",
    "protect",
]

__version__ = "0.1.0"
