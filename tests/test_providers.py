"""The three providers of ../shared/seeds, as their documents describe them, all sign in.

- Authcore (authcore-oauth-oidc.md): OpenID discovery with only issuer, the
  endpoints, jwks_uri and response types; no userinfo endpoint; no algorithm
  list; a JWKS of ES256 keys that declare their ``alg``.
- Auth Agent (auth-agent-api.txt): an OAuth 2.1 server with RFC 8414 metadata
  only (``/.well-known/oauth-authorization-server``), PKCE S256, no ID token,
  an email-only userinfo and an introspection endpoint.
- OakID itself is covered by the dev-idp suites (HS256 ID tokens keyed with
  the client secret).
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from support.hostile_idp import USERS, Faults, HostileIdP

from oakid_gate import OakIDMiddleware

SITE = "http://testserver"
HTML = {"accept": "text/html"}

#: Authcore's discovery example holds only these fields
AUTHCORE_DROPS = (
    "userinfo_endpoint",
    "revocation_endpoint",
    "introspection_endpoint",
    "subject_types_supported",
    "id_token_signing_alg_values_supported",
    "token_endpoint_auth_methods_supported",
    "code_challenge_methods_supported",
    "authorization_response_iss_parameter_supported",
)


async def whoami(request: Request) -> JSONResponse:
    return JSONResponse({"sub": request.user.sub, "email": request.user.email})


def site(idp: HostileIdP, **settings: Any) -> OakIDMiddleware:
    app = Starlette(routes=[Route("/whoami", whoami)])
    return OakIDMiddleware(
        app,
        issuer=idp.issuer,
        client_id=idp.client_id,
        client_secret=idp.client_secret,
        secret="s" * 32,
        http=idp.http_client(),
        **settings,
    )


async def refused_sign_in(idp: HostileIdP) -> httpx.Response:
    """Start a sign-in, let the provider answer, and return the gate's answer to the callback."""
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=site(idp)), base_url=SITE
    ) as browser:
        to_idp = await browser.get("/whoami", headers=HTML)
        callback = await idp.authorize(to_idp.headers["location"])
        return await browser.get(callback, headers=HTML)


async def sign_in(gate: OakIDMiddleware, idp: HostileIdP) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=gate), base_url=SITE) as browser:
        to_idp = await browser.get("/whoami", headers=HTML)
        assert to_idp.status_code == 302, to_idp.text
        callback = await idp.authorize(to_idp.headers["location"])
        back = await browser.get(callback, headers=HTML)
        assert back.status_code == 302, back.text
        return await browser.get("/whoami")


async def test_authcore_es256_without_alg_list_or_userinfo() -> None:
    """An Authcore-shaped provider: ES256 allowed because its JWKS keys declare it."""
    idp = HostileIdP(iss_parameter_supported=False)
    idp.faults = Faults(signing="ES256", discovery_drop=AUTHCORE_DROPS, iss_param="missing")
    page = await sign_in(site(idp), idp)
    assert page.status_code == 200, page.text
    assert page.json()["sub"] == USERS["alice"]["sub"]
    assert idp.userinfo_requests == 0  # there is no userinfo endpoint to ask


async def test_authcore_shape_still_refuses_hs256() -> None:
    """Without an algorithm list, HMAC is never allowed: only what the JWKS keys declare."""
    idp = HostileIdP(iss_parameter_supported=False)
    idp.faults = Faults(signing="HS256", discovery_drop=AUTHCORE_DROPS, iss_param="missing")
    refused = await refused_sign_in(idp)
    assert refused.status_code == 401
    assert "not allowed" in refused.text


@pytest.mark.parametrize(
    ("drop", "expected_sub"),
    [
        pytest.param(("sub", "name", "preferred_username"), USERS["alice"]["sub"], id="sub-from-introspection"),
        pytest.param((), USERS["alice"]["sub"], id="sub-from-userinfo"),
    ],
)
async def test_auth_agent_oauth_server(drop: tuple[str, ...], expected_sub: str) -> None:
    """An Auth Agent-shaped OAuth 2.1 server (RFC 8414, no ID token, email-only userinfo)."""
    idp = HostileIdP(iss_parameter_supported=False)
    idp.faults = Faults(
        well_known="oauth",
        omit_id_token=True,
        userinfo_drop=drop,
        iss_param="missing",
        discovery_drop=("id_token_signing_alg_values_supported",),
    )
    page = await sign_in(site(idp, scopes="profile email"), idp)
    assert page.status_code == 200, page.text
    assert page.json() == {"sub": expected_sub, "email": USERS["alice"]["email"]}
    assert "openid" not in idp.authorize_requests[-1].scope.split()


async def test_auth_agent_without_introspection_uses_the_email() -> None:
    """With neither sub nor introspection, the verified email identifies the user."""
    idp = HostileIdP(iss_parameter_supported=False)
    idp.faults = Faults(
        well_known="oauth",
        omit_id_token=True,
        userinfo_drop=("sub", "name", "preferred_username"),
        iss_param="missing",
        discovery_drop=("introspection_endpoint",),
    )
    page = await sign_in(site(idp, scopes="email"), idp)
    assert page.status_code == 200, page.text
    assert page.json()["sub"] == USERS["alice"]["email"]


async def test_openid_provider_without_id_token_is_refused() -> None:
    """An OpenID provider that answers without an ID token fails the sign-in, with a hint."""
    idp = HostileIdP()
    idp.faults = Faults(omit_id_token=True)
    refused = await refused_sign_in(idp)
    assert refused.status_code == 401
    assert "openid" in refused.text


async def test_auth_agent_bearer_tokens_go_to_its_introspect_endpoint() -> None:
    """Auth Agent's ``/introspect`` (auth-agent-api.txt) vouches for bearer tokens: an
    API client with one of its tokens reaches the app; one it does not know is 401."""
    idp = HostileIdP(iss_parameter_supported=False)
    idp.faults = Faults(
        well_known="oauth",
        omit_id_token=True,
        iss_param="missing",
        discovery_drop=("id_token_signing_alg_values_supported",),
    )
    app = site(idp, scopes="profile email")
    token = idp.access_token("alice")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=SITE) as api:
        ok = await api.get("/whoami", headers={"authorization": f"Bearer {token}"})
        bad = await api.get("/whoami", headers={"authorization": "Bearer not-issued"})
    assert ok.status_code == 200 and ok.json()["sub"] == USERS["alice"]["sub"]
    assert bad.status_code == 401 and 'error="invalid_token"' in bad.headers["www-authenticate"]
    assert idp.introspections == 2
