"""A reverse proxy to any HTTP service, behind the gate.

Forward every signed-in request to --upstream, with the user in
X-Forwarded-User, -Email, -Preferred-Username and -Groups.
"""

from __future__ import annotations

import argparse
import logging

from ..asgi import OakIDMiddleware
from ..errors import ConfigurationError
from ..proxy.limits import DEFAULT_LIMITS, Limits
from ..serve import serve_asgi
from .options import add_serving, add_settings, env_default, settings_from, start_metrics

__all__ = ["add_arguments", "main"]


log = logging.getLogger("oakid_gate")

#: the upstream connection flags: (Limits attribute, type, metavar, help)
_TUNING: tuple[tuple[str, type[float] | type[int], str, str], ...] = (
    ("timeout", float, "SECONDS", "read and write timeout towards the upstream"),
    ("connect_timeout", float, "SECONDS", "connect timeout"),
    ("max_connections", int, "N", "connections open at once"),
    ("max_keepalive", int, "N", "idle connections kept for reuse"),
    ("keepalive_expiry", float, "SECONDS", "how long an idle connection is kept"),
)


def add_arguments(proxy: argparse.ArgumentParser) -> None:
    add_serving(proxy)
    add_settings(proxy)
    tuning = proxy.add_argument_group("upstream connections")
    for name, kind, metavar, text in _TUNING:
        default = getattr(DEFAULT_LIMITS, name)
        tuning.add_argument(
            "--upstream-" + name.replace("_", "-"),
            dest="upstream_" + name,
            type=kind,
            default=env_default("upstream_" + name, default),
            metavar=metavar,
            help=f"{text} (default {default:g}, or OAKID_UPSTREAM_{name.upper()})",
        )


def main(args: argparse.Namespace) -> int:
    """Serve :class:`~oakid_gate.proxy.ProxyApp` behind the gate on ``host``:``port``."""
    settings = settings_from(args)
    start_metrics(settings)
    values = {name: getattr(args, "upstream_" + name) for name, *_ in _TUNING}
    for name, kind, *_ in _TUNING:
        if kind is float and values[name] <= 0:
            raise ConfigurationError("upstream_" + name, "must be greater than 0")
        if kind is int and values[name] < 1:
            raise ConfigurationError("upstream_" + name, "must be at least 1")
    from ..proxy.app import ProxyApp  # here: `oakid-gate run` does not import the proxy

    proxy = ProxyApp(settings, limits=Limits(**values))
    log.info(
        "oakid-gate proxy: http://%s:%s -> %s", settings.host, settings.port, settings.upstream
    )
    serve_asgi(
        [(OakIDMiddleware(proxy, settings), settings.host, settings.port)],
        log_level=args.log_level.lower(),
        access_log=args.access_log,
        batch_writes=True,
    )
    return 0
