"""The benchmarks' paired statistics (pure code): what a ratio or difference per round and its
interval mean, on samples whose answer is known by construction."""

from __future__ import annotations

import operator

import pytest
from bench.stats import paired_difference_ms, paired_ratio


def test_the_standard_library_operator_module_is_the_one_imported() -> None:
    """The repository root is on the tests' path for `bench`; its operator/ directory (the
    package's home) must not shadow the standard library's module."""
    assert operator.add(2, 3) == 5


def test_a_constant_ratio_has_a_zero_width_interval() -> None:
    """Every round twice as slow: the median is 2 and noise gave it no spread."""
    first = [2_000, 4_000, 6_000, 8_000, 10_000]
    second = [1_000, 2_000, 3_000, 4_000, 5_000]
    assert paired_ratio(first, second) == {"p50": 2.0, "ci95_low": 2.0, "ci95_high": 2.0}


def test_pairing_cancels_noise_that_hits_a_whole_round() -> None:
    """Rounds of very different speed (the machine was busy in some) with the same 1 ms added
    each time: the medians alone would mix the rounds up, the paired difference is exactly 1 ms."""
    second = [10_000_000, 90_000_000, 20_000_000, 70_000_000, 30_000_000, 50_000_000]
    first = [value + 1_000_000 for value in second]
    assert paired_difference_ms(first, second) == {"p50": 1.0, "ci95_low": 1.0, "ci95_high": 1.0}


def test_the_interval_is_the_order_statistics_around_the_median() -> None:
    """100 rounds whose differences are 1..100 ms: the median is 50.5 ms and the 95% interval is
    the 40th and 60th values (ranks 50 -+ 1.96 * 10 / 2 = 40.2 and 59.8, rounded outwards)."""
    second = [0] * 100
    first = [(value + 1) * 1_000_000 for value in reversed(range(100))]
    assert paired_difference_ms(first, second) == {"p50": 50.5, "ci95_low": 40.0, "ci95_high": 60.0}


def test_a_single_round_gives_its_own_value_as_the_interval() -> None:
    """Too few rounds for an interval: both ends are the one value (never an index error)."""
    assert paired_ratio([3], [2]) == {"p50": 1.5, "ci95_low": 1.5, "ci95_high": 1.5}


def test_rounds_must_pair_up() -> None:
    """Samples of different lengths are a measuring mistake, refused rather than truncated."""
    with pytest.raises(ValueError, match="zip"):
        paired_ratio([1, 2], [1])
