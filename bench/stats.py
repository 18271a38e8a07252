"""Percentiles, paired comparisons and the machine description shared by the benchmarks."""

from __future__ import annotations

import json
import math
import os
import platform
import statistics
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any


def percentile(ordered: Sequence[int], percent: float) -> int:
    """Nearest-rank percentile: the smallest sample with `percent` of samples at or below it."""
    rank = max(1, math.ceil(percent / 100 * len(ordered)))
    return ordered[rank - 1]


def summarize(timings_ns: Sequence[int]) -> dict[str, float]:
    ordered = sorted(timings_ns)
    if not ordered:
        return {"count": 0}
    summary: dict[str, float] = {"count": len(ordered)}
    for name, percent in (("p50", 50), ("p90", 90), ("p99", 99)):
        summary[f"{name}_us"] = round(percentile(ordered, percent) / 1000, 1)
    summary["max_us"] = round(ordered[-1] / 1000, 1)
    summary["mean_us"] = round(sum(ordered) / len(ordered) / 1000, 1)
    return summary


def paired_ratio(numerator: Sequence[int], denominator: Sequence[int]) -> dict[str, float]:
    """Round i's `numerator[i] / denominator[i]`: the median of those ratios and its 95%
    confidence interval (see `_median_interval`)."""
    return _median_interval(numerator, denominator, combine=lambda a, b: a / b, digits=3)


def paired_difference_ms(minuend: Sequence[int], subtrahend: Sequence[int]) -> dict[str, float]:
    """Round i's `minuend[i] - subtrahend[i]` (nanoseconds in, milliseconds out): the median
    of those differences and its 95% confidence interval."""
    return _median_interval(minuend, subtrahend, combine=lambda a, b: (a - b) / 1e6, digits=2)


def median_ratio(numerator: Sequence[int], denominator: Sequence[int]) -> float:
    """The ratio of two cases' medians (nearest-rank), to 3 digits."""
    return round(percentile(sorted(numerator), 50) / percentile(sorted(denominator), 50), 3)


def against_by_hand(timings: Mapping[str, Sequence[int]], *, goal: float) -> dict[str, object]:
    """A start-up benchmark's verdict on cases sampled in the same rounds: each case's summary,
    and `injected` (the tracer as libinject starts it) against `by_hand` (the same tracer given
    as its docs say): the ratio of the medians, the per-round ratio and difference with their
    intervals. The goal (a ratio) counts as met only when the whole interval is at or under it,
    so that noise cannot explain it."""
    rounds = paired_ratio(timings["injected"], timings["by_hand"])
    return {
        "cases": {name: summarize(samples) for name, samples in timings.items()},
        "injected_over_by_hand": median_ratio(timings["injected"], timings["by_hand"]),
        "injected_over_by_hand_rounds": rounds,
        "ratio_goal": goal,
        "ratio_goal_met": rounds["ci95_high"] <= goal,
        "injected_minus_by_hand_ms": paired_difference_ms(timings["injected"], timings["by_hand"]),
    }


def _median_interval(
    first: Sequence[int],
    second: Sequence[int],
    *,
    combine: Callable[[int, int], float],
    digits: int,
) -> dict[str, float]:
    """Samples taken in rounds (each round runs every case once, so noise that lasts a round
    hits both alike) give one paired value per round. The interval is the pair of order
    statistics at ranks n/2 -+ 1.96 sqrt(n)/2 (the normal approximation of the binomial,
    1-based): no assumption about the distribution of the values."""
    values = sorted(combine(a, b) for a, b in zip(first, second, strict=True))
    spread = 1.96 * math.sqrt(len(values)) / 2
    low = max(1, math.floor(len(values) / 2 - spread))
    high = min(len(values), math.ceil(len(values) / 2 + spread))
    return {
        "p50": round(statistics.median(values), digits),
        "ci95_low": round(values[low - 1], digits),
        "ci95_high": round(values[high - 1], digits),
    }


def environment(**notes: str) -> dict[str, Any]:
    """The machine and interpreter, plus how this benchmark measured (`notes`)."""
    return {
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        **notes,
    }


def write_results(path: Path, document: dict[str, Any]) -> None:
    """A benchmark's JSON document, under bench/results/."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n")
