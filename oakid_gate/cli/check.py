"""Load the settings, fetch discovery and keys, report.

Check the settings, fetch the provider's discovery document and keys,
ping the session store, and say what is wrong.
"""

from __future__ import annotations

import argparse
import sys
import time

from ..clients import provider_client_options
from ..drivers import SyncEffects, run_sync
from ..errors import OakIDGateError
from ..gate import Gate
from ..gate.provider import ProviderState
from ..settings import Settings
from ..stores import store_for
from .options import add_settings, settings_from

__all__ = ["add_arguments", "main"]


def add_arguments(check: argparse.ArgumentParser) -> None:
    add_settings(check)


def main(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    print(f"settings: ok (issuer {settings.issuer}, client_id {settings.client_id})")
    _report_sources(settings)
    if settings.upstream_insecure_skip_verify:
        print(
            "WARNING: upstream_insecure_skip_verify is on: the upstream's certificate is "
            "not verified, so anyone on the way can read and change the traffic",
            file=sys.stderr,
        )
    store = store_for(settings)
    import httpx

    with httpx.Client(**provider_client_options(settings)) as http:
        effects = SyncEffects(http=http, store=store, timeout=settings.http_timeout)
        try:
            provider = run_sync(Gate(settings).load_provider(time.time()), effects)
        except OakIDGateError as exc:
            print(f"provider: FAILED: {exc.message}", file=sys.stderr)
            return 1
    _report_provider(settings, provider)
    try:
        store.ping()
    except OakIDGateError as exc:
        print(f"session store: FAILED: {exc.message}", file=sys.stderr)
        return 1
    print(f"session store: ok ({settings.session_store.split('://')[0]})")
    return 0


def _report_sources(settings: Settings) -> None:
    """Each setting that is not a default, and where it came from; secrets hidden."""
    for name, value in settings.describe().items():
        source = settings.source(name)
        if source != "default":
            shown = "(hidden)" if name in ("client_secret", "secret") else value
            print(f"  {name} = {shown}  [{_SOURCE_NAMES[source]}]")


#: how check names each source (the commands' arguments are their flags)
_SOURCE_NAMES = {"argument": "flag", "environment": "environment", "config file": "config file"}


def _report_provider(settings: Settings, provider: ProviderState) -> None:
    meta = provider.metadata
    method = meta.auth_method(settings.token_endpoint_auth_method)
    keys = len(provider.jwks.keys) if provider.jwks is not None else 0
    print(f"provider: ok ({meta.kind} metadata from {meta.issuer})")
    print(f"  authorization: {meta.authorization_endpoint}")
    print(f"  token:         {meta.token_endpoint} ({method})")
    print(f"  userinfo:      {meta.userinfo_endpoint or '-'}")
    print(f"  revocation:    {meta.revocation_endpoint or '-'}")
    print(f"  ID token algs: {', '.join(meta.id_token_algs) or '-'}")
    print(f"  keys:          {keys} signing key(s)")
    base = (settings.base_url or "<base_url>").rstrip("/") + settings.prefix
    print("register at the provider:")
    print(f"  redirect URI:               {base}/callback")
    print(f"  post-logout redirect URI:   {base}/signed_out")
    print(f"  back-channel logout URI:    {base}/backchannel_logout")
