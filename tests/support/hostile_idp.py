"""An OpenID Connect provider double that misbehaves on purpose, in process.

Honest by default: discovery, JWKS (an EC P-256 and an RSA key), an authorize
endpoint that approves at once, a token endpoint that checks the client, the
redirect URI and PKCE S256, userinfo and revocation. Every request is recorded.
Set fields of :attr:`HostileIdP.faults` to make it lie::

    idp = HostileIdP("http://127.0.0.1:9")
    gate = OakIDMiddleware(app, issuer=idp.issuer, client_id=idp.client_id,
                           client_secret=idp.client_secret, secret="x" * 32,
                           http=idp.http_client())
    idp.faults = Faults(signing="none")          # or claims={"aud": "other"}, ...
    callback_url = await idp.authorize(authorize_url_from_the_gate)

``idp.secrets()`` lists everything secret it handed out (codes, tokens, the
client secret), for tests that check nothing of it leaks.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qsl, unquote, urlencode

import httpx
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from support.log_watch import remember

__all__ = ["USERS", "AuthorizeRecord", "Faults", "HostileIdP", "Signing"]

Signing = Literal[
    "ES256",  # honest, EC key "ec-1"
    "RS256",  # honest, RSA key "rsa-1"
    "HS256",  # honest, HMAC with the client secret
    "bad_signature",  # ES256 with a flipped signature byte
    "none",  # alg "none", empty signature
    "NoNe",  # alg "NoNe", empty signature
    "hs256_rsa_pem",  # algorithm confusion: HMAC keyed with the RSA public key's PEM
    "hs256_rsa_jwk",  # algorithm confusion: HMAC keyed with the RSA public JWK (JSON)
    "hs256_wrong_secret",
    "rs256_names_ec_key",  # RS256 header, kid of the EC key
    "attacker_kid",  # an attacker's EC key, kid "attacker-1" (never published)
    "rotated",  # the provider's next EC key, kid "ec-2" (published after rotate_key())
    "header_jwk",  # an attacker's EC key, embedded as the header's "jwk", no kid
    "header_jku",  # an attacker's EC key, header "jku" pointing at /attacker/jwks
    "jwe_shape",  # five dot-separated parts, as an encrypted token would be
]

#: the accounts the double signs in; ``authorize(..., user=...)`` picks one
USERS: dict[str, dict[str, Any]] = {
    "alice": {
        "sub": "alice-sub",
        "email": "alice@example.org",
        "email_verified": True,
        "name": "Alice",
        "preferred_username": "alice",
    },
    "mallory": {
        "sub": "mallory-sub",
        "email": "mallory@evil.example",
        "email_verified": True,
        "name": "Mallory",
        "preferred_username": "mallory",
    },
}


@dataclass
class Faults:
    """How the provider misbehaves; the defaults are honest."""

    # discovery and keys
    unreachable: bool = False  # every request fails with httpx.ConnectError
    well_known: Literal["openid", "oauth"] = "openid"  # serve OpenID Discovery or RFC 8414
    discovery_drop: tuple[str, ...] = ()  # fields left out of the metadata document
    end_session: bool = False  # advertise RP-initiated logout (end_session_endpoint)
    discovery_status: int = 200
    discovery_issuer: str | None = None  # the issuer the document names
    jwks_status: int = 200
    discovery_delay: float = 0.0  # seconds before discovery answers
    # authorization response
    iss_param: Literal["good", "missing", "wrong"] = "good"  # RFC 9207
    authorize_error: str | None = None  # e.g. "access_denied"
    # token endpoint
    token_status: int = 200
    token_error: str | None = None  # e.g. "invalid_grant" (answered with 400)
    token_body: bytes | None = None  # a raw body instead of the JSON answer
    token_delay: float = 0.0  # seconds to sleep before answering
    token_trickle: float | None = None  # send the answer one byte every this many seconds
    token_extra: dict[str, Any] = field(default_factory=dict)  # merged into the JSON answer
    omit_id_token: bool = False
    # ID token
    signing: Signing = "ES256"
    claims: dict[str, Any] = field(default_factory=dict)  # merged over the honest claims
    drop_claims: tuple[str, ...] = ()
    exp_offset: float = 300.0  # exp = now + this
    iat_offset: float = 0.0  # iat = now + this
    # userinfo
    userinfo_status: int = 200
    userinfo_sub: str | None = None  # answer with another subject
    userinfo_claims: dict[str, Any] = field(default_factory=dict)
    userinfo_drop: tuple[str, ...] = ()
    # introspection (RFC 7662)
    introspection_status: int = 200
    introspection_extra: dict[str, Any] = field(default_factory=dict)  # merged into the answer


@dataclass(frozen=True)
class AuthorizeRecord:
    """One authorization request as the gate sent it."""

    client_id: str
    redirect_uri: str
    scope: str
    state: str | None
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    user: str


@dataclass
class _Grant:
    request: AuthorizeRecord
    code: str


@functools.cache
def _keys() -> dict[str, ECKey | RSAKey]:
    """Generated once per test run: RSA generation is the slow part."""
    return {
        "ec-1": ECKey.generate_key("P-256", parameters={"kid": "ec-1"}, private=True),
        "ec-2": ECKey.generate_key("P-256", parameters={"kid": "ec-2"}, private=True),
        "rsa-1": RSAKey.generate_key(2048, parameters={"kid": "rsa-1"}, private=True),
        "attacker-1": ECKey.generate_key("P-256", parameters={"kid": "attacker-1"}, private=True),
    }


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _jws(header: dict[str, Any], claims: dict[str, Any], hmac_key: bytes | None) -> str:
    """A compact JWS built by hand (for what joserfc rightly refuses to make)."""
    signing_input = _b64(json.dumps(header).encode()) + "." + _b64(json.dumps(claims).encode())
    signature = (
        b"" if hmac_key is None else hmac.new(hmac_key, signing_input.encode(), "sha256").digest()
    )
    return signing_input + "." + _b64(signature)


class HostileIdP:
    """The provider double: an ASGI app, its records and its :class:`Faults`."""

    def __init__(
        self,
        issuer: str = "http://127.0.0.1:9",
        *,
        client_id: str = "gate-client",
        client_secret: str = "client-secret-" + "s" * 32,
        id_token_algs: tuple[str, ...] = ("ES256", "RS256"),
        iss_parameter_supported: bool = True,
    ) -> None:
        self.issuer = issuer
        self.client_id = client_id
        self.client_secret = client_secret
        remember(client_secret)
        self.id_token_algs = id_token_algs
        self.iss_parameter_supported = iss_parameter_supported
        self.faults = Faults()
        self.rotated = False  # whether "ec-2" is in the JWKS
        # records
        self.authorize_requests: list[AuthorizeRecord] = []
        self.token_requests: list[dict[str, str]] = []
        self.token_answers: list[dict[str, Any]] = []  # the JSON of every token issued
        self.userinfo_requests = 0
        self.introspections = 0
        self.revocations: list[tuple[str, str]] = []
        self.jwks_fetches = 0
        self.discovery_fetches = 0
        self.attacker_jwks_fetches = 0
        self.issued: list[str] = []  # every code and token handed out
        self._grants: dict[str, _Grant] = {}
        self._access: dict[str, str] = {}  # access token -> user
        self._refresh: dict[str, str] = {}  # refresh token -> user
        self.app = Starlette(
            routes=[
                Route("/.well-known/openid-configuration", self._discovery),
                Route("/.well-known/oauth-authorization-server", self._discovery),
                Route("/introspect", self._introspect, methods=["POST"]),
                Route("/jwks", self._jwks),
                Route("/attacker/jwks", self._attacker_jwks),
                Route("/authorize", self._authorize),
                Route("/token", self._token, methods=["POST"]),
                Route("/userinfo", self._userinfo, methods=["GET", "POST"]),
                Route("/revoke", self._revoke, methods=["POST"]),
            ]
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)

    # ------------------------------------------------------------ for tests

    def http_client(self) -> httpx.AsyncClient:
        """A client for the gate's ``http=``: every provider call lands here."""
        return httpx.AsyncClient(transport=_Transport(self))

    async def authorize(self, url: str, *, user: str = "alice") -> str:
        """Follow the gate's authorize redirect as the browser would; return the callback URL."""
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app)) as client:
            response = await client.get(url + "&" + urlencode({"user": user}))
        assert response.status_code == 302, response.text
        return response.headers["location"]

    def rotate_key(self) -> None:
        """Publish the next EC key and sign with it from now on."""
        self.rotated = True
        self.faults.signing = "rotated"

    def secrets(self) -> list[str]:
        """Everything that must never show up in a log line or a page."""
        verifiers = [r.get("code_verifier", "") for r in self.token_requests]
        return [self.client_secret, *self.issued, *(v for v in verifiers if v)]

    # ------------------------------------------------------------ endpoints

    async def _discovery(self, request: Request) -> Response:
        self.discovery_fetches += 1
        f, base = self.faults, self.issuer
        wanted = "oauth-authorization-server" if f.well_known == "oauth" else "openid-configuration"
        if not request.url.path.endswith(wanted):
            return JSONResponse({"error": "not_found"}, 404)
        if f.discovery_status != 200:
            return JSONResponse({"error": "server_error"}, f.discovery_status)
        if f.discovery_delay:
            await asyncio.sleep(f.discovery_delay)
        document = {
            "issuer": f.discovery_issuer or base,
            "authorization_endpoint": f"{base}/authorize",
            "token_endpoint": f"{base}/token",
            "userinfo_endpoint": f"{base}/userinfo",
            "jwks_uri": f"{base}/jwks",
            "revocation_endpoint": f"{base}/revoke",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": list(self.id_token_algs),
            "token_endpoint_auth_methods_supported": [
                "client_secret_basic",
                "client_secret_post",
            ],
            "code_challenge_methods_supported": ["S256"],
            "authorization_response_iss_parameter_supported": self.iss_parameter_supported,
            "introspection_endpoint": f"{base}/introspect",
        }
        if f.end_session:
            document["end_session_endpoint"] = f"{base}/logout"
        for name in f.discovery_drop:
            document.pop(name, None)
        return JSONResponse(document)

    async def _jwks(self, request: Request) -> Response:
        self.jwks_fetches += 1
        if self.faults.jwks_status != 200:
            return JSONResponse({"error": "server_error"}, self.faults.jwks_status)
        names = ["ec-1", "rsa-1", *(["ec-2"] if self.rotated else [])]
        return JSONResponse({"keys": [_public_jwk(n) for n in names]})

    async def _attacker_jwks(self, request: Request) -> Response:
        self.attacker_jwks_fetches += 1
        return JSONResponse({"keys": [_public_jwk("attacker-1")]})

    async def _authorize(self, request: Request) -> Response:
        q = request.query_params
        record = AuthorizeRecord(
            client_id=q.get("client_id", ""),
            redirect_uri=q.get("redirect_uri", ""),
            scope=q.get("scope", ""),
            state=q.get("state"),
            nonce=q.get("nonce"),
            code_challenge=q.get("code_challenge"),
            code_challenge_method=q.get("code_challenge_method"),
            user=q.get("user", "alice"),
        )
        self.authorize_requests.append(record)
        if record.client_id != self.client_id or not record.redirect_uri:
            return JSONResponse({"error": "invalid_request"}, 400)
        params: list[tuple[str, str]] = []
        if self.faults.authorize_error is not None:
            params.append(("error", self.faults.authorize_error))
        else:
            code = self._new_secret()
            self._grants[code] = _Grant(record, code)
            params.append(("code", code))
        if record.state is not None:
            params.append(("state", record.state))
        if self.faults.iss_param == "good":
            params.append(("iss", self.issuer))
        elif self.faults.iss_param == "wrong":
            params.append(("iss", "https://evil.example"))
        sep = "&" if "?" in record.redirect_uri else "?"
        return RedirectResponse(record.redirect_uri + sep + urlencode(params), 302)

    async def _token(self, request: Request) -> Response:
        form = {k: v for k, v in parse_qsl((await request.body()).decode())}
        self.token_requests.append(form)
        f = self.faults
        if f.token_delay:
            await asyncio.sleep(f.token_delay)
        if not self._client_ok(request, form):
            return JSONResponse({"error": "invalid_client"}, 401)
        if f.token_body is not None:
            return Response(f.token_body, f.token_status, media_type="text/html")
        if f.token_status >= 500:
            return JSONResponse({"error": "server_error"}, f.token_status)
        if f.token_error is not None:
            return JSONResponse({"error": f.token_error}, 400)
        if form.get("grant_type") == "refresh_token":
            user = self._refresh.pop(form.get("refresh_token", ""), None)
            if user is None:
                return JSONResponse({"error": "invalid_grant"}, 400)
            body = self._tokens(user, nonce=None)
        elif form.get("grant_type") == "authorization_code":
            grant = self._grants.pop(form.get("code", ""), None)
            if grant is None or not _pkce_ok(form.get("code_verifier", ""), grant.request):
                return JSONResponse({"error": "invalid_grant"}, 400)
            if form.get("redirect_uri") != grant.request.redirect_uri:
                return JSONResponse({"error": "invalid_grant"}, 400)
            body = self._tokens(grant.request.user, nonce=grant.request.nonce)
        else:
            return JSONResponse({"error": "unsupported_grant_type"}, 400)
        body.update(f.token_extra)
        self.token_answers.append(body)
        if f.token_trickle is not None:
            return StreamingResponse(_trickle(json.dumps(body).encode(), f.token_trickle))
        return JSONResponse(body, headers={"cache-control": "no-store"})

    async def _userinfo(self, request: Request) -> Response:
        self.userinfo_requests += 1
        f = self.faults
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        user = self._access.get(token) if scheme.lower() == "bearer" else None
        if user is None or f.userinfo_status == 401:
            return JSONResponse({"error": "invalid_token"}, 401)
        if f.userinfo_status != 200:
            return JSONResponse({"error": "server_error"}, f.userinfo_status)
        claims = {**USERS[user], **f.userinfo_claims}
        if f.userinfo_sub is not None:
            claims["sub"] = f.userinfo_sub
        for name in f.userinfo_drop:
            claims.pop(name, None)
        return JSONResponse(claims)

    async def _introspect(self, request: Request) -> Response:
        """RFC 7662: an active access token's subject and username."""
        self.introspections += 1
        form = {k: v for k, v in parse_qsl((await request.body()).decode())}
        if not self._client_ok(request, form):
            return JSONResponse({"error": "invalid_client"}, 401)
        if self.faults.introspection_status != 200:
            return JSONResponse({"error": "server_error"}, self.faults.introspection_status)
        user = self._access.get(form.get("token", ""))
        if user is None:
            return JSONResponse({"active": False})
        answer = {
            "active": True,
            "sub": USERS[user]["sub"],
            "client_id": self.client_id,
            "scope": "openid profile email",
            "exp": int(time.time()) + 3600,
        }
        answer.update(self.faults.introspection_extra)
        return JSONResponse({k: v for k, v in answer.items() if v is not None})

    async def _revoke(self, request: Request) -> Response:
        form = {k: v for k, v in parse_qsl((await request.body()).decode())}
        if not self._client_ok(request, form):
            return JSONResponse({"error": "invalid_client"}, 401)
        self.revocations.append((form.get("token", ""), form.get("token_type_hint", "")))
        self._refresh.pop(form.get("token", ""), None)
        self._access.pop(form.get("token", ""), None)
        return Response(status_code=200)

    # ------------------------------------------------------------ helpers

    def _new_secret(self) -> str:
        value = secrets.token_urlsafe(24)
        self.issued.append(value)
        remember(value)
        return value

    def _client_ok(self, request: Request, form: dict[str, str]) -> bool:
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "basic":
            pair = base64.b64decode(value).decode()
            client_id, _, secret = pair.partition(":")
            client_id, secret = unquote(client_id), unquote(secret)
        else:
            client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
        return client_id == self.client_id and hmac.compare_digest(
            secret.encode(), self.client_secret.encode()
        )

    def _tokens(self, user: str, *, nonce: str | None) -> dict[str, Any]:
        access, refresh = self._new_secret(), self._new_secret()
        self._access[access] = user
        self._refresh[refresh] = user
        body: dict[str, Any] = {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": 3600,
            "refresh_token": refresh,
            "scope": "openid profile email",
        }
        if not self.faults.omit_id_token:
            body["id_token"] = self._id_token(user, nonce)
            self.issued.append(body["id_token"])
            remember(body["id_token"])
        return body

    def access_token(self, user: str = "alice") -> str:
        """An opaque access token for ``user``, as a client of this provider would hold."""
        token = self._new_secret()
        self._access[token] = user
        return token

    def revoke_access_token(self, token: str) -> None:
        self._access.pop(token, None)

    def jwt_access_token(
        self,
        user: str = "alice",
        *,
        header: dict[str, Any] | None = None,
        key: str = "ec-1",
        drop: tuple[str, ...] = (),
        **claims: Any,
    ) -> str:
        """An RFC 9068 access token signed with one of this provider's keys (``key``), the
        honest claims changed by ``claims`` and without those named in ``drop``."""
        now = int(time.time())
        body: dict[str, Any] = {
            "iss": self.issuer,
            "sub": USERS[user]["sub"],
            "aud": self.client_id,
            "client_id": self.client_id,
            "exp": now + 300,
            "iat": now,
            "jti": secrets.token_urlsafe(8),
            "scope": "openid read:reports",
        }
        body.update(claims)
        for name in drop:
            body.pop(name, None)
        alg = "RS256" if key.startswith("rsa") else "ES256"
        head = {"alg": alg, "kid": key, "typ": "at+jwt", **(header or {})}
        token = jwt.encode(head, body, _keys()[key], algorithms=[head["alg"]])
        self.issued.append(token)
        remember(token)
        return token

    def logout_token(
        self,
        user: str | None = "alice",
        *,
        key: str = "ec-1",
        drop: tuple[str, ...] = (),
        **claims: Any,
    ) -> str:
        """A back-channel logout token (OpenID Connect Back-Channel Logout 1.0, 2.4)
        signed with one of this provider's keys; ``claims`` change the honest ones."""
        now = int(time.time())
        body: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.client_id,
            "iat": now,
            "exp": now + 120,
            "jti": secrets.token_urlsafe(12),
            "events": {"http://schemas.openid.net/event/backchannel-logout": {}},
        }
        if user is not None:
            body["sub"] = USERS[user]["sub"]
        body.update(claims)
        for name in drop:
            body.pop(name, None)
        alg = "RS256" if key.startswith("rsa") else "ES256"
        token = jwt.encode({"alg": alg, "kid": key, "typ": "logout+jwt"}, body, _keys()[key], algorithms=[alg])
        self.issued.append(token)
        remember(token)
        return token

    def _id_token(self, user: str, nonce: str | None) -> str:
        f, now = self.faults, int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": USERS[user]["sub"],
            "aud": self.client_id,
            "exp": now + int(f.exp_offset),
            "iat": now + int(f.iat_offset),
            "auth_time": now,
            **({"nonce": nonce} if nonce is not None else {}),
            **USERS[user],
        }
        claims["sub"] = USERS[user]["sub"]
        claims.update(f.claims)
        for name in f.drop_claims:
            claims.pop(name, None)
        return self._sign(claims)

    def _sign(self, claims: dict[str, Any]) -> str:
        mode, keys = self.faults.signing, _keys()
        attacker = keys["attacker-1"]
        if mode in ("ES256", "RS256"):
            kid = "ec-1" if mode == "ES256" else "rsa-1"
            return jwt.encode({"alg": mode, "kid": kid}, claims, keys[kid], algorithms=[mode])
        if mode == "HS256":
            return _jws({"alg": "HS256"}, claims, self.client_secret.encode())
        if mode == "bad_signature":
            token = jwt.encode({"alg": "ES256", "kid": "ec-1"}, claims, keys["ec-1"])
            head, body, sig = token.split(".")
            raw = bytearray(base64.urlsafe_b64decode(sig + "=="))
            raw[0] ^= 0xFF
            return f"{head}.{body}.{_b64(bytes(raw))}"
        if mode in ("none", "NoNe"):
            return _jws({"alg": mode}, claims, None)
        if mode == "hs256_rsa_pem":
            pem = keys["rsa-1"].as_pem(private=False)
            return _jws({"alg": "HS256", "kid": "rsa-1"}, claims, pem)
        if mode == "hs256_rsa_jwk":
            jwk = json.dumps(_public_jwk("rsa-1")).encode()
            return _jws({"alg": "HS256", "kid": "rsa-1"}, claims, jwk)
        if mode == "hs256_wrong_secret":
            return _jws({"alg": "HS256"}, claims, b"not-the-client-secret-" * 2)
        if mode == "rs256_names_ec_key":
            return jwt.encode({"alg": "RS256", "kid": "ec-1"}, claims, keys["rsa-1"])
        if mode == "attacker_kid":
            return jwt.encode({"alg": "ES256", "kid": "attacker-1"}, claims, attacker)
        if mode == "rotated":
            return jwt.encode({"alg": "ES256", "kid": "ec-2"}, claims, keys["ec-2"])
        if mode == "header_jwk":
            header = {"alg": "ES256", "jwk": _public_jwk("attacker-1")}
            return jwt.encode(header, claims, attacker)
        if mode == "header_jku":
            header = {"alg": "ES256", "kid": "attacker-1", "jku": f"{self.issuer}/attacker/jwks"}
            return jwt.encode(header, claims, attacker)
        if mode == "jwe_shape":
            return ".".join(_b64(secrets.token_bytes(16)) for _ in range(5))
        raise ValueError(f"unknown signing mode {mode!r}")


class _Transport(httpx.AsyncBaseTransport):
    """ASGI into the double, or a connection failure when it is 'unreachable'."""

    def __init__(self, idp: HostileIdP) -> None:
        self._idp = idp
        self._asgi = httpx.ASGITransport(app=idp)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self._idp.faults.unreachable:
            raise httpx.ConnectError("connection refused", request=request)
        return await self._asgi.handle_async_request(request)


def _public_jwk(name: str) -> dict[str, Any]:
    key = _keys()[name]
    alg = "ES256" if isinstance(key, ECKey) else "RS256"
    return {**key.as_dict(private=False), "use": "sig", "alg": alg}


def _pkce_ok(verifier: str, request: AuthorizeRecord) -> bool:
    """RFC 7636 section 4.6, S256 only."""
    if request.code_challenge_method != "S256" or not request.code_challenge or not verifier:
        return False
    challenge = _b64(hashlib.sha256(verifier.encode("ascii")).digest())
    return hmac.compare_digest(challenge, request.code_challenge)


async def _trickle(body: bytes, every: float) -> AsyncIterator[bytes]:
    """A slowloris answer: never idle long enough for a read timeout to fire."""
    padded = b" " * 10_000 + body  # leading whitespace is still valid JSON
    for i in range(len(padded)):
        await asyncio.sleep(every)
        yield padded[i : i + 1]
