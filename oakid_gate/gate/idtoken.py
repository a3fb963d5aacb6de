"""ID token validation, OpenID Connect Core 1.0 section 3.1.3.7, with joserfc.

Values in, claims out: the caller passes the key set, the expected nonce and
``now``. The algorithm is chosen from an allow-list (the provider's
``id_token_signing_alg_values_supported`` met with what the gate supports),
never ``none``. HMAC algorithms are only ever keyed with the client secret and
asymmetric ones only with the provider's JWKS, so an HS256 token can never be
verified with a public key. Header ``jwk``, ``jku`` and ``x5u`` are ignored:
keys come from the JWKS the gate fetched itself.
"""

from __future__ import annotations

import hmac
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import IDTokenError

if TYPE_CHECKING:
    from joserfc.jwk import KeySet, OctKey

__all__ = [
    "HMAC_ALGS",
    "IDTokenExpectations",
    "UnknownSigningKey",
    "check_claims",
    "json_number",
    "token_alg",
    "validate_id_token",
    "verify_signature",
]

HMAC_ALGS = frozenset({"HS256"})


class UnknownSigningKey(IDTokenError):
    """The token's ``kid`` is not in the key set: the caller may refetch the JWKS once."""


@dataclass(frozen=True, slots=True)
class IDTokenExpectations:
    """What an ID token must say to be accepted."""

    issuer: str
    client_id: str
    client_secret: str
    allowed_algs: tuple[str, ...]
    nonce: str | None
    now: float
    leeway: int
    max_age: int = 24 * 3600  # reject tokens issued long ago (iat check)


def validate_id_token(
    token: str, jwks: KeySet | None, expect: IDTokenExpectations
) -> dict[str, Any]:
    """Verify the signature and the claims; return the claims or raise :class:`IDTokenError`."""
    claims = verify_signature(token, jwks, expect.allowed_algs, expect.client_secret)
    return check_claims(claims, expect)


def verify_signature(
    token: str,
    jwks: KeySet | None,
    allowed_algs: tuple[str, ...],
    client_secret: str,
    what: str = "the ID token",
) -> dict[str, Any]:
    """The claims of a JWT signed by the provider (an ID token, a logout token), its
    signature checked with the key rules of the module's docstring; no claim checked."""
    # Loaded at first use, not at start-up (issue 8: start-up within 1.3 x bare uvicorn).
    from joserfc import jwt
    from joserfc.errors import BadSignatureError, JoseError
    from joserfc.jwk import KeySet, OctKey

    alg, kid = _peek_header(token)
    if alg not in allowed_algs:
        raise IDTokenError(f"{what} is signed with {alg!r}, which is not allowed")
    key: OctKey | KeySet
    if alg in HMAC_ALGS:
        key = OctKey.import_key(client_secret)
    else:
        if jwks is None:
            raise IDTokenError(f"the provider publishes no keys (jwks_uri) to check {what}")
        asym = [k for k in jwks.keys if k.key_type in ("RSA", "EC")]
        if kid is not None and not any(k.kid == kid for k in asym):
            raise UnknownSigningKey(f"{what} is signed with a key the provider does not list")
        if kid is None and len(asym) != 1:
            candidates = [k for k in asym if _fits(k.key_type, alg)]
            if len(candidates) != 1:
                raise IDTokenError(f"{what} names no key (kid) and the choice is ambiguous")
            asym = candidates
        key = KeySet(asym)
    try:
        decoded = jwt.decode(token, key, algorithms=[alg])
    except BadSignatureError:
        raise IDTokenError(f"{what}'s signature is not valid") from None
    except JoseError as exc:
        raise IDTokenError(f"{what} cannot be verified ({exc.error})") from None
    except (ValueError, TypeError):
        raise IDTokenError(f"{what} is malformed") from None
    return dict(decoded.claims)


def check_claims(claims: Mapping[str, Any], expect: IDTokenExpectations) -> dict[str, Any]:
    """The claim checks of OpenID Connect Core section 3.1.3.7, steps 2-11."""
    if claims.get("iss") != expect.issuer:
        raise IDTokenError("the ID token was issued by another issuer")
    aud = claims.get("aud")
    audiences = [aud] if isinstance(aud, str) else aud
    if not isinstance(audiences, list) or expect.client_id not in audiences:
        raise IDTokenError("the ID token is not meant for this client (aud)")
    # Section 3.1.3.7 steps 4 and 5.
    if (len(audiences) > 1 or "azp" in claims) and claims.get("azp") != expect.client_id:
        raise IDTokenError("the ID token's authorized party (azp) is another client")
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub or len(sub) > 255:
        raise IDTokenError("the ID token has no valid subject (sub)")
    exp = json_number(claims.get("exp"))
    if exp is None:
        raise IDTokenError("the ID token has no expiry (exp)")
    if exp + expect.leeway < expect.now:
        raise IDTokenError("the ID token has expired")
    iat = json_number(claims.get("iat"))
    if iat is None:
        raise IDTokenError("the ID token has no issue time (iat)")
    if iat - expect.leeway > expect.now:
        raise IDTokenError("the ID token was issued in the future (check the clocks)")
    if iat + expect.max_age < expect.now:
        raise IDTokenError("the ID token was issued too long ago")
    nbf = json_number(claims.get("nbf"))
    if "nbf" in claims and (nbf is None or nbf - expect.leeway > expect.now):
        raise IDTokenError("the ID token is not valid yet (nbf)")
    if expect.nonce is not None:
        nonce = claims.get("nonce")
        if not isinstance(nonce, str) or not hmac.compare_digest(
            nonce.encode(), expect.nonce.encode()
        ):
            raise IDTokenError("the ID token's nonce does not match this sign-in")
    return dict(claims)


def token_alg(token: str) -> str:
    """The ``alg`` the token claims (unverified): tells whether the JWKS is needed."""
    return _peek_header(token)[0]


def _peek_header(token: str) -> tuple[str, str | None]:
    """Read ``alg`` and ``kid`` to choose the key; the signature is checked after."""
    if not isinstance(token, str) or token.count(".") != 2:
        raise IDTokenError("the ID token is not a signed JWT (JWS compact form)")
    from joserfc.util import urlsafe_b64decode

    try:
        header = json.loads(urlsafe_b64decode(token.split(".", 1)[0].encode("ascii")))
    except (ValueError, UnicodeError):
        raise IDTokenError("the ID token's header is malformed") from None
    if not isinstance(header, dict):
        raise IDTokenError("the ID token's header is malformed")
    alg = header.get("alg")
    kid = header.get("kid")
    if not isinstance(alg, str):
        raise IDTokenError("the ID token's header names no algorithm")
    if kid is not None and not isinstance(kid, str):
        raise IDTokenError("the ID token's key id (kid) is malformed")
    if "crit" in header:
        raise IDTokenError("the ID token uses critical header extensions")
    return alg, kid


def _fits(key_type: str, alg: str) -> bool:
    return (key_type == "EC") == alg.startswith("ES")


def json_number(value: Any) -> float | None:
    """A finite JSON number as a float; anything else (incl. 10**400, Infinity) is ``None``."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None
