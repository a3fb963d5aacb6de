"""A local OakID-compatible provider for development.

Serve a provider that behaves as the OakID documentation says, on this
machine, with demo users alice, bob and carol.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys

from ..errors import ConfigurationError
from .options import add_serving, int_option

__all__ = ["add_arguments", "main"]


def add_arguments(idp: argparse.ArgumentParser) -> None:
    add_serving(idp)
    idp.add_argument("--host", default=os.environ.get("OAKID_HOST", "127.0.0.1"))
    idp.add_argument("--port", help="default: OAKID_PORT or 9000")
    idp.add_argument("--issuer", help="default: http://HOST:PORT")
    idp.add_argument("--client-id", default=os.environ.get("OAKID_CLIENT_ID", "oak_demo"))
    idp.add_argument("--client-secret", default=os.environ.get("OAKID_CLIENT_SECRET"))
    idp.add_argument(
        "--redirect-uri",
        action="append",
        default=[],
        help="registered redirect URI (repeatable; default: any loopback http URI)",
    )
    idp.add_argument("--access-token-ttl", help="default: OAKID_ACCESS_TOKEN_TTL or 3600")
    idp.add_argument("--log-file", help="append a JSON line per event (no token values)")


def main(args: argparse.Namespace) -> int:
    # The dev IdP loads for this command only (start-up of the others).
    from ..devidp import DEMO_USERS, DevClient, DevIdPConfig, create_app
    from ..serve import serve_asgi

    port = int_option("port", args.port, env_default=9000)
    ttl = int_option("access_token_ttl", args.access_token_ttl, env_default=3600)
    issuer = args.issuer or f"http://{args.host}:{port}"
    secret = args.client_secret or secrets.token_urlsafe(32)
    try:
        config = DevIdPConfig(
            issuer=issuer,
            clients=(DevClient(args.client_id, secret, tuple(args.redirect_uri)),),
            access_token_ttl=ttl,
            log_path=args.log_file,
        )
    except ValueError as exc:
        raise ConfigurationError("dev-idp", str(exc)) from None
    print(f"dev-idp issuer: {issuer}")
    print(f"client_id: {args.client_id}")
    if not args.client_secret:
        print(f"client_secret: {secret}  (generated; pass --client-secret to fix it)")
    print("users: " + ", ".join(f"{u.username}/{u.password}" for u in DEMO_USERS))
    sys.stdout.flush()
    serve_asgi(
        [(create_app(config), args.host, port)],
        log_level=args.log_level.lower(),
        access_log=args.access_log,
    )
    return 0
