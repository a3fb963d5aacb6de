"""A sign-in under way, sealed into the browser's cookie: the server keeps nothing.

Starting a sign-in used to store a record (nonce, PKCE verifier, return target)
for ten minutes, so anyone could fill a store by calling ``/oauth2/start`` in
a loop. The record now travels in the sign-in's own cookie instead, sealed
(:mod:`~oakid_gate.gate.sealing`: AES-256-GCM under ``secret``, bound to the
hash of the sign-in's ``state``), as oauth2-proxy does: a flood of starts costs
the server nothing it keeps.

What still makes a sign-in usable once, by one browser:

- the cookie is set only in the browser that started it (``__Host-``, HttpOnly,
  SameSite=Lax), named after its ``state``, and cleared at the callback;
- it carries its own expiry (``login_timeout``), checked when it is opened;
- it opens only for its own ``state`` (associated data), under a current secret;
- the authorization code it completes is single use at the provider, and is
  redeemed with the verifier only this cookie holds (PKCE).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json

from .effects import Random
from .records import PendingLogin, hash_key
from .sealing import NONCE_BYTES, Sealer

__all__ = ["open_pending", "seal_pending"]


def _associated(state: str) -> bytes:
    return b"pending sign-in " + hash_key(state).encode()


def seal_pending(sealer: Sealer, state: str, login: PendingLogin, random: Random) -> str:
    """The cookie value carrying ``login``, for the sign-in whose ``state`` this is."""
    nonce = hashlib.sha256(random().encode()).digest()[:NONCE_BYTES]  # 96 of its random bits
    plain = json.dumps(login.to_dict(), separators=(",", ":")).encode()
    sealed = sealer.seal(plain, _associated(state), nonce)
    return base64.urlsafe_b64encode(sealed).rstrip(b"=").decode("ascii")


def open_pending(sealer: Sealer, state: str, value: str) -> PendingLogin | None:
    """The sign-in in the cookie ``value``, or ``None`` when it does not open for ``state``."""
    try:
        sealed = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        return None
    plain = sealer.open(sealed, _associated(state))
    if plain is None:
        return None
    try:
        return PendingLogin.from_dict(json.loads(plain))
    except (ValueError, KeyError, TypeError):
        return None
