"""``make bench-quick`` runs every case of the benchmark and verifies every response.

The benchmark (``benchmarks/bench.py --quick``: one round, 2 s per variant)
runs as a process of its own against the real peers: node oidc-provider,
redis, Apache with mod_auth_openidc, wrk. Nothing here looks at a speed:
only that every case ran, every wrk run was verified (the app's own
response, every one of them, and the session still good afterwards), and the
memory and start-up measures produced figures. A missing peer skips the
test, or fails it under ``CI=true`` (see ``conftest.require_peer``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import require_peer

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "benchmarks" / "bench.py"
TIMEOUT = 420  # seconds; the quick run takes about a minute and a half on two cores

CASES = {
    "control",  # a second bare app against the first: how far the method moves a ratio
    "floor",
    "sessions",
    "mw-memory",
    "mw-sqlite",
    "mw-redis",
    "run",
    "proxy-memory",
    "proxy-redis",
    "proxy-public",
    "auth",
}


@pytest.fixture(scope="module")
def quick_results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("bench")
    done = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    results_file = out / "latest.json"
    results: dict[str, Any] = json.loads(results_file.read_text()) if results_file.exists() else {}
    if "skipped" in results:
        require_peer(results["skipped"])
    assert done.returncode == 0, (
        f"bench.py --quick exited {done.returncode}:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    )
    return results


@pytest.mark.e2e
def test_every_case_ran(quick_results: dict[str, Any]) -> None:
    """Each comparison of the issue has its ratio, from one round."""
    cases = {c["case"]: c for c in quick_results["summary"]["cases"]}
    assert set(cases) == CASES
    for case in cases.values():
        assert len(case["ratios"]) == 1, case
        assert case["ratio"] is not None, case
        assert case["ratio_bootstrap"] is None, case  # one round gives no interval


@pytest.mark.e2e
def test_every_response_was_verified(quick_results: dict[str, Any]) -> None:
    """Every wrk run got only the expected response, the same size every time, with
    no socket error, and the session still worked after it."""
    runs = quick_results["runs"]
    variants = {v["variant"] for v in quick_results["summary"]["variants"]}
    assert {r["variant"] for r in runs} == variants
    for run in runs:
        assert run["verified"], (run["variant"], run["problems"])
        wrk = run["wrk"]
        assert wrk["requests"] > 0 and wrk["responses"] == wrk["requests"], run
        assert wrk["bad_status"] == wrk["bad_body"] == wrk["non_2xx"] == 0, run
        assert not any(wrk["errors"].values()), run
    assert quick_results["problems"] == []


@pytest.mark.e2e
def test_memory_and_startup_were_measured(quick_results: dict[str, Any]) -> None:
    """The measures without wrk produced figures (their values are not judged here)."""
    footprint = quick_results["footprint"]
    assert "error" not in footprint, footprint
    assert footprint["bytes_per_session"] > 0
    startup = quick_results["startup"]
    assert "error" not in startup, startup
    assert len(startup["gate_s"]) == len(startup["bare_s"]) >= 1


@pytest.mark.e2e
def test_the_paired_cross_check_runs_and_verifies_every_response(tmp_path: Path) -> None:
    """``benchmarks/paired.py`` (each variant loaded at once with the bare app, and the
    control pair) runs one short round, every response verified, the diagnostics (a
    pass-through middleware, the gate's scope keys alone, two keys alone) too; no speed is judged."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "paired.py"), "--cases", "mw-memory,null,keys,keys2",
         "--rounds", "1", "--duration", "1", "--idle-wait", "0", "--out", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT, check=False,
    )  # fmt: skip
    if "skipped" in done.stdout:
        require_peer(done.stdout.strip())
    assert done.returncode == 0, f"{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    record = json.loads((tmp_path / "paired-latest.json").read_text())
    assert record["problems"] == []
    rounds = {s["case"]: s["rounds"] for s in record["summary"]}
    assert rounds == {"control": 1, "mw-memory": 1, "null": 1, "keys": 1, "keys2": 1}
    # one round gives no bootstrap interval (benchmarks/spread.py), printed as "-"
    assert all(s["ratio_bootstrap"] is None for s in record["summary"])
    for pair in record["pairs"]:
        assert len(pair["rps"]) == 2 and all(v > 0 for v in pair["rps"].values()), pair
