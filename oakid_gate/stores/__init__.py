"""Session stores: ``memory://`` now; ``open_store`` picks one from a URL."""

from __future__ import annotations

from urllib.parse import urlsplit

from ..errors import ConfigurationError
from .base import SessionStore
from .memory import MemoryStore

__all__ = ["MemoryStore", "SessionStore", "open_store"]


def open_store(url: str, secrets: tuple[str, ...]) -> SessionStore:
    """The store that ``session_store`` names; a bad URL names the setting."""
    scheme = urlsplit(url).scheme
    if scheme == "memory":
        return MemoryStore()
    raise ConfigurationError(
        "session_store", f"unsupported store {scheme + '://' if scheme else url!r}; use memory://"
    )
