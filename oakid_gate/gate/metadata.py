"""Provider metadata: OpenID Connect Discovery 1.0 and RFC 8414.

The two well-known rules differ (OpenID Discovery section 4 appends to the
issuer's path; RFC 8414 section 3.1 inserts before it), so they stay two
functions, both from Authlib. :func:`parse_metadata` checks a document as
values; fetching it is :func:`oakid_gate.gate.flows.discover`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

from ..errors import MetadataError
from ..settings import is_loopback_host

__all__ = ["SUPPORTED_ID_TOKEN_ALGS", "ProviderMetadata", "discovery_urls", "parse_metadata"]

#: ID token algorithms the gate will ever accept. Never ``none``.
SUPPORTED_ID_TOKEN_ALGS = ("RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "HS256")

Kind = Literal["openid", "oauth"]

#: the endpoints the gate uses when a provider has them
_OPTIONAL_ENDPOINTS = (
    "userinfo_endpoint",
    "jwks_uri",
    "revocation_endpoint",
    "introspection_endpoint",
    "end_session_endpoint",
)


@dataclass(frozen=True, slots=True)
class ProviderMetadata:
    """What the gate needs to know of a provider, checked."""

    kind: Kind
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    userinfo_endpoint: str | None
    jwks_uri: str | None
    revocation_endpoint: str | None
    introspection_endpoint: str | None
    end_session_endpoint: str | None
    id_token_algs: tuple[str, ...]  # () when discovery does not say: see allowed_algs
    token_endpoint_auth_methods: tuple[str, ...]
    code_challenge_methods: tuple[str, ...]
    iss_parameter_supported: bool

    def allowed_algs(self, jwks_algs: tuple[str, ...]) -> tuple[str, ...]:
        """The ID token algorithms to accept.

        The discovery document's list when it has one. Without it, RS256 (the
        OpenID Connect default) and the asymmetric algorithms that the
        provider's own JWKS keys declare; never an HMAC algorithm, which only
        an explicit list can allow.
        """
        if self.id_token_algs:
            return self.id_token_algs
        declared = tuple(a for a in jwks_algs if a in SUPPORTED_ID_TOKEN_ALGS and a != "HS256")
        return ("RS256", *(a for a in declared if a != "RS256"))

    def auth_method(self, configured: str | None) -> str:
        """The client authentication method for the token endpoint."""
        if configured is not None:
            return configured
        for method in ("client_secret_basic", "client_secret_post"):
            if method in self.token_endpoint_auth_methods:
                return method
        raise MetadataError(
            "the provider supports neither client_secret_basic nor client_secret_post "
            "at its token endpoint"
        )


def discovery_urls(issuer: str) -> tuple[tuple[Kind, str], ...]:
    """Where to look for metadata, in order: OpenID Discovery, then RFC 8414."""
    # Loaded at first use, not at start-up (issue 8: start-up within 1.3 x bare uvicorn).
    from authlib.oauth2.rfc8414 import get_well_known_url as rfc8414_well_known_url
    from authlib.oidc.discovery import get_well_known_url as oidc_well_known_url

    return (
        ("openid", oidc_well_known_url(issuer, external=True)),
        ("oauth", rfc8414_well_known_url(issuer, external=True)),
    )


def parse_metadata(document: Any, *, issuer: str, kind: Kind) -> ProviderMetadata:
    """Check a metadata document against the configured issuer and our needs."""
    if not isinstance(document, Mapping):
        raise MetadataError("the discovery document is not a JSON object")
    got = document.get("issuer")
    # OpenID Discovery section 4.3 and RFC 8414 section 3.3: exactly equal.
    if got != issuer:
        raise MetadataError(
            f"the discovery document names issuer {_show(got)}, not the configured {issuer!r}"
        )
    auth_ep = _endpoint(document, "authorization_endpoint", required=True)
    token_ep = _endpoint(document, "token_endpoint", required=True)
    assert auth_ep is not None and token_ep is not None
    response_types = _strings(document, "response_types_supported", default=("code",))
    if "code" not in response_types:
        raise MetadataError("the provider does not support response_type=code")
    challenge_methods = _strings(document, "code_challenge_methods_supported", default=())
    if challenge_methods and "S256" not in challenge_methods:
        raise MetadataError("the provider does not support PKCE with S256")
    default_auth = ("client_secret_basic",)
    auth_methods = _strings(document, "token_endpoint_auth_methods_supported", default=default_auth)
    # Absent (Authcore's documents omit it): () means "as the JWKS keys declare".
    algs = _strings(document, "id_token_signing_alg_values_supported", default=())
    return ProviderMetadata(
        kind=kind,
        issuer=issuer,
        authorization_endpoint=auth_ep,
        token_endpoint=token_ep,
        **{name: _endpoint(document, name) for name in _OPTIONAL_ENDPOINTS},
        id_token_algs=tuple(a for a in algs if a in SUPPORTED_ID_TOKEN_ALGS),
        token_endpoint_auth_methods=auth_methods,
        code_challenge_methods=challenge_methods,
        iss_parameter_supported=document.get("authorization_response_iss_parameter_supported")
        is True,
    )


def _endpoint(document: Mapping[str, Any], name: str, *, required: bool = False) -> str | None:
    value = document.get(name)
    if value is None:
        if required:
            raise MetadataError(f"the discovery document has no {name}")
        return None
    if not isinstance(value, str):
        raise MetadataError(f"{name} in the discovery document is not a string")
    parts = urlsplit(value)
    if parts.scheme not in ("https", "http") or not parts.hostname or parts.fragment:
        raise MetadataError(f"{name} in the discovery document is not an absolute URL")
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        raise MetadataError(f"{name} in the discovery document does not use https")
    return value


def _strings(
    document: Mapping[str, Any], name: str, *, default: tuple[str, ...]
) -> tuple[str, ...]:
    value = document.get(name)
    if value is None:
        return default
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise MetadataError(f"{name} in the discovery document is not a list of strings")
    return tuple(value)


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
