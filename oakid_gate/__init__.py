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
from .settings import Settings
from .user import OakIDUser, SessionView

__all__ = [
    "AccessDenied",
    "AuthenticationError",
    "ConfigurationError",
    "OakIDGateError",
    "OakIDMiddleware",
    "OakIDUser",
    "ProviderError",
    "ProviderUnavailable",
    "SessionView",
    "Settings",
    "StoreUnavailable",
    "__version__",
]

__version__ = "0.1.0"
