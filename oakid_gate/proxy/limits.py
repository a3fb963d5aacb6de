"""The upstream connections' timeouts and pool sizes: a module of its own, so that the
``oakid-gate`` command can show their defaults without importing the proxy."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DEFAULT_LIMITS", "Limits"]


@dataclass(frozen=True, kw_only=True)
class Limits:
    """Timeouts and pool sizes towards the upstream."""

    timeout: float = 60.0  # each read and write; and a wait for a free connection
    connect_timeout: float = 10.0
    max_connections: int = 100
    # every connection may be kept: dropping some under load only to open new ones at
    # once cost the proxy and the upstream 20-30 µs of CPU each per request (measured at
    # 32 clients with 20); idle ones go after keepalive_expiry anyway
    max_keepalive: int = 100
    # below the 5 s idle limit of common upstream servers (uvicorn, node), so
    # that the proxy drops an idle connection before the upstream does
    keepalive_expiry: float = 4.0


DEFAULT_LIMITS = Limits()
