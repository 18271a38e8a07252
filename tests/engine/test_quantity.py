"""Our quantity parser agrees with the Kubernetes client's (which the engine may not import)."""

from __future__ import annotations

from fractions import Fraction

import pytest
from kubernetes.utils import parse_quantity as reference

from libinject.engine.quantity import format_bytes, format_cpu, parse_quantity

SAMPLES = ["1", "0", "100m", "1.5", "250m", "2Gi", "512Mi", "1k", "1M", "1e3", "1.5Gi", ".5",
           "10n", "3u", "7Ki", "1Ti", "1E", "12345"]  # fmt: skip


@pytest.mark.parametrize("text", SAMPLES)
def test_agrees_with_the_kubernetes_client(text: str) -> None:
    assert parse_quantity(text) == Fraction(str(reference(text)))


@pytest.mark.parametrize("text", ["", "1Xi", "abc", "1.2.3", "--1"])
def test_rejects_non_quantities(text: str) -> None:
    with pytest.raises(ValueError, match="not a quantity"):
        parse_quantity(text)


def test_formatting_rounds_up() -> None:
    assert format_cpu(Fraction(1, 3)) == "334m"
    assert format_bytes(Fraction(3 * 2**20)) == "3Mi"
    assert format_bytes(Fraction(1000)) == "1000"
