"""Identity headers: which they are, removing them, and what the gate puts in them.

It is a security issue to let a client choose the identity an app or an
upstream believes. Only the gate says who the user is, so every client-sent
header that *could be read as* an identity header is removed first, on every
request, in every adapter (ASGI, WSGI, the proxy): any letter case, ``_`` for
``-`` (many servers, WSGI among them, read ``X_Forwarded_User`` as
``X-Forwarded-User``), repeated lines, and every ``X-Auth-Request-*``. An app
once deployed behind another gate (oauth2-proxy, mod_auth_openidc, Apache's
``REMOTE_USER``) may still trust them.

What the gate sends: the user's ``identity`` (the ``user_claim``), email,
preferred username and groups, as ``X-Forwarded-*`` to the proxy's upstream
and ``X-Auth-Request-*`` from ``/oauth2/auth``; claim values lose control and
format characters and are sent as UTF-8 bytes.
"""

from __future__ import annotations

from collections.abc import Iterable, MutableMapping
from typing import Any

from ..user import OakIDUser, header_safe

__all__ = [
    "ENVIRON_IDENTITY_KEYS",
    "IDENTITY_FIRST_BYTES",
    "IDENTITY_HEADERS",
    "PLAIN_LOOKALIKES",
    "header_value",
    "identity_fields",
    "identity_headers",
    "is_identity_header",
    "normalized_name",
    "strip_environ",
    "without_identity_headers",
]

Headers = list[tuple[bytes, bytes]]

#: headers that claim an identity: only the gate may set them, a client never
IDENTITY_HEADERS = frozenset(
    {
        b"remote-user",
        b"x-remote-user",
        b"x-forwarded-user",
        b"x-forwarded-email",
        b"x-forwarded-preferred-username",
        b"x-forwarded-groups",
        b"x-forwarded-access-token",
        b"x-auth-request-user",
        b"x-auth-request-email",
        b"x-auth-request-preferred-username",
        b"x-auth-request-groups",
        b"x-auth-request-access-token",
    }
)
_ANY_AUTH_REQUEST = b"x-auth-request-"

#: the first bytes of every identity header name: a cheap pre-filter for hot paths
IDENTITY_FIRST_BYTES = frozenset(b"xXrR")
#: common headers that begin like one (``r``, ``x``) but are none: the hot path's
#: scan skips the full check for these exact names (a test keeps each one plain)
PLAIN_LOOKALIKES = frozenset(
    {
        b"range",
        b"referer",
        b"x-amzn-trace-id",
        b"x-cloud-trace-context",
        b"x-forwarded-for",
        b"x-forwarded-host",
        b"x-forwarded-port",
        b"x-forwarded-prefix",
        b"x-forwarded-proto",
        b"x-real-ip",
        b"x-request-id",
        b"x-requested-with",
    }
)

#: WSGI environ keys only the gate may set (PEP 3333 spells headers ``HTTP_...``)
ENVIRON_IDENTITY_KEYS = (
    "REMOTE_USER",
    "oakid.user",
    "oakid",
    "oakid.gate",
    *("HTTP_" + name.decode().upper().replace("-", "_") for name in sorted(IDENTITY_HEADERS)),
)
_ENVIRON_AUTH_REQUEST = "HTTP_X_AUTH_REQUEST_"


def normalized_name(name: bytes) -> bytes:
    """The header name as servers that fold case and ``_``/``-`` will read it."""
    norm = name.lower()
    return norm.replace(b"_", b"-") if b"_" in norm else norm


def is_identity_header(name: bytes) -> bool:
    """Whether a header name claims an identity, in any spelling."""
    norm = normalized_name(name)
    return norm in IDENTITY_HEADERS or norm.startswith(_ANY_AUTH_REQUEST)


def without_identity_headers(headers: Iterable[tuple[bytes, bytes]]) -> Headers:
    """``headers`` less every one that claims an identity."""
    return [(n, v) for n, v in headers if not is_identity_header(n)]


def strip_environ(environ: MutableMapping[str, Any]) -> None:
    """Remove every identity key a WSGI server or client put in ``environ``."""
    for key in ENVIRON_IDENTITY_KEYS:
        environ.pop(key, None)
    for key in [k for k in environ if k.startswith(_ENVIRON_AUTH_REQUEST)]:
        del environ[key]


def header_value(text: str) -> bytes | None:
    """A claim as a header value, exactly as it is (UTF-8, as oauth2-proxy sends
    non-Latin-1 text), or ``None`` when it cannot travel in a header unaltered
    (:func:`~oakid_gate.user.header_safe`): a value is never changed to fit, so
    ``adm\u200bin`` can never arrive as ``admin``."""
    return text.encode("utf-8") if header_safe(text) else None


def identity_fields(user: OakIDUser) -> list[tuple[str, bytes]]:
    """The user's identity as (name suffix, header value) pairs: ``user``, ``email``,
    ``preferred-username``, ``groups``. Empty values, and values that cannot travel
    unaltered, are left out (the identity always can: the gate signs in no other)."""
    fields = [("user", user.identity), ("email", user.email or "")]
    username = user.claims.get("preferred_username")
    if isinstance(username, str):
        fields.append(("preferred-username", username))
    fields.append(("groups", ",".join(user.groups)))
    return [(name, value) for name, text in fields if (value := header_value(text))]


def identity_headers(
    user: OakIDUser | None, prefix: bytes, *, access_token: str | None = None
) -> Headers:
    """The identity headers for ``user`` under ``prefix`` (``x-forwarded-``,
    ``x-auth-request-``); none for an anonymous user. ``access_token`` adds
    ``{prefix}access-token``."""
    if user is None:
        return []
    out = [(prefix + name.encode(), value) for name, value in identity_fields(user)]
    if access_token is not None and (token := header_value(access_token)):
        out.append((prefix + b"access-token", token))
    return out
