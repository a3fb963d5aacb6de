"""Who may reach what: ``public_paths`` and the allow-lists.

- :class:`PublicPaths`: a path is public when it equals an entry, or lies below
  an entry ending in ``/*``; matched on the normalized path only, never the
  query. A path that normalization would change (``//``, ``/./``, ``/../``) is
  never public, so no spelling of a protected path can pass as a public one;
  nor is a path holding what some server or upstream reads otherwise: ``;``
  (path parameters: Tomcat's ``/static/..;/admin``), ``\\`` (a separator to
  IIS), NUL or another control character, a ``%`` left after decoding (a
  second round of decoding), or anything outside ASCII (overlong or
  look-alike dots).
  It is judged on the path the app routes on (``PATH_INFO``, the ASGI ``path``
  less ``root_path``), and only when the request's mount prefix is the
  configured ``root_path``: a server that lets a client move the split
  (gunicorn's ``SCRIPT_NAME`` header from trusted forwarders, werkzeug's
  ``ProxyFix(x_prefix=1)`` outside the gate, Daphne's ``Daphne-Root-Path``)
  would otherwise turn ``/public/admin`` into the app's ``/admin``. Middleware
  that rewrites the prefix belongs inside the gate.
- :class:`WebSocketOrigins`: a browser names the page that opens a WebSocket
  (``Origin``) and sends the user's cookies with it, so a page of another
  origin of the same site (another subdomain or port) could speak for the
  user (cross-site WebSocket hijacking). Only the site's own origin and
  ``allowed_origins`` may; a handshake without ``Origin`` comes from no browser
  (a script sends cookies only when told to) and passes.
- :class:`Allowlist`: once signed in, the verified email
  (:func:`~oakid_gate.user.verified_email`) must be one of ``allowed_emails`` or
  of ``allowed_domains``, compared without case.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from typing import Any

from ..settings import Settings
from ..user import verified_email

__all__ = ["Allowlist", "PublicPaths", "WebSocketOrigins"]


#: characters that make a path mean something else to some server (see the module's docs)
_AMBIGUOUS = frozenset(";\\%")


class PublicPaths:
    """The ``public_paths`` setting, compiled once."""

    def __init__(self, entries: tuple[str, ...], root_path: str = "") -> None:
        self._exact = frozenset(p for p in entries if not p.endswith("/*"))
        self._prefixes = tuple(p[:-1] for p in entries if p.endswith("/*"))
        self._any = bool(entries)
        self._root_path = root_path

    def admits(self, root_path: str, routed_path: str) -> bool:
        """Whether a request the app will route on ``routed_path`` is public: mounted
        where it should be, and its routed path listed."""
        return self._any and root_path == self._root_path and routed_path in self

    def __contains__(self, path: str) -> bool:
        if not self._any:
            return False
        if not path.isascii() or not path.isprintable() or _AMBIGUOUS.intersection(path):
            return False
        if "//" in path or "/./" in path or "/../" in path or path.endswith(("/.", "/..")):
            return False
        if posixpath.normpath(path) != path.rstrip("/") and path != "/":
            return False
        return path in self._exact or path.startswith(self._prefixes)


class WebSocketOrigins:
    """The ``allowed_origins`` setting, and the site's own origin."""

    def __init__(self, settings: Settings) -> None:
        self._allowed = frozenset(o.rstrip("/").lower() for o in settings.allowed_origins)

    def allows(self, origin: str | None, own: str) -> bool:
        if origin is None:
            return True
        origin = origin.lower()
        return origin == own.lower() or origin in self._allowed


class Allowlist:
    """``allowed_emails`` and ``allowed_domains``; empty means everyone signed in."""

    def __init__(self, settings: Settings) -> None:
        self._emails = frozenset(e.lower() for e in settings.allowed_emails)
        self._domains = frozenset(d.lower() for d in settings.allowed_domains)
        self._trust_unverified = settings.allow_unverified_email
        #: whether there is a list at all (the hot path skips the check otherwise)
        self.restricted = bool(self._emails or self._domains)

    def allows(self, claims: Mapping[str, Any]) -> bool:
        """A verified email that matches a listed email or domain."""
        if not self.restricted:
            return True
        email = verified_email(claims, trust_unverified=self._trust_unverified)
        if email is None:
            return False
        email = email.lower()
        if email in self._emails:
            return True
        return email.rpartition("@")[2] in self._domains
