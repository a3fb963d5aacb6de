"""Every exchange with the provider, written once.

Each flow is a generator in the manner of httpx's ``auth_flow``: it yields an
:class:`httpx.Request` and receives the :class:`httpx.Response`; the drivers in
:mod:`oakid_gate.drivers` run it on ``httpx.AsyncClient`` (ASGI) or
``httpx.Client`` (WSGI). A transport failure or a timeout is thrown into the
generator as :class:`ProviderUnavailable` (the drivers map it).
Tests step a flow by hand::

    flow = discover("https://id.oakwall.mom")
    request = next(flow)
    flow.send(httpx.Response(200, json={...}))
"""

from __future__ import annotations

import base64
from collections.abc import Generator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

if TYPE_CHECKING:
    import httpx
    from joserfc.jwk import KeySet

from ..errors import (
    MetadataError,
    ProviderError,
    ProviderUnavailable,
    TokenEndpointError,
    UserInfoError,
    oauth_error_code,
)
from .metadata import ProviderMetadata, discovery_urls, parse_metadata

__all__ = [
    "ClientCredentials",
    "Flow",
    "TokenResponse",
    "discover",
    "exchange_code",
    "fetch_jwks",
    "fetch_userinfo",
    "introspect",
    "refresh_tokens",
    "revoke",
]

T = TypeVar("T")
Flow = Generator["httpx.Request", "httpx.Response", T]

JSON_HEADERS = {"Accept": "application/json"}
#: the longest access token lifetime taken as it is (ten years); more is an error
MAX_EXPIRES_IN = 10 * 365 * 24 * 3600


@dataclass(frozen=True, slots=True)
class ClientCredentials:
    """The gate's client registration and how it authenticates (RFC 6749 section 2.3.1)."""

    client_id: str
    client_secret: str
    auth_method: str  # client_secret_basic | client_secret_post

    def __repr__(self) -> str:
        return f"ClientCredentials(client_id={self.client_id!r}, auth_method={self.auth_method!r})"

    def apply(self, form: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
        """Return (form, headers) carrying the client's credentials."""
        headers = dict(JSON_HEADERS)
        if self.auth_method == "client_secret_post":
            return {
                **form,
                "client_id": self.client_id,
                "client_secret": self.client_secret,
            }, headers
        # RFC 6749 2.3.1: both parts are form-urlencoded before Basic encoding.
        pair = f"{quote(self.client_id, safe='')}:{quote(self.client_secret, safe='')}"
        headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode("ascii")
        return form, headers


@dataclass(frozen=True, slots=True)
class TokenResponse:
    """A successful token endpoint answer (RFC 6749 section 5.1)."""

    access_token: str
    token_type: str
    expires_in: int | None
    refresh_token: str | None
    id_token: str | None
    scope: str | None

    def __repr__(self) -> str:
        return f"TokenResponse(token_type={self.token_type!r}, expires_in={self.expires_in!r})"


# -------------------------------------------------------------- the flows


def discover(issuer: str) -> Flow[ProviderMetadata]:
    """OpenID Discovery, falling back to RFC 8414 metadata when it is absent."""
    last: ProviderError | None = None
    for kind, url in discovery_urls(issuer):
        response = yield _request("GET", url, headers=JSON_HEADERS)
        if response.status_code == 404:
            last = MetadataError(f"no metadata at {url} (404)")
            continue
        document = _json(response, what="the discovery document")
        return parse_metadata(document, issuer=issuer, kind=kind)
    assert last is not None
    raise last


def fetch_jwks(jwks_uri: str) -> Flow[KeySet]:
    """The provider's public keys (RFC 7517); keys we cannot read are skipped."""
    # Loaded at first use, not at start-up (issue 8: start-up within 1.3 x bare uvicorn).
    from joserfc.errors import JoseError
    from joserfc.jwk import JWKRegistry, KeySet

    response = yield _request("GET", jwks_uri, headers=JSON_HEADERS)
    document = _json(response, what="the key set (JWKS)")
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise MetadataError("the key set (JWKS) has no 'keys' list")
    usable = []
    for jwk in document["keys"]:
        if not isinstance(jwk, dict) or jwk.get("use", "sig") != "sig":
            continue
        if jwk.get("kty") not in ("RSA", "EC") or "d" in jwk:
            continue  # only public signing keys; never a symmetric or private key
        try:
            usable.append(JWKRegistry.import_key(jwk))
        except (JoseError, ValueError, TypeError):
            continue
    return KeySet(usable)


def exchange_code(
    metadata: ProviderMetadata,
    client: ClientCredentials,
    *,
    code: str,
    redirect_uri: str,
    code_verifier: str,
) -> Flow[TokenResponse]:
    """The authorization code grant (RFC 6749 section 4.1.3, RFC 7636 section 4.5)."""
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "code_verifier": code_verifier,
    }
    if client.auth_method == "client_secret_basic":
        form["client_id"] = client.client_id  # harmless, and some providers want it
    response = yield _post(metadata.token_endpoint, client, form)
    return _token_response(response)


def refresh_tokens(
    metadata: ProviderMetadata, client: ClientCredentials, *, refresh_token: str, scopes: str
) -> Flow[TokenResponse]:
    """The refresh token grant (RFC 6749 section 6)."""
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token, "scope": scopes}
    response = yield _post(metadata.token_endpoint, client, form)
    return _token_response(response)


def fetch_userinfo(metadata: ProviderMetadata, access_token: str) -> Flow[dict[str, Any]]:
    """The UserInfo endpoint (OpenID Connect Core section 5.3)."""
    if metadata.userinfo_endpoint is None:
        return {}
    response = yield _request(
        "GET",
        metadata.userinfo_endpoint,
        headers={**JSON_HEADERS, "Authorization": f"Bearer {access_token}"},
    )
    if response.status_code in (401, 403):
        raise UserInfoError("the provider refused the access token at its userinfo endpoint")
    claims = _json(response, what="the userinfo answer")
    if not isinstance(claims, dict):
        raise UserInfoError("the userinfo answer is not a JSON object")
    return claims


def revoke(
    metadata: ProviderMetadata, client: ClientCredentials, *, token: str, hint: str
) -> Flow[bool]:
    """Token revocation (RFC 7009); returns whether the provider confirmed it."""
    if metadata.revocation_endpoint is None:
        return False
    response = yield _post(
        metadata.revocation_endpoint, client, {"token": token, "token_type_hint": hint}
    )
    return response.status_code == 200


def introspect(
    metadata: ProviderMetadata, client: ClientCredentials, *, token: str
) -> Flow[dict[str, Any] | None]:
    """Token introspection (RFC 7662); the claims of an active token, else ``None``."""
    if metadata.introspection_endpoint is None:
        return None
    response = yield _post(
        metadata.introspection_endpoint, client, {"token": token, "token_type_hint": "access_token"}
    )
    body = _json(response, what="the introspection answer")
    if not isinstance(body, dict) or body.get("active") is not True:
        return None
    return body


# -------------------------------------------------------------- helpers


def _post(url: str, client: ClientCredentials, form: dict[str, str]) -> httpx.Request:
    data, headers = client.apply(form)
    return _request("POST", url, data=data, headers=headers)


def _request(method: str, url: str, **parts: Any) -> httpx.Request:
    # httpx loads with the first exchange with the provider, not at start-up
    # (issue 8: start-up within 1.3 x bare uvicorn).
    import httpx

    return httpx.Request(method, url, **parts)


def _json(response: httpx.Response, *, what: str) -> Any:
    if response.status_code >= 500:
        raise ProviderUnavailable(f"the provider answered {response.status_code} for {what}")
    if response.status_code != 200:
        raise ProviderError(f"the provider answered {response.status_code} for {what}")
    try:
        return response.json()
    except ValueError:
        raise ProviderError(f"{what} is not valid JSON") from None


def _token_response(response: httpx.Response) -> TokenResponse:
    if response.status_code >= 500:
        raise ProviderUnavailable(f"the token endpoint answered {response.status_code}")
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, Mapping):
        raise ProviderError(f"the token endpoint answered {response.status_code} without JSON")
    if response.status_code != 200 or "error" in body:
        code = oauth_error_code(body.get("error"))
        raise TokenEndpointError(code, f"the token endpoint refused the request: {code}")
    access_token = body.get("access_token")
    token_type = body.get("token_type")
    if not isinstance(access_token, str) or not access_token:
        raise ProviderError("the token endpoint answered without an access_token")
    if not isinstance(token_type, str) or token_type.lower() not in ("bearer", "dpop"):
        raise ProviderError("the token endpoint answered an unsupported token_type")
    expires_in = body.get("expires_in")
    if isinstance(expires_in, str) and expires_in.isdigit():
        expires_in = int(expires_in)
    if expires_in is not None and (
        not isinstance(expires_in, int)
        or isinstance(expires_in, bool)
        or not 0 <= expires_in <= MAX_EXPIRES_IN
    ):
        raise ProviderError("the token endpoint answered an invalid expires_in")
    return TokenResponse(
        access_token=access_token,
        token_type=token_type,
        expires_in=expires_in,
        refresh_token=_opt_str(body, "refresh_token"),
        id_token=_opt_str(body, "id_token"),
        scope=_opt_str(body, "scope"),
    )


def _opt_str(body: Mapping[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ProviderError(f"the token endpoint answered a non-string {name}")
    return value
