"""The results of a run as a table (text for the terminal, markdown for the README) and JSON.

Every figure is a median over rounds with its min-max spread; a case's ratio
is the median of the per-round ratios of its variant's req/s to its
baseline's req/s, measured in the same round, with the 95 % bootstrap interval
of that median (:func:`spread.bootstrap_median`; "-" under three rounds). The
control case (a second bare app against the first) shows how far the method
alone moves a ratio.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

from cases import CASES, VARIANTS, Case
from measure import Run
from spread import bootstrap_median, met_text, stats_of

__all__ = ["STARTUP_TARGET", "extra_rows", "markdown", "summarize", "text_table"]

HEADER = (
    "variant",
    "req/s median [min-max]",
    "p50 ms",
    "p99 ms",
    "CPU us/req",
    "vs",
    "ratio median [min-max]",
    "median, 95 % bootstrap",
    "target",
    "met",
)


def summarize_variant(key: str, runs: list[Run]) -> dict[str, Any]:
    mine = [r for r in runs if r.variant == key]
    good = [r for r in mine if r.wrk is not None]
    return {
        "variant": key,
        "label": VARIANTS[key].label,
        "runs": len(mine),
        "verified": bool(mine) and all(r.verified for r in mine),
        "disturbed": sum(r.disturbed for r in mine),
        "rps": stats_of([r.rps for r in good]),
        "p50_ms": stats_of([r.wrk.latency_us["p50"] / 1000 for r in good if r.wrk]),
        "p99_ms": stats_of([r.wrk.latency_us["p99"] / 1000 for r in good if r.wrk]),
        "cpu_us_per_request": stats_of([r.cpu_per_request_us for r in good]),
        "problems": sorted({p for r in mine for p in r.problems}),
    }


def case_ratios(case: Case, runs: list[Run]) -> list[float]:
    """The per-round ratios of ``case``'s variant to its baseline."""
    by_round = {(r.variant, r.round): r for r in runs}
    ratios = []
    for (variant, round_), run in sorted(by_round.items()):
        if variant != case.variant:
            continue
        base = by_round.get((case.baseline, round_))
        if base is not None and base.rps > 0 and run.verified and base.verified:
            ratios.append(run.rps / base.rps)
    return ratios


def summarize_case(case: Case, runs: list[Run]) -> dict[str, Any]:
    ratios = case_ratios(case, runs)
    ratio = stats_of(ratios)
    met = None
    if case.target is not None and ratio is not None:
        met = ratio["median"] >= case.target
    return {
        "case": case.id,
        "variant": case.variant,
        "baseline": case.baseline,
        "target": case.target,
        "target_text": case.target_label,
        "ratios": ratios,
        "ratio": ratio,
        "ratio_bootstrap": bootstrap_median(ratios),
        "met": met,
    }


def summarize(runs: list[Run], order: Sequence[str]) -> dict[str, Any]:
    """Per variant (in ``order``) and per case whose variants ran."""
    cases = [summarize_case(c, runs) for c in CASES if c.variant in order and c.baseline in order]
    by_id = {c["case"]: c for c in cases}
    for case in CASES:
        other = by_id.get(case.like or "")
        if case.id in by_id and other is not None and other["ratio"] is not None:
            by_id[case.id]["target_text"] += f" ({other['ratio']['median']:.2f})"
    return {"variants": [summarize_variant(key, runs) for key in order], "cases": cases}


def rows(summary: dict[str, Any]) -> list[list[str]]:
    """The wrk table: one row per variant, its case's ratio beside it."""
    cases = {c["variant"]: c for c in summary["cases"]}
    baselines = {c["baseline"] for c in summary["cases"]}
    out = []
    for v in summary["variants"]:
        case = cases.get(v["variant"])
        rps = v["rps"]
        row = [
            v["label"] + ("" if v["verified"] else " (NOT VERIFIED)"),
            _fmt_stats(rps, ",.0f"),
            _fmt_median(v["p50_ms"], ".2f"),
            _fmt_median(v["p99_ms"], ".2f"),
            _fmt_median(v["cpu_us_per_request"], ",.0f"),
        ]
        if case is not None:
            ratio = case["ratio"]
            ratio_text = _fmt_stats(ratio, ".2f")
            low_high = "{:.2f}-{:.2f}".format(*b) if (b := case["ratio_bootstrap"]) else "-"
            met = met_text(case["met"], b, case["target"])
            row += [case["baseline"], ratio_text, low_high, case["target_text"], met]
        elif v["variant"] in baselines:
            row += ["", "1 (baseline)", "", "", ""]
        else:
            row += ["", "", "", "", ""]
        out.append(row)
    return out


def _fmt_stats(stats: dict[str, float] | None, fmt: str) -> str:
    if stats is None:
        return "-"
    low, mid, high = (format(stats[k], fmt) for k in ("min", "median", "max"))
    return f"{mid} [{low}-{high}]"


def _fmt_median(stats: dict[str, float] | None, fmt: str) -> str:
    return "-" if stats is None else format(stats["median"], fmt)


#: the issue's bound on start-up to the first answer, over bare uvicorn's
STARTUP_TARGET = 1.3


def extra_rows(footprint: dict[str, Any] | None, startup: dict[str, Any] | None) -> list[list[str]]:
    """Rows for what is measured without wrk: memory per session, start-up time."""
    out = []
    if footprint is not None:
        if "error" in footprint:
            out.append(["memory per session", "not measured: " + footprint["error"], "", ""])
        else:
            per = footprint["bytes_per_session"]
            label = f"memory per session ({footprint['sessions']:,} sessions, memory store)"
            out.append([label, f"{per:,.0f} B", "<= 2,048 B", met_text(per <= 2048)])
    if startup is not None:
        if "error" in startup:
            out.append(["start-up to first 200", "not measured: " + startup["error"], "", ""])
        else:
            ratio = startup["ratio"]
            gate, bare = startup["gate_s"], startup["bare_s"]
            text = (
                f"{_fmt_stats(ratio, '.2f')} x "
                f"(gate {statistics.median(gate):.3f} s, uvicorn {statistics.median(bare):.3f} s)"
            )
            met = met_text(
                ratio["median"] <= STARTUP_TARGET,
                bootstrap_median(startup["ratios"]),
                STARTUP_TARGET,
            )
            out.append(["start-up to first 200 vs uvicorn", text, f"<= {STARTUP_TARGET:.2f}", met])
    return out


def text_table(header: Sequence[str], body: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [list(header), *body]) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(header, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in body]
    return "\n".join(lines)


def markdown_table(header: Sequence[str], body: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in body]
    return "\n".join(lines)


EXTRA_HEADER = ("measure", "result", "target", "met")


def markdown(results: dict[str, Any]) -> str:
    """The whole results file: the machine, the parameters, both tables, the problems."""
    machine = results["machine"]
    params = results["params"]
    lines = [
        f"## Benchmark results, {machine['date']}",
        "",
        f"- machine: {machine['cpu']} ({machine['cores']} cores), kernel {machine['kernel']}, "
        f"load average at start {machine['loadavg']}",
        f"- software: {machine['software']}",
        f"- commit: {machine['commit']}",
        f"- method: wrk -t1 -c{params['connections']} -d{params['duration']:g}s --latency on "
        f"core {params['wrk_core']}, every server on core {params['server_core']}; "
        f"{params['rounds']} round(s), variants alternating; every response checked",
        f"- runs disturbed by other load (more than 10% of a core): {results['disturbed_runs']} "
        f"of {len(results['runs'])}",
        "",
    ]
    if results["summary"]["variants"]:
        lines += [markdown_table(HEADER, rows(results["summary"])), ""]
    extra = extra_rows(results.get("footprint"), results.get("startup"))
    if extra:
        lines += [markdown_table(EXTRA_HEADER, extra), ""]
    lines += profile_lines(results.get("profiles") or {})
    if results["problems"]:
        lines += ["Verification problems:", ""]
        lines += [f"- {p}" for p in results["problems"]] + [""]
    return "\n".join(lines)


def profile_lines(profiles: dict[str, Any]) -> list[str]:
    """Per profiled variant: the frames with the most samples of their own."""
    lines = []
    for key, found in profiles.items():
        if "top" not in found:
            continue
        lines += [f"Profile of {VARIANTS[key].label} (`{found['file']}`), own samples:", ""]
        lines += [f"- {share:.1%} `{frame}`" for frame, share in found["top"]] + [""]
    return lines
