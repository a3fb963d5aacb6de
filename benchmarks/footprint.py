"""Memory per session in the memory store, measured with N sessions, in a process of its own.

Run by ``bench.py`` as ``python benchmarks/footprint.py --sessions N --port P``
with the gate's settings in ``OAKID_*`` variables, for a client of the
provider whose redirect URI is ``http://127.0.0.1:P/oauth2/callback``.

One real sign-in (node oidc-provider, the scripted browser) goes through
``OakIDMiddleware`` in this process (over ``httpx.ASGITransport``: nothing
listens on P), so the stored session is the real thing: its claims from the
ID token and userinfo, its tokens. The store is then filled to N sessions
with copies of it, each with claims of its own (parsed from JSON, as each
sign-in parses its own) and random tokens and keys of the same sizes, and the growth of the resident set is divided by the
sessions added. Prints one line, ``FOOTPRINT {json}``.

Filling the store needs three names from inside the package (the memory
store's ``get_session``/``put_session``, ``Parts.session_key``): if those change, this
prints an ``error`` saying so rather than a wrong figure.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import gc
import json
import os
import random
import string
import sys
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(1, str(Path(__file__).resolve().parent.parent / "tests"))

from apps import BODY, hello_app
from peers.oidc_provider import async_sign_in

from oakid_gate import OakIDMiddleware

_ALPHABET = string.ascii_letters + string.digits + "-_"
_PAGE = os.sysconf("SC_PAGE_SIZE")


def rss() -> int:
    """This process's resident set, in bytes."""
    return int(Path("/proc/self/statm").read_text().split()[1]) * _PAGE


def like(value: str | None, rng: random.Random) -> str | None:
    """A random string as long as ``value`` (a token of the same size)."""
    return None if value is None else "".join(rng.choices(_ALPHABET, k=len(value)))


async def real_session(app: OakIDMiddleware, origin: str) -> tuple[Any, str]:
    """Sign in through ``app`` for real; the stored session and its cookie value."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(mounts={origin: transport}, timeout=30, trust_env=False) as http:
        landing = await async_sign_in(http, f"{origin}/oauth2/start?rd=/", login="alice")
        if landing.status_code != 200 or landing.content != BODY:
            raise RuntimeError(f"sign-in ended at {landing.status_code}: {landing.text[:200]!r}")
        sid = next((c.value for c in http.cookies.jar if c.name == "oakid_session"), None)
    if not sid:
        raise RuntimeError("no oakid_session cookie after signing in")
    session = app.store.get_session(app.gate.parts.session_key(sid))
    if session is None:
        raise RuntimeError("the signed-in session is not in the store under its session key")
    return session, sid


def fill(app: OakIDMiddleware, session: Any, sid: str, count: int) -> None:
    """Put ``count`` copies of ``session`` in the store, each with its own claims,
    tokens and key."""
    rng = random.Random(8)
    now = time.time()
    claims_json = json.dumps(dict(session.claims))
    for _ in range(count):
        clone = dataclasses.replace(
            session,
            claims=json.loads(claims_json),  # new objects, as each sign-in parses its own
            access_token=like(session.access_token, rng),
            refresh_token=like(session.refresh_token, rng),
            created_at=now,
            last_seen=now,
        )
        app.store.put_session(app.gate.parts.session_key(like(sid, rng) or ""), clone, 3600)


async def measure(sessions: int, port: int) -> dict[str, Any]:
    app = OakIDMiddleware(hello_app(), session_store="memory://")
    try:
        session, sid = await real_session(app, f"http://127.0.0.1:{port}")
        gc.collect()
        before = rss()
        fill(app, session, sid, sessions - 1)
        gc.collect()
        grown = rss() - before
        return {
            "sessions": sessions,
            "rss_growth_bytes": grown,
            "bytes_per_session": grown / (sessions - 1),
            "claims": sorted(session.claims),
            "claims_json_bytes": len(json.dumps(dict(session.claims))),
        }
    finally:
        await app.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=100_000)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    try:
        result = asyncio.run(measure(args.sessions, args.port))
    except Exception as exc:
        result = {"error": f"{type(exc).__name__}: {exc}"}
    print("FOOTPRINT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
