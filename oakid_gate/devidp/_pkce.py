"""PKCE (RFC 7636): the challenge a request carries and the verifier that redeems it.

Only ``S256`` is supported; ``plain`` is refused (RFC 7636 7.2).
"""

from __future__ import annotations

import base64
import hashlib
import re

from ._errors import InvalidGrant, InvalidRequest
from ._params import Params, equal, optional_param

__all__ = ["check_verifier", "required_challenge", "verify_pkce"]

# RFC 7636 section 4.1: code-verifier = 43*128unreserved
_CODE_VERIFIER = re.compile(r"[A-Za-z0-9\-._~]{43,128}")
# RFC 7636 section 4.2: an S256 challenge is BASE64URL(SHA256(...)), 43 characters
_S256_CHALLENGE = re.compile(r"[A-Za-z0-9\-_]{43}")


def required_challenge(params: Params) -> str:
    """The ``code_challenge`` of an authorization request (RFC 7636 4.3); InvalidRequest."""
    challenge = optional_param(params, "code_challenge")
    method = optional_param(params, "code_challenge_method")
    if challenge is None:
        raise InvalidRequest("code_challenge required (PKCE, RFC 7636)")
    if method != "S256":
        raise InvalidRequest("code_challenge_method must be S256; plain is not supported")
    if not _S256_CHALLENGE.fullmatch(challenge):
        raise InvalidRequest("code_challenge must be 43 base64url characters (RFC 7636 4.2)")
    return challenge


def check_verifier(verifier: str, challenge: str) -> None:
    """The token request's ``code_verifier`` must answer the challenge; else InvalidGrant."""
    if not _CODE_VERIFIER.fullmatch(verifier):
        raise InvalidGrant(
            "PKCE verification failed: code_verifier must be 43-128 characters "
            "of A-Z a-z 0-9 - . _ ~"
        )
    if not verify_pkce(verifier, challenge):
        raise InvalidGrant("PKCE verification failed")


def verify_pkce(verifier: str, challenge: str) -> bool:
    """RFC 7636 4.6: BASE64URL(SHA256(code_verifier)) == code_challenge."""
    if not _CODE_VERIFIER.fullmatch(verifier):
        return False
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    computed = base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
    return equal(computed, challenge)
