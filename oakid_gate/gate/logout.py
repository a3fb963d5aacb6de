"""Logout at the provider (OpenID Connect RP-Initiated Logout 1.0).

When the provider advertises ``end_session_endpoint`` and ``provider_logout``
is on (the default), signing out here goes on to the provider, so that the next
visit does not sign the user straight back in:

1. :mod:`.signout` ends the session here first (deleted, cookie cleared,
   tokens revoked), as always;
2. the browser is sent to ``end_session_endpoint`` with ``id_token_hint`` (the
   ID token kept, sealed at rest, in the session for this only), ``client_id``,
   ``post_logout_redirect_uri`` (the gate's ``{prefix}/signed_out``, which must
   be registered at the provider) and a fresh ``state``;
3. the ``state`` and the same-origin ``rd`` asked for at sign-out travel sealed
   (AES-GCM under ``secret``, bound to the state) in a short cookie of their
   own; ``{prefix}/signed_out`` sends the browser to ``rd`` only when the
   provider returns that ``state``, and otherwise shows the signed-out page.

A provider that cannot be asked (down, no ``end_session_endpoint``) leaves the
user signed out here, on the signed-out page or at ``rd``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from urllib.parse import urlencode

from .metadata import ProviderMetadata
from .records import Session, hash_key
from .sealing import NONCE_BYTES, Sealer

__all__ = ["end_session_url", "open_logout", "seal_logout"]


def _associated(state: str) -> bytes:
    return b"provider logout " + hash_key(state).encode()


def end_session_url(
    meta: ProviderMetadata, session: Session, client_id: str, return_uri: str, state: str
) -> str | None:
    """Where to send the browser to end its session at the provider; ``None`` when the
    provider offers no RP-initiated logout."""
    if meta.end_session_endpoint is None:
        return None
    params = {"client_id": client_id, "post_logout_redirect_uri": return_uri, "state": state}
    if session.id_token is not None:
        params = {"id_token_hint": session.id_token, **params}
    separator = "&" if "?" in meta.end_session_endpoint else "?"
    return meta.end_session_endpoint + separator + urlencode(params)


def seal_logout(sealer: Sealer, state: str, rd: str | None, random: str) -> str:
    """The cookie value that carries ``rd`` across the provider, bound to ``state``."""
    nonce = hashlib.sha256(random.encode()).digest()[:NONCE_BYTES]
    plain = json.dumps({"state": state, "rd": rd}, separators=(",", ":")).encode()
    sealed = sealer.seal(plain, _associated(state), nonce)
    return base64.urlsafe_b64encode(sealed).rstrip(b"=").decode("ascii")


def open_logout(sealer: Sealer, state: str | None, value: str | None) -> tuple[bool, str | None]:
    """``(whether the provider returned this browser's state, the rd to go to)``."""
    if not state or not value:
        return False, None
    try:
        sealed = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        return False, None
    plain = sealer.open(sealed, _associated(state))
    if plain is None:
        return False, None
    try:
        data = json.loads(plain)
        same = hmac.compare_digest(str(data["state"]).encode(), state.encode())
        rd = data.get("rd")
    except (ValueError, KeyError, TypeError):
        return False, None
    return same, rd if isinstance(rd, str) else None
