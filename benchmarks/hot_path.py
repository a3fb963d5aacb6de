"""The signed-in hot path, measured in process against baselines from the same run.

Calls each ASGI app directly (no server, no sockets) many times with the same
signed-in request and prints the time each middleware adds per request over the
bare app, and the ratio to a floor (a middleware that only parses the cookie
header into a dict) and to Starlette's ``SessionMiddleware``.

    python benchmarks/hot_path.py [--requests 20000] [--rounds 5]

Nothing here is asserted: speed is reported, not tested.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import tempfile
import time
from typing import Any

from apps import SEEDED_SID, seed
from starlette.applications import Starlette
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import cookie_parser
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from oakid_gate import OakIDMiddleware


async def hello(request: Any) -> PlainTextResponse:
    return PlainTextResponse("hello")


def bare_app() -> Starlette:
    return Starlette(routes=[Route("/", hello)])


class CookieFloor:
    """The least a cookie session can cost: parse the header into a dict."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        for name, value in scope["headers"]:
            if name == b"cookie":
                scope["cookies"] = cookie_parser(value.decode("latin-1"))
        await self.app(scope, receive, send)


def scope_with(cookie: str) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/",
        "raw_path": b"/",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"127.0.0.1:8000"),
            (b"user-agent", b"Mozilla/5.0 (X11; Linux x86_64) Chrome/156.0"),
            (b"accept", b"text/html,application/xhtml+xml,*/*;q=0.8"),
            (b"accept-language", b"en-GB,en;q=0.9"),
            (b"accept-encoding", b"gzip, deflate, br"),
            (b"cookie", cookie.encode()),
            (b"sec-fetch-mode", b"navigate"),
            (b"sec-fetch-site", b"none"),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }


async def receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


async def measure(app: ASGIApp, cookie: str, n: int) -> float:
    """Seconds per request over ``n`` requests."""
    statuses: list[int] = []

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    start = time.perf_counter()
    for _ in range(n):
        await app(scope_with(cookie), receive, send)
    elapsed = time.perf_counter() - start
    assert set(statuses) == {200}, f"unexpected statuses {set(statuses)}"
    return elapsed / n


def gated_app(session_store: str = "memory://") -> tuple[OakIDMiddleware, str]:
    gate = OakIDMiddleware(
        bare_app(),
        client_id="oak_bench",
        client_secret="bench-secret",
        secret="b" * 32,
        issuer="http://127.0.0.1:9",
        session_store=session_store,
    )
    seed(gate)
    return gate, f"oakid_session={SEEDED_SID}; theme=dark; _ga=GA1.2.3"


async def session_middleware_cookie(app: SessionMiddleware) -> str:
    """A signed cookie of Starlette's SessionMiddleware holding a small session."""
    cookie = ""

    async def set_session(scope: Scope, receive: Receive, send: Send) -> None:
        scope["session"]["user"] = {"sub": "u1", "email": "u1@example.test"}
        await PlainTextResponse("ok")(scope, receive, send)

    maker = SessionMiddleware(set_session, secret_key="b" * 32)

    async def send(message: dict[str, Any]) -> None:
        nonlocal cookie
        for k, v in message.get("headers", []):
            if k == b"set-cookie":
                cookie = v.decode().split(";")[0]

    await maker(scope_with(""), receive, send)
    return cookie + "; theme=dark; _ga=GA1.2.3"


async def main(n: int, rounds: int) -> None:
    gate, gate_cookie = gated_app()
    workdir = tempfile.mkdtemp(prefix="oakid-bench-")
    sqlite_gate, sqlite_cookie = gated_app(f"sqlite:///{workdir}/sessions.db")
    starlette_sessions = SessionMiddleware(bare_app(), secret_key="b" * 32)
    session_cookie = await session_middleware_cookie(starlette_sessions)
    plain_cookie = "theme=dark; _ga=GA1.2.3"
    cases: list[tuple[str, ASGIApp, str]] = [
        ("bare app", bare_app(), plain_cookie),
        ("floor: cookie-to-dict", CookieFloor(bare_app()), gate_cookie),
        ("starlette SessionMiddleware", starlette_sessions, session_cookie),
        ("oakid-gate (memory store)", gate, gate_cookie),
        ("oakid-gate (sqlite store)", sqlite_gate, sqlite_cookie),
    ]
    for _, app, cookie in cases:  # warm up
        await measure(app, cookie, 500)
    results: dict[str, list[float]] = {name: [] for name, _, _ in cases}
    for _ in range(rounds):  # interleave, so drift hits every case alike
        for name, app, cookie in cases:
            results[name].append(await measure(app, cookie, n))
    best = {name: min(times) for name, times in results.items()}
    base = best["bare app"]
    added = {name: t - base for name, t in best.items()}
    print(f"{n} requests x {rounds} rounds, best round, in process (µs per request)")
    print(f"{'case':32} {'total':>9} {'added':>9} {'spread':>8}")
    for name, times in results.items():
        spread = statistics.pstdev(times) * 1e6
        print(f"{name:32} {best[name] * 1e6:9.2f} {added[name] * 1e6:9.2f} {spread:8.2f}")
    floor = max(added["floor: cookie-to-dict"], 1e-9)
    gate_added = added["oakid-gate (memory store)"]
    print()
    print(
        f"oakid-gate total / bare app:              {best['oakid-gate (memory store)'] / base:6.2f}x"
    )
    print(f"oakid-gate added / floor added:           {gate_added / floor:6.2f}x")
    print(
        f"oakid-gate added / SessionMiddleware added: {gate_added / added['starlette SessionMiddleware']:6.2f}x"
    )
    sqlite_added = added["oakid-gate (sqlite store)"]
    print(f"sqlite store added / memory store added:  {sqlite_added / gate_added:6.2f}x")
    await gate.aclose()
    await sqlite_gate.aclose()
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(main(args.requests, args.rounds))
