"""The ``oakid-gate`` command.

::

    oakid-gate run module:app     serve a Python web app behind the gate
    oakid-gate proxy --upstream URL   a reverse proxy to any HTTP service, behind the gate
    oakid-gate dev-idp            a local OakID-compatible provider
    oakid-gate demo               the dev-idp plus a protected example app
    oakid-gate check              load the settings, fetch discovery and keys, report

Every setting is a flag (``--client-id``) and an environment variable
(``OAKID_CLIENT_ID``); flags win. Prefer the environment for secrets: flags
show in the process list.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import os
import secrets
import sys
import time
from collections.abc import Sequence
from typing import Any

import httpx

from .errors import ConfigurationError, OakIDGateError
from .settings import Settings, setting_fields

__all__ = ["main"]

log = logging.getLogger("oakid_gate")


def _add_settings(parser: argparse.ArgumentParser, *, skip: frozenset[str] = frozenset()) -> None:
    group = parser.add_argument_group("settings (also OAKID_<NAME> environment variables)")
    for f in setting_fields():
        if f.name in skip:
            continue
        flag = "--" + f.name.replace("_", "-")
        doc = f.metadata.get("doc", "")
        type_ = str(f.type)
        if type_.startswith("bool"):
            group.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, help=doc)
        elif type_.startswith("tuple"):
            group.add_argument(
                flag, dest=f.name, action="append", metavar="VALUE", help=doc + " (repeatable)"
            )
        else:
            group.add_argument(flag, dest=f.name, metavar="VALUE", help=doc)


def _settings_from(args: argparse.Namespace, **overrides: Any) -> Settings:
    names = {f.name for f in setting_fields()}
    kwargs = {k: v for k, v in vars(args).items() if k in names and v is not None}
    kwargs.update(overrides)
    return Settings.load(**kwargs)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="oakid-gate", description="OpenID Connect login in front of any web app."
    )
    parser.add_argument("--log-level", default=os.environ.get("OAKID_LOG_LEVEL", "info"))
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser(
        "run",
        help="serve a Python web app (ASGI or WSGI, detected) behind the gate",
        description="Serve module:attribute behind the gate: ASGI apps on uvicorn, "
        "WSGI apps on gunicorn (threaded workers). See oakid_gate.serve.",
    )
    run.add_argument("app", help="the app to serve, as module:attribute")
    run.add_argument(
        "--workers",
        type=int,
        default=1,
        help="worker processes (default 1); above 1 needs a shared session_store",
    )
    run.add_argument(
        "--threads", type=int, default=8, help="WSGI: threads per worker process (default 8)"
    )
    run.add_argument(
        "--interface",
        choices=("auto", "asgi", "wsgi"),
        default="auto",
        help="what the app speaks (default: detected)",
    )
    _add_settings(run)

    idp = sub.add_parser("dev-idp", help="a local OakID-compatible provider for development")
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

    demo = sub.add_parser("demo", help="the dev-idp and a protected example app")
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", help="default: OAKID_PORT or 8000")
    demo.add_argument("--idp-port", help="default: OAKID_IDP_PORT or 9000")

    from .proxy import add_proxy_command

    add_proxy_command(sub)

    check = sub.add_parser("check", help="load the settings, fetch discovery and keys, report")
    _add_settings(check)
    return parser


def _int_option(name: str, value: str | None, *, env_default: int) -> int:
    """A whole-number option, from the flag, else ``OAKID_<NAME>``, else the default."""
    raw = value if value is not None else os.environ.get(f"OAKID_{name.upper()}", str(env_default))
    try:
        number = int(raw)
    except ValueError:
        raise ConfigurationError(name, f"cannot read {raw!r} as a whole number") from None
    if name.endswith("port") and not 0 < number < 65536:
        raise ConfigurationError(name, "must be between 1 and 65535")
    return number


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        if args.command == "run":
            return _run(args)
        if args.command == "dev-idp":
            return _dev_idp(args)
        if args.command == "demo":
            return _demo(args)
        if args.command == "proxy":
            from .proxy import run_proxy

            return run_proxy(args)
        if args.command == "check":
            return _check(args)
    except ConfigurationError as exc:
        print(f"oakid-gate: configuration error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 2  # pragma: no cover - argparse requires a command


# ---------------------------------------------------------------- run


def load_app(target: str) -> Any:
    """Import ``module:attribute`` (the current directory is importable)."""
    module_name, _, attr = target.partition(":")
    if not module_name or not attr:
        raise ConfigurationError("app", f"{target!r} is not of the form module:attribute")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigurationError("app", f"cannot import {module_name!r}: {exc}") from None
    app = module
    for part in attr.split("."):
        try:
            app = getattr(app, part)
        except AttributeError:
            raise ConfigurationError("app", f"{module_name!r} has no attribute {attr!r}") from None
    return app


def _run(args: argparse.Namespace) -> int:
    from .serve import run_app

    settings = _settings_from(args)
    run_app(
        args.app,
        settings,
        workers=args.workers,
        threads=args.threads,
        interface=None if args.interface == "auto" else args.interface,
        log_level=args.log_level.lower(),
    )
    return 0


def _serve(apps: list[tuple[Any, str, int]]) -> None:
    import uvicorn

    from .logs import uvicorn_log_config

    servers = [
        uvicorn.Server(
            uvicorn.Config(
                app,
                host=host,
                port=port,
                proxy_headers=False,  # the gate's own trusted_proxies decides
                server_header=False,
                log_level="info",
                log_config=uvicorn_log_config(),
                lifespan="auto",
            )
        )
        for app, host, port in apps
    ]

    async def serve_all() -> None:
        await asyncio.gather(*(s.serve() for s in servers))

    asyncio.run(serve_all())


# ---------------------------------------------------------------- dev-idp


def _dev_idp(args: argparse.Namespace) -> int:
    from .devidp import DEMO_USERS, DevClient, DevIdPConfig, create_app

    port = _int_option("port", args.port, env_default=9000)
    ttl = _int_option("access_token_ttl", args.access_token_ttl, env_default=3600)
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
    _serve([(create_app(config), args.host, port)])
    return 0


# ---------------------------------------------------------------- demo


def _demo(args: argparse.Namespace) -> int:
    from .asgi import OakIDMiddleware
    from .demo import demo_app
    from .devidp import DEMO_USERS, DevClient, DevIdPConfig, create_app

    port = _int_option("port", args.port, env_default=8000)
    idp_port = _int_option("idp_port", args.idp_port, env_default=9000)
    issuer = f"http://{args.host}:{idp_port}"
    client_id, client_secret = "oak_demo", secrets.token_urlsafe(32)
    idp = create_app(DevIdPConfig(issuer=issuer, clients=(DevClient(client_id, client_secret),)))
    settings = Settings.load(
        issuer=issuer,
        client_id=client_id,
        client_secret=client_secret,
        secret=secrets.token_urlsafe(32),
        host=args.host,
        port=port,
        public_paths=["/public"],
    )
    url = f"http://{args.host}:{port}/"
    print("oakid-gate demo")
    print(f"  open:     {url}")
    print(f"  provider: {issuer} (the dev-idp)")
    print("  users:    " + ", ".join(f"{u.username} / {u.password}" for u in DEMO_USERS))
    print("  stop:     Ctrl-C")
    sys.stdout.flush()
    _serve(
        [
            (idp, args.host, idp_port),
            (OakIDMiddleware(demo_app(), settings), args.host, port),
        ]
    )
    return 0


# ---------------------------------------------------------------- check


def _check(args: argparse.Namespace) -> int:
    from .effects import provider_client_options, run_sync
    from .gate import Gate
    from .stores import store_for

    settings = _settings_from(args)
    print(f"settings: ok (issuer {settings.issuer}, client_id {settings.client_id})")
    store = store_for(settings)
    gate = Gate(settings)
    with httpx.Client(**provider_client_options(settings)) as http:
        try:
            provider = run_sync(
                gate.load_provider(time.time()),
                http=http,
                store=store,
                timeout=settings.http_timeout,
            )
        except OakIDGateError as exc:
            print(f"provider: FAILED: {exc.message}", file=sys.stderr)
            return 1
    meta = provider.metadata
    print(f"provider: ok ({meta.kind} metadata from {meta.issuer})")
    print(f"  authorization: {meta.authorization_endpoint}")
    print(
        f"  token:         {meta.token_endpoint} ({meta.auth_method(settings.token_endpoint_auth_method)})"
    )
    print(f"  userinfo:      {meta.userinfo_endpoint or '-'}")
    print(f"  revocation:    {meta.revocation_endpoint or '-'}")
    print(f"  ID token algs: {', '.join(meta.id_token_algs) or '-'}")
    keys = len(provider.jwks.keys) if provider.jwks is not None else 0
    print(f"  keys:          {keys} signing key(s)")
    try:
        store.ping()
    except OakIDGateError as exc:
        print(f"session store: FAILED: {exc.message}", file=sys.stderr)
        return 1
    print(f"session store: ok ({settings.session_store.split('://')[0]})")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
