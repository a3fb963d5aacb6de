"""The middleware's instructions per call, counted in process: exact, to the instruction.

Inside uvicorn (:mod:`instructions`) the counts move by several hundred from one
count to the next: uvicorn's timers tick more often per request under callgrind's
slowdown, and more again on a busy host. Here there is no server: each app is
called directly with a fixed ASGI scope (two headers, the seeded session's
cookie), its coroutine driven to the end, :data:`CALLS` times and three times as
many, each under callgrind with ``PYTHONHASHSEED=0``; the difference of the two
totals over the difference of the calls is the cost of one call, the same at every
count. Exact for one harness, not across harnesses: what the counted process has
imported moves the figures (importing :mod:`instructions` into it moved the gate's
figure over bare by 740), so compare only counts made by the same version of this
file. The apps: the bare hello app, a pass-through middleware, one that only sets
the gate's four scope keys and one that sets only ``user`` and ``auth`` (``null``,
``keys``, ``keys2``: :func:`apps.null_app`, :func:`apps.keys_app`,
:func:`apps.two_keys_app`), the floor, and the gate with the memory store
(:func:`apps.seeded_app`).

    python benchmarks/in_process.py [--cases bare,null,keys,keys2,floor,gate]

Reported, not asserted. Needs valgrind (``scripts/install-bench.sh``).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
#: calls in the shorter of the two counted runs (the longer makes three times as many)
CALLS = 2000
WARM_UP = 300
CASES = ("bare", "null", "keys", "keys2", "floor", "gate")


def _app(case: str) -> Any:
    import apps

    return {
        "bare": apps.hello_app, "null": apps.null_app,
        "keys": apps.keys_app, "keys2": apps.two_keys_app, "floor": apps.floor_app,
        "gate": apps.seeded_app,
    }[case]()  # fmt: skip


def _calls(case: str, n: int) -> None:
    """Call ``case``'s app ``n`` times (after a warm-up), each answer checked."""
    from apps import BODY, SEEDED_SID

    app = _app(case)
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    cookie = f"oakid_session={SEEDED_SID}".encode()
    for _ in range(WARM_UP + n):
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
            "server": ("127.0.0.1", 8000), "client": ("127.0.0.1", 50000), "scheme": "http",
            "root_path": "", "headers": [(b"host", b"127.0.0.1:8000"), (b"cookie", cookie)],
            "state": {}, "method": "GET", "path": "/", "raw_path": b"/", "query_string": b"",
        }  # fmt: skip
        coroutine = app(scope, receive, send)
        try:  # noqa: SIM105 - a context manager per call would be counted in every case
            coroutine.send(None)
        except StopIteration:
            pass
        if sent[0]["status"] != 200 or sent[1]["body"] != BODY:
            raise RuntimeError(f"unexpected answer from {case}: {sent[:2]!r}")
        sent.clear()


def _gate_env() -> dict[str, str]:
    """The gate's settings (instructions.py's, with the memory store). :mod:`instructions`
    is imported by the parent only: what the counted child imports moves its counts."""
    import instructions

    return {**instructions.GATE, "OAKID_SESSION_STORE": "memory://"}


def _total(case: str, n: int, workdir: Path) -> int:
    out = workdir / f"callgrind.{case}.{n}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("OAKID_")}
    env.update(_gate_env(), PYTHONHASHSEED="0", PYTHONPATH=str(HERE))
    argv = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"]
    argv += [sys.executable, __file__, "--run", case, str(n)]
    subprocess.run(argv, env=env, cwd=HERE, check=True, capture_output=True)
    found = re.search(r"^summary: (\d+)", out.read_text(errors="replace"), re.M)
    if found is None:
        raise RuntimeError(f"no summary in {out}")
    return int(found.group(1))


def count(case: str, workdir: Path) -> float:
    """Instructions of one call of ``case``'s app."""
    return (_total(case, 3 * CALLS, workdir) - _total(case, CALLS, workdir)) / (2 * CALLS)


def main() -> None:
    if sys.argv[1:2] == ["--run"]:
        _calls(sys.argv[2], int(sys.argv[3]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default=",".join(CASES))
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is not installed (scripts/install-bench.sh)")
    import instructions

    counts = instructions.counted(args.cases.split(","), count, "oakid-in-process-")
    instructions.report(counts, "instructions per call of the app, in process (exact)", "per call")


if __name__ == "__main__":
    main()
