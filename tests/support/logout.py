"""What a sign-out answers, with or without a logout at the provider."""

from __future__ import annotations

import httpx


def assert_signed_out_to(location: str, gate_url: str) -> None:
    """Where a sign-out with ``rd=/public`` sends the browser: straight there (a provider
    without RP-initiated logout, the dev-idp), or first to the provider's end_session
    endpoint with the hint, the client and the gate's return page (node oidc-provider)."""
    if location == f"{gate_url}/public":
        return
    url = httpx.URL(location)
    assert url.path == "/session/end", location
    params = dict(url.params)
    assert params["post_logout_redirect_uri"] == f"{gate_url}/oauth2/signed_out"
    assert params["id_token_hint"].count(".") == 2 and params["client_id"] and params["state"]
