"""The benchmarks' bootstrap interval of a median (``benchmarks/spread.py``): what the
paired runs print beside each ratio, to tell a row clear of its target from one on it."""

from __future__ import annotations

import importlib.util
import json
import statistics
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

SPREAD = Path(__file__).resolve().parent.parent / "benchmarks" / "spread.py"

#: the memory row's nine rounds, in order, of the paired run in `make bench` (2026-12-02 17:53)
ROUNDS = [0.894, 0.902, 0.880, 0.899, 0.929, 0.903, 0.910, 0.899, 0.935]


@pytest.fixture(scope="module")
def spread() -> ModuleType:
    spec = importlib.util.spec_from_file_location("spread", SPREAD)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("rounds", [[], [0.9], [0.9, 0.95]])
def test_fewer_than_three_rounds_give_no_interval(spread: ModuleType, rounds: list[float]) -> None:
    assert spread.bootstrap_median(rounds) is None


def test_the_interval_holds_the_median_within_the_rounds(spread: ModuleType) -> None:
    low, high = spread.bootstrap_median(ROUNDS)
    assert min(ROUNDS) <= low <= statistics.median(ROUNDS) <= high <= max(ROUNDS)
    assert low < high


def test_the_same_rounds_in_any_order_give_the_same_interval(spread: ModuleType) -> None:
    assert spread.bootstrap_median(ROUNDS) == spread.bootstrap_median(list(reversed(ROUNDS)))
    assert spread.bootstrap_median(ROUNDS) == spread.bootstrap_median(sorted(ROUNDS))


def test_rounds_that_agree_give_an_interval_of_one_point(spread: ModuleType) -> None:
    assert spread.bootstrap_median([0.91] * 9) == (0.91, 0.91)


def test_a_lower_level_gives_a_narrower_interval(spread: ModuleType) -> None:
    wide, narrow = spread.bootstrap_median(ROUNDS), spread.bootstrap_median(ROUNDS, level=0.5)
    assert wide[0] <= narrow[0] <= narrow[1] <= wide[1]


def test_stats_of_gives_the_median_and_the_spread(spread: ModuleType) -> None:
    assert spread.stats_of([]) is None
    assert spread.stats_of([3.0, 1.0, 2.0]) == {"median": 2.0, "min": 1.0, "max": 3.0}


@pytest.mark.parametrize(
    ("met", "interval", "target", "text"),
    [
        (None, None, None, "-"),
        (True, None, 0.90, "met"),  # one round: no interval, the median alone
        (False, None, 0.90, "NOT met"),
        (True, (0.909, 0.922), 0.90, "met"),  # clear of the target
        (False, (0.850, 0.890), 0.90, "NOT met"),  # clearly under it
        (True, (0.891, 0.913), 0.90, "met (on its line)"),  # the median over, the run unsure
        (False, (0.880, 0.905), 0.90, "NOT met (on its line)"),
        (True, (0.900, 0.923), 0.90, "met (on its line)"),  # touching counts as holding it
        (True, (0.70, 1.05), None, "met"),  # a reference row has no target to straddle
    ],
)
def test_the_met_column_marks_a_median_whose_interval_holds_the_target(
    spread: ModuleType,
    met: bool | None,
    interval: tuple[float, float] | None,
    target: float | None,
    text: str,
) -> None:
    assert spread.met_text(met, interval, target) == text


#: prints the start-up row's bound and ``met`` for each list of ratios in argv[1] (JSON); run
#: in the benchmarks folder as its scripts are (its ``apps`` is not the tests' ``apps``)
_STARTUP_ROWS = """
import json, statistics, sys
sys.path.insert(1, sys.argv[2])  # the tests' peers, as the benchmarks' scripts put them
import report
for ratios in json.loads(sys.argv[1]):
    startup = {"gate_s": [0.2] * len(ratios), "bare_s": [0.2] * len(ratios), "ratios": ratios,
               "ratio": {"median": statistics.median(ratios), "min": min(ratios), "max": max(ratios)}}
    row = report.extra_rows(None, startup)[0]
    print(json.dumps([row[2], row[3]]))
"""


def test_the_start_up_row_is_marked_on_its_line_when_its_interval_holds_the_bound() -> None:
    cases = [
        [0.80, 1.20, 1.26, 1.30, 1.57],
        [1.05, 1.10, 1.12, 1.15, 1.20],
        [1.40, 1.45, 1.50, 1.55, 1.60],
        [1.26],  # one start: no interval
    ]
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            _STARTUP_ROWS,
            json.dumps(cases),
            str(SPREAD.parent.parent / "tests"),
        ],
        cwd=SPREAD.parent,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert rows == [
        ["<= 1.30", "met (on its line)"],
        ["<= 1.30", "met"],
        ["<= 1.30", "NOT met"],
        ["<= 1.30", "met"],
    ]
