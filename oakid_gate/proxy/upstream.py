"""Where a request goes upstream, and with which headers: shared by both relays."""

from __future__ import annotations

import ssl
from urllib.parse import quote, urlsplit

from starlette.types import Scope

from ..clients import tls_context
from ..errors import ConfigurationError
from ..gate.cookies import Cookies
from ..gate.forwarded import TrustedProxies
from ..gate.identity import identity_headers
from ..settings import Settings
from ..user import OakIDUser, SessionView
from .headers import Headers, upstream_headers

__all__ = ["IDENTITY_CACHE_SIZE", "Upstream"]

#: characters a forwarded path keeps as they are (with the unreserved, which ``quote`` keeps)
_PATH_SAFE = "/:@!$&'()*+,="

#: users whose identity headers are kept worked out (the dict is emptied when full)
IDENTITY_CACHE_SIZE = 1024


class Upstream:
    """The ``upstream`` setting, checked and taken apart once.

    ``tls``: for an ``https`` upstream, ``ssl_context`` or the default context
    (the system's trust, certificates and host name verified), made once and
    shared by every connection, HTTP and WebSocket; ``None`` for ``http``.
    """

    def __init__(self, settings: Settings, ssl_context: ssl.SSLContext | None = None) -> None:
        if not settings.upstream:
            raise ConfigurationError(
                "upstream", "is required for the proxy (--upstream URL or OAKID_UPSTREAM)"
            )
        parts = urlsplit(settings.upstream)
        if parts.query or parts.fragment:
            raise ConfigurationError("upstream", "must not hold a query or a fragment")
        self.url = settings.upstream
        secure = parts.scheme == "https"
        if not secure:
            self.tls = None
        elif ssl_context is not None:
            self.tls = ssl_context
        else:
            self.tls = tls_context(
                settings.upstream_ca_file, insecure=settings.upstream_insecure_skip_verify
            )
        self.origin = parts.scheme + "://" + parts.netloc
        self.ws_origin = ("wss" if parts.scheme == "https" else "ws") + "://" + parts.netloc
        self._path_prefix = parts.path.rstrip("/")
        self._proxies = TrustedProxies(settings.trusted_proxies)
        self._pass_token = settings.pass_access_token
        self._identities: dict[int, tuple[OakIDUser, str | None, Headers]] = {}
        exact, prefixes = Cookies(settings).owned()
        self._gate_cookies = (
            frozenset(n.encode() for n in exact),
            tuple(p.encode() for p in prefixes),
        )

    def target(self, scope: Scope) -> str | None:
        """The upstream path and query: the path the gate judged, after the upstream's path.

        The path goes as a canonical encoding of the decoded ``path`` the gate
        decided on, never the client's raw bytes: ``/static/..%5cadmin``,
        ``/static/..;/admin``, an overlong UTF-8 dot or ``%00`` would otherwise
        reach an upstream that normalises them (Tomcat, Jetty, IIS) as another
        path than the one judged. Every byte outside RFC 3986's unreserved
        characters and ``/:@!$&'()*+,=`` is percent-encoded (``;`` too, so no
        upstream reads path parameters the gate did not see), so the upstream's
        decoding gives back exactly the judged path. The query goes as sent.
        ``None`` for a request target that is not a path (absolute-form, ``*``).
        """
        raw: bytes | None = scope.get("raw_path")
        path: str = scope["path"]
        if (raw is not None and not raw.startswith(b"/")) or not path.startswith("/"):
            return None
        query: bytes = scope.get("query_string", b"")
        return (
            self._path_prefix
            + quote(path, safe=_PATH_SAFE)
            + ("?" + query.decode("latin-1") if query else "")
        )

    def headers(self, scope: Scope, *, websocket: bool = False) -> Headers:
        """The request headers for the upstream, with the identity the gate put in ``scope``."""
        client = scope.get("client")
        peer = client[0] if client else None
        user = scope.get("user")
        view = scope.get("oakid")
        token = view.access_token if self._pass_token and isinstance(view, SessionView) else None
        identity = self._identity(user, token) if isinstance(user, OakIDUser) else []
        return upstream_headers(
            scope["headers"],
            client=peer,
            scheme=scope.get("scheme", "http"),
            trusted=self._proxies.trusts(peer),
            identity=identity,
            drop_cookies=self._gate_cookies,
            websocket=websocket,
        )

    def _identity(self, user: OakIDUser, token: str | None) -> Headers:
        """The identity headers of ``user``, worked out once per user object (a user's claims
        never change: a refreshed session is a new user). The list is shared: never changed."""
        cached = self._identities.get(id(user))
        if cached is not None and cached[0] is user and cached[1] == token:
            return cached[2]
        headers = identity_headers(user, b"x-forwarded-", access_token=token)
        if len(self._identities) >= IDENTITY_CACHE_SIZE:
            self._identities.clear()
        self._identities[id(user)] = (user, token, headers)
        return headers
