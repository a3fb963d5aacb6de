"""Sealing values under ``secret``: the one authenticated encryption of oakid-gate.

AES-256-GCM (``cryptography``), with a key per kind of value derived from each
``secret`` by HKDF-SHA256, so a value sealed as one kind never opens as
another. A sealed value is::

    version (1 byte, 0x01) | key id (4 bytes) | nonce (12 bytes) | ciphertext + GCM tag (16 bytes)

- The key id is derived like the key under another label: it says which secret
  sealed the value without saying anything about the key. The first secret
  seals; every secret opens (rotation).
- The nonce is 96 random bits from the caller (the stores use ``os.urandom``,
  the core the randomness its driver hands it), fresh for every value.
- The associated data binds a value to where it belongs (a store key, the hash
  of a sign-in's ``state``): moved anywhere else, it does not open.

A value that does not open (another secret, altered, truncated, another
format) is ``None``; nothing here says why, and nothing of the value is logged.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = ["NONCE_BYTES", "Sealer"]

VERSION: Final = 0x01
KEY_ID_BYTES: Final = 4
NONCE_BYTES: Final = 12
TAG_BYTES: Final = 16
HEADER_BYTES: Final = 1 + KEY_ID_BYTES + NONCE_BYTES

_SALT: Final = b"oakid-gate/store/v1"


def _hkdf(secret: bytes, info: bytes, length: int) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    return HKDF(algorithm=hashes.SHA256(), length=length, salt=_SALT, info=info).derive(secret)


class _Key:
    """One secret's AEAD key for one kind of value, and its key id."""

    __slots__ = ("aead", "key_id")

    def __init__(self, secret: bytes, kind: str) -> None:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        self.aead: AESGCM = AESGCM(_hkdf(secret, f"oakid-gate {kind} encryption".encode(), 32))
        self.key_id = _hkdf(secret, f"oakid-gate {kind} key id".encode(), KEY_ID_BYTES)

    def __repr__(self) -> str:
        return "_Key(**********)"


class Sealer:
    """Seal and open one kind of value under the ``secret`` setting's values."""

    def __init__(self, secrets: Sequence[str], kind: str) -> None:
        if not secrets:
            raise ValueError("a Sealer needs at least one secret")
        self.kind = kind
        self._secrets = tuple(secrets)
        self._derived: tuple[_Key, ...] | None = None

    def __repr__(self) -> str:
        return f"Sealer({self.kind!r}, {len(self._secrets)} secret(s))"

    @property
    def _keys(self) -> tuple[_Key, ...]:
        """The keys, derived at the first use: ``cryptography`` loads with the first
        sign-in, not at start-up (two threads may both derive them: the same keys)."""
        keys = self._derived
        if keys is None:
            keys = self._derived = tuple(_Key(s.encode(), self.kind) for s in self._secrets)
        return keys

    def seal(self, plain: bytes, associated: bytes, nonce: bytes) -> bytes:
        """``plain`` sealed with the first secret, bound to ``associated``."""
        if len(nonce) != NONCE_BYTES:
            raise ValueError(f"the nonce must be {NONCE_BYTES} bytes")
        key = self._keys[0]
        return bytes([VERSION]) + key.key_id + nonce + key.aead.encrypt(nonce, plain, associated)

    def open(self, sealed: bytes, associated: bytes) -> bytes | None:
        """The plain value, or ``None`` when it does not open under any secret."""
        if len(sealed) < HEADER_BYTES + TAG_BYTES or sealed[0] != VERSION:
            return None
        key_id = sealed[1 : 1 + KEY_ID_BYTES]
        nonce = sealed[1 + KEY_ID_BYTES : HEADER_BYTES]
        body = sealed[HEADER_BYTES:]
        from cryptography.exceptions import InvalidTag

        # Key ids are 32 bits: two secrets may share one, so each key with it is tried.
        for key in self._keys:
            if key.key_id != key_id:
                continue
            try:
                return key.aead.decrypt(nonce, body, associated)
            except InvalidTag:
                continue
        return None
