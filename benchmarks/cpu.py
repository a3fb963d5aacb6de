"""Cores and CPU time from ``/proc``: pinning, CPU per process tree, an idle machine.

Linux only, as the benchmarks are. Times are in seconds of CPU.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "CoreTimes",
    "cores",
    "pin_tree",
    "read_cores",
    "tree_cpu",
    "tree_pids",
    "wait_idle",
]

_TICK = float(os.sysconf("SC_CLK_TCK"))
_PROC = Path("/proc")


def cores() -> list[int]:
    """The cores this process may run on."""
    return sorted(os.sched_getaffinity(0))


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of ``/proc/PID/stat`` after the command name (field 3 onwards)."""
    try:
        text = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in _PROC.iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        if fields is not None:
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    return children


def tree_pids(roots: Iterable[int]) -> set[int]:
    """The processes ``roots`` and all their descendants, as they are now."""
    children = _children_map()
    found: set[int] = set()
    todo = [pid for pid in roots if (_PROC / str(pid)).exists()]
    while todo:
        pid = todo.pop()
        if pid not in found:
            found.add(pid)
            todo.extend(children.get(pid, ()))
    return found


def tree_cpu(roots: Iterable[int]) -> float:
    """User plus system CPU seconds used so far by ``roots`` and their descendants."""
    ticks = 0
    for pid in tree_pids(roots):
        fields = _stat_fields(pid)
        if fields is not None:
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / _TICK


def pin_tree(root: int, cpus: set[int]) -> None:
    """Pin every thread of ``root`` and of its descendants to ``cpus``."""
    for pid in tree_pids([root]):
        try:
            tids = [int(t.name) for t in (_PROC / str(pid) / "task").iterdir()]
        except OSError:
            continue
        for tid in tids:
            with contextlib.suppress(OSError):  # the thread ended meanwhile
                os.sched_setaffinity(tid, cpus)


@dataclass(frozen=True)
class CoreTimes:
    """Cumulative seconds per core: busy (user, nice, system) and stolen by the host."""

    busy: dict[int, float]
    steal: dict[int, float]

    def minus(self, before: CoreTimes) -> CoreTimes:
        return CoreTimes(
            {c: v - before.busy.get(c, 0.0) for c, v in self.busy.items()},
            {c: v - before.steal.get(c, 0.0) for c, v in self.steal.items()},
        )


def read_cores() -> CoreTimes:
    """Per-core times from ``/proc/stat`` (interrupt time is left out: the kernel
    spends it on the load itself and charges it to no process)."""
    busy: dict[int, float] = {}
    steal: dict[int, float] = {}
    for line in (_PROC / "stat").read_text().splitlines():
        name, *values = line.split()
        if not name.startswith("cpu") or name == "cpu":
            continue
        ticks = [int(v) for v in values]
        core = int(name[3:])
        busy[core] = (ticks[0] + ticks[1] + ticks[2]) / _TICK
        steal[core] = (ticks[7] if len(ticks) > 7 else 0) / _TICK
    return CoreTimes(busy, steal)


def wait_idle(max_wait: float, *, threshold: float = 0.15, window: float = 0.5) -> bool:
    """Wait until every core was busy less than ``threshold`` of a ``window``;
    give up after ``max_wait`` seconds. True when the machine was idle."""
    deadline = time.monotonic() + max_wait
    while True:
        before = read_cores()
        time.sleep(window)
        used = read_cores().minus(before)
        if all(v / window < threshold for v in used.busy.values()):
            return True
        if time.monotonic() >= deadline:
            return False
