"""How the gate's HTTP clients towards the provider (and the proxy's towards its
upstream) are built: timeouts, redirects, TLS trust and outbound proxies."""

from __future__ import annotations

import ssl
from typing import Any

from .settings import Settings

__all__ = ["provider_client_options", "tls_context"]


def provider_client_options(settings: Settings) -> dict[str, Any]:
    """How every ``httpx`` client towards the provider is built: the gate's own
    timeout, no redirects followed; certificates checked against the system's trust
    store (which honours ``SSL_CERT_FILE`` / ``SSL_CERT_DIR``) plus ``ca_file``; an
    outbound proxy (``HTTPS_PROXY``, ``NO_PROXY``) only with ``trust_env``."""
    return {
        "timeout": settings.http_timeout,
        "follow_redirects": False,
        "trust_env": settings.trust_env,
        "verify": tls_context(settings.ca_file),
    }


_TLS: dict[str | None, ssl.SSLContext] = {}


def tls_context(ca_file: str | None, *, insecure: bool = False) -> ssl.SSLContext:
    """A client TLS context: the system's trust store and ``ca_file`` (PEM), host names
    and certificates verified unless ``insecure``. Made once per file (a context is a
    few milliseconds of work, and read-only once made)."""
    key = None if ca_file is None and not insecure else f"{ca_file}|{insecure}"
    context = _TLS.get(key)
    if context is None:
        context = ssl.create_default_context()
        if ca_file is not None:
            context.load_verify_locations(cafile=ca_file)
        if insecure:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        _TLS[key] = context
    return context
