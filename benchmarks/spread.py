"""A set of per-round figures as its median, its range, and how sure that median is.

``stats_of`` gives the median with the min-max spread that every table prints.
``bootstrap_median`` gives the percentile bootstrap of the median: draw the
rounds again with replacement, take each draw's median, and keep the middle 95 %
of those medians. It tells a median that is clear of a target from one that sits
on it (a row whose median reads 0.902 with an interval of 0.88-0.93 is on its
line, not met by a margin). The draws are seeded, so the same rounds always
give the same interval. ``met_text`` is the tables' ``met`` column: the
median's verdict, marked "(on its line)" when the interval holds the target.
"""

from __future__ import annotations

import random
import statistics
from collections.abc import Sequence

__all__ = ["DRAWS", "MIN_ROUNDS", "bootstrap_median", "met_text", "stats_of"]

#: resamples per interval
DRAWS = 5000
#: fewer rounds than this give no interval (a resample of one or two says nothing)
MIN_ROUNDS = 3


def stats_of(values: Sequence[float]) -> dict[str, float] | None:
    """The median and the min-max spread; ``None`` for no values."""
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def bootstrap_median(values: Sequence[float], level: float = 0.95) -> tuple[float, float] | None:
    """The percentile bootstrap interval of the median of ``values`` at ``level``
    (:data:`DRAWS` seeded resamples); ``None`` for fewer than :data:`MIN_ROUNDS`."""
    if len(values) < MIN_ROUNDS:
        return None
    rounds = sorted(values)  # the same rounds in any order give the same interval
    draw = random.Random(0).choices
    medians = sorted(statistics.median(draw(rounds, k=len(rounds))) for _ in range(DRAWS))
    cut = round(DRAWS * (1 - level) / 2)
    return medians[cut], medians[DRAWS - 1 - cut]


def met_text(
    met: bool | None,
    interval: tuple[float, float] | None = None,
    target: float | None = None,
) -> str:
    """The ``met`` column: ``met`` judges the median (as the targets are set); "(on its
    line)" follows when the median's interval holds the target, so that the run cannot
    tell the row met from not met."""
    if met is None:
        return "-"
    text = "met" if met else "NOT met"
    if interval is not None and target is not None and interval[0] <= target <= interval[1]:
        text += " (on its line)"
    return text
