"""Serve a Python web app (ASGI or WSGI, detected) behind the gate.

Serve module:attribute behind the gate: ASGI apps on uvicorn, WSGI apps on
gunicorn (threaded workers). See oakid_gate.serve.
"""

from __future__ import annotations

import argparse

from ..errors import ConfigurationError
from ..serve import run_app
from .options import add_serving, add_settings, env_default, settings_from, start_metrics

__all__ = ["add_arguments", "main"]


def add_arguments(run: argparse.ArgumentParser) -> None:
    run.add_argument("app", help="the app to serve, as module:attribute")
    run.add_argument(
        "--workers",
        type=int,
        default=env_default("workers", 1),
        help="worker processes (default 1, or OAKID_WORKERS); above 1 needs a shared session_store",
    )
    run.add_argument(
        "--threads",
        type=int,
        default=env_default("threads", 8),
        help="WSGI: threads per worker process (default 8, or OAKID_THREADS)",
    )
    run.add_argument(
        "--interface",
        choices=("auto", "asgi", "wsgi"),
        default=env_default("interface", "auto"),
        help="what the app speaks (default: detected, or OAKID_INTERFACE)",
    )
    add_serving(run)
    add_settings(run)


def main(args: argparse.Namespace) -> int:
    if args.interface not in ("auto", "asgi", "wsgi"):
        raise ConfigurationError("interface", "must be auto, asgi or wsgi")
    settings = settings_from(args)
    start_metrics(settings)
    run_app(
        args.app,
        settings,
        workers=args.workers,
        threads=args.threads,
        interface=None if args.interface == "auto" else args.interface,
        log_level=args.log_level.lower(),
        access_log=args.access_log,
    )
    return 0
