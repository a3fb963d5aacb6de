"""The dev-idp behaves like OakID: discovery, authorize, token, userinfo, revoke."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import httpx
import pytest
from joserfc import jwt
from joserfc.errors import BadSignatureError
from joserfc.jwk import OctKey

import oakid_gate.devidp
from oakid_gate.devidp import DEMO_USERS, DevClient, DevIdPConfig, DevUser, _provider, create_app

ISSUER = "http://127.0.0.1:9000"
REDIRECT_URI = "http://127.0.0.1:8000/oauth2/callback"
APP = DevClient("oak_app", "app-secret-0123456789abcdef", (REDIRECT_URI,))
OTHER = DevClient("oak_other", "other-secret-0123456789abcdef", ("http://127.0.0.1:8001/cb",))
LOOPBACK = DevClient("oak_loopback", "loopback-secret-0123456789")
CLIENTS = (APP, OTHER, LOOPBACK)


class FakeClock:
    """A settable clock that starts at the real time (so joserfc accepts exp)."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def make_client(**config: Any) -> httpx.AsyncClient:
    clock = config.pop("clock", None)
    cfg = DevIdPConfig(**{"issuer": ISSUER, "clients": CLIENTS, **config})
    app = create_app(cfg) if clock is None else create_app(cfg, clock=clock)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=cfg.issuer)


def events_of(http: httpx.AsyncClient) -> list[dict[str, Any]]:
    transport = http._transport
    assert isinstance(transport, httpx.ASGITransport)
    events: list[dict[str, Any]] = transport.app.state.events  # type: ignore[attr-defined]
    return events


@pytest.fixture
async def idp() -> AsyncIterator[httpx.AsyncClient]:
    async with make_client() as http:
        yield http


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def clocked_idp(clock: FakeClock) -> AsyncIterator[httpx.AsyncClient]:
    async with make_client(clock=clock, access_token_ttl=2, code_ttl=60) as http:
        yield http


# -- helpers -------------------------------------------------------------------


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def basic(client_id: str, secret: str) -> str:
    """RFC 6749 2.3.1: form-urlencode id and secret, then HTTP Basic."""
    raw = f"{quote_plus(client_id)}:{quote_plus(secret)}".encode()
    return "Basic " + base64.b64encode(raw).decode()


def authorize_params(challenge: str, **overrides: str | None) -> dict[str, str]:
    params: dict[str, str | None] = {
        "response_type": "code",
        "client_id": APP.client_id,
        "redirect_uri": REDIRECT_URI,
        "scope": "openid profile email",
        "state": "state-123",
        "nonce": "nonce-456",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        **overrides,
    }
    return {name: value for name, value in params.items() if value is not None}


def callback_params(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 302, response.text
    return dict(httpx.URL(response.headers["location"]).params)


def sign_in_form(
    challenge: str,
    username: str = "alice",
    password: str | None = None,
    consent: str = "approve",
    **overrides: str | None,
) -> dict[str, str]:
    """The one POST of a scripted sign-in: the authorize parameters, the credentials (the
    password is the username unless given) and the consent."""
    return {
        **authorize_params(challenge, **overrides),
        "username": username,
        "password": username if password is None else password,
        "consent": consent,
    }


def login_ticket(consent_page: httpx.Response) -> str:
    """The ticket in the consent form, which completes the sign-in it was issued for."""
    return consent_page.text.split('name="login_ticket" value="')[1].split('"')[0]


async def scripted_sign_in(
    http: httpx.AsyncClient, username: str = "alice", **overrides: str | None
) -> tuple[str, str]:
    """Sign in with one POST; return the code and the PKCE verifier."""
    verifier, challenge = pkce_pair()
    response = await http.post(
        "/oauth/authorize", data=sign_in_form(challenge, username, **overrides)
    )
    return callback_params(response)["code"], verifier


def code_form(code: str, verifier: str, /, **fields: str | None) -> dict[str, str]:
    """The token request that exchanges ``code``, with ``fields`` changed (None leaves one
    out)."""
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT_URI,
        "code_verifier": verifier,
        **fields,
    }
    return {name: value for name, value in form.items() if value is not None}


async def exchange(
    http: httpx.AsyncClient,
    code: str,
    verifier: str,
    *,
    client: DevClient = APP,
    auth: str = "basic",
    redirect_uri: str = REDIRECT_URI,
) -> httpx.Response:
    data = code_form(code, verifier, redirect_uri=redirect_uri)
    headers = {}
    if auth == "basic":
        headers["Authorization"] = basic(client.client_id, client.client_secret)
    else:
        data |= {"client_id": client.client_id, "client_secret": client.client_secret}
    return await http.post("/oauth/token", data=data, headers=headers)


async def tokens_for(
    http: httpx.AsyncClient, username: str = "alice", **overrides: str | None
) -> dict[str, Any]:
    code, verifier = await scripted_sign_in(http, username, **overrides)
    response = await exchange(http, code, verifier)
    assert response.status_code == 200, response.text
    tokens: dict[str, Any] = response.json()
    return tokens


async def refresh(
    http: httpx.AsyncClient, refresh_token: str, client: DevClient = APP, **extra: str
) -> httpx.Response:
    return await http.post(
        "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": refresh_token, **extra},
        headers={"Authorization": basic(client.client_id, client.client_secret)},
    )


async def userinfo(http: httpx.AsyncClient, access_token: str) -> httpx.Response:
    return await http.get("/oauth/userinfo", headers={"Authorization": f"Bearer {access_token}"})


def assert_token_error(response: httpx.Response, status: int, error: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == error
    assert isinstance(body["error_description"], str)
    assert set(body) == {"error", "error_description"}


# -- public API and configuration ------------------------------------------------


def test_public_api() -> None:
    """The package exports exactly the documented names."""
    assert sorted(oakid_gate.devidp.__all__) == sorted(
        ["DEMO_USERS", "DevClient", "DevIdPConfig", "DevUser", "create_app"]
    )
    assert [user.username for user in DEMO_USERS] == ["alice", "bob", "carol"]
    assert DEMO_USERS[0].claims["groups"] == ["admins", "staff"]
    assert DEMO_USERS[2].claims["groups"] == []


def test_secrets_stay_out_of_repr() -> None:
    """Client secrets and passwords never appear in a repr."""
    assert APP.client_secret not in repr(APP)
    assert "alice@" in repr(DEMO_USERS[0])
    assert "password='alice'" not in repr(DEMO_USERS[0])


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        pytest.param({"issuer": "http://127.0.0.1:9000/"}, "issuer", id="issuer-trailing-slash"),
        pytest.param({"issuer": "127.0.0.1:9000"}, "issuer", id="issuer-no-scheme"),
        pytest.param({"clients": ()}, "clients", id="no-clients"),
        pytest.param({"clients": (APP, APP)}, "repeated", id="duplicate-client"),
        pytest.param(
            {"clients": (DevClient("oak_short", "short"),)}, "client_secret", id="short-secret"
        ),
        pytest.param(
            {"clients": (DevClient("oak_frag", "0123456789abcdef", ("http://x/cb#f",)),)},
            "redirect_uris",
            id="redirect-uri-fragment",
        ),
        pytest.param({"users": (DevUser("dave", "dave", {}),)}, "sub", id="user-without-sub"),
        pytest.param({"access_token_ttl": 0}, "access_token_ttl", id="zero-access-ttl"),
        pytest.param({"code_ttl": -1}, "code_ttl", id="negative-code-ttl"),
    ],
)
def test_config_rejects_bad_settings(overrides: dict[str, Any], message: str) -> None:
    """A bad setting is a ValueError naming it when the config is built."""
    with pytest.raises(ValueError, match=message):
        DevIdPConfig(**{"issuer": ISSUER, "clients": CLIENTS, **overrides})


def test_log_path_must_be_writable(tmp_path: Path) -> None:
    """An unwritable log path fails in create_app, not at the first event."""
    config = DevIdPConfig(ISSUER, CLIENTS, log_path=str(tmp_path / "missing" / "log.jsonl"))
    with pytest.raises(OSError):
        create_app(config)


# -- discovery -------------------------------------------------------------------


async def test_discovery_document(idp: httpx.AsyncClient) -> None:
    """Discovery advertises OakID's endpoints and capabilities under the issuer."""
    response = await idp.get("/.well-known/openid-configuration")
    assert response.status_code == 200
    doc = response.json()
    assert doc["issuer"] == ISSUER
    assert doc["authorization_endpoint"] == f"{ISSUER}/oauth/authorize"
    assert doc["token_endpoint"] == f"{ISSUER}/oauth/token"
    assert doc["userinfo_endpoint"] == f"{ISSUER}/oauth/userinfo"
    assert doc["revocation_endpoint"] == f"{ISSUER}/oauth/revoke"
    assert doc["jwks_uri"] == f"{ISSUER}/.well-known/jwks.json"
    assert doc["response_types_supported"] == ["code"]
    assert doc["grant_types_supported"] == ["authorization_code", "refresh_token"]
    assert doc["code_challenge_methods_supported"] == ["S256"]
    assert doc["id_token_signing_alg_values_supported"] == ["HS256"]
    assert doc["token_endpoint_auth_methods_supported"] == [
        "client_secret_basic",
        "client_secret_post",
    ]
    assert doc["scopes_supported"] == ["openid", "profile", "email"]
    assert doc["subject_types_supported"] == ["public"]
    assert {"sub", "email", "groups", "nonce"} <= set(doc["claims_supported"])
    assert doc["authorization_response_iss_parameter_supported"] is True
    rfc8414 = await idp.get("/.well-known/oauth-authorization-server")
    assert rfc8414.json() == doc


async def test_jwks_is_empty(idp: httpx.AsyncClient) -> None:
    """The JWKS is empty because ID tokens are HS256 keyed with the client secret."""
    response = await idp.get("/.well-known/jwks.json")
    assert response.status_code == 200
    assert response.json() == {"keys": []}


async def test_issuer_with_path_prefixes_every_route() -> None:
    """An issuer with a path serves discovery and endpoints below that path."""
    async with make_client(issuer="http://127.0.0.1:9000/idp") as http:
        # the client's base_url is the issuer, so these paths go below /idp
        doc = (await http.get("/.well-known/openid-configuration")).json()
        assert doc["token_endpoint"] == "http://127.0.0.1:9000/idp/oauth/token"
        _, challenge = pkce_pair()
        page = await http.get("/oauth/authorize", params=authorize_params(challenge))
        assert page.url.path == "/idp/oauth/authorize"
        assert page.status_code == 200
        assert 'action="/idp/oauth/authorize"' in page.text


# -- authorization endpoint: errors ------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        pytest.param({"code_challenge_method": "plain"}, "invalid_request", id="plain-pkce"),
        pytest.param({"code_challenge_method": None}, "invalid_request", id="no-challenge-method"),
        pytest.param({"code_challenge": None}, "invalid_request", id="no-challenge"),
        pytest.param({"code_challenge": "too-short"}, "invalid_request", id="malformed-challenge"),
        pytest.param({"response_type": "token"}, "unsupported_response_type", id="implicit"),
        pytest.param({"response_type": "code id_token"}, "unsupported_response_type", id="hybrid"),
        pytest.param({"response_type": None}, "invalid_request", id="no-response-type"),
        pytest.param({"scope": "openid phone"}, "invalid_scope", id="unknown-scope"),
        pytest.param({"scope": "profile email"}, "invalid_scope", id="no-openid-scope"),
    ],
)
async def test_authorize_errors_redirect_to_client(
    idp: httpx.AsyncClient, method: str, overrides: dict[str, str | None], error: str
) -> None:
    """Errors after the redirect URI is verified go back to it with error, state and iss."""
    _, challenge = pkce_pair()
    params = authorize_params(challenge, **overrides)
    if method == "GET":
        response = await idp.get("/oauth/authorize", params=params)
    else:
        response = await idp.post("/oauth/authorize", data={**params, "username": "alice"})
    assert response.status_code == 302
    location = httpx.URL(response.headers["location"])
    assert str(location.copy_with(query=None)) == REDIRECT_URI
    assert dict(location.params) == {
        "error": error,
        "error_description": location.params["error_description"],
        "state": "state-123",
        "iss": ISSUER,
    }
    assert location.params["error_description"]


async def test_authorize_repeated_parameter_is_invalid_request(idp: httpx.AsyncClient) -> None:
    """A parameter sent twice is invalid_request, redirected without the ambiguous state."""
    _, challenge = pkce_pair()
    query = httpx.QueryParams(authorize_params(challenge)).add("scope", "openid")
    response = await idp.get("/oauth/authorize", params=query)
    params = callback_params(response)
    assert params["error"] == "invalid_request"
    assert "scope" in params["error_description"]


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"client_id": "oak_unknown"}, id="unknown-client"),
        pytest.param({"client_id": None}, id="no-client"),
        pytest.param({"redirect_uri": "http://127.0.0.1:8000/other"}, id="unregistered-uri"),
        pytest.param({"redirect_uri": REDIRECT_URI + "/"}, id="not-exact-uri"),
        pytest.param({"redirect_uri": None}, id="no-redirect-uri"),
        pytest.param(
            {"client_id": LOOPBACK.client_id, "redirect_uri": "https://evil.example/cb"},
            id="loopback-client-remote-uri",
        ),
        pytest.param(
            {"client_id": LOOPBACK.client_id, "redirect_uri": "http://127.0.0.1@evil.example/cb"},
            id="loopback-client-userinfo-uri",
        ),
        pytest.param(
            {"client_id": LOOPBACK.client_id, "redirect_uri": "http://localhost:8000/cb#frag"},
            id="loopback-client-fragment",
        ),
        pytest.param(
            {"client_id": LOOPBACK.client_id, "redirect_uri": "http://localhost.evil.example/cb"},
            id="loopback-client-lookalike-host",
        ),
        pytest.param(
            {"client_id": LOOPBACK.client_id, "redirect_uri": "http://127.0.0.1:99999/cb"},
            id="loopback-client-bad-port",
        ),
        pytest.param(
            {"client_id": OTHER.client_id, "response_type": "token"},
            id="other-client-with-app-uri",
        ),
    ],
)
async def test_authorize_untrusted_target_gets_page_not_redirect(
    idp: httpx.AsyncClient, method: str, overrides: dict[str, str | None]
) -> None:
    """An unknown client or unverified redirect URI gets a 400 page and never a redirect."""
    _, challenge = pkce_pair()
    if method == "GET":
        response = await idp.get(
            "/oauth/authorize", params=authorize_params(challenge, **overrides)
        )
    else:
        response = await idp.post("/oauth/authorize", data=sign_in_form(challenge, **overrides))
    assert response.status_code == 400
    assert "location" not in response.headers
    assert response.headers["content-type"].startswith("text/html")
    assert "code=" not in response.text


@pytest.mark.parametrize(
    "redirect_uri",
    [
        pytest.param("http://127.0.0.1:5555/callback", id="ipv4-port"),
        pytest.param("http://localhost:1234/oauth2/callback?tenant=a", id="localhost-query"),
        pytest.param("http://[::1]:8080/cb", id="ipv6"),
    ],
)
async def test_loopback_client_accepts_any_loopback_uri(
    idp: httpx.AsyncClient, redirect_uri: str
) -> None:
    """A client without registered URIs may use any loopback URI, and its query is kept."""
    _, challenge = pkce_pair()
    data = sign_in_form(challenge, "bob", client_id=LOOPBACK.client_id, redirect_uri=redirect_uri)
    response = await idp.post("/oauth/authorize", data=data)
    assert response.status_code == 302
    location = httpx.URL(response.headers["location"])
    assert str(location).startswith(redirect_uri)
    assert set(location.params) == {"code", "state", "iss"} | set(httpx.URL(redirect_uri).params)
    if "?" in redirect_uri:
        assert location.params["tenant"] == "a"


async def test_prompt_none_is_login_required(idp: httpx.AsyncClient) -> None:
    """prompt=none redirects with login_required, since the dev-idp keeps no sessions."""
    _, challenge = pkce_pair()
    params = {**authorize_params(challenge), "prompt": "none"}
    response = await idp.get("/oauth/authorize", params=params)
    assert callback_params(response) | {"error_description": ""} == {
        "error": "login_required",
        "error_description": "",
        "state": "state-123",
        "iss": ISSUER,
    }


async def test_login_hint_prefills_username(idp: httpx.AsyncClient) -> None:
    """login_hint fills in the username field of the sign-in page."""
    _, challenge = pkce_pair()
    params = {**authorize_params(challenge), "login_hint": "bob"}
    response = await idp.get("/oauth/authorize", params=params)
    assert 'name="username" value="bob"' in response.text


# -- authorization endpoint: signing in ------------------------------------------------


async def test_sign_in_page_lists_users_and_escapes(idp: httpx.AsyncClient) -> None:
    """The sign-in page lists the users and carries the parameters as escaped hidden fields."""
    _, challenge = pkce_pair()
    evil = '"><script>alert(1)</script>'
    response = await idp.get("/oauth/authorize", params=authorize_params(challenge, state=evil))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["cache-control"] == "no-store"
    page = response.text
    assert "<script>" not in page
    assert 'name="state" value="&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"' in page
    assert f'name="code_challenge" value="{challenge}"' in page
    for user in ("alice", "bob", "carol"):
        assert f"<td>{user}</td>" in page
    assert "alice@example.test" in page


async def test_scripted_sign_in_redirects_with_code(idp: httpx.AsyncClient) -> None:
    """One POST with credentials and consent=approve answers with the redirect carrying the code."""
    _, challenge = pkce_pair()
    response = await idp.post("/oauth/authorize", data=sign_in_form(challenge))
    assert response.status_code == 302
    location = httpx.URL(response.headers["location"])
    assert str(location.copy_with(query=None)) == REDIRECT_URI
    assert set(location.params) == {"code", "state", "iss"}
    assert location.params["state"] == "state-123"
    assert location.params["iss"] == ISSUER


async def test_interactive_sign_in_asks_consent_once(idp: httpx.AsyncClient) -> None:
    """A browser sign-in shows consent, which is remembered until more scopes are asked for."""
    _, challenge = pkce_pair()
    params = authorize_params(challenge, scope="openid profile")
    credentials = {"username": "bob", "password": "bob"}

    consent = await idp.post("/oauth/authorize", data={**params, **credentials})
    assert consent.status_code == 200
    assert 'value="approve"' in consent.text
    assert "<code>profile</code>" in consent.text
    assert "<code>email</code>" not in consent.text
    ticket = login_ticket(consent)
    approved = await idp.post(
        "/oauth/authorize", data={**params, "login_ticket": ticket, "consent": "approve"}
    )
    assert "code" in callback_params(approved)

    again = await idp.post("/oauth/authorize", data={**params, **credentials})
    assert "code" in callback_params(again)

    wider = authorize_params(challenge, scope="openid profile email")
    asked = await idp.post("/oauth/authorize", data={**wider, **credentials})
    assert asked.status_code == 200
    assert "<code>email</code>" in asked.text


async def test_consent_denied_redirects_access_denied(idp: httpx.AsyncClient) -> None:
    """Denying consent redirects with error=access_denied, state and iss."""
    _, challenge = pkce_pair()
    data = {**authorize_params(challenge), "username": "carol", "password": "carol"}
    consent = await idp.post("/oauth/authorize", data=data)
    ticket = login_ticket(consent)
    denied = await idp.post(
        "/oauth/authorize",
        data={**authorize_params(challenge), "login_ticket": ticket, "consent": "deny"},
    )
    params = callback_params(denied)
    assert params["error"] == "access_denied"
    assert params["state"] == "state-123"
    assert params["iss"] == ISSUER
    assert "code" not in params


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param({"scope": "openid profile email"}, id="wider-scope"),
        pytest.param({"code_challenge": pkce_pair()[1]}, id="other-challenge"),
        pytest.param({"login_ticket": "forged"}, id="forged-ticket"),
    ],
)
async def test_login_ticket_is_bound_to_its_request(
    idp: httpx.AsyncClient, tamper: dict[str, str]
) -> None:
    """The consent form's ticket only completes the request it was issued for."""
    _, challenge = pkce_pair()
    params = authorize_params(challenge, scope="openid")
    consent = await idp.post(
        "/oauth/authorize", data={**params, "username": "bob", "password": "bob"}
    )
    ticket = login_ticket(consent)
    data = {**params, "login_ticket": ticket, "consent": "approve", **tamper}
    response = await idp.post("/oauth/authorize", data=data)
    assert response.status_code == 200
    assert "location" not in response.headers
    assert 'name="password"' in response.text


async def test_login_ticket_is_single_use(idp: httpx.AsyncClient) -> None:
    """A consent ticket cannot be replayed after it was used."""
    _, challenge = pkce_pair()
    params = authorize_params(challenge)
    consent = await idp.post(
        "/oauth/authorize", data={**params, "username": "bob", "password": "bob"}
    )
    ticket = login_ticket(consent)
    data = {**params, "login_ticket": ticket, "consent": "approve"}
    assert (await idp.post("/oauth/authorize", data=data)).status_code == 302
    replay = await idp.post("/oauth/authorize", data=data)
    assert replay.status_code == 200
    assert "location" not in replay.headers


@pytest.mark.parametrize(
    ("username", "password"),
    [
        pytest.param("alice", "wrong", id="wrong-password"),
        pytest.param("mallory", "mallory", id="unknown-user"),
        pytest.param("alice", "", id="empty-password"),
        pytest.param("alice", "ALICE", id="case-differs"),
    ],
)
async def test_wrong_credentials_show_sign_in_again(
    idp: httpx.AsyncClient, username: str, password: str
) -> None:
    """Wrong credentials answer the sign-in page with a message, never a redirect."""
    _, challenge = pkce_pair()
    response = await idp.post("/oauth/authorize", data=sign_in_form(challenge, username, password))
    assert response.status_code == 200
    assert "location" not in response.headers
    assert 'role="alert"' in response.text
    assert 'name="password"' in response.text


async def test_bad_consent_value_is_rejected(idp: httpx.AsyncClient) -> None:
    """A consent value other than approve or deny is a 400 page, not a silent consent page."""
    _, challenge = pkce_pair()
    response = await idp.post("/oauth/authorize", data=sign_in_form(challenge, consent="yes"))
    assert response.status_code == 400
    assert "location" not in response.headers


@pytest.mark.parametrize(
    ("origin", "status"),
    [
        pytest.param("http://evil.example", 403, id="cross-site"),
        pytest.param("null", 403, id="opaque-origin"),
        pytest.param("http://localhost:9001", 403, id="other-port"),
        pytest.param("http://localhost:9000", 302, id="request-origin"),
        pytest.param(ISSUER, 302, id="issuer-origin"),
    ],
)
async def test_cross_origin_sign_in_post_is_refused(origin: str, status: int) -> None:
    """A sign-in POST from another origin is refused; the provider's own form is accepted."""
    app = create_app(DevIdPConfig(ISSUER, CLIENTS))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost:9000") as http:
        _, challenge = pkce_pair()
        data = sign_in_form(challenge)
        response = await http.post("/oauth/authorize", data=data, headers={"Origin": origin})
        assert response.status_code == status


# -- token endpoint ----------------------------------------------------------------


@pytest.mark.parametrize("auth", ["basic", "post"])
async def test_code_exchange(idp: httpx.AsyncClient, auth: str) -> None:
    """A code exchanges for OakID's three tokens with Basic or body client credentials."""
    code, verifier = await scripted_sign_in(idp)
    response = await exchange(idp, code, verifier, auth=auth)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert set(body) == {
        "access_token",
        "token_type",
        "expires_in",
        "refresh_token",
        "id_token",
        "scope",
    }
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert body["scope"] == "openid profile email"
    assert body["access_token"] != body["refresh_token"]


async def test_basic_credentials_are_form_urlencoded() -> None:
    """Basic credentials are form-urlencoded before base64, as RFC 6749 2.3.1 says."""
    odd = DevClient("oak:odd id", "p@ss word+%/secret-0123", (REDIRECT_URI,))
    async with make_client(clients=(odd,)) as http:
        code, verifier = await scripted_sign_in(http, client_id=odd.client_id)
        response = await exchange(http, code, verifier, client=odd)
        assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("headers", "data"),
    [
        pytest.param(
            {"Authorization": basic(APP.client_id, "wrong-secret")}, {}, id="basic-wrong-secret"
        ),
        pytest.param(
            {}, {"client_id": APP.client_id, "client_secret": "wrong"}, id="post-wrong-secret"
        ),
        pytest.param(
            {"Authorization": basic("oak_nobody", APP.client_secret)}, {}, id="unknown-client"
        ),
        pytest.param({}, {"client_id": APP.client_id}, id="no-secret"),
        pytest.param({}, {}, id="no-credentials"),
        pytest.param({"Authorization": "Basic !!!notbase64"}, {}, id="malformed-basic"),
        pytest.param(
            {"Authorization": "Basic " + base64.b64encode(b"no-colon").decode()},
            {},
            id="basic-no-colon",
        ),
        pytest.param(
            {"Authorization": basic(OTHER.client_id, APP.client_secret)},
            {},
            id="other-clients-secret",
        ),
    ],
)
async def test_bad_client_authentication_is_invalid_client(
    idp: httpx.AsyncClient, headers: dict[str, str], data: dict[str, str]
) -> None:
    """Wrong or missing client credentials are 401 invalid_client with a Basic challenge."""
    code, verifier = await scripted_sign_in(idp)
    response = await idp.post(
        "/oauth/token", data=code_form(code, verifier, **data), headers=headers
    )
    assert_token_error(response, 401, "invalid_client")
    assert response.headers["www-authenticate"].startswith("Basic")


@pytest.mark.parametrize(
    ("data", "error"),
    [
        pytest.param({"grant_type": "password"}, "unsupported_grant_type", id="password-grant"),
        pytest.param(
            {"grant_type": "client_credentials"}, "unsupported_grant_type", id="client-credentials"
        ),
        pytest.param({"grant_type": None}, "invalid_request", id="no-grant-type"),
        pytest.param({"code": None}, "invalid_request", id="no-code"),
        pytest.param({"redirect_uri": None}, "invalid_request", id="no-redirect-uri"),
        pytest.param({"code_verifier": None}, "invalid_request", id="no-verifier"),
        pytest.param(
            {"client_secret": APP.client_secret, "client_id": APP.client_id},
            "invalid_request",
            id="basic-and-body-secret",
        ),
    ],
)
async def test_token_request_errors(
    idp: httpx.AsyncClient, data: dict[str, str | None], error: str
) -> None:
    """Malformed token requests and other grant types are 400 with OakID's error codes."""
    code, verifier = await scripted_sign_in(idp)
    response = await idp.post(
        "/oauth/token",
        data=code_form(code, verifier, **data),
        headers={"Authorization": basic(APP.client_id, APP.client_secret)},
    )
    assert_token_error(response, 400, error)
    assert response.headers["cache-control"] == "no-store"


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        pytest.param(b'{"grant_type": "authorization_code"}', "application/json", id="json-body"),
        pytest.param(
            b"grant_type=authorization_code&grant_type=refresh_token", None, id="repeated"
        ),
        pytest.param(b"grant_type=\xff\xfe", None, id="not-utf8"),
    ],
)
async def test_token_body_must_be_a_clean_form(
    idp: httpx.AsyncClient, content: bytes, content_type: str | None
) -> None:
    """A token request that is not a well-formed form is invalid_request."""
    headers = {
        "Content-Type": content_type or "application/x-www-form-urlencoded",
        "Authorization": basic(APP.client_id, APP.client_secret),
    }
    response = await idp.post("/oauth/token", content=content, headers=headers)
    assert_token_error(response, 400, "invalid_request")


async def test_code_is_single_use_and_replay_revokes_tokens(idp: httpx.AsyncClient) -> None:
    """A second exchange of a code is invalid_grant and revokes the tokens the first one gave."""
    code, verifier = await scripted_sign_in(idp)
    first = await exchange(idp, code, verifier)
    assert first.status_code == 200
    second = await exchange(idp, code, verifier)
    assert_token_error(second, 400, "invalid_grant")
    assert (await userinfo(idp, first.json()["access_token"])).status_code == 401
    assert_token_error(await refresh(idp, first.json()["refresh_token"]), 400, "invalid_grant")


async def test_expired_code_is_invalid_grant(
    clocked_idp: httpx.AsyncClient, clock: FakeClock
) -> None:
    """A code presented after code_ttl is invalid_grant."""
    code, verifier = await scripted_sign_in(clocked_idp)
    clock.advance(61)
    response = await exchange(clocked_idp, code, verifier)
    assert_token_error(response, 400, "invalid_grant")
    assert "expired" in response.json()["error_description"]


async def test_code_ttl_zero_expires_at_once() -> None:
    """With code_ttl=0 every code is already expired, on the real clock."""
    async with make_client(code_ttl=0) as http:
        code, verifier = await scripted_sign_in(http)
        assert_token_error(await exchange(http, code, verifier), 400, "invalid_grant")


@pytest.mark.parametrize(
    ("change", "description"),
    [
        pytest.param(
            {"redirect_uri": REDIRECT_URI + "?x=1"}, "redirect_uri", id="redirect-uri-mismatch"
        ),
        pytest.param(
            {"verifier": secrets.token_urlsafe(48)}, "PKCE verification failed", id="pkce-mismatch"
        ),
        pytest.param(
            {"verifier": "short"}, "PKCE verification failed", id="pkce-verifier-too-short"
        ),
        pytest.param(
            {"verifier": "a" * 129}, "PKCE verification failed", id="pkce-verifier-too-long"
        ),
        pytest.param(
            {"verifier": "ü" * 43}, "PKCE verification failed", id="pkce-verifier-charset"
        ),
        pytest.param({"client": OTHER}, "another client", id="code-of-other-client"),
        pytest.param({"code": "not-a-code"}, "unknown", id="unknown-code"),
    ],
)
async def test_code_exchange_rejections(
    idp: httpx.AsyncClient, change: dict[str, Any], description: str
) -> None:
    """A code with the wrong redirect URI, verifier or client is invalid_grant."""
    code, verifier = await scripted_sign_in(idp)
    response = await exchange(
        idp,
        change.get("code", code),
        change.get("verifier", verifier),
        client=change.get("client", APP),
        redirect_uri=change.get("redirect_uri", REDIRECT_URI),
    )
    assert_token_error(response, 400, "invalid_grant")
    assert description in response.json()["error_description"]


async def test_pkce_failure_uses_the_code_up(idp: httpx.AsyncClient) -> None:
    """After a failed PKCE check the code cannot be retried with the right verifier."""
    code, verifier = await scripted_sign_in(idp)
    assert (await exchange(idp, code, "x" * 43)).status_code == 400
    assert_token_error(await exchange(idp, code, verifier), 400, "invalid_grant")


async def test_pkce_description_matches_oakid(idp: httpx.AsyncClient) -> None:
    """A verifier mismatch has exactly OakID's error body."""
    code, _ = await scripted_sign_in(idp)
    response = await exchange(idp, code, secrets.token_urlsafe(48))
    assert response.json() == {
        "error": "invalid_grant",
        "error_description": "PKCE verification failed",
    }


# -- ID token ------------------------------------------------------------------------


async def test_id_token_verifies_with_client_secret(idp: httpx.AsyncClient) -> None:
    """The ID token is an HS256 JWT signed with the client secret holding the OIDC claims."""
    before = int(time.time())
    tokens = await tokens_for(idp)
    token = jwt.decode(
        tokens["id_token"], OctKey.import_key(APP.client_secret.encode()), algorithms=["HS256"]
    )
    assert token.header["alg"] == "HS256"
    claims = token.claims
    assert claims["iss"] == ISSUER
    assert claims["aud"] == APP.client_id
    assert claims["sub"] == "u-alice"
    assert claims["nonce"] == "nonce-456"
    assert before <= claims["iat"] <= int(time.time())
    assert claims["exp"] == claims["iat"] + 3600
    assert before <= claims["auth_time"] <= claims["iat"]
    assert claims["email"] == "alice@example.test"
    assert claims["email_verified"] is True
    assert claims["name"] == "Alice Admin"
    assert claims["preferred_username"] == "alice"
    assert claims["groups"] == ["admins", "staff"]
    jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": ISSUER}, aud={"essential": True, "value": APP.client_id}
    ).validate(claims)


async def test_id_token_rejects_other_key(idp: httpx.AsyncClient) -> None:
    """The ID token does not verify with another client's secret."""
    tokens = await tokens_for(idp)
    with pytest.raises(BadSignatureError):
        jwt.decode(
            tokens["id_token"],
            OctKey.import_key(OTHER.client_secret.encode()),
            algorithms=["HS256"],
        )


@pytest.mark.parametrize(
    ("scope", "present", "absent"),
    [
        pytest.param("openid", {"sub"}, {"email", "name", "groups"}, id="openid"),
        pytest.param(
            "openid email", {"sub", "email", "email_verified"}, {"name", "groups"}, id="email"
        ),
        pytest.param(
            "openid profile",
            {"sub", "name", "preferred_username", "groups"},
            {"email"},
            id="profile",
        ),
    ],
)
async def test_claims_follow_scopes(
    idp: httpx.AsyncClient, scope: str, present: set[str], absent: set[str]
) -> None:
    """The ID token and userinfo release only the claims the granted scopes allow."""
    tokens = await tokens_for(idp, scope=scope, nonce=None)
    assert tokens["scope"] == scope
    id_claims = jwt.decode(tokens["id_token"], OctKey.import_key(APP.client_secret.encode())).claims
    info = (await userinfo(idp, tokens["access_token"])).json()
    for claims in (id_claims, info):
        assert present <= set(claims)
        assert not absent & set(claims)
    assert "nonce" not in id_claims


# -- userinfo -------------------------------------------------------------------------


async def test_userinfo_returns_claims(idp: httpx.AsyncClient) -> None:
    """A current access token gets the user's claims from userinfo."""
    tokens = await tokens_for(idp, "bob")
    response = await userinfo(idp, tokens["access_token"])
    assert response.status_code == 200
    assert response.json() == {
        "sub": "u-bob",
        "name": "Bob Staff",
        "preferred_username": "bob",
        "groups": ["staff"],
        "email": "bob@example.test",
        "email_verified": True,
    }


@pytest.mark.parametrize(
    "authorization",
    [
        pytest.param(None, id="missing"),
        pytest.param("Bearer not-a-token", id="unknown"),
        pytest.param("Bearer ", id="empty"),
        pytest.param(basic(APP.client_id, APP.client_secret), id="basic-scheme"),
    ],
)
async def test_userinfo_rejects_bad_tokens(
    idp: httpx.AsyncClient, authorization: str | None
) -> None:
    """A missing or unknown access token is 401 invalid_token with a Bearer challenge."""
    headers = {"Authorization": authorization} if authorization else {}
    response = await idp.get("/oauth/userinfo", headers=headers)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"
    assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'


async def test_userinfo_rejects_expired_token(
    clocked_idp: httpx.AsyncClient, clock: FakeClock
) -> None:
    """An access token is refused once access_token_ttl has passed."""
    tokens = await tokens_for(clocked_idp)
    assert tokens["expires_in"] == 2
    clock.advance(1.9)
    assert (await userinfo(clocked_idp, tokens["access_token"])).status_code == 200
    clock.advance(0.2)
    response = await userinfo(clocked_idp, tokens["access_token"])
    assert response.status_code == 401
    assert response.json() == {
        "error": "invalid_token",
        "error_description": "access token expired",
    }
    assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'


async def test_userinfo_expiry_on_the_real_clock() -> None:
    """With the default clock an access token with a 1 s lifetime expires after a second."""
    async with make_client(access_token_ttl=1) as http:
        tokens = await tokens_for(http)
        time.sleep(1.1)
        assert (await userinfo(http, tokens["access_token"])).status_code == 401


async def test_userinfo_rejects_revoked_token(idp: httpx.AsyncClient) -> None:
    """A revoked access token is 401 invalid_token."""
    tokens = await tokens_for(idp)
    assert (
        await idp.post("/oauth/revoke", data={"token": tokens["access_token"]})
    ).status_code == 200
    response = await userinfo(idp, tokens["access_token"])
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"


# -- refresh ----------------------------------------------------------------------------


async def test_refresh_rotates_and_old_token_is_invalid_at_once(idp: httpx.AsyncClient) -> None:
    """Each refresh returns new tokens and the presented refresh token is dead immediately."""
    tokens = await tokens_for(idp)
    response = await refresh(idp, tokens["refresh_token"])
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    new = response.json()
    assert new["refresh_token"] != tokens["refresh_token"]
    assert new["access_token"] != tokens["access_token"]
    assert new["token_type"] == "Bearer"
    assert new["scope"] == "openid profile email"
    claims = jwt.decode(new["id_token"], OctKey.import_key(APP.client_secret.encode())).claims
    assert claims["sub"] == "u-alice"
    assert "nonce" not in claims
    reused = await refresh(idp, tokens["refresh_token"])
    assert_token_error(reused, 400, "invalid_grant")
    assert (await userinfo(idp, new["access_token"])).status_code == 200
    again = await refresh(idp, new["refresh_token"])
    assert again.status_code == 200


async def test_refresh_with_body_credentials(idp: httpx.AsyncClient) -> None:
    """The refresh grant accepts client_secret_post like OakID's curl example."""
    tokens = await tokens_for(idp)
    response = await idp.post(
        "/oauth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "client_id": APP.client_id,
            "client_secret": APP.client_secret,
        },
    )
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("refresh_token", "client", "error"),
    [
        pytest.param("not-a-token", APP, "invalid_grant", id="unknown"),
        pytest.param(None, OTHER, "invalid_grant", id="other-client"),
        pytest.param("", APP, "invalid_request", id="missing"),
    ],
)
async def test_refresh_rejections(
    idp: httpx.AsyncClient, refresh_token: str | None, client: DevClient, error: str
) -> None:
    """An unknown, missing or foreign refresh token is refused."""
    tokens = await tokens_for(idp)
    token = tokens["refresh_token"] if refresh_token is None else refresh_token
    assert_token_error(await refresh(idp, token, client), 400, error)
    if refresh_token is None:
        assert (await refresh(idp, tokens["refresh_token"])).status_code == 200


@pytest.mark.parametrize(
    ("scope", "status"),
    [
        pytest.param("openid email", 200, id="narrower"),
        pytest.param("openid profile email", 200, id="same"),
        pytest.param("openid", 200, id="openid-only"),
        pytest.param("email", 400, id="without-openid"),
    ],
)
async def test_refresh_may_narrow_scope(idp: httpx.AsyncClient, scope: str, status: int) -> None:
    """A refresh may ask for less scope than granted, never more or without openid."""
    tokens = await tokens_for(idp, scope="openid profile email")
    response = await refresh(idp, tokens["refresh_token"], scope=scope)
    assert response.status_code == status, response.text
    if status == 200:
        assert response.json()["scope"] == scope
    else:
        assert response.json()["error"] == "invalid_scope"


async def test_refresh_cannot_widen_scope(idp: httpx.AsyncClient) -> None:
    """Asking a refresh for a scope that was not granted is invalid_scope."""
    tokens = await tokens_for(idp, scope="openid")
    response = await refresh(idp, tokens["refresh_token"], scope="openid email")
    assert_token_error(response, 400, "invalid_scope")


# -- revocation ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "data"),
    [
        pytest.param({}, {}, id="anonymous"),
        pytest.param(
            {}, {"client_id": APP.client_id, "client_secret": APP.client_secret}, id="post"
        ),
        pytest.param({"Authorization": basic(APP.client_id, APP.client_secret)}, {}, id="basic"),
        pytest.param({}, {"token_type_hint": "refresh_token"}, id="with-hint"),
    ],
)
async def test_revoke_unknown_token_is_200(
    idp: httpx.AsyncClient, headers: dict[str, str], data: dict[str, str]
) -> None:
    """Revoking an unknown token answers 200, as RFC 7009 requires."""
    response = await idp.post(
        "/oauth/revoke", data={"token": "no-such-token", **data}, headers=headers
    )
    assert response.status_code == 200


async def test_revoking_refresh_token_kills_refresh_and_access(idp: httpx.AsyncClient) -> None:
    """A revoked refresh token cannot refresh, and its access tokens stop working."""
    tokens = await tokens_for(idp)
    response = await idp.post(
        "/oauth/revoke",
        data={"token": tokens["refresh_token"], "token_type_hint": "refresh_token"},
        headers={"Authorization": basic(APP.client_id, APP.client_secret)},
    )
    assert response.status_code == 200
    assert_token_error(await refresh(idp, tokens["refresh_token"]), 400, "invalid_grant")
    assert (await userinfo(idp, tokens["access_token"])).status_code == 401


async def test_revoking_access_token_leaves_refresh_token(idp: httpx.AsyncClient) -> None:
    """Revoking an access token ends only that token."""
    tokens = await tokens_for(idp)
    assert (
        await idp.post("/oauth/revoke", data={"token": tokens["access_token"]})
    ).status_code == 200
    assert (await userinfo(idp, tokens["access_token"])).status_code == 401
    assert (await refresh(idp, tokens["refresh_token"])).status_code == 200


@pytest.mark.parametrize(
    ("headers", "data", "status", "error"),
    [
        pytest.param(
            {},
            {"client_id": APP.client_id, "client_secret": "wrong"},
            401,
            "invalid_client",
            id="wrong-secret",
        ),
        pytest.param(
            {"Authorization": basic(APP.client_id, "wrong")},
            {},
            401,
            "invalid_client",
            id="wrong-basic",
        ),
        pytest.param(
            {}, {"client_id": APP.client_id}, 401, "invalid_client", id="id-without-secret"
        ),
        pytest.param({}, {"token": None}, 400, "invalid_request", id="no-token"),
    ],
)
async def test_revoke_errors(
    idp: httpx.AsyncClient,
    headers: dict[str, str],
    data: dict[str, str | None],
    status: int,
    error: str,
) -> None:
    """Wrong credentials at the revocation endpoint are refused and the token survives."""
    tokens = await tokens_for(idp)
    form = {"token": tokens["refresh_token"], **data}
    response = await idp.post(
        "/oauth/revoke",
        data={name: value for name, value in form.items() if value is not None},
        headers=headers,
    )
    assert_token_error(response, status, error)
    assert (await refresh(idp, tokens["refresh_token"])).status_code == 200


# -- events and failures ----------------------------------------------------------------------


async def test_events_never_hold_raw_secrets(tmp_path: Path) -> None:
    """The event list and the JSON-lines log hold digests, never tokens, codes or secrets."""
    log_path = tmp_path / "events.jsonl"
    raw: list[str] = [APP.client_secret, "alice"]
    async with make_client(log_path=str(log_path)) as http:
        code, verifier = await scripted_sign_in(http)
        response = await exchange(http, code, verifier, auth="post")
        tokens = response.json()
        raw += [code, verifier, tokens["access_token"], tokens["refresh_token"], tokens["id_token"]]
        new = (await refresh(http, tokens["refresh_token"])).json()
        raw += [new["access_token"], new["refresh_token"], new["id_token"]]
        assert (await refresh(http, tokens["refresh_token"])).status_code == 400
        await userinfo(http, new["access_token"])
        await http.post("/oauth/revoke", data={"token": new["refresh_token"]})
        await exchange(http, code, verifier)
        bad = {
            "username": "alice",
            "password": "wrong-password-xyz",
            **authorize_params(pkce_pair()[1]),
        }
        raw.append("wrong-password-xyz")
        await http.post("/oauth/authorize", data=bad)
        events = events_of(http)

    lines = log_path.read_text().splitlines()
    assert [json.loads(line) for line in lines] == events
    for value in raw[2:]:
        assert value not in log_path.read_text()
    assert APP.client_secret not in log_path.read_text()
    assert '"password"' not in log_path.read_text()

    token_events = [event for event in events if event["event"] == "token"]
    assert [(e["grant_type"], e["ok"], e["error"]) for e in token_events] == [
        ("authorization_code", True, None),
        ("refresh_token", True, None),
        ("refresh_token", False, "invalid_grant"),
        ("authorization_code", False, "invalid_grant"),
    ]
    assert all(e["client_id"] == APP.client_id for e in token_events)
    digest = hashlib.sha256(tokens["refresh_token"].encode()).hexdigest()
    assert token_events[1]["refresh_token_sha256"] == digest
    assert token_events[2]["refresh_token_sha256"] == digest
    assert "refresh_token_sha256" not in token_events[0]
    kinds = {event["event"] for event in events}
    assert kinds == {"authorize", "token", "userinfo", "revoke"}
    revoke = next(event for event in events if event["event"] == "revoke")
    assert revoke["revoked"] == "refresh_token"
    assert revoke["token_sha256"] == hashlib.sha256(new["refresh_token"].encode()).hexdigest()


async def test_internal_failure_is_server_error_without_details(
    idp: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """An internal failure at the token endpoint is 500 server_error with no traceback in the body."""

    def broken(claims: Any, secret: str) -> str:
        raise RuntimeError("boom: internal detail")

    monkeypatch.setattr(_provider, "sign_id_token", broken)
    code, verifier = await scripted_sign_in(idp)
    response = await exchange(idp, code, verifier)
    assert_token_error(response, 500, "server_error")
    assert "boom" not in response.text
    assert "Traceback" not in response.text
    assert "boom: internal detail" in caplog.text
    assert events_of(idp)[-1]["error"] == "server_error"


def test_token_factory_is_injected() -> None:
    """The protocol core takes its randomness from the given factory."""
    counter = iter(range(1000))
    make: Callable[[], str] = lambda: f"token-{next(counter)}"  # noqa: E731
    provider = _provider.DevProvider(DevIdPConfig(ISSUER, CLIENTS), make)
    request = _provider.AuthorizeRequest(APP.client_id, REDIRECT_URI, ("openid",), pkce_pair()[1])
    assert provider.issue_code(DEMO_USERS[0], request, now=0.0, auth_time=0) == "token-0"
