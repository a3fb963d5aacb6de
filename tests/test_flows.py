"""The provider exchanges, stepped by hand: no server, no network."""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from joserfc.jwk import ECKey, OctKey, RSAKey

from oakid_gate.errors import MetadataError, ProviderError, ProviderUnavailable, TokenEndpointError
from oakid_gate.gate import flows
from oakid_gate.gate.metadata import ProviderMetadata, parse_metadata

ISSUER = "https://id.oakwall.mom"

DOC: dict[str, Any] = {
    "issuer": ISSUER,
    "authorization_endpoint": f"{ISSUER}/oauth/authorize",
    "token_endpoint": f"{ISSUER}/oauth/token",
    "userinfo_endpoint": f"{ISSUER}/oauth/userinfo",
    "revocation_endpoint": f"{ISSUER}/oauth/revoke",
    "jwks_uri": f"{ISSUER}/.well-known/jwks.json",
    "response_types_supported": ["code"],
    "code_challenge_methods_supported": ["S256"],
    "id_token_signing_alg_values_supported": ["HS256"],
    "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
}


def meta(**changes: Any) -> ProviderMetadata:
    return parse_metadata({**DOC, **changes}, issuer=ISSUER, kind="openid")


def run(flow: flows.Flow[Any], *responses: httpx.Response) -> tuple[Any, list[httpx.Request]]:
    """Step a flow with canned responses; return its result and the requests it made."""
    sent = [next(flow)]
    for response in responses:
        try:
            sent.append(flow.send(response))
        except StopIteration as stop:
            return stop.value, sent
    raise AssertionError("the flow asked for more responses")


def test_discover_openid() -> None:
    """Discovery reads the OpenID document at the issuer's well-known path."""
    result, sent = run(flows.discover(ISSUER), httpx.Response(200, json=DOC))
    assert sent[0].url == f"{ISSUER}/.well-known/openid-configuration"
    assert result.kind == "openid"
    assert result.token_endpoint == DOC["token_endpoint"]
    assert result.id_token_algs == ("HS256",)


def test_discover_falls_back_to_rfc8414() -> None:
    """Without an OpenID document, the RFC 8414 document is used (the path is inserted)."""
    issuer = "https://auth.example.com/tenant"
    doc = {**DOC, "issuer": issuer}
    result, sent = run(
        flows.discover(issuer), httpx.Response(404), httpx.Response(200, json=doc)
    )
    assert sent[0].url == f"{issuer}/.well-known/openid-configuration"
    assert sent[1].url == "https://auth.example.com/.well-known/oauth-authorization-server/tenant"
    assert result.kind == "oauth"


@pytest.mark.parametrize(
    ("document", "error", "text"),
    [
        pytest.param({**DOC, "issuer": ISSUER + "/"}, MetadataError, "issuer", id="issuer-slash"),
        pytest.param({**DOC, "issuer": "https://evil.example"}, MetadataError, "issuer", id="issuer-other"),
        pytest.param({k: v for k, v in DOC.items() if k != "issuer"}, MetadataError, "issuer", id="issuer-missing"),
        pytest.param({**DOC, "token_endpoint": "http://id.oakwall.mom/t"}, MetadataError, "https", id="http-endpoint"),
        pytest.param({**DOC, "token_endpoint": None}, MetadataError, "token_endpoint", id="no-token-endpoint"),
        pytest.param({**DOC, "code_challenge_methods_supported": ["plain"]}, MetadataError, "S256", id="no-s256"),
        pytest.param({**DOC, "response_types_supported": ["token"]}, MetadataError, "code", id="no-code"),
        pytest.param([1, 2], MetadataError, "JSON object", id="not-object"),
    ],
)
def test_discover_rejects(document: Any, error: type[Exception], text: str) -> None:
    """A discovery document that is wrong or unsafe is refused with a reason."""
    with pytest.raises(error, match=text):
        run(flows.discover(ISSUER), httpx.Response(200, json=document))


def test_discover_provider_down() -> None:
    """A 5xx at discovery means the provider is unavailable."""
    with pytest.raises(ProviderUnavailable):
        run(flows.discover(ISSUER), httpx.Response(503))


def test_metadata_http_allowed_on_loopback() -> None:
    """Plain http endpoints are accepted for a loopback issuer (local providers)."""
    issuer = "http://127.0.0.1:9000"
    doc = {**DOC, "issuer": issuer, "token_endpoint": f"{issuer}/token",
           "authorization_endpoint": f"{issuer}/auth"}
    assert parse_metadata(doc, issuer=issuer, kind="openid").token_endpoint == f"{issuer}/token"


def test_fetch_jwks_keeps_only_public_signing_keys() -> None:
    """Symmetric, private and encryption keys in a JWKS are ignored."""
    ec = ECKey.generate_key("P-256", parameters={"kid": "ec"})
    rsa = RSAKey.generate_key(2048, parameters={"kid": "rsa"})
    oct_key = OctKey.generate_key(256, parameters={"kid": "oct"})
    keys = [
        ec.as_dict(private=False),
        rsa.as_dict(private=True),
        {**ec.as_dict(private=False), "kid": "enc", "use": "enc"},
        oct_key.as_dict(),
    ]
    result, _ = run(flows.fetch_jwks("https://x/jwks"), httpx.Response(200, json={"keys": keys}))
    assert [k.kid for k in result.keys] == ["ec"]
    empty, _ = run(flows.fetch_jwks("https://x/jwks"), httpx.Response(200, json={"keys": []}))
    assert empty.keys == []


CLIENT_BASIC = flows.ClientCredentials("oak_client", "s3cr:et&", "client_secret_basic")
CLIENT_POST = flows.ClientCredentials("oak_client", "s3cr:et&", "client_secret_post")
TOKENS = {"access_token": "at", "token_type": "Bearer", "expires_in": 3600,
          "refresh_token": "rt", "id_token": "it", "scope": "openid"}


def test_exchange_code_basic_auth_is_form_encoded() -> None:
    """client_secret_basic form-encodes id and secret before Base64 (RFC 6749 2.3.1)."""
    result, sent = run(
        flows.exchange_code(meta(), CLIENT_BASIC, code="c", redirect_uri="https://app/cb",
                            code_verifier="v" * 43),
        httpx.Response(200, json=TOKENS),
    )
    request = sent[0]
    auth = base64.b64decode(request.headers["authorization"].removeprefix("Basic ")).decode()
    assert auth == "oak_client:s3cr%3Aet%26"
    form = parse_qs(request.content.decode())
    assert form["grant_type"] == ["authorization_code"]
    assert form["code_verifier"] == ["v" * 43]
    assert "client_secret" not in form
    assert result.refresh_token == "rt"


def test_exchange_code_post_auth_puts_secret_in_body() -> None:
    """client_secret_post sends the credentials in the form, not a header."""
    _, sent = run(
        flows.exchange_code(meta(), CLIENT_POST, code="c", redirect_uri="https://app/cb",
                            code_verifier="v" * 43),
        httpx.Response(200, json=TOKENS),
    )
    form = parse_qs(sent[0].content.decode())
    assert form["client_secret"] == ["s3cr:et&"]
    assert "authorization" not in sent[0].headers


@pytest.mark.parametrize(
    ("response", "error", "code"),
    [
        pytest.param(httpx.Response(400, json={"error": "invalid_grant"}), TokenEndpointError, "invalid_grant", id="invalid-grant"),
        pytest.param(httpx.Response(401, json={"error": "invalid_client"}), TokenEndpointError, "invalid_client", id="invalid-client"),
        pytest.param(httpx.Response(500, json={"error": "server_error"}), ProviderUnavailable, "temporarily_unavailable", id="server-error"),
        pytest.param(httpx.Response(200, text="<html>"), ProviderError, "server_error", id="not-json"),
        pytest.param(httpx.Response(200, json={"token_type": "Bearer"}), ProviderError, "server_error", id="no-access-token"),
        pytest.param(httpx.Response(200, json={**TOKENS, "token_type": "mac"}), ProviderError, "server_error", id="odd-token-type"),
        pytest.param(httpx.Response(200, json={**TOKENS, "expires_in": -5}), ProviderError, "server_error", id="negative-expiry"),
        pytest.param(httpx.Response(400, json={"error": "<script>"}), TokenEndpointError, "error", id="odd-error-code"),
    ],
)
def test_refresh_errors(response: httpx.Response, error: type[Exception], code: str) -> None:
    """Token endpoint failures become typed errors with the provider's OAuth code."""
    with pytest.raises(error) as info:
        run(flows.refresh_tokens(meta(), CLIENT_POST, refresh_token="rt", scopes="openid"), response)
    assert info.value.error == code  # type: ignore[attr-defined]
    assert "rt" not in str(info.value).split()


def test_userinfo_sends_bearer_and_maps_401() -> None:
    """Userinfo sends the access token as Bearer; a 401 is a userinfo error."""
    from oakid_gate.errors import UserInfoError

    claims, sent = run(flows.fetch_userinfo(meta(), "AT"), httpx.Response(200, json={"sub": "u"}))
    assert sent[0].headers["authorization"] == "Bearer AT"
    assert claims == {"sub": "u"}
    with pytest.raises(UserInfoError):
        run(flows.fetch_userinfo(meta(), "AT"), httpx.Response(401))


def test_revoke_and_introspect() -> None:
    """Revocation posts the token with its hint; introspection returns active claims only."""
    ok, sent = run(flows.revoke(meta(), CLIENT_POST, token="RT", hint="refresh_token"),
                   httpx.Response(200))
    assert ok is True
    assert parse_qs(sent[0].content.decode())["token_type_hint"] == ["refresh_token"]
    m = meta(introspection_endpoint=f"{ISSUER}/introspect")
    active, _ = run(flows.introspect(m, CLIENT_POST, token="AT"),
                    httpx.Response(200, json={"active": True, "sub": "u"}))
    assert active == {"active": True, "sub": "u"}
    inactive, _ = run(flows.introspect(m, CLIENT_POST, token="AT"),
                      httpx.Response(200, json={"active": False}))
    assert inactive is None


def test_credentials_repr_hides_secret() -> None:
    """Client credentials and token responses never show secrets in their repr."""
    assert "s3cr" not in repr(CLIENT_BASIC)
    tokens = flows.TokenResponse("at-value", "Bearer", 1, "rt-value", "id-value", None)
    assert "value" not in repr(tokens)


def test_auth_method_choice() -> None:
    """Basic is preferred when offered; the setting wins; neither is an error."""
    assert meta().auth_method(None) == "client_secret_basic"
    assert meta().auth_method("client_secret_post") == "client_secret_post"
    assert meta(token_endpoint_auth_methods_supported=["client_secret_post"]).auth_method(None) == "client_secret_post"
    with pytest.raises(MetadataError):
        meta(token_endpoint_auth_methods_supported=["private_key_jwt"]).auth_method(None)
