"""Request parameters and secret values: the helpers every endpoint shares.

RFC 6749 section 3.1: a parameter is sent at most once, and one sent with an
empty value counts as omitted. Secrets (tokens, codes, login tickets,
passwords) are kept and logged only as SHA-256 digests, and compared in
constant time.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence

from ._errors import InvalidRequest

__all__ = [
    "Params",
    "equal",
    "first_param",
    "lenient_param",
    "optional_param",
    "required_param",
    "sha256_hex",
]

#: A parsed query string or form: every value a parameter was given.
Params = Mapping[str, Sequence[str]]


def _given(params: Params, name: str) -> list[str]:
    return [value for value in params.get(name, ()) if value != ""]


def optional_param(params: Params, name: str) -> str | None:
    """The parameter's value; ``None`` when absent or empty.

    Raises InvalidRequest when it is given more than once.
    """
    values = _given(params, name)
    if len(values) > 1:
        raise InvalidRequest(f"parameter {name} must not be repeated")
    return values[0] if values else None


def required_param(params: Params, name: str) -> str:
    """The parameter's value; InvalidRequest when it is absent, empty or repeated."""
    value = optional_param(params, name)
    if value is None:
        raise InvalidRequest(f"missing parameter: {name}")
    return value


def lenient_param(params: Params, name: str) -> str | None:
    """A parameter's value if it was given exactly once and not empty; never raises."""
    values = _given(params, name)
    return values[0] if len(values) == 1 else None


def first_param(params: Params, name: str) -> str | None:
    """A parameter for the event log: the first value, whatever else is wrong."""
    values = params.get(name)
    return values[0] if values else None


def sha256_hex(value: str) -> str:
    """The SHA-256 digest of a secret, as hex: how secrets are stored and logged."""
    return hashlib.sha256(value.encode()).hexdigest()


def equal(a: str, b: str) -> bool:
    """Compare two secrets in constant time."""
    return hmac.compare_digest(a.encode(), b.encode())
