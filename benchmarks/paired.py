"""The middleware rows measured in pairs: each variant and the bare app under load at once.

``bench.py`` runs the variants one after another, as PERF.md says; on a host
whose neighbours come and go within seconds, the bare app's req/s moves by
half from one 10 s run to the next, and the per-round ratios with it (0.5 to
1.4 on a loud day). Here a variant and its baseline run *at the same time*:
both servers on the server core (the kernel shares it between them), a wrk
for each on the wrk core, for the same seconds. Whatever slows the host slows
both at once, so the ratio of their req/s is the ratio of their costs per
request on that core. Each case has a bare app of its own as its baseline
(so both sides of a pair have served as many requests), and a control pair,
a bare app against a second one, shows the method's own spread and bias (it
must read 1.00); each run is checked
as ``bench.py`` checks it (every response the app's own, the session good
before and after, no socket errors, the bytes per request).

    python benchmarks/paired.py [--cases floor,mw-memory,mw-sqlite,mw-redis]
                                [--rounds 9] [--duration 6] [--out DIR]

``--cases`` also takes the diagnostics ``null`` (a pass-through middleware),
``keys`` (one that only puts the gate's four scope keys in) and ``keys2`` (one
that puts only ``user`` and ``auth`` in: no resize of Starlette's scope).

A cross-check reported beside ``bench.py``'s table, not a replacement for it:
sharing one core costs both servers cache misses they would not have alone.
The exit status is 0 when every run was verified.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

sys.path.insert(1, str(Path(__file__).resolve().parent.parent / "tests"))

from bench import missing_peer, start_lab
from cases import CASES, CONTROL, DIAGNOSTIC_CASES, VARIANTS, Lab, Variant
from cpu import tree_cpu, wait_idle
from measure import request_check
from report import markdown_table, text_table
from spread import bootstrap_median, met_text, stats_of
from wrk import Load, WrkResult, check, response_size, run_wrk

__all__ = ["CONTROL", "Pair", "main"]

#: the control's variant: a second bare app, against the first
TWIN = VARIANTS["bare-twin"]
PAIRED_CASES = ("floor", "mw-memory", "mw-sqlite", "mw-redis")
HEADER = (
    "case",
    "ratio median [min-max]",
    "median, 95 % bootstrap",
    "over the control",
    "CPU/req ratio median",
    "req/s of the pair",
    "target",
    "met",
)


@dataclass
class Pair:
    """One round of one case: both wrk runs, checked, and the two servers' CPU."""

    case: str
    round: int
    rps: dict[str, float] = field(default_factory=dict)
    cpu_us: dict[str, float] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def ratio(self, variant: str, baseline: str) -> float:
        return self.rps[variant] / self.rps[baseline] if self.rps.get(baseline) else 0.0

    def cpu_ratio(self, variant: str, baseline: str) -> float:
        """The baseline's CPU per request over the variant's (as req/s: higher is better)."""
        return self.cpu_us[baseline] / self.cpu_us[variant] if self.cpu_us.get(variant) else 0.0


def _variants(case: str) -> tuple[Variant, Variant]:
    """The case's variant and its baseline: a bare app of its own, so that every baseline
    has served as many requests as its variant (a bare app that was everyone's baseline
    served five times more than the control's twin, and was 1.4 % slower for it)."""
    bare = VARIANTS["bare"]
    baseline = replace(bare, key="bare", server=f"hello-{case}")
    if case == CONTROL:
        return TWIN, baseline
    found = next(c for c in CASES if c.id == case)
    assert found.baseline == "bare", found
    return VARIANTS[found.variant], baseline


def _target(case: str) -> float | None:
    if case == CONTROL:
        return None
    return next(c.target for c in CASES if c.id == case)


def run_pair(lab: Lab, case: str, round_: int, load: Load, idle_wait: float) -> Pair:
    """Both variants of ``case`` under load at once; the start order alternates by round."""
    pair = Pair(case, round_)
    variant, baseline = _variants(case)
    both = (variant, baseline) if round_ % 2 == 0 else (baseline, variant)
    targets = {}
    for v in both:
        url = lab.server(v.server).url + v.path
        headers = {"Cookie": lab.cookie(v.cookie_of)} if v.cookie_of else {}
        pair.problems += [f"{v.key}: {p}" for p in request_check(url, headers, v.expect, "before")]
        targets[v.key] = (v, url, headers, response_size(url, headers))
    if pair.problems:
        return pair
    wait_idle(idle_wait)
    pids = {k: lab.pids((t[0].server, *t[0].cpu_of)) for k, t in targets.items()}
    cpu_before = {k: tree_cpu(p) for k, p in pids.items()}
    results: dict[str, WrkResult | Exception] = {}

    def load_one(key: str) -> None:
        v, url, headers, _ = targets[key]
        try:
            results[key] = run_wrk(url, headers, v.expect, load)
        except (RuntimeError, OSError) as exc:
            results[key] = exc

    threads = [threading.Thread(target=load_one, args=(k,)) for k in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for key, (v, url, headers, size) in targets.items():
        found = results[key]
        if isinstance(found, Exception):
            pair.problems.append(f"{key}: {found}")
            continue
        pair.problems += [f"{key}: {p}" for p in check(found, size, load)]
        pair.problems += [f"{key}: {p}" for p in request_check(url, headers, v.expect, "after")]
        pair.rps[key] = found.rps
        pair.cpu_us[key] = (tree_cpu(pids[key]) - cpu_before[key]) / max(found.requests, 1) * 1e6
    return pair


def summarize(pairs: list[Pair], cases: Sequence[str]) -> list[dict[str, Any]]:
    """Each case's ratios; a case is met when its median, and its median over the control's
    (what the method's own bias would move), both reach the target."""
    out = []
    control = 1.0
    for case in cases:
        variant, baseline = (v.key for v in _variants(case))
        mine = [p for p in pairs if p.case == case and not p.problems]
        ratios = [p.ratio(variant, baseline) for p in mine]
        cpu = [p.cpu_ratio(variant, baseline) for p in mine]
        target = _target(case)
        ratio = stats_of(ratios)
        if case == CONTROL and ratio is not None:
            control = ratio["median"]
        judged = None if ratio is None else min(ratio["median"], ratio["median"] / control)
        out.append({
            "case": case,
            "rounds": len(mine),
            "ratio": ratio,
            "ratio_bootstrap": bootstrap_median(ratios),
            "over_control": None if ratio is None else ratio["median"] / control,
            "cpu_ratio": stats_of(cpu),
            "pair_rps": stats_of([sum(p.rps.values()) for p in mine]),
            "target": target,
            "met": None if target is None or judged is None else judged >= target,
        })  # fmt: skip
    return out


def rows(summary: list[dict[str, Any]]) -> list[list[str]]:
    body = []
    for s in summary:
        r, c, rps = s["ratio"], s["cpu_ratio"], s["pair_rps"]
        body.append([
            "control: bare vs a second bare" if s["case"] == CONTROL else s["case"],
            f"{r['median']:.3f} [{r['min']:.3f}-{r['max']:.3f}]" if r else "-",
            "{:.3f}-{:.3f}".format(*b) if (b := s["ratio_bootstrap"]) else "-",
            "-" if s["case"] == CONTROL or r is None else f"{s['over_control']:.3f}",
            f"{c['median']:.3f}" if c else "-",
            f"{rps['median']:,.0f}" if rps else "-",
            _target_label(s),
            met_text(s["met"], s["ratio_bootstrap"], s["target"]),
        ])  # fmt: skip
    return body


def _target_label(summary: dict[str, Any]) -> str:
    if summary["case"] == CONTROL:
        return "must read 1.00"
    return "ref" if summary["target"] is None else f">= {summary['target']:.2f}"


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", default=",".join(PAIRED_CASES))
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--duration", type=float, default=6.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--idle-wait", type=float, default=5.0)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    options = parser.parse_args(argv)
    options.cases = [c for c in options.cases.split(",") if c]
    unknown = set(options.cases) - set(PAIRED_CASES) - set(DIAGNOSTIC_CASES)
    if unknown:
        parser.error(f"not a middleware case: {', '.join(sorted(unknown))}")
    return options


def measure_all(lab: Lab, cases: list[str], options: argparse.Namespace) -> list[Pair]:
    load = Load(duration=options.duration, connections=options.connections)
    pairs = []
    for round_ in range(options.rounds):
        shift = round_ % len(cases)
        for case in cases[shift:] + cases[:shift]:
            pair = run_pair(lab, case, round_, load, options.idle_wait)
            shown = " ".join(f"{k} {v:,.0f}" for k, v in pair.rps.items())
            state = "verified" if not pair.problems else "NOT VERIFIED: " + "; ".join(pair.problems)
            print(f"  round {round_ + 1}/{options.rounds} {case:10} {shown}  {state}", flush=True)
            pairs.append(pair)
    return pairs


def main(argv: Sequence[str] | None = None) -> int:
    options = parse(argv)
    cases = [CONTROL, *options.cases]
    missing = missing_peer([VARIANTS["bare"], *(_variants(c)[0] for c in options.cases)])
    if missing is not None:
        print(f"paired: skipped: {missing}")
        return 0
    workdir = Path(tempfile.mkdtemp(prefix="oakid-paired-"))
    started = time.monotonic()
    lab = start_lab(workdir)
    try:
        pairs = measure_all(lab, cases, options)
    finally:
        lab.close()
        shutil.rmtree(workdir, ignore_errors=True)
    summary = summarize(pairs, cases)
    problems = [f"{p.case} round {p.round + 1}: {x}" for p in pairs for x in p.problems]
    print()
    print(text_table(HEADER, rows(summary)))
    options.out.mkdir(parents=True, exist_ok=True)
    head = (
        f"Paired runs, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: {options.rounds} "
        f"round(s) x {options.duration:g} s, wrk -c{options.connections} for each side.\n\n"
    )
    (options.out / "paired-latest.md").write_text(head + markdown_table(HEADER, rows(summary)))
    record = {"summary": summary, "problems": problems, "pairs": [vars(p) for p in pairs]}
    (options.out / "paired-latest.json").write_text(json.dumps(record, indent=2) + "\n")
    for problem in problems:
        print(f"PROBLEM: {problem}")
    print(f"\nresults: {options.out / 'paired-latest.md'} ({time.monotonic() - started:.0f} s)")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
