"""The proxy's header rules, as pure functions over header lists.

Requests (:func:`upstream_headers`): hop-by-hop headers go (RFC 9110 7.6.1:
``Connection`` and what it names, ``Keep-Alive``, ``TE``, ``Transfer-Encoding``,
``Upgrade``, ``Proxy-*``, ``Trailer``), and so do ``Expect``, ``Host`` (the
HTTP client writes the upstream's), every spelling of an identity header
(:mod:`oakid_gate.gate.identity`), and the gate's own cookies. The client's
``X-Forwarded-*``, ``Forwarded`` and ``X-Real-IP`` count only from a trusted
proxy; the gate sets ``X-Forwarded-For``/``-Proto``/``-Host`` itself, then adds
the identity headers.

Responses (:func:`downstream_headers`): hop-by-hop headers and ``Date`` go, and
``Content-Length`` of an answer that has no body (1xx, 204, 304); ``Location``
and ``Set-Cookie`` pass as the upstream wrote them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from ..gate.forwarded import TrustedProxies
from ..gate.identity import IDENTITY_FIRST_BYTES, is_identity_header, normalized_name

__all__ = [
    "HOP_BY_HOP",
    "Headers",
    "connection_tokens",
    "downstream_headers",
    "strip_cookies",
    "upstream_headers",
]

Headers = list[tuple[bytes, bytes]]
#: the gate's own cookies: exact names and name prefixes (``Cookies.owned()``)
CookieNames = tuple[frozenset[bytes], tuple[bytes, ...]]

#: RFC 9110 section 7.6.1 (and the de facto ``Proxy-Connection``): meaningful for
#: one connection only, never forwarded.
HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)

#: headers about the connection that only a trusted proxy may set
_FORWARDING = frozenset({b"forwarded", b"x-real-ip"})
#: the request headers made anew for the upstream (besides the identity headers)
_REPLACED = frozenset({b"host", b"expect", b"cookie"})
#: what a WebSocket client library writes itself for the upstream handshake
_WEBSOCKET_HANDSHAKE = frozenset(
    {
        b"sec-websocket-key",
        b"sec-websocket-version",
        b"sec-websocket-extensions",
        b"sec-websocket-accept",
        b"sec-websocket-protocol",
        b"content-length",
    }
)

#: request header names that take a closer look in :func:`upstream_headers`; any other
#: passes as it is, unless it has a ``_``, starts as an identity header could, or is
#: named by ``Connection``
_CLOSER_LOOK = HOP_BY_HOP | _FORWARDING | _REPLACED | _WEBSOCKET_HANDSHAKE
#: the response headers that stop at the proxy (besides those ``Connection`` names)
_NOT_DOWNSTREAM = HOP_BY_HOP | {b"date"}


def connection_tokens(headers: Iterable[tuple[bytes, bytes]]) -> frozenset[bytes]:
    """The header names a ``Connection`` header lists (RFC 9110 section 7.6.1)."""
    tokens: set[bytes] = set()
    for name, value in headers:
        if name.lower() == b"connection":
            tokens.update(t.strip().lower() for t in value.split(b",") if t.strip())
    return frozenset(tokens)


def strip_cookies(
    values: Sequence[bytes], drop_exact: frozenset[bytes], drop_prefixes: tuple[bytes, ...]
) -> bytes | None:
    """The ``Cookie`` header without the gate's cookies; the other pairs untouched."""
    kept = []
    for value in values:
        for pair in value.split(b";"):
            pair = pair.strip()
            if not pair:
                continue
            name = pair.split(b"=", 1)[0].strip()
            if name in drop_exact or name.startswith(drop_prefixes):
                continue
            kept.append(pair)
    return b"; ".join(kept) if kept else None


@dataclass(slots=True)
class _Sorted:
    """The client's request headers, sorted into what passes and what is remade."""

    passed: Headers = field(default_factory=list)
    cookies: list[bytes] = field(default_factory=list)
    forwarded_for: list[bytes] = field(default_factory=list)
    host: bytes | None = None
    forwarded: dict[str, str] = field(default_factory=dict)  # trusted -proto and -host


def _sort(headers: Headers, *, trusted: bool, websocket: bool) -> _Sorted:
    connection = connection_tokens(headers)
    out = _Sorted()
    for name, value in headers:
        lower = name.lower()
        if lower in connection:
            continue  # hop-by-hop: named by Connection
        if lower == b"cookie":
            out.cookies.append(value)
        elif lower == b"host":
            out.host = value
        elif (
            lower
            and lower[0] not in IDENTITY_FIRST_BYTES
            and b"_" not in lower
            and lower not in _CLOSER_LOOK
        ):
            out.passed.append((name, value))  # the common case: an end-to-end header
        else:
            _look_closer(out, name, lower, value, trusted=trusted, websocket=websocket)
    return out


def _look_closer(
    out: _Sorted, name: bytes, lower: bytes, value: bytes, *, trusted: bool, websocket: bool
) -> None:
    """Any other header: hop-by-hop, identity, remade, forwarding, or passed after all."""
    norm = normalized_name(lower)
    if lower in HOP_BY_HOP or norm in HOP_BY_HOP:
        return
    if is_identity_header(norm) or (websocket and norm in _WEBSOCKET_HANDSHAKE):
        return  # identity headers: never believed, whoever sent them
    if norm in _REPLACED:
        return
    if norm.startswith(b"x-forwarded-") or norm in _FORWARDING:
        if trusted and lower == norm:  # untrusted, or an odd spelling of ours: dropped
            _keep_forwarding(out, name, lower, value)
    else:
        out.passed.append((name, value))


def _keep_forwarding(out: _Sorted, name: bytes, lower: bytes, value: bytes) -> None:
    """A trusted proxy's forwarding header: extended, believed, or passed on."""
    if lower == b"x-forwarded-for":
        out.forwarded_for.append(value)
    elif lower in (b"x-forwarded-proto", b"x-forwarded-host"):
        key, text = lower.decode(), value.decode("latin-1")
        out.forwarded[key] = out.forwarded[key] + ", " + text if key in out.forwarded else text
    else:
        out.passed.append((name, value))


def upstream_headers(
    headers: Iterable[tuple[bytes, bytes]],
    *,
    client: str | None,
    scheme: str,
    trusted: bool,
    identity: Headers,
    drop_cookies: CookieNames = (frozenset(), ()),
    websocket: bool = False,
) -> Headers:
    """The request headers to send upstream, from the client's (ASGI: lower-case names).

    ``trusted``: the client is a trusted proxy, whose forwarding headers count.
    """
    sorted_ = _sort(list(headers), trusted=trusted, websocket=websocket)
    out = sorted_.passed
    if sorted_.cookies and (kept := strip_cookies(sorted_.cookies, *drop_cookies)) is not None:
        out.append((b"cookie", kept))
    chain = [v.strip() for v in b",".join(sorted_.forwarded_for).split(b",") if v.strip()]
    if client:
        chain.append(client.encode("latin-1"))
    if chain:
        out.append((b"x-forwarded-for", b", ".join(chain)))
    proto = "https" if scheme in ("https", "wss") else "http"
    original_host = sorted_.host
    if trusted:
        proto, fhost = TrustedProxies.forwarded(proto, sorted_.forwarded)
        if fhost is not None:
            original_host = fhost.encode("latin-1")
    out.append((b"x-forwarded-proto", proto.encode()))
    if original_host:
        out.append((b"x-forwarded-host", original_host))
    out.extend(identity)
    return out


def downstream_headers(headers: Iterable[tuple[bytes, bytes]], status: int = 200) -> Headers:
    """The upstream's response headers for the client: hop-by-hop and ``Date`` removed.

    A 1xx, 204 or 304 answer also loses ``Content-Length``: it has no body here,
    whatever length it names (RFC 9110 section 8.6), and ASGI servers would
    take the length as a promise of bytes to come.
    """
    headers = list(headers)
    connection = connection_tokens(headers)
    dropped = _NOT_DOWNSTREAM | connection if connection else _NOT_DOWNSTREAM
    if status < 200 or status in (204, 304):
        dropped = dropped | {b"content-length"}
    return [(name, value) for name, value in headers if name.lower() not in dropped]
