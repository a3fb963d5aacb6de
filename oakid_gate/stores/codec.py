"""Sessions at rest in a shared store: JSON, sealed under ``secret``.

A persistent store (``sqlite://``, ``redis://``) never holds a token, a claim
or a cookie value in clear. Each record is::

    session version (8 bytes, big-endian) | sealed JSON (see oakid_gate.gate.sealing)

- The JSON is sealed by :class:`~oakid_gate.gate.sealing.Sealer` (AES-256-GCM,
  keys derived from each ``secret`` by HKDF; the first seals, every one opens)
  with a fresh 96-bit nonce from ``os.urandom``.
- The associated data is the record's store key (derived from the app and the
  cookie's session id) followed by the version prefix: a record copied under
  another key, or with its version changed, does not open.
- The version is in clear so that the store itself can compare and set on it
  (:meth:`~oakid_gate.gate.store.SessionStore.update_session`: sqlite compares
  ``substr(value, 1, 8)``, redis a Lua script ``string.sub(value, 1, 8)``);
  it says how many times a session was refreshed, nothing more.

A record that does not open (wrong or retired secret, tampered, truncated,
another format) reads as absent, and a warning is logged that says so, never
anything of its content.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Sequence
from typing import Final

from cachetools import LRUCache

from ..gate.records import Session
from ..gate.sealing import NONCE_BYTES, Sealer

__all__ = ["VERSION_BYTES", "SessionCodec"]

log = logging.getLogger("oakid_gate")

#: the clear prefix of a record: the session's version
VERSION_BYTES: Final = 8


class SessionCodec:
    """Seal :class:`Session` records for a store, and open them.

    ``secrets``: the ``secret`` setting's values; the first seals, all open.
    """

    def __init__(self, secrets: Sequence[str], *, opened_cache: int = 4096) -> None:
        if not secrets:
            raise ValueError("SessionCodec needs at least one secret")
        self._sealer = Sealer(secrets, "session")
        self._opened: LRUCache[tuple[str, bytes], Session] = LRUCache(maxsize=opened_cache)
        self._opened_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"SessionCodec({self._sealer!r})"

    @staticmethod
    def version_tag(version: int) -> bytes:
        """The clear prefix of every record of a session at ``version``."""
        return version.to_bytes(VERSION_BYTES, "big")

    def encode_session(self, key: str, session: Session) -> bytes:
        tag = self.version_tag(session.version)
        # ASCII JSON: any claim the provider sent (even a lone surrogate) encodes.
        plain = json.dumps(session.to_dict(), separators=(",", ":")).encode()
        return tag + self._sealer.seal(plain, key.encode() + tag, os.urandom(NONCE_BYTES))

    def decode_session(self, key: str, blob: bytes) -> Session | None:
        """The session sealed in ``blob`` under ``key``.

        Opening a record (AES-GCM, JSON, building the session) costs about three
        times the store read itself, and the same session is read on every
        request. The same bytes under the same key always open to the same
        immutable :class:`Session`, so opened sessions are kept in a small LRU
        cache keyed by exactly those bytes: a changed, refreshed or deleted
        record is never served from it, because the store is still read first.
        """
        cache_key = (key, blob)
        with self._opened_lock:
            hit = self._opened.get(cache_key)
        if hit is not None:
            return hit
        session = self._open(key, blob)
        if session is not None:
            with self._opened_lock:
                self._opened[cache_key] = session
        return session

    def _open(self, key: str, blob: bytes) -> Session | None:
        tag = blob[:VERSION_BYTES]
        plain = self._sealer.open(blob[VERSION_BYTES:], key.encode() + tag)
        if plain is None:
            log.warning(
                "session store: a session record does not open "
                "(another secret or format, or altered); ignored"
            )
            return None
        try:
            session = Session.from_dict(json.loads(plain))
        except (ValueError, KeyError, TypeError):
            log.warning("session store: a session record does not decode; ignored")
            return None
        if self.version_tag(session.version) != tag:
            log.warning("session store: a session record's version does not match; ignored")
            return None
        return session
