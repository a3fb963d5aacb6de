"""One measured wrk run of one variant: checked before, during and after, with its CPU.

A run is *verified* when the response was the expected one just before and
just after (the session cookie still works), every response wrk read had the
expected status and body, wrk saw no errors, and the bytes read per request
match one real response. It is *disturbed* when something else used more
than :data:`DISTURBED` of a core during it (on wrk's core: besides wrk; on the
server core: besides the processes this run started); a disturbed run is done
again, up to ``retries`` times, and reported as disturbed if it stays so.
"""

from __future__ import annotations

import resource
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
from cases import Lab, Variant
from cpu import read_cores, tree_cpu, wait_idle
from servers import SERVER_CORE
from wrk import Expect, Load, WrkResult, check, response_size, run_wrk

__all__ = ["DISTURBED", "Run", "measure"]

#: the share of a core that something else may use during a run
DISTURBED = 0.10


@dataclass
class Run:
    """One wrk run of one variant in one round."""

    variant: str
    round: int
    attempt: int
    url: str
    wrk: WrkResult | None = None
    response_size: int = 0
    cpu_s: float = 0.0
    foreign_cpu: dict[str, float] = field(default_factory=dict)
    idle_before: bool = True
    problems: list[str] = field(default_factory=list)

    @property
    def verified(self) -> bool:
        return self.wrk is not None and not self.problems

    @property
    def rps(self) -> float:
        return self.wrk.rps if self.wrk is not None else 0.0

    @property
    def cpu_per_request_us(self) -> float:
        if self.wrk is None or not self.wrk.requests:
            return 0.0
        return self.cpu_s / self.wrk.requests * 1e6

    @property
    def disturbed(self) -> bool:
        duration = self.wrk.duration if self.wrk is not None else 0.0
        return any(v > DISTURBED * duration for v in self.foreign_cpu.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "variant": self.variant,
            "round": self.round,
            "attempt": self.attempt,
            "url": self.url,
            "verified": self.verified,
            "problems": self.problems,
            "disturbed": self.disturbed,
            "idle_before": self.idle_before,
            "rps": self.rps,
            "response_size": self.response_size,
            "cpu_s": self.cpu_s,
            "cpu_per_request_us": self.cpu_per_request_us,
            "foreign_cpu_s": self.foreign_cpu,
            "wrk": self.wrk.as_dict() if self.wrk is not None else None,
        }


def request_check(url: str, headers: Mapping[str, str], expect: Expect, when: str) -> list[str]:
    """Problems with one request to ``url`` made now (``when``: before or after)."""
    try:
        response = httpx.get(url, headers=dict(headers), timeout=10, trust_env=False)
    except httpx.HTTPError as exc:
        return [f"{when}: {type(exc).__name__}: {exc}"]
    problems = []
    if response.status_code != expect.status or response.content != expect.body:
        shown = response.content[:120]
        problems.append(f"{when}: {response.status_code} {shown!r}, expected {expect.status}")
    for name, value in expect.headers.items():
        if response.headers.get(name) != value:
            problems.append(f"{when}: header {name} is {response.headers.get(name)!r}")
    return problems


def measure(
    lab: Lab, variant: Variant, load: Load, round_: int, *, idle_wait: float, retries: int
) -> Run:
    """Run ``variant`` once (again while disturbed, at most ``retries`` more times)."""
    attempt = 0
    while True:
        run = _attempt(lab, variant, load, round_, attempt, idle_wait)
        if not run.disturbed or attempt >= retries or not run.verified:
            return run
        attempt += 1


def _attempt(
    lab: Lab, variant: Variant, load: Load, round_: int, attempt: int, idle_wait: float
) -> Run:
    url = lab.server(variant.server).url + variant.path
    headers = {"Cookie": lab.cookie(variant.cookie_of)} if variant.cookie_of else {}
    run = Run(variant.key, round_, attempt, url)
    run.idle_before = wait_idle(idle_wait)
    run.problems = request_check(url, headers, variant.expect, "before")
    if run.problems:
        return run
    try:
        run.response_size = response_size(url, headers)
    except OSError as exc:
        run.problems.append(f"reading one response: {exc}")
        return run
    measured = lab.pids((variant.server, *variant.cpu_of))
    ours = lab.all_pids()
    cpu_before, ours_before = tree_cpu(measured), tree_cpu(ours)
    cores_before = read_cores()
    wrk_before = _children_cpu()
    try:
        run.wrk = run_wrk(url, headers, variant.expect, load)
    except (RuntimeError, OSError) as exc:
        run.problems.append(str(exc))
        return run
    cores = read_cores().minus(cores_before)
    run.cpu_s = tree_cpu(measured) - cpu_before
    run.foreign_cpu = {
        "wrk_core": max(0.0, cores.busy[load.core] - (_children_cpu() - wrk_before)),
        "server_core": max(0.0, cores.busy[SERVER_CORE] - (tree_cpu(ours) - ours_before)),
    }
    run.problems += check(run.wrk, run.response_size, load)
    run.problems += request_check(url, headers, variant.expect, "after")
    return run


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime
