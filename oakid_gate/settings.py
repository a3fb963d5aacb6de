"""Settings: keyword arguments, ``OAKID_*`` environment variables and CLI flags.

Every setting is a field of :class:`Settings`. The same name is a keyword
argument, an environment variable ``OAKID_<NAME>`` and a CLI flag
``--<name-with-dashes>``; explicit arguments win over the environment. Lists
are comma-separated in the environment. Everything is checked when the
settings are loaded, so a mistake is a :class:`ConfigurationError` at start-up
that names the setting, never a failure at the first request.

Secrets (``client_secret``, ``secret``) are held in :class:`Secret`, whose
``repr`` never shows the value.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

from .errors import ConfigurationError

__all__ = ["DEFAULT_ISSUER", "Secret", "Settings", "is_loopback_host", "setting_fields"]

DEFAULT_ISSUER = "https://id.oakwall.mom"
MIN_SECRET_BYTES = 32


class Secret:
    """A string that never shows itself in a repr, a log line or a traceback."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


def _doc(text: str, **extra: Any) -> dict[str, Any]:
    return {"doc": text, **extra}


@dataclass(frozen=True)
class Settings:
    """The checked settings of one gate. Build with :meth:`Settings.load`."""

    client_id: str = field(metadata=_doc("the app's client id at the provider", required=True))
    client_secret: Secret = field(
        metadata=_doc("the app's client secret at the provider", required=True)
    )
    secret: tuple[Secret, ...] = field(
        metadata=_doc(
            "encrypts stored tokens and keys the sign-out form token, at least 32 bytes; "
            "several (comma-separated) "
            "rotate: the first encrypts, all decrypt",
            required=True,
        )
    )
    issuer: str = field(default=DEFAULT_ISSUER, metadata=_doc("provider issuer URL"))
    scopes: tuple[str, ...] = field(
        default=("openid", "profile", "email"), metadata=_doc("requested scopes")
    )
    base_url: str | None = field(
        default=None, metadata=_doc("external origin, e.g. https://tools.example.com")
    )
    prefix: str = field(default="/oauth2", metadata=_doc("where the gate's endpoints live"))
    session_store: str = field(
        default="memory://",
        metadata=_doc(
            "memory://, sqlite:///relative.db, sqlite:////absolute.db, "
            "redis://host:port/db or rediss://host:port/db"
        ),
    )
    public_paths: tuple[str, ...] = field(
        default=(), metadata=_doc("paths served without login: /health, /static/*")
    )
    allowed_emails: tuple[str, ...] = field(
        default=(), metadata=_doc("only these (verified) emails may pass")
    )
    allowed_domains: tuple[str, ...] = field(
        default=(), metadata=_doc("only emails of these domains may pass")
    )
    user_claim: str = field(default="sub", metadata=_doc("claim used as REMOTE_USER"))
    allow_unverified_email: bool = field(
        default=False,
        metadata=_doc("let an email the provider marks email_verified: false count as the user's"),
    )
    upstream: str | None = field(default=None, metadata=_doc("proxy mode: where to forward"))
    pass_access_token: bool = field(
        default=False, metadata=_doc("proxy mode: send X-Forwarded-Access-Token")
    )
    trusted_proxies: tuple[str, ...] = field(
        default=(), metadata=_doc("addresses or networks whose X-Forwarded-* are believed")
    )
    allowed_origins: tuple[str, ...] = field(
        default=(),
        metadata=_doc(
            "origins besides the site's own that may open WebSockets: https://app.example"
        ),
    )
    token_endpoint_auth_method: str | None = field(
        default=None,
        metadata=_doc("client_secret_basic or client_secret_post (default: from discovery)"),
    )
    host: str = field(default="127.0.0.1", metadata=_doc("where the commands listen"))
    port: int = field(default=8000, metadata=_doc("where the commands listen"))
    session_lifetime: int = field(
        default=12 * 3600, metadata=_doc("seconds a session lives at most")
    )
    idle_timeout: int = field(
        default=2 * 3600, metadata=_doc("seconds without a request before a session ends")
    )
    refresh_margin: int = field(
        default=30,
        metadata=_doc("refresh this many seconds before expiry (at most half the lifetime)"),
    )
    claims_refresh_interval: int = field(
        default=600, metadata=_doc("seconds between re-reads of userinfo")
    )
    http_timeout: float = field(
        default=10.0, metadata=_doc("seconds for each call to the provider")
    )
    login_timeout: int = field(default=600, metadata=_doc("seconds a started sign-in may take"))
    clock_skew: int = field(default=60, metadata=_doc("leeway in seconds for ID token times"))
    cookie_name: str = field(
        default="oakid_session", metadata=_doc("session cookie name (__Host- added on https)")
    )
    cookie_secure: bool | None = field(
        default=None, metadata=_doc("Secure cookies (default: when the origin is https)")
    )
    cookie_samesite: Literal["lax", "strict"] = field(
        default="lax", metadata=_doc("SameSite of the session cookie: lax or strict")
    )

    # ---------------------------------------------------------------- loading

    @classmethod
    def load(cls, env: Mapping[str, str] | None = None, **kwargs: Any) -> Settings:
        """Merge keyword arguments over ``OAKID_*`` variables, convert and check."""
        env = os.environ if env is None else env
        known = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(kwargs) - set(known))
        if unknown:
            raise ConfigurationError(unknown[0], "unknown setting")
        values: dict[str, Any] = {}
        for name, f in known.items():
            raw: Any
            if name in kwargs and kwargs[name] is not None:
                raw = kwargs[name]
            elif f"OAKID_{name.upper()}" in env and env[f"OAKID_{name.upper()}"] != "":
                raw = env[f"OAKID_{name.upper()}"]
            elif f.metadata.get("required"):
                raise ConfigurationError(
                    name,
                    f"is required (keyword argument, --{name.replace('_', '-')} "
                    f"or OAKID_{name.upper()})",
                )
            else:
                continue
            values[name] = _convert(name, f.type, raw)
        settings = cls(**values)
        settings._check()
        return settings

    def _check(self) -> None:
        self._check_provider()
        self._check_secrets()
        self._check_paths()
        self._check_access()
        self._check_numbers()
        self._check_cookies()

    def _check_provider(self) -> None:
        _check_url("issuer", self.issuer)
        if self.issuer.endswith("/") and urlsplit(self.issuer).path == "/":
            raise ConfigurationError("issuer", "must not end with '/' (use the exact issuer)")
        if not self.client_id.strip():
            raise ConfigurationError("client_id", "is empty")
        if not self.client_secret.reveal():
            raise ConfigurationError("client_secret", "is empty")
        if not self.scopes:
            raise ConfigurationError("scopes", "is empty (OpenID Connect needs at least 'openid')")
        if self.token_endpoint_auth_method not in (
            None,
            "client_secret_basic",
            "client_secret_post",
        ):
            raise ConfigurationError(
                "token_endpoint_auth_method", "must be client_secret_basic or client_secret_post"
            )
        if self.user_claim == "":
            raise ConfigurationError("user_claim", "is empty")

    def _check_secrets(self) -> None:
        if not self.secret:
            raise ConfigurationError("secret", "is empty")
        for s in self.secret:
            if len(s.reveal().encode()) < MIN_SECRET_BYTES:
                raise ConfigurationError(
                    "secret",
                    f"must be at least {MIN_SECRET_BYTES} bytes; "
                    "make one with: python -c 'import secrets; print(secrets.token_urlsafe(32))'",
                )

    def _check_paths(self) -> None:
        if self.base_url is not None:
            _check_url("base_url", self.base_url)
            parts = urlsplit(self.base_url)
            if parts.path not in ("", "/") or parts.query or parts.fragment:
                raise ConfigurationError(
                    "base_url", "must be an origin only, like https://tools.example.com"
                )
        if not self.prefix.startswith("/") or self.prefix.endswith("/") or "//" in self.prefix:
            raise ConfigurationError("prefix", "must start with '/' and not end with '/'")
        for p in self.public_paths:
            if not p.startswith("/"):
                raise ConfigurationError("public_paths", f"{p!r} must start with '/'")
            if "*" in p[:-1] or (p.endswith("*") and not p.endswith("/*")):
                raise ConfigurationError(
                    "public_paths", f"{p!r}: only a trailing '/*' wildcard is allowed"
                )
            if p == self.prefix or p.startswith(self.prefix + "/"):
                raise ConfigurationError("public_paths", f"{p!r} is inside the gate's prefix")
        if self.upstream is not None:
            _check_url("upstream", self.upstream)

    def _check_access(self) -> None:
        for e in self.allowed_emails:
            if "@" not in e:
                raise ConfigurationError("allowed_emails", f"{e!r} is not an email address")
        for d in self.allowed_domains:
            if "@" in d or not d or d.startswith("."):
                raise ConfigurationError(
                    "allowed_domains", f"{d!r} is not a domain like example.com"
                )
        for origin in self.allowed_origins:
            parts = urlsplit(origin)
            if (
                parts.scheme not in ("http", "https")
                or not parts.hostname
                or parts.path
                or parts.query
                or parts.fragment
                or parts.username
            ):
                raise ConfigurationError(
                    "allowed_origins", f"{origin!r} is not an origin like https://app.example"
                )
        for net in self.trusted_proxies:
            try:
                ipaddress.ip_network(net, strict=False)
            except ValueError:
                raise ConfigurationError(
                    "trusted_proxies", f"{net!r} is not an IP address or network"
                ) from None

    def _check_numbers(self) -> None:
        if not 0 < self.port < 65536:
            raise ConfigurationError("port", "must be between 1 and 65535")
        for name in (
            "session_lifetime",
            "idle_timeout",
            "login_timeout",
            "http_timeout",
            "claims_refresh_interval",
        ):
            if getattr(self, name) <= 0:
                raise ConfigurationError(name, "must be greater than 0")
        for name in ("refresh_margin", "clock_skew"):
            if getattr(self, name) < 0:
                raise ConfigurationError(name, "must not be negative")
        if self.clock_skew > 300:
            raise ConfigurationError("clock_skew", "must be at most 300 seconds")

    def _check_cookies(self) -> None:
        if not self.cookie_name or not all(c.isalnum() or c in "_-." for c in self.cookie_name):
            raise ConfigurationError("cookie_name", "may hold only letters, digits, '_', '-', '.'")
        if self.cookie_name.startswith("_session") or self.cookie_name.startswith("__"):
            raise ConfigurationError("cookie_name", "must not start with '_session' or '__'")
        if self.cookie_samesite not in ("lax", "strict"):
            raise ConfigurationError("cookie_samesite", "must be lax or strict")
        if self.cookie_secure is False and self.base_url and self.base_url.startswith("https:"):
            raise ConfigurationError("cookie_secure", "cannot be false with an https base_url")

    # ---------------------------------------------------------------- derived

    @property
    def redirect_path(self) -> str:
        return self.prefix + "/callback"

    def describe(self) -> dict[str, str]:
        """The settings for display, secrets hidden."""
        out: dict[str, str] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            out[f.name] = repr(value) if not isinstance(value, str) else value
        return out


def setting_fields() -> list[dataclasses.Field[Any]]:
    """The fields of :class:`Settings`, for the CLI and the docs."""
    return list(dataclasses.fields(Settings))


# -------------------------------------------------------------------- helpers


def _convert(name: str, type_: Any, raw: Any) -> Any:
    t = str(type_)
    try:
        if t.startswith("tuple[Secret"):
            items = _split(raw)
            return tuple(Secret(i) if isinstance(i, str) else i for i in items)
        if t == "Secret":
            if isinstance(raw, Secret):
                return raw
            if not isinstance(raw, str):
                raise TypeError("must be a string")
            return Secret(raw)
        if t.startswith("tuple[str"):
            return tuple(str(i) for i in _split(raw))
        if t.startswith("bool"):
            return _bool(raw)
        if t.startswith("int"):
            if isinstance(raw, bool):
                raise TypeError("must be a whole number")
            return int(raw)
        if t.startswith("float"):
            if isinstance(raw, bool):
                raise TypeError("must be a number")
            return float(raw)
        if t.startswith("Literal"):
            return str(raw).lower()
        if not isinstance(raw, str):
            raise TypeError("must be a string")
        return raw
    except (TypeError, ValueError) as exc:
        problem = str(exc) if isinstance(exc, TypeError) else f"cannot read {raw!r}"
        if t.startswith(("tuple[Secret", "Secret")):
            problem = "must be a string"
        raise ConfigurationError(name, problem) from None


def _split(raw: Any) -> list[Any]:
    if isinstance(raw, str):
        return [p.strip() for p in raw.split(",") if p.strip()]
    if isinstance(raw, Secret):
        return [raw]
    if isinstance(raw, (list, tuple, set, frozenset)):
        out: list[Any] = []
        for item in raw:
            out.extend(_split(item) if isinstance(item, str) else [item])
        return out
    raise TypeError("must be a list or a comma-separated string")


def _bool(raw: Any) -> bool | None:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    if text in ("auto", ""):
        return None
    raise ValueError(text)


def _check_url(name: str, value: str) -> None:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(name, f"{value!r} is not an http(s) URL")
    if parts.scheme == "http" and not is_loopback_host(parts.hostname) and name != "upstream":
        raise ConfigurationError(name, "must use https (plain http is allowed on loopback only)")
    if parts.username or parts.password:
        raise ConfigurationError(name, "must not hold a user name or password")


def is_loopback_host(host: str) -> bool:
    """Whether ``host`` names this machine (http is acceptable there)."""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
