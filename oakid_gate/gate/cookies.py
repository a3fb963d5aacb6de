"""Every cookie the gate sets: names, attributes, and which ones are the gate's.

Two kinds, both HttpOnly:

- the session cookie, ``cookie_name`` (``__Host-`` prefixed on https), an
  opaque random id, ``Path=/``, ``SameSite`` as configured;
- a cookie per sign-in under way, named after the hash of its ``state``,
  holding the sealed sign-in (:mod:`.pending`), ``SameSite=Lax`` (the
  provider's redirect back is a top-level navigation from another site). On
  https it is ``__Host-`` with ``Path=/``, like the session cookie: a sibling
  subdomain cannot plant one (login CSRF by cookie tossing).

Cookies are written with :mod:`http.cookies`; parsing them is the adapters'
job (Starlette's ``cookie_parser``): nothing of cookie syntax is re-implemented.
Whether a cookie is ``Secure`` follows ``cookie_secure``, else ``base_url``'s
scheme, else the request's.
"""

from __future__ import annotations

from http.cookies import SimpleCookie

from ..settings import Settings
from .records import hash_key
from .request import GateRequest

__all__ = ["Cookies"]

#: the prefix that pins a cookie to its host, path ``/`` and https (RFC 6265bis 4.1.3.2)
HOST_PREFIX = "__Host-"
SECURE_PREFIX = "__Secure-"


class Cookies:
    """The cookie rules of one gate, worked out once from its settings."""

    def __init__(self, settings: Settings) -> None:
        name = settings.cookie_name
        https_origin = settings.base_url.startswith("https:") if settings.base_url else None
        self._secure = (
            settings.cookie_secure if settings.cookie_secure is not None else https_origin
        )
        self._session_names = {False: name, True: HOST_PREFIX + name}
        self._login_stem = name + "_login_"
        self._logout_names = {False: name + "_logout", True: HOST_PREFIX + name + "_logout"}
        self._samesite = settings.cookie_samesite.capitalize()
        self._session_max_age = settings.session_lifetime
        self._login_max_age = settings.login_timeout

    # ------------------------------------------------------------ names

    def secure_for(self, scheme: str) -> bool:
        return self._secure if self._secure is not None else scheme == "https"

    def secure(self, req: GateRequest) -> bool:
        return self.secure_for(req.scheme)

    def session_name_for(self, scheme: str) -> str:
        """The session cookie's name on a request of ``scheme``."""
        return self._session_names[self.secure_for(scheme)]

    def session_names_by_scheme(self) -> dict[str, str]:
        """``{"http": name, "https": name}``: the hot path's look-up, worked out once."""
        return {scheme: self.session_name_for(scheme) for scheme in ("http", "https")}

    def session_name(self, req: GateRequest) -> str:
        return self._session_names[self.secure(req)]

    def login_name(self, req: GateRequest, state: str) -> str:
        """The cookie of the sign-in whose ``state`` this is."""
        prefix = HOST_PREFIX if self.secure(req) else ""
        return f"{prefix}{self._login_stem}{hash_key(state)[:16]}"

    def owned(self) -> tuple[frozenset[str], tuple[str, ...]]:
        """The gate's own cookies, as exact names and name prefixes, in every form.

        A proxy removes these from what it forwards: the session cookie never
        reaches the upstream.
        """
        exact = frozenset((*self._session_names.values(), *self._logout_names.values()))
        # __Secure- login cookies are what earlier versions set; they still go.
        prefixes = (self._login_stem, HOST_PREFIX + self._login_stem)
        return exact, (*prefixes, SECURE_PREFIX + self._login_stem)

    # ------------------------------------------------------------ Set-Cookie values

    def set_session(self, req: GateRequest, sid: str) -> tuple[str, str]:
        return self._header(req, self.session_name(req), sid, self._session_max_age)

    def clear_session(self, req: GateRequest) -> tuple[str, str]:
        return self._header(req, self.session_name(req), "", 0)

    def pending_logins(self, req: GateRequest) -> list[str]:
        """The names of the sign-in cookies this browser holds (every form, as the proxy
        strips them)."""
        _, prefixes = self.owned()
        return [name for name in req.cookies if name.startswith(prefixes)]

    def clear_named(self, req: GateRequest, name: str) -> tuple[str, str]:
        """Expire the cookie ``name`` (one of the gate's)."""
        return self._header(req, name, "", 0, samesite="Lax")

    def logout_name(self, req: GateRequest) -> str:
        """The cookie that carries a logout at the provider across it (:mod:`.logout`)."""
        return self._logout_names[self.secure(req)]

    def set_logout(self, req: GateRequest, sealed: str) -> tuple[str, str]:
        return self._header(req, self.logout_name(req), sealed, self._login_max_age, samesite="Lax")

    def clear_logout(self, req: GateRequest) -> tuple[str, str]:
        return self._header(req, self.logout_name(req), "", 0, samesite="Lax")

    def set_login(self, req: GateRequest, state: str, sealed: str) -> tuple[str, str]:
        name = self.login_name(req, state)
        return self._header(req, name, sealed, self._login_max_age, samesite="Lax")

    def clear_login(self, req: GateRequest, state: str) -> tuple[str, str]:
        return self._header(req, self.login_name(req, state), "", 0, samesite="Lax")

    def _header(
        self,
        req: GateRequest,
        name: str,
        value: str,
        max_age: int,
        *,
        samesite: str | None = None,
    ) -> tuple[str, str]:
        """A ``Set-Cookie`` with ``Path=/`` (as ``__Host-`` requires), HttpOnly, and
        ``Secure`` when the site is on https."""
        jar: SimpleCookie = SimpleCookie()
        jar[name] = value
        morsel = jar[name]
        morsel["path"] = "/"
        morsel["max-age"] = str(max_age)
        morsel["httponly"] = True
        morsel["samesite"] = samesite or self._samesite
        if self.secure(req):
            morsel["secure"] = True
        return ("set-cookie", morsel.OutputString())
