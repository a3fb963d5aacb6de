"""Stored records at rest: JSON, then AES-256-GCM keyed from ``secret``.

A persistent store (``sqlite://``, ``redis://``) never holds a token, a claim
or a cookie value in clear. Each record is::

    version (1 byte, 0x01) | key id (4 bytes) | nonce (12 bytes) | ciphertext + GCM tag (16 bytes)

- The AES-256-GCM key is derived from each ``secret`` with HKDF-SHA256 and a
  label per kind of record (sessions, sign-ins under way), so a sign-in record
  can never be read as a session.
- The key id is derived the same way under another label: it says which secret
  sealed the record without saying anything about the key. The first secret
  seals; every secret opens (rotation: put the new secret first, keep the old
  one until the records it sealed have expired).
- The nonce is 96 random bits (``os.urandom``), fresh for every record.
- The record's store key (the hash of the cookie's session id, or of
  ``state``) is the associated data: a record copied under another key does
  not open.

A record that does not open (wrong or retired secret, tampered, truncated,
another format) reads as absent, and a warning is logged that names the kind
of record only, never its content.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable, Sequence
from typing import Any, Final, TypeVar

from cachetools import LRUCache
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ..gate.records import PendingLogin, Session

__all__ = ["SessionCodec"]

log = logging.getLogger("oakid_gate")

VERSION: Final = 0x01
KEY_ID_BYTES: Final = 4
NONCE_BYTES: Final = 12
TAG_BYTES: Final = 16
HEADER_BYTES: Final = 1 + KEY_ID_BYTES + NONCE_BYTES

_SALT: Final = b"oakid-gate/store/v1"
#: kinds of record, each with a key of its own
SESSION: Final = "session"
LOGIN: Final = "login"

R = TypeVar("R")


def _hkdf(secret: bytes, info: bytes, length: int) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=_SALT, info=info).derive(secret)


class _Key:
    """One secret's AEAD key for one kind of record, and its key id."""

    __slots__ = ("aead", "key_id")

    def __init__(self, secret: bytes, kind: str) -> None:
        self.aead = AESGCM(_hkdf(secret, f"oakid-gate {kind} encryption".encode(), 32))
        self.key_id = _hkdf(secret, f"oakid-gate {kind} key id".encode(), KEY_ID_BYTES)

    def __repr__(self) -> str:
        return "_Key(**********)"


class SessionCodec:
    """Seal :class:`Session` and :class:`PendingLogin` records for a store, and open them.

    ``secrets``: the ``secret`` setting's values; the first seals, all open.
    """

    def __init__(self, secrets: Sequence[str], *, opened_cache: int = 4096) -> None:
        self._opened: LRUCache[tuple[str, bytes], Session] = LRUCache(maxsize=opened_cache)
        self._opened_lock = threading.Lock()
        if not secrets:
            raise ValueError("SessionCodec needs at least one secret")
        raw = [s.encode() for s in secrets]
        self._keys: dict[str, tuple[_Key, ...]] = {
            kind: tuple(_Key(s, kind) for s in raw) for kind in (SESSION, LOGIN)
        }

    def __repr__(self) -> str:
        return f"SessionCodec({len(self._keys[SESSION])} secret(s))"

    # ------------------------------------------------------------ records

    def encode_session(self, key: str, session: Session) -> bytes:
        return self._seal(SESSION, key, session.to_dict())

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
        session = self._open(SESSION, key, blob, Session.from_dict)
        if session is not None:
            with self._opened_lock:
                self._opened[cache_key] = session
        return session

    def encode_login(self, key: str, login: PendingLogin) -> bytes:
        return self._seal(LOGIN, key, login.to_dict())

    def decode_login(self, key: str, blob: bytes) -> PendingLogin | None:
        return self._open(LOGIN, key, blob, PendingLogin.from_dict)

    # ------------------------------------------------------------ sealing

    def _seal(self, kind: str, key: str, data: dict[str, Any]) -> bytes:
        # ASCII JSON: any claim the provider sent (even a lone surrogate) encodes.
        plain = json.dumps(data, separators=(",", ":")).encode()
        k = self._keys[kind][0]
        nonce = os.urandom(NONCE_BYTES)
        header = bytes([VERSION]) + k.key_id + nonce
        return header + k.aead.encrypt(nonce, plain, key.encode())

    def _open(self, kind: str, key: str, blob: bytes, build: Callable[[Any], R]) -> R | None:
        if len(blob) < HEADER_BYTES + TAG_BYTES or blob[0] != VERSION:
            log.warning("session store: a %s record has an unknown format; ignored", kind)
            return None
        key_id = blob[1 : 1 + KEY_ID_BYTES]
        nonce = blob[1 + KEY_ID_BYTES : HEADER_BYTES]
        body = blob[HEADER_BYTES:]
        # Key ids are 32 bits: a collision between two secrets is possible, so
        # every key with this id is tried.
        for k in self._keys[kind]:
            if k.key_id != key_id:
                continue
            try:
                plain = k.aead.decrypt(nonce, body, key.encode())
            except InvalidTag:
                continue
            try:
                return build(json.loads(plain))
            except (ValueError, KeyError, TypeError):
                log.warning("session store: a %s record does not decode; ignored", kind)
                return None
        log.warning(
            "session store: a %s record does not open (another secret, or altered); ignored", kind
        )
        return None
