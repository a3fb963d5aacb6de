"""Who may reach what without a session: ``public_paths``, and WebSockets' ``Origin``.

(Who may pass once signed in is :mod:`.authorization`'s.)

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
import re

from ..settings import Settings
from ..settings.paths import MAX_PATH, parse_entry

__all__ = ["PublicPaths", "WebSocketOrigins"]


#: characters that make a path mean something else to some server (see the module's docs)
_AMBIGUOUS = frozenset(";\\%")


class PublicPaths:
    """The ``public_paths`` setting, compiled once (its syntax:
    :mod:`oakid_gate.settings.paths`)."""

    def __init__(
        self, entries: tuple[str, ...], root_path: str = "", prefix: str = "/oauth2"
    ) -> None:
        rules = [parse_entry(e, prefix) for e in entries]
        any_method = [r for r in rules if r.methods is None and r.kind != "regex"]
        #: the common entries, for any method: a set and a tuple, matched at once
        self._exact = frozenset(r.path for r in any_method if r.kind == "exact")
        self._prefixes = tuple(r.path for r in any_method if r.kind == "below")
        #: entries with methods, and patterns (compiled once), tried in turn
        self._others = tuple(
            (r.methods, r.kind, re.compile(r.path) if r.kind == "regex" else r.path)
            for r in rules
            if r.methods is not None or r.kind == "regex"
        )
        self._any = bool(rules)
        self._root_path = root_path

    def admits(self, root_path: str, routed_path: str, method: str | None) -> bool:
        """Whether a request the app will route on ``routed_path`` is public: mounted
        where it should be, and its method and routed path listed."""
        return self._any and root_path == self._root_path and self.matches(routed_path, method)

    def matches(self, path: str, method: str | None) -> bool:
        """Whether an entry names ``path`` (and ``method``; ``None`` matches only the
        entries for any method)."""
        if not self._any or not _plain(path):
            return False
        if path in self._exact or path.startswith(self._prefixes):
            return True
        for methods, kind, value in self._others:
            if methods is not None and method not in methods:
                continue
            if kind == "exact":
                if path == value:
                    return True
            elif kind == "below":
                if path.startswith(value):  # type: ignore[arg-type]
                    return True
            elif len(path) <= MAX_PATH and value.fullmatch(path):  # type: ignore[union-attr]
                return True
        return False

    def __contains__(self, path: str) -> bool:
        return self.matches(path, None)


def _plain(path: str) -> bool:
    """A path no server reads otherwise: normalised, ASCII, printable, unambiguous."""
    if not path.isascii() or not path.isprintable() or _AMBIGUOUS.intersection(path):
        return False
    if "//" in path or "/./" in path or "/../" in path or path.endswith(("/.", "/..")):
        return False
    return posixpath.normpath(path) == path.rstrip("/") or path == "/"


class WebSocketOrigins:
    """The ``allowed_origins`` setting, and the site's own origin."""

    def __init__(self, settings: Settings) -> None:
        self._allowed = frozenset(o.rstrip("/").lower() for o in settings.allowed_origins)

    def allows(self, origin: str | None, own: str) -> bool:
        if origin is None:
            return True
        origin = origin.lower()
        return origin == own.lower() or origin in self._allowed
