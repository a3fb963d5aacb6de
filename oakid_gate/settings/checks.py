"""The checks of :class:`~oakid_gate.settings.Settings`, in named groups: a mistake is a
:class:`~oakid_gate.errors.ConfigurationError` at start-up that names the setting."""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from ..errors import ConfigurationError
from ..templates import load_templates
from .paths import parse_entry
from .values import check_url, claim_pairs

if TYPE_CHECKING:
    from .fields import Settings

__all__ = ["MIN_SECRET_BYTES", "check"]

MIN_SECRET_BYTES = 32


def check(settings: Settings) -> None:
    """Every check of the settings: a mistake is a ConfigurationError naming the setting."""
    _provider(settings)
    _secrets(settings)
    _paths(settings)
    _access(settings)
    _numbers(settings)
    _cookies(settings)
    _pages(settings)


def _provider(settings: Settings) -> None:
    check_url("issuer", settings.issuer)
    if settings.issuer.endswith("/") and urlsplit(settings.issuer).path == "/":
        raise ConfigurationError("issuer", "must not end with '/' (use the exact issuer)")
    if not settings.client_id.strip():
        raise ConfigurationError("client_id", "is empty")
    if not settings.client_secret.reveal():
        raise ConfigurationError("client_secret", "is empty")
    if not settings.scopes:
        raise ConfigurationError("scopes", "is empty (OpenID Connect needs at least 'openid')")
    if settings.token_endpoint_auth_method not in (
        None,
        "client_secret_basic",
        "client_secret_post",
    ):
        raise ConfigurationError(
            "token_endpoint_auth_method", "must be client_secret_basic or client_secret_post"
        )
    if settings.user_claim == "":
        raise ConfigurationError("user_claim", "is empty")


def _secrets(settings: Settings) -> None:
    if not settings.secret:
        raise ConfigurationError("secret", "is empty")
    for s in settings.secret:
        if len(s.reveal().encode()) < MIN_SECRET_BYTES:
            raise ConfigurationError(
                "secret",
                f"must be at least {MIN_SECRET_BYTES} bytes; "
                "make one with: python -c 'import secrets; print(secrets.token_urlsafe(32))'",
            )


def _paths(settings: Settings) -> None:
    if settings.base_url is not None:
        check_url("base_url", settings.base_url)
        parts = urlsplit(settings.base_url)
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise ConfigurationError(
                "base_url", "must be an origin only, like https://tools.example.com"
            )
    if (
        not settings.prefix.startswith("/")
        or settings.prefix.endswith("/")
        or "//" in settings.prefix
    ):
        raise ConfigurationError("prefix", "must start with '/' and not end with '/'")
    if settings.root_path and (
        not settings.root_path.startswith("/")
        or settings.root_path.endswith("/")
        or "//" in settings.root_path
    ):
        raise ConfigurationError(
            "root_path", "must be empty, or start with '/' and not end with '/', like /app"
        )
    for p in settings.public_paths:
        parse_entry(p, settings.prefix)
    if settings.upstream is not None:
        check_url("upstream", settings.upstream)
    for name in ("ca_file", "upstream_ca_file"):
        path = getattr(settings, name)
        if path is not None:
            _check_ca_file(name, path)


def _check_ca_file(name: str, path: str) -> None:
    """A CA file that cannot be read, or holds no certificate, is a start-up error."""
    import ssl

    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cafile=path)
    except ssl.SSLError:  # an OSError too: first
        raise ConfigurationError(name, f"{path!r} holds no PEM certificate") from None
    except OSError as exc:
        raise ConfigurationError(name, f"cannot read {path!r}: {exc.strerror}") from None


def _access(settings: Settings) -> None:
    for e in settings.allowed_emails:
        if "@" not in e:
            raise ConfigurationError("allowed_emails", f"{e!r} is not an email address")
    for d in settings.allowed_domains:
        if "@" in d or not d or d.startswith("."):
            raise ConfigurationError("allowed_domains", f"{d!r} is not a domain like example.com")
    for g in settings.allowed_groups:
        if "," in g:
            raise ConfigurationError("allowed_groups", f"{g!r}: a group name cannot hold ','")
    if not settings.groups_claim:
        raise ConfigurationError("groups_claim", "is empty")
    claim_pairs(settings.required_claims)
    for origin in settings.allowed_origins:
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
    for net in settings.trusted_proxies:
        try:
            ipaddress.ip_network(net, strict=False)
        except ValueError:
            raise ConfigurationError(
                "trusted_proxies", f"{net!r} is not an IP address or network"
            ) from None


def _numbers(settings: Settings) -> None:
    if not 0 < settings.port < 65536:
        raise ConfigurationError("port", "must be between 1 and 65535")
    for name in (
        "session_lifetime",
        "idle_timeout",
        "login_timeout",
        "http_timeout",
        "claims_refresh_interval",
    ):
        if getattr(settings, name) <= 0:
            raise ConfigurationError(name, "must be greater than 0")
    for name in ("refresh_margin", "clock_skew"):
        if getattr(settings, name) < 0:
            raise ConfigurationError(name, "must not be negative")
    if settings.clock_skew > 300:
        raise ConfigurationError("clock_skew", "must be at most 300 seconds")


def _cookies(settings: Settings) -> None:
    if not settings.cookie_name or not all(c.isalnum() or c in "_-." for c in settings.cookie_name):
        raise ConfigurationError("cookie_name", "may hold only letters, digits, '_', '-', '.'")
    if settings.cookie_name.startswith("_session") or settings.cookie_name.startswith("__"):
        raise ConfigurationError("cookie_name", "must not start with '_session' or '__'")
    if settings.bearer_tokens not in ("off", "on", "userinfo"):
        raise ConfigurationError("bearer_tokens", "must be off, on or userinfo")
    if settings.cookie_samesite not in ("lax", "strict"):
        raise ConfigurationError("cookie_samesite", "must be lax or strict")
    if (
        settings.cookie_secure is False
        and settings.base_url
        and settings.base_url.startswith("https:")
    ):
        raise ConfigurationError("cookie_secure", "cannot be false with an https base_url")


def _pages(settings: Settings) -> None:
    """The pages' settings; the templates compiled now (a bad one names its file)."""
    if settings.app_name is not None and not settings.app_name.strip():
        raise ConfigurationError("app_name", "is empty (leave it unset for the site's host)")
    logo = settings.logo_url
    if logo is not None and not (
        (logo.startswith("/") and not logo.startswith("//"))
        or logo.startswith(("https://", "data:image/"))
    ):
        raise ConfigurationError(
            "logo_url", "must be a path on this site (/static/logo.svg), an https or data:image URL"
        )
    value = settings.protected_cache_control
    if any(c in value for c in "\r\n\0") or not value.isascii():
        raise ConfigurationError("protected_cache_control", "must be a plain header value")
    object.__setattr__(settings, "_page_templates", load_templates(settings.templates_dir))
