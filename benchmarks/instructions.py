"""The hot path's cost in instructions, counted inside a real server: no noise.

wrk's ratios move by 10-20 % from run to run on a shared machine; an instruction
count does not. Each app of :mod:`apps` is served by uvicorn (uvloop, httptools,
as PERF.md runs it) under valgrind's callgrind; one keep-alive connection sends
:data:`WARM_UP` requests, the counters are zeroed, then ``--requests`` more,
each checked (200 and the hello body), and the counters dumped: the user-space
instructions the server executed per request (the kernel's share, the same for
every app, is not counted). The gated apps hold one session written at start-up
(:func:`apps.seeded_app`), so no provider is needed.

    python benchmarks/instructions.py [--requests 1000] [--cases bare,floor,...]

Reported, not asserted. Needs valgrind (``scripts/install-bench.sh``).
"""

from __future__ import annotations

import argparse
import glob
import http.client
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(1, str(HERE.parent / "tests"))

from apps import BODY, SEEDED_SID  # noqa: E402
from peers.ports import free_port  # noqa: E402

UVICORN = str(Path(sys.executable).parent / "uvicorn")
WARM_UP = 300
GATE = {
    "OAKID_ISSUER": "http://127.0.0.1:9",
    "OAKID_CLIENT_ID": "oak_bench",
    "OAKID_CLIENT_SECRET": "bench-client-secret",
    "OAKID_SECRET": "bench-cookie-secret-0123456789abcdef",
}
#: what Chrome 156 sends with a navigation, besides Host and Cookie
BROWSER = {
    "Connection": "keep-alive",
    "sec-ch-ua": '"Chromium";v="156", "Not.A/Brand";v="99"',
    "sec-ch-ua-mobile": "?0",
    "sec-ch-ua-platform": '"Linux"',
    "Upgrade-Insecure-Requests": "1",
    "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/156.0 Safari/537.36",
    "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "Sec-Fetch-Site": "same-origin",
    "Sec-Fetch-Mode": "navigate",
    "Sec-Fetch-User": "?1",
    "Sec-Fetch-Dest": "document",
    "Referer": "https://tools.example.test/reports",
    "Accept-Encoding": "gzip, deflate, br, zstd",
    "Accept-Language": "en-GB,en;q=0.9",
}
#: case -> (the app's factory, its session store, the request's headers)
CASES: dict[str, tuple[str, str | None, dict[str, str]]] = {
    "bare": ("hello_app", None, {}),
    "floor": ("floor_app", None, {}),
    "mw-memory": ("seeded_app", "memory://", {}),
    "mw-sqlite": ("seeded_app", "sqlite:///{dir}/sessions.db", {}),
    "bare-browser": ("hello_app", None, BROWSER),
    "mw-memory-browser": ("seeded_app", "memory://", BROWSER),
}


def count(case: str, requests: int, workdir: Path) -> float:
    """User-space instructions per request of ``case`` inside uvicorn."""
    factory, store, headers = CASES[case]
    headers = {"Cookie": f"oakid_session={SEEDED_SID}", **headers}
    env = {k: v for k, v in os.environ.items() if not k.startswith("OAKID_")}
    env.update(PYTHONHASHSEED="0", PYTHONPATH=str(HERE))
    if store is not None:
        env.update(GATE, OAKID_SESSION_STORE=store.format(dir=workdir))
    out = workdir / f"callgrind.{case}"
    port = free_port()
    argv = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable, UVICORN]
    argv += [f"apps:{factory}", "--factory", "--host", "127.0.0.1", "--port", str(port)]
    argv += ["--no-access-log", "--log-level", "warning", "--loop", "auto", "--http", "auto"]
    log = (workdir / f"{case}.log").open("w")
    server = subprocess.Popen(argv, env=env, cwd=HERE, stdout=log, stderr=log)
    try:
        conn = _connect(port, headers, server)
        _send(conn, headers, WARM_UP)
        subprocess.run(
            ["callgrind_control", "-z", str(server.pid)], check=True, capture_output=True
        )
        _send(conn, headers, requests)
        subprocess.run(
            ["callgrind_control", "-d", str(server.pid)], check=True, capture_output=True
        )
    finally:
        server.terminate()
        server.wait(timeout=60)
        log.close()
    return _dumped(out) / requests


def _connect(
    port: int, headers: dict[str, str], server: subprocess.Popen[bytes]
) -> http.client.HTTPConnection:
    deadline = time.monotonic() + 120  # a server under valgrind starts slowly
    while True:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            _send(conn, headers, 1)
            return conn
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the server did not start (see its log)") from None
            time.sleep(0.3)


def _send(conn: http.client.HTTPConnection, headers: dict[str, str], n: int) -> None:
    for _ in range(n):
        conn.request("GET", "/", headers=headers)
        response = conn.getresponse()
        body = response.read()
        if response.status != 200 or body != BODY:
            raise RuntimeError(f"unexpected answer {response.status}: {body[:80]!r}")


def _dumped(out: Path) -> int:
    """The instruction total of the dump ``callgrind_control -d`` asked for."""
    for path in sorted(glob.glob(f"{out}.*")):
        text = Path(path).read_text(errors="replace")
        if re.search(r"^desc: Trigger: dump\b", text, re.M):
            found = re.search(r"^summary: (\d+)", text, re.M)
            if found:
                return int(found.group(1))
    raise RuntimeError(f"no callgrind dump next to {out}")


def counted(
    cases: list[str], count_one: Callable[[str, Path], float], prefix: str
) -> dict[str, float]:
    """``count_one(case, workdir)`` for each case, in a work directory removed after."""
    workdir = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        return {case: count_one(case, workdir) for case in cases}
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def report(counts: dict[str, float], heading: str, unit: str) -> None:
    """The counts, each with its difference from ``bare`` when that was counted."""
    base = counts.get("bare")
    print(heading)
    print(f"{'case':20} {unit:>12} {'over bare':>10}")
    for case, per in counts.items():
        over = f"{per - base:+10,.0f}" if base is not None else ""
        print(f"{case:20} {per:12,.0f} {over}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--cases", default=",".join(CASES))
    args = parser.parse_args()
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        sys.exit("valgrind is not installed (scripts/install-bench.sh)")
    counts = counted(
        args.cases.split(","),
        lambda case, workdir: count(case, args.requests, workdir),
        "oakid-instructions-",
    )
    heading = (
        f"{args.requests} requests per case, user-space instructions per request inside uvicorn"
    )
    report(counts, heading, "per request")


if __name__ == "__main__":
    main()
