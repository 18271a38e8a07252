"""The start-up benchmarks' verdicts (pure code), on timings whose answer is known by
construction: injected against by hand, and the Node.js loader's own cost."""

from __future__ import annotations

from bench.nodejs_startup import LOADER_GOAL_MS, loader_verdict
from bench.stats import against_by_hand, median_ratio

MS = 1_000_000


def test_the_ratio_goal_is_met_only_when_the_whole_interval_is_under_it() -> None:
    """Injected 4% slower in every round meets a 1.05 goal; 6% slower in every round does
    not, although both cases' medians are close."""
    by_hand = [100 * MS, 300 * MS, 200 * MS, 400 * MS, 250 * MS]
    within = against_by_hand(
        {"by_hand": by_hand, "injected": [t * 104 // 100 for t in by_hand]}, goal=1.05
    )
    beyond = against_by_hand(
        {"by_hand": by_hand, "injected": [t * 106 // 100 for t in by_hand]}, goal=1.05
    )
    assert within["injected_over_by_hand_rounds"] == {
        "p50": 1.04,
        "ci95_low": 1.04,
        "ci95_high": 1.04,
    }
    assert within["ratio_goal_met"] is True
    assert beyond["ratio_goal_met"] is False
    assert within["injected_minus_by_hand_ms"] == {"p50": 10.0, "ci95_low": 4.0, "ci95_high": 16.0}


def test_the_median_ratio_compares_the_cases_medians() -> None:
    """Medians 30 and 20 (whatever the order of the samples): 1.5."""
    assert median_ratio([50, 30, 10], [20, 5, 90]) == 1.5


def test_the_loader_cost_is_against_the_stub_by_hand_where_it_starts_it() -> None:
    """Where the loader starts the stub, its cost is the difference with the stub preloaded by
    hand (2 ms here), not with nothing preloaded (7 ms); under 5 ms meets the goal."""
    plain = [30 * MS, 40 * MS, 35 * MS, 50 * MS]
    timings = {
        "plain": plain,
        "stub_by_hand": [t + 5 * MS for t in plain],
        "stub_via_loader": [t + 7 * MS for t in plain],
    }
    verdict = loader_verdict(timings, stands_down=False)
    assert verdict["loader_own_ms"] == {"p50": 2.0, "ci95_low": 2.0, "ci95_high": 2.0}
    assert verdict["loader_goal_ms"] == LOADER_GOAL_MS
    assert verdict["loader_goal_met"] is True
    assert verdict["loader_stands_down"] is False


def test_where_the_loader_stands_down_its_cost_is_against_nothing_preloaded() -> None:
    """On a Node the bundle does not serve, the stub never starts: the loader's cost is what it
    adds to a process with nothing preloaded (7 ms here), and no goal is claimed."""
    plain = [30 * MS, 40 * MS, 35 * MS, 50 * MS]
    timings = {
        "plain": plain,
        "stub_by_hand": [t + 5 * MS for t in plain],
        "stub_via_loader": [t + 7 * MS for t in plain],
    }
    verdict = loader_verdict(timings, stands_down=True)
    assert verdict["stand_down_ms"] == {"p50": 7.0, "ci95_low": 7.0, "ci95_high": 7.0}
    assert "loader_goal_met" not in verdict
