"""The revocation endpoint (RFC 7009).

Revoking an access token ends it alone. Revoking a refresh token ends its
whole grant: every access and refresh token that came from the same code
(RFC 7009 2.1). An unknown token is not an error (RFC 7009 2.2).
"""

from __future__ import annotations

from typing import Literal

from ._store import Store

__all__ = ["revoke_token"]


def revoke_token(store: Store, token: str) -> Literal["access_token", "refresh_token"] | None:
    """Revoke a token; the kind revoked, or None for an unknown token."""
    refresh = store.refresh_tokens.get(token)
    if refresh is not None:
        refresh.state = "revoked"
        store.grants[refresh.grant_id].revoked = True
        return "refresh_token"
    access = store.access_tokens.get(token)
    if access is not None:
        access.revoked = True
        return "access_token"
    return None
