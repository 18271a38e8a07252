"""Percentiles and the machine description shared by the benchmarks."""

from __future__ import annotations

import json
import math
import os
import platform
import sys
from collections.abc import Sequence
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
