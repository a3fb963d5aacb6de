"""The provider's metadata: OpenID Connect Discovery 1.0 section 3.

The same document is served as RFC 8414 authorization server metadata. There
are no public keys: ID tokens are HS256, keyed with the client secret.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._grants import GRANT_TYPES
from ._scopes import CLAIMS_SUPPORTED, SCOPES

__all__ = ["JWKS", "discovery_document"]

#: The key set: empty, as ID tokens are HS256 (keyed with the client secret).
JWKS: Mapping[str, Any] = {"keys": ()}


def discovery_document(issuer: str) -> dict[str, Any]:
    """The provider metadata for ``issuer``, every endpoint under it."""
    return {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/oauth/authorize",
        "token_endpoint": f"{issuer}/oauth/token",
        "userinfo_endpoint": f"{issuer}/oauth/userinfo",
        "revocation_endpoint": f"{issuer}/oauth/revoke",
        "jwks_uri": f"{issuer}/.well-known/jwks.json",
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": list(GRANT_TYPES),
        "code_challenge_methods_supported": ["S256"],
        "id_token_signing_alg_values_supported": ["HS256"],
        "token_endpoint_auth_methods_supported": [
            "client_secret_basic",
            "client_secret_post",
        ],
        "revocation_endpoint_auth_methods_supported": [
            "client_secret_basic",
            "client_secret_post",
            "none",
        ],
        "scopes_supported": list(SCOPES),
        "subject_types_supported": ["public"],
        "claims_supported": list(CLAIMS_SUPPORTED),
        "authorization_response_iss_parameter_supported": True,
        "claims_parameter_supported": False,
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
    }
