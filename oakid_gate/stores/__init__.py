"""Session stores; :func:`open_store` picks one from the ``session_store`` URL.

==============================  ==================================================
``memory://``                   this process only, bounded LRU (the default;
                                ``?max_sessions=N``, 100,000 by default)
``sqlite:///relative/path.db``  one host, its worker processes share it, survives
``sqlite:////absolute/path.db`` restarts (stdlib ``sqlite3``)
``redis://host:port/db``        several hosts (``pip install 'oakid-gate[redis]'``)
``rediss://host:port/db``       the same over TLS
==============================  ==================================================

The persistent stores seal every record with a key derived from ``secret``
(:class:`SessionCodec`) and file it under the hash of the cookie's session id.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import import_module
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ..errors import ConfigurationError
from ..gate.store import SessionStore
from ..settings import Settings
from .memory import MemoryStore

if TYPE_CHECKING:
    from .codec import SessionCodec
    from .redis import RedisStore
    from .sqlite import SQLiteStore

__all__ = [
    "MemoryStore",
    "RedisStore",
    "SQLiteStore",
    "SessionCodec",
    "SessionStore",
    "open_store",
    "store_for",
]

SUPPORTED = (
    "memory://, sqlite:///relative/path.db, sqlite:////absolute/path.db, "
    "redis://host:port/db or rediss://host:port/db"
)


def open_store(url: str, secrets: Sequence[str]) -> SessionStore:
    """The store that ``session_store`` names; a bad URL is a ConfigurationError naming it."""
    scheme = urlsplit(url).scheme if "://" in url else ""
    if scheme == "memory":
        return MemoryStore.from_url(url)
    if scheme == "sqlite":
        from .sqlite import SQLiteStore

        return SQLiteStore.from_url(url, secrets)
    if scheme in ("redis", "rediss", "redis+sentinel", "redis+cluster"):
        from .redis import RedisStore

        return RedisStore.from_url(url, secrets)
    # Only the scheme is repeated: the rest of a URL may hold a password.
    shown = f"unsupported store {scheme}://" if scheme else "not a store URL"
    raise ConfigurationError("session_store", f"{shown}; use {SUPPORTED}")


def store_for(settings: Settings) -> SessionStore:
    """The store that ``settings.session_store`` names, keyed with ``settings.secret``."""
    return open_store(settings.session_store, [s.reveal() for s in settings.secret])


#: loaded on first use: the shared stores (and cryptography under their codec) cost
#: start-up time that a gate on the memory store never needs
_LAZY = {"RedisStore": ".redis", "SQLiteStore": ".sqlite", "SessionCodec": ".codec"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
