"""ID token validation (OpenID Connect Core 3.1.3.7), each check on its own."""

from __future__ import annotations

import json
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet, OctKey, RSAKey
from joserfc.util import urlsafe_b64encode

from oakid_gate.errors import IDTokenError
from oakid_gate.gate.idtoken import IDTokenExpectations, UnknownSigningKey, validate_id_token

NOW = 1_800_000_000.0
ISS = "https://id.oakwall.mom"
CLIENT = "oak_client"
SECRET = "client-secret-of-32-bytes-or-more!"
EC = ECKey.generate_key("P-256", parameters={"kid": "ec1"})
RSA = RSAKey.generate_key(2048, parameters={"kid": "rsa1"})
JWKS = KeySet([ECKey.import_key(EC.as_dict(private=False)), RSAKey.import_key(RSA.as_dict(private=False))])


def claims(**changes: Any) -> dict[str, Any]:
    base = {"iss": ISS, "aud": CLIENT, "sub": "u1", "exp": NOW + 300, "iat": NOW - 5, "nonce": "n1"}
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def expect(**changes: Any) -> IDTokenExpectations:
    base: dict[str, Any] = dict(issuer=ISS, client_id=CLIENT, client_secret=SECRET,
                                allowed_algs=("HS256", "ES256", "RS256"), nonce="n1", now=NOW, leeway=60)
    base.update(changes)
    return IDTokenExpectations(**base)


def hs256(payload: dict[str, Any], secret: str = SECRET) -> str:
    return jwt.encode({"alg": "HS256"}, payload, OctKey.import_key(secret))


def es256(payload: dict[str, Any], **header: Any) -> str:
    return jwt.encode({"alg": "ES256", "kid": "ec1", **header}, payload, EC)


def unsigned(payload: dict[str, Any]) -> str:
    head = urlsafe_b64encode(json.dumps({"alg": "none"}).encode()).decode()
    body = urlsafe_b64encode(json.dumps(payload).encode()).decode()
    return f"{head}.{body}."


def test_hs256_with_client_secret() -> None:
    """An OakID HS256 token keyed with the client secret is accepted."""
    assert validate_id_token(hs256(claims()), None, expect())["sub"] == "u1"


def test_es256_and_rs256_from_jwks() -> None:
    """ES256 and RS256 tokens verify with the provider's JWKS."""
    assert validate_id_token(es256(claims()), JWKS, expect())["sub"] == "u1"
    rs = jwt.encode({"alg": "RS256", "kid": "rsa1"}, claims(), RSA)
    assert validate_id_token(rs, JWKS, expect())["sub"] == "u1"


ATTACKER = ECKey.generate_key("P-256", parameters={"kid": "ec1"})


@pytest.mark.parametrize(
    ("token", "exp", "message"),
    [
        pytest.param(lambda: hs256(claims(iss="https://evil")), expect(), "issuer", id="iss"),
        pytest.param(lambda: hs256(claims(aud="other")), expect(), "aud", id="aud"),
        pytest.param(lambda: hs256(claims(aud=[CLIENT, "other"])), expect(), "azp", id="multi-aud-no-azp"),
        pytest.param(lambda: hs256(claims(aud=[CLIENT, "o"], azp="o")), expect(), "azp", id="azp-other"),
        pytest.param(lambda: hs256(claims(exp=NOW - 61)), expect(), "expired", id="expired"),
        pytest.param(lambda: hs256(claims(iat=NOW + 61)), expect(), "future", id="iat-future"),
        pytest.param(lambda: hs256(claims(iat=NOW - 90000)), expect(), "too long ago", id="iat-old"),
        pytest.param(lambda: hs256(claims(nbf=NOW + 120)), expect(), "not valid yet", id="nbf"),
        pytest.param(lambda: hs256(claims(nonce="n2")), expect(), "nonce", id="nonce-wrong"),
        pytest.param(lambda: hs256(claims(nonce=None)), expect(), "nonce", id="nonce-missing"),
        pytest.param(lambda: hs256(claims(sub=None)), expect(), "subject", id="sub-missing"),
        pytest.param(lambda: hs256(claims(exp=None)), expect(), "expiry", id="exp-missing"),
        pytest.param(lambda: hs256(claims(), "wrong-secret-of-32-bytes-or-more!!"), expect(), "signature", id="hs256-wrong-secret"),
        pytest.param(lambda: unsigned(claims()), expect(), "not allowed", id="alg-none"),
        pytest.param(lambda: hs256(claims()), expect(allowed_algs=("ES256",)), "not allowed", id="alg-not-allowed"),
        pytest.param(
            lambda: jwt.encode({"alg": "HS256"}, claims(), OctKey.import_key(json.dumps(EC.as_dict(private=False)))),
            expect(), "signature", id="hs256-keyed-with-public-key",
        ),
        pytest.param(lambda: jwt.encode({"alg": "ES256", "kid": "ec1"}, claims(), ATTACKER), expect(), "signature", id="es256-bad-signature"),
        pytest.param(
            lambda: jwt.encode({"alg": "ES256", "kid": "ec1", "jwk": ATTACKER.as_dict(private=False)}, claims(), ATTACKER),
            expect(), "signature", id="header-jwk-ignored",
        ),
        pytest.param(
            lambda: jwt.encode({"alg": "ES256", "kid": "ec1", "jku": "https://evil/jwks"}, claims(), ATTACKER),
            expect(), "signature", id="header-jku-ignored",
        ),
        pytest.param(lambda: "not.a.jwt.at-all", expect(), "JWT", id="malformed"),
    ],
)
def test_rejected(token: Any, exp: IDTokenExpectations, message: str) -> None:
    """Each check of section 3.1.3.7 refuses a token that breaks it."""
    value = token()
    with pytest.raises(IDTokenError, match=message):
        validate_id_token(value, JWKS, exp)


def test_unknown_kid_asks_for_a_refetch() -> None:
    """A kid the JWKS does not list raises UnknownSigningKey, so the caller refetches once."""
    other = ECKey.generate_key("P-256", parameters={"kid": "new"})
    token = jwt.encode({"alg": "ES256", "kid": "new"}, claims(), other)
    with pytest.raises(UnknownSigningKey):
        validate_id_token(token, JWKS, expect())


def test_leeway_is_applied() -> None:
    """A token expired within the leeway is still accepted."""
    assert validate_id_token(hs256(claims(exp=NOW - 30)), None, expect())
