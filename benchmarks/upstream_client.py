"""The proxy's upstream client alone: CPU per request, against the hello app under uvicorn.

How the proxy's HTTP client was chosen (``oakid_gate/proxy/connection.py``).
The hello backend runs under uvicorn (uvloop, httptools) on the second core;
this process, on the first, sends requests on a uvloop loop, ``--concurrency``
at a time, and reports its own CPU time per request (``getrusage``), which is
steadier than requests per second on a busy machine. Variants, alternated in
each round:

``httpx``
    ``httpx.AsyncClient.send(stream=True)``, the body read raw: what the
    proxy's relay did before.
``pool``
    the proxy's :class:`~oakid_gate.proxy.pool.Pool` and connection, a request
    written by hand: the client's floor.
``relay``
    the proxy's :class:`~oakid_gate.proxy.relay.HTTPRelay` as ``ProxyApp``
    calls it, with the header rules, against a stand-in for the ASGI server.

    python benchmarks/upstream_client.py [--requests 20000] [--rounds 3]

Nothing is asserted: speed is reported, not tested.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import statistics
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import uvloop

sys.path.insert(1, str(Path(__file__).resolve().parent.parent / "tests"))

from apps import BODY
from peers.ports import free_port, wait_for_port

from oakid_gate.proxy.limits import Limits
from oakid_gate.proxy.pool import Origin, Pool
from oakid_gate.proxy.relay import HTTPRelay
from oakid_gate.proxy.upstream import Upstream
from oakid_gate.settings import Settings

BENCH_DIR = Path(__file__).resolve().parent
Call = Callable[[], Awaitable[None]]
#: what wrk sends, and a session cookie
HEADERS = [
    (b"host", b"127.0.0.1:8080"),
    (b"user-agent", b"wrk"),
    (b"accept", b"*/*"),
    (b"cookie", b"oakid_session=" + b"a" * 43),
]


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def httpx_call(url: str) -> Call:
    client = httpx.AsyncClient(trust_env=False)

    async def call() -> None:
        request = httpx.Request("GET", url + "/", headers=[(b"accept", b"*/*")])
        response = await client.send(request, stream=True)
        body = b"".join([chunk async for chunk in response.aiter_raw()])
        await response.aclose()
        assert (response.status_code, body) == (200, BODY)

    return call


def pool_call(url: str) -> Call:
    pool = Pool(Origin(url, None), Limits())
    head = b"GET / HTTP/1.1\r\nhost: 127.0.0.1\r\naccept: */*\r\n\r\n"

    async def call() -> None:
        conn = await pool.acquire()
        conn.start(head, head_request=False)
        while not conn.complete:
            await conn.wait()
        body = conn.take()
        pool.release(conn)
        assert (conn.status, body) == (200, BODY)

    return call


def relay_call(url: str) -> Call:
    settings = Settings.load(
        env={}, client_id="c", client_secret="x", secret="s" * 32, upstream=url
    )
    relay = HTTPRelay(Upstream(settings), Limits())
    never = asyncio.Event()
    scope = {
        "type": "http",
        "method": "GET",
        "scheme": "http",
        "path": "/",
        "raw_path": b"/",
        "query_string": b"",
        "headers": HEADERS,
        "client": ("127.0.0.1", 5555),
    }

    async def receive() -> dict[str, Any]:
        await never.wait()
        return {"type": "http.disconnect"}

    async def call() -> None:
        sent: list[dict[str, Any]] = []

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        await relay(dict(scope), receive, send)
        assert (sent[0]["status"], sent[-1]["body"]) == (200, BODY)

    return call


VARIANTS = {"httpx": httpx_call, "pool": pool_call, "relay": relay_call}


async def cpu_per_request(call: Call, requests: int, concurrency: int) -> float:
    async def worker(count: int) -> None:
        for _ in range(count):
            await call()

    await asyncio.gather(*(worker(10) for _ in range(concurrency)))  # connections, warm
    per_worker = requests // concurrency
    before = cpu_seconds()
    await asyncio.gather(*(worker(per_worker) for _ in range(concurrency)))
    return 1e6 * (cpu_seconds() - before) / (per_worker * concurrency)


async def measure(url: str, args: argparse.Namespace) -> dict[str, list[float]]:
    calls = {name: make(url) for name, make in VARIANTS.items()}
    results: dict[str, list[float]] = {name: [] for name in calls}
    names = list(calls)
    for round_ in range(args.rounds):
        for name in names[round_ % len(names) :] + names[: round_ % len(names)]:
            requests = args.requests // 10 if name == "httpx" else args.requests
            us = await cpu_per_request(calls[name], requests, args.concurrency)
            results[name].append(us)
            print(f"round {round_ + 1} {name:6s} {us:8.1f} us CPU per request", flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    os.sched_setaffinity(0, {0})
    port = free_port()
    uvicorn = str(Path(sys.executable).with_name("uvicorn"))
    argv = ["taskset", "-c", "1", uvicorn, "apps:hello", "--port", str(port), "--no-access-log"]
    argv += ["--log-level", "warning", "--loop", "uvloop", "--http", "httptools"]
    backend = subprocess.Popen(argv, cwd=BENCH_DIR)
    try:
        wait_for_port(port, process=backend)
        results = uvloop.run(measure(f"http://127.0.0.1:{port}", args))
    finally:
        backend.terminate()
        backend.wait()
    for name, values in results.items():
        print(
            f"{name:6s} median {statistics.median(values):8.1f} us "
            f"[{min(values):.1f}-{max(values):.1f}] CPU per request"
        )


if __name__ == "__main__":
    main()
