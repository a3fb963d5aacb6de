"""Every mode of oakid-gate against what users run instead, measured side by side (issue 8).

::

    python benchmarks/bench.py                 # the full run: 5 rounds x 10 s per variant
    python benchmarks/bench.py --quick         # 1 round x 2 s: does it all run and verify?
    python benchmarks/bench.py --cases proxy-memory,run --rounds 3 --duration 5
    python benchmarks/bench.py --list          # the cases

``make bench`` and ``make bench-quick`` install the peers first
(scripts/install-peers.sh, scripts/install-bench.sh); this script only checks
that they are there. Everything runs on 127.0.0.1: node oidc-provider (real
sign-ins through its development pages), redis, Apache with mod_proxy and
mod_auth_openidc, uvicorn, the ``oakid-gate`` commands as installed, and wrk
pinned to the first core while every server is pinned to the second (PERF.md).

Each group of variants runs in alternating rounds (A B C, then B C A, ...);
every response is checked (see :mod:`measure`); a case's ratio is the median
of its per-round ratios to its baseline. The table is printed and written,
with the machine's details, to ``--out`` as ``latest.md`` and ``latest.json``
(and a dated copy). Exit status: 0 when every run was verified (whether or
not targets were met), 1 otherwise. With a peer missing it says which and
exits 0 (skipped), unless ``CI=true``, where that is a failure.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

# peers.* from tests/, after this directory (whose apps.py is not tests/apps)
sys.path.insert(1, str(Path(__file__).resolve().parent.parent / "tests"))

from apache import missing_apache
from cases import CASES, DIAGNOSTIC_CASES, GROUPS, OTHER_CASES, VARIANTS, Lab, Variant
from cpu import cores, pin_tree, wait_idle
from machine import machine_info
from measure import Run, measure
from peers.oidc_provider import missing_oidc_provider, start_oidc_provider
from peers.ports import free_port
from peers.redis_server import redis_server_path
from profiles import profile, profiled
from report import (
    EXTRA_HEADER,
    HEADER,
    extra_rows,
    markdown,
    rows,
    summarize,
    text_table,
)
from servers import (
    OAKID_GATE,
    SERVER_CORE,
    UVICORN,
    server_env,
    time_to_first_200,
)
from spread import stats_of
from wrk import Load, missing_wrk

BENCH_DIR = Path(__file__).resolve().parent
ALL_CASES = tuple(c.id for c in CASES) + OTHER_CASES
#: what runs when no case is named
DEFAULT_CASES = tuple(c for c in ALL_CASES if c not in DIAGNOSTIC_CASES)


@dataclass(frozen=True)
class Options:
    cases: tuple[str, ...]
    rounds: int
    duration: float
    connections: int
    idle_wait: float
    retries: int
    sessions: int
    startup_rounds: int
    out: Path
    keep: bool
    profile: bool

    @property
    def load(self) -> Load:
        return Load(duration=self.duration, connections=self.connections, core=0)


# -- options ---------------------------------------------------------------------


def parse_options(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 round x 2 s: a development run")
    parser.add_argument("--rounds", type=int, help="rounds (default 5, quick 1)")
    parser.add_argument("--duration", type=float, help="seconds per wrk run (default 10, quick 2)")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument(
        "--cases", help="comma-separated case ids (default: all but the diagnostics; see --list)"
    )
    parser.add_argument("--list", action="store_true", help="list the cases and exit")
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "results")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    parser.add_argument(
        "--profile", action="store_true", help="then py-spy each gate variant under load"
    )
    args = parser.parse_args(argv)
    if args.list:
        for case in CASES:
            shown = " (diagnostic: only when named)" if case.id in DIAGNOSTIC_CASES else ""
            print(f"{case.id:14} {VARIANTS[case.variant].label} vs {case.baseline}{shown}")
        print(f"{'memory':14} memory per session in the memory store")
        print(f"{'startup':14} start-up to the first 200, against uvicorn")
        raise SystemExit(0)
    cases = tuple(args.cases.split(",")) if args.cases else DEFAULT_CASES
    unknown = sorted(set(cases) - set(ALL_CASES))
    if unknown:
        parser.error(f"unknown case(s) {', '.join(unknown)}; known: {', '.join(ALL_CASES)}")
    quick = args.quick
    return Options(
        cases=cases,
        rounds=args.rounds or (1 if quick else 5),
        duration=args.duration or (2.0 if quick else 10.0),
        connections=args.connections,
        idle_wait=0.5 if quick else 10.0,
        retries=0 if quick else 1,
        sessions=20_000 if quick else 100_000,
        startup_rounds=2 if quick else 40,
        out=args.out,
        keep=args.keep,
        profile=args.profile,
    )


def selected_variants(cases: Sequence[str]) -> list[Variant]:
    """The variants the cases need (each case's and its baseline), in table order."""
    keys = {k for c in CASES if c.id in cases for k in (c.variant, c.baseline)}
    return [v for v in VARIANTS.values() if v.key in keys]


# -- peers -------------------------------------------------------------------------


def missing_peer(variants: list[Variant]) -> str | None:
    """What is missing to run these cases, or None."""
    if len(cores()) < 2:
        return "two cores are needed (wrk on one, the servers on the other)"
    checks = [missing_oidc_provider()]
    if variants:
        checks.append(missing_wrk())
    if any(v.server.startswith("apache") for v in variants):
        checks.append(missing_apache())
    if any("redis" in (v.server, *v.cpu_of) for v in variants) and not redis_server_path():
        checks.append("redis-server is not installed (scripts/install-peers.sh)")
    return next((m for m in checks if m), None)


def skip(reason: str, options: Options) -> int:
    under_ci = os.environ.get("CI", "").lower() in {"true", "1", "yes"}
    print(f"bench: {'FAILED' if under_ci else 'skipped'}: a peer is missing: {reason}")
    print(
        "bench: install the peers with: bash scripts/install-peers.sh && bash scripts/install-bench.sh"
    )
    write_results({"skipped": reason}, options.out, markdown_text=None)
    return 1 if under_ci else 0


# -- running -----------------------------------------------------------------------


def run_groups(
    lab: Lab, variants: list[Variant], options: Options, profiles: dict[str, Any]
) -> list[Run]:
    runs: list[Run] = []
    for group in GROUPS:
        members = [v for v in variants if v.group == group]
        if members:
            group_runs = run_group(lab, members, options)
            runs += group_runs
            if options.profile:
                profile_group(lab, members, group_runs, options, profiles)
            lab.stop(list(lab.running))
    return runs


def profile_group(
    lab: Lab, variants: list[Variant], runs: list[Run], options: Options, out: dict[str, Any]
) -> None:
    """py-spy each gate variant of the group that ran, under the same load."""
    ran = {r.variant for r in runs if r.wrk is not None}
    options.out.mkdir(parents=True, exist_ok=True)
    for v in variants:
        if profiled(v) and v.key in ran:
            print(f"  profiling {v.key} ...", flush=True)
            out[v.key] = guarded(f"profile {v.key}", profile, lab, v, options.load, options.out)


def run_group(lab: Lab, variants: list[Variant], options: Options) -> list[Run]:
    """Start and sign in everything first, then the rounds, alternating the order."""
    runs, ready = [], []
    for v in variants:
        try:
            lab.server(v.server)
            if v.cookie_of:
                lab.cookie(v.cookie_of)
            ready.append(v)
        except Exception as exc:
            failed = Run(v.key, 0, 0, v.server, problems=[f"could not start or sign in: {exc}"])
            print(f"bench: {v.key}: {failed.problems[0]}", flush=True)
            runs.append(failed)
    for round_ in range(options.rounds):
        shift = round_ % max(len(ready), 1)
        for v in ready[shift:] + ready[:shift]:
            try:
                run = measure(
                    lab,
                    v,
                    options.load,
                    round_,
                    idle_wait=options.idle_wait,
                    retries=options.retries,
                )
            except Exception as exc:  # a server died, a sign-in expired: say so, go on
                run = Run(v.key, round_, 0, v.server, problems=[f"{type(exc).__name__}: {exc}"])
            progress(run, options.rounds)
            runs.append(run)
    return runs


def progress(run: Run, rounds: int) -> None:
    state = "verified" if run.verified else "NOT VERIFIED: " + "; ".join(run.problems)
    if run.disturbed and run.wrk is not None:
        shares = ", ".join(f"{k} {v / run.wrk.duration:.0%}" for k, v in run.foreign_cpu.items())
        state += f" (disturbed: other work on {shares})"
    latency = run.wrk.latency_us if run.wrk else {"p50": 0, "p99": 0}
    print(
        f"  round {run.round + 1}/{rounds} {run.variant:13} {run.rps:9,.0f} req/s  "
        f"p50 {latency['p50'] / 1000:6.2f} ms  p99 {latency['p99'] / 1000:7.2f} ms  "
        f"{run.cpu_per_request_us:7,.0f} us CPU/req  {state}",
        flush=True,
    )


def measure_footprint(lab: Lab, options: Options) -> dict[str, Any]:
    """Memory per session in the memory store (benchmarks/footprint.py, its own process)."""
    port = free_port()
    env = server_env(lab.gate_settings(port))
    argv = [sys.executable, str(BENCH_DIR / "footprint.py")]
    argv += ["--sessions", str(options.sessions), "--port", str(port)]
    try:
        done = subprocess.run(
            argv, env=env, capture_output=True, text=True, timeout=300, check=False
        )
    except subprocess.TimeoutExpired:
        return {"error": "footprint.py took more than 300 s"}
    line = next((x for x in done.stdout.splitlines() if x.startswith("FOOTPRINT ")), None)
    if line is None:
        return {"error": f"footprint.py failed ({done.returncode}): {done.stderr[-500:]}"}
    result: dict[str, Any] = json.loads(line.removeprefix("FOOTPRINT "))
    return result


def measure_startup(lab: Lab, options: Options) -> dict[str, Any]:
    """Seconds to the first 200: ``oakid-gate run`` (/oauth2/ping) against ``uvicorn``
    (/), the same app, alternating, pinned to the server core, each start once both
    cores are idle (a start takes a quarter of a second: the wrk runs' tail would
    otherwise land on the first ones)."""
    settings = lab.gate_settings(free_port())
    # An installed package has its bytecode (pip compiles it); a checkout run with
    # PYTHONDONTWRITEBYTECODE would compile every module at each start instead.
    compileall.compile_dir(str(BENCH_DIR.parent / "oakid_gate"), quiet=1)
    gate_s: list[float] = []
    bare_s: list[float] = []
    for round_ in range(options.startup_rounds):
        order = ("gate", "bare") if round_ % 2 == 0 else ("bare", "gate")
        for which in order:
            wait_idle(min(options.idle_wait, 5.0))
            port = free_port()
            log_path = lab.workdir / f"startup-{which}-{round_}.log"
            if which == "gate":
                env = server_env({**settings, "host": "127.0.0.1", "port": str(port)})
                argv = [OAKID_GATE, "run", "apps:hello"]
                gate_s.append(
                    time_to_first_200(argv, "/oauth2/ping", port=port, env=env, log_path=log_path)
                )
            else:
                argv = [UVICORN, "apps:hello", "--host", "127.0.0.1", "--port", str(port)]
                bare_s.append(
                    time_to_first_200(argv, "/", port=port, env=server_env(), log_path=log_path)
                )
    ratios = [g / b for g, b in zip(gate_s, bare_s, strict=True)]
    return {"gate_s": gate_s, "bare_s": bare_s, "ratios": ratios, "ratio": stats_of(ratios)}


def guarded(name: str, work: Any, *args: Any) -> dict[str, Any]:
    try:
        result: dict[str, Any] = work(*args)
    except Exception as exc:
        result = {"error": f"{type(exc).__name__}: {exc}"}
    if "error" in result:
        print(f"bench: {name}: {result['error']}", flush=True)
    return result


# -- the whole run -------------------------------------------------------------------


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise TimeoutError in the main thread after ``seconds``; SIGTERM ends the run
    cleanly (the peers are stopped) too."""

    def expire(signum: int, frame: FrameType | None) -> None:
        raise TimeoutError(f"bench: over its time limit of {seconds:.0f} s")

    def terminate(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(143)

    old_alarm = signal.signal(signal.SIGALRM, expire)
    old_term = signal.signal(signal.SIGTERM, terminate)
    signal.alarm(int(seconds))
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old_alarm)
        signal.signal(signal.SIGTERM, old_term)


def budget(variants: list[Variant], options: Options) -> float:
    per_run = options.duration + options.idle_wait + 20
    starts = 2 * options.startup_rounds * (5 + 5)  # each start: an idle wait, a start
    return len(variants) * options.rounds * per_run * (1 + options.retries) + starts + 600


def start_lab(workdir: Path) -> Lab:
    provider = start_oidc_provider(
        workdir / "provider", redirect_uris=[f"http://127.0.0.1:{free_port()}/oauth2/callback"]
    )
    pin_tree(provider.pid, {SERVER_CORE})
    return Lab(workdir, provider)


def run_all(options: Options, variants: list[Variant], workdir: Path) -> dict[str, Any]:
    lab = start_lab(workdir)
    results: dict[str, Any] = {"profiles": {}}
    try:
        results["runs"] = run_groups(lab, variants, options, results["profiles"])
        if "memory" in options.cases:
            print("memory per session ...", flush=True)
            results["footprint"] = guarded("memory", measure_footprint, lab, options)
        if "startup" in options.cases:
            print("start-up time ...", flush=True)
            results["startup"] = guarded("startup", measure_startup, lab, options)
    finally:
        lab.close()
    return results


def assemble(options: Options, variants: list[Variant], measured: dict[str, Any]) -> dict[str, Any]:
    runs: list[Run] = measured["runs"]
    summary = summarize(runs, [v.key for v in variants])
    problems = [f"{r.variant} round {r.round + 1}: {p}" for r in runs for p in r.problems]
    for name in ("footprint", "startup"):
        if name in measured and "error" in measured[name]:
            problems.append(f"{name}: {measured[name]['error']}")
    for key, found in measured["profiles"].items():
        if "error" in found:
            problems.append(f"profile {key}: {found['error']}")
    return {
        "machine": machine_info(),
        "params": {
            "rounds": options.rounds,
            "duration": options.duration,
            "connections": options.connections,
            "wrk_core": options.load.core,
            "server_core": SERVER_CORE,
            "cases": list(options.cases),
        },
        "summary": summary,
        "footprint": measured.get("footprint"),
        "startup": measured.get("startup"),
        "profiles": measured["profiles"],
        "runs": [r.as_dict() for r in runs],
        "disturbed_runs": sum(r.disturbed for r in runs),
        "problems": problems,
    }


def write_results(results: dict[str, Any], out: Path, *, markdown_text: str | None) -> None:
    out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    text = json.dumps(results, indent=2, default=str) + "\n"
    for name in ("latest", f"bench-{stamp}"):
        (out / f"{name}.json").write_text(text)
        if markdown_text is not None:
            (out / f"{name}.md").write_text(markdown_text)


def show(results: dict[str, Any]) -> None:
    if results["summary"]["variants"]:
        print()
        print(text_table(HEADER, rows(results["summary"])))
    extra = extra_rows(results.get("footprint"), results.get("startup"))
    if extra:
        print()
        print(text_table(EXTRA_HEADER, extra))
    print()
    print(f"disturbed runs: {results['disturbed_runs']} of {len(results['runs'])}")
    for problem in results["problems"]:
        print(f"PROBLEM: {problem}")


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_options(argv)
    variants = selected_variants(options.cases)
    missing = missing_peer(variants)
    if missing is not None:
        return skip(missing, options)
    workdir = Path(tempfile.mkdtemp(prefix="oakid-bench-"))
    started = time.monotonic()
    ok = False
    try:
        with time_limit(budget(variants, options)):
            measured = run_all(options, variants, workdir)
        results = assemble(options, variants, measured)
        results["elapsed_s"] = round(time.monotonic() - started, 1)
        write_results(results, options.out, markdown_text=markdown(results))
        show(results)
        print(f"\nresults: {options.out / 'latest.md'} and latest.json ({results['elapsed_s']} s)")
        ok = not results["problems"]
    finally:
        if options.keep or not ok:
            print(f"bench: logs kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
