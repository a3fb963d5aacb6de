"""The settings themselves: one frozen dataclass, a field per setting."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from ..errors import ConfigurationError
from ..templates import Templates, load_templates
from .checks import check
from .sources import FILE_SETTINGS, pick, read_config_file
from .values import Secret, convert

__all__ = ["DEFAULT_ISSUER", "Settings", "setting_fields"]

DEFAULT_ISSUER = "https://id.oakwall.mom"


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
    root_path: str = field(
        default="",
        metadata=_doc(
            "the mount prefix the app is served under (SCRIPT_NAME / ASGI root_path); "
            "a request under any other is never public"
        ),
    )
    session_store: str = field(
        default="memory://",
        metadata=_doc(
            "memory://, sqlite:///relative.db, sqlite:////absolute.db, "
            "redis://host:port/db or rediss://host:port/db"
        ),
    )
    public_paths: tuple[str, ...] = field(
        default=(),
        metadata=_doc(
            "paths served without login: /health, /static/*, ^/hooks/[a-z]+$, GET,HEAD /api/status"
        ),
    )
    skip_preflight: bool = field(
        default=False,
        metadata=_doc("let CORS preflights (OPTIONS with Origin) through without login"),
    )
    allowed_emails: tuple[str, ...] = field(
        default=(), metadata=_doc("only these (verified) emails may pass")
    )
    allowed_domains: tuple[str, ...] = field(
        default=(), metadata=_doc("only emails of these domains may pass")
    )
    allowed_groups: tuple[str, ...] = field(
        default=(), metadata=_doc("only members of one of these groups may pass")
    )
    groups_claim: str = field(
        default="groups", metadata=_doc("the claim holding the user's groups (a list or a string)")
    )
    required_claims: tuple[str, ...] = field(
        default=(), metadata=_doc("claim=value entries that must all hold: department=eng")
    )
    authorize: Callable[[Any], bool] | None = field(
        default=None,
        metadata=_doc("your own rule: a callable user -> bool, or its import path module:function"),
    )
    bearer_tokens: Literal["off", "on", "userinfo"] = field(
        default="on",
        metadata=_doc(
            "Authorization: Bearer tokens: on (introspection or JWT access tokens), "
            "userinfo (also tokens only userinfo vouches for), or off"
        ),
    )
    bearer_audiences: tuple[str, ...] = field(
        default=(), metadata=_doc("audiences besides client_id a bearer token may be issued for")
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
    ca_file: str | None = field(
        default=None,
        metadata=_doc("PEM file of CA certificates trusted for the provider, besides the system's"),
    )
    trust_env: bool = field(
        default=False,
        metadata=_doc("reach the provider through HTTPS_PROXY / HTTP_PROXY, as NO_PROXY allows"),
    )
    upstream_ca_file: str | None = field(
        default=None,
        metadata=_doc("proxy mode: PEM file of CA certificates trusted for an https upstream"),
    )
    upstream_insecure_skip_verify: bool = field(
        default=False,
        metadata=_doc("proxy mode: do not verify the upstream's certificate (check warns)"),
    )
    provider_logout: bool = field(
        default=True,
        metadata=_doc(
            "sign-out also ends the session at the provider when it offers RP-initiated "
            "logout (register {base_url}{prefix}/signed_out as a post-logout redirect URI)"
        ),
    )
    metrics_address: str | None = field(
        default=None,
        metadata=_doc(
            "host:port where the commands serve Prometheus metrics, apart from the public "
            "listener (pip install 'oakid-gate[metrics]')"
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

    app_name: str | None = field(
        default=None, metadata=_doc("the site's name on the gate's pages (default: its host)")
    )
    logo_url: str | None = field(
        default=None,
        metadata=_doc("a logo on the gate's pages: a path on this site, an https or data: URL"),
    )
    templates_dir: str | None = field(
        default=None,
        metadata=_doc(
            "a folder of Jinja2 templates that replace the built-in pages file by file "
            "(README, Branding the pages)"
        ),
    )
    protected_cache_control: str = field(
        default="no-store",
        metadata=_doc(
            "Cache-Control added to a browser's protected responses that set none, so "
            "that the back button shows nothing after sign-out (a browser: Sec-Fetch-Mode "
            "or a Mozilla/ User-Agent; empty: add none)"
        ),
    )

    # ---------------------------------------------------------------- loading

    @classmethod
    def load(cls, env: Mapping[str, str] | None = None, **kwargs: Any) -> Settings:
        """Keyword arguments over ``OAKID_*`` variables over the config file (``config``)
        over defaults, converted and checked (:mod:`oakid_gate.settings.sources`)."""
        env = os.environ if env is None else env
        known = {f.name: f for f in dataclasses.fields(cls)}
        extra = {"config", *FILE_SETTINGS.values()}
        unknown = sorted(set(kwargs) - set(known) - extra)
        if unknown:
            raise ConfigurationError(unknown[0], "unknown setting")
        environment = {
            name: env[f"OAKID_{name.upper()}"]
            for name in (*known, *extra)
            if env.get(f"OAKID_{name.upper()}", "") != ""
        }
        config = kwargs.get("config") or environment.get("config")  # "" is no file
        in_file = (
            read_config_file(str(config), frozenset(known) | frozenset(FILE_SETTINGS.values()))
            if config
            else {}
        )
        values: dict[str, Any] = {}
        sources: dict[str, str] = {}
        for name, f in known.items():
            picked = pick(name, (kwargs, environment, in_file))
            if picked is None:
                if f.metadata.get("required"):
                    raise ConfigurationError(name, _required(name))
                sources[name] = "default"
                continue
            values[name] = convert(name, f.type, picked[0])
            sources[name] = picked[1]
        settings = cls(**values)
        object.__setattr__(settings, "_sources", sources)
        settings._check()
        return settings

    def source(self, name: str) -> str:
        """Where setting ``name`` came from: argument, environment, config file or default."""
        sources: dict[str, str] = getattr(self, "_sources", {})
        return sources.get(name, "default")

    def _check(self) -> None:
        check(self)

    # ---------------------------------------------------------------- derived

    @property
    def redirect_path(self) -> str:
        return self.prefix + "/callback"

    @property
    def page_templates(self) -> Templates:
        """The gate's page templates, compiled when the settings were checked."""
        templates: Templates | None = getattr(self, "_page_templates", None)
        if templates is None:  # settings not made by load() (dataclasses.replace)
            templates = load_templates(self.templates_dir)
            object.__setattr__(self, "_page_templates", templates)
        return templates

    def describe(self) -> dict[str, str]:
        """The settings for display, secrets hidden."""
        out: dict[str, str] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            out[f.name] = repr(value) if not isinstance(value, str) else value
        return out


def _required(name: str) -> str:
    where = f"keyword argument, --{name.replace('_', '-')}, OAKID_{name.upper()} or the config file"
    if name in FILE_SETTINGS:
        where += f" (or {FILE_SETTINGS[name]})"
    return f"is required ({where})"


def setting_fields() -> list[dataclasses.Field[Any]]:
    """The fields of :class:`Settings`, for the CLI and the docs."""
    return list(dataclasses.fields(Settings))
