"""Trusting ``X-Forwarded-Proto`` and ``X-Forwarded-Host``, only from known proxies.

It is a security issue to trust values that came from the client: a forged
``X-Forwarded-Host`` would make the gate build its redirect URI and return
targets on another origin. So these headers are read only when the direct
peer's address is in ``trusted_proxies``, and by default nothing is trusted.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping

__all__ = ["TrustedProxies"]


class TrustedProxies:
    """The ``trusted_proxies`` setting, parsed once."""

    def __init__(self, networks: tuple[str, ...]) -> None:
        self._networks = tuple(ipaddress.ip_network(n, strict=False) for n in networks)

    def __bool__(self) -> bool:
        return bool(self._networks)

    def trusts(self, peer: str | None) -> bool:
        if not peer or not self._networks:
            return False
        try:
            address = ipaddress.ip_address(peer)
        except ValueError:
            return False
        return any(address in net for net in self._networks)

    def apply(self, peer: str | None, scheme: str, headers: dict[str, str]) -> str:
        """The request's scheme; with a trusted peer, its forwarded scheme and host.

        ``headers["host"]`` is replaced by the forwarded host when there is one.
        """
        if not self.trusts(peer):
            return scheme
        scheme, host = self.forwarded(scheme, headers)
        if host is not None:
            headers["host"] = host
        return scheme

    @staticmethod
    def forwarded(scheme: str, headers: Mapping[str, str]) -> tuple[str, str | None]:
        """The scheme and host the nearest trusted proxy reports (its last value)."""
        proto = headers.get("x-forwarded-proto", "").split(",")[-1].strip().lower()
        host = headers.get("x-forwarded-host", "").split(",")[-1].strip() or None
        return (proto if proto in ("http", "https") else scheme), host
