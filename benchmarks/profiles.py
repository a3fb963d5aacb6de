"""py-spy profiles of the gate's servers under the same wrk load (``bench.py --profile``).

After the measured rounds, each gate variant is loaded once more while
``py-spy record -f raw`` samples its server; these runs are not measured
(py-spy costs the server some time). The raw collapsed stacks are written to
``profile-VARIANT.txt`` beside the results (``flamegraph.pl`` or speedscope
read them), and the functions with the most samples of their own are listed
in the results.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from cases import Lab, Variant
from wrk import Load, run_wrk

__all__ = ["profile", "py_spy", "top_frames"]


def py_spy() -> str | None:
    """The py-spy executable (the venv's, from scripts/install-bench.sh), or None."""
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.is_file() else shutil.which("py-spy")


def profiled(variant: Variant) -> bool:
    """Whether ``variant``'s server is one of the gate's Python processes."""
    return variant.server.startswith(("mw-", "run-gate", "proxy-"))


def profile(lab: Lab, variant: Variant, load: Load, out: Path) -> dict[str, Any]:
    """Load ``variant`` with wrk for ``load.duration`` while py-spy records its server."""
    spy = py_spy()
    if spy is None:
        return {"error": "py-spy is not installed (scripts/install-bench.sh)"}
    server = lab.server(variant.server)
    url = server.url + variant.path
    headers = {"Cookie": lab.cookie(variant.cookie_of)} if variant.cookie_of else {}
    path = out / f"profile-{variant.key}.txt"
    seconds = max(1, round(load.duration))
    argv = ["taskset", "-c", str(load.core), spy, "record", "-p", str(server.pid)]
    argv += ["-d", str(seconds), "-r", "200", "-f", "raw", "-o", str(path), "--nonblocking"]
    recorder = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        time.sleep(0.3)  # py-spy attaches
        run_wrk(url, headers, variant.expect, load)
        _, errors = recorder.communicate(timeout=seconds + 30)
    finally:
        if recorder.poll() is None:
            recorder.kill()
            recorder.wait()
    if not path.exists():
        return {"error": f"py-spy wrote nothing: {errors.decode(errors='replace')[-300:]}"}
    return {"file": path.name, "top": top_frames(path)}


def top_frames(path: Path, count: int = 12) -> list[tuple[str, float]]:
    """The leaf frames with the most samples in a raw (collapsed) py-spy profile, with
    their share of all samples."""
    own: Counter[str] = Counter()
    for line in path.read_text().splitlines():
        stack, _, samples = line.rpartition(" ")
        if stack and samples.isdigit():
            own[_function(stack.rsplit(";", 1)[-1])] += int(samples)
    total = sum(own.values()) or 1
    return [(frame, n / total) for frame, n in own.most_common(count)]


def _function(frame: str) -> str:
    """``name (path:line)`` as ``name (path)``: samples add up per function."""
    head, _, line = frame.rpartition(":")
    return head + ")" if line.rstrip(")").isdigit() else frame
