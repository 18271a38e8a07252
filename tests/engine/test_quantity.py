"""Our quantity parser agrees with the Kubernetes client's (which the engine may not import)."""

from __future__ import annotations

from fractions import Fraction

import pytest
from kubernetes.utils import parse_quantity as reference

from libinject.engine.quantity import format_bytes, format_millicores, parse_quantity, to_units

SAMPLES = ["1", "0", "100m", "1.5", "250m", "2Gi", "512Mi", "1k", "1M", "1e3", "1.5Gi", ".5",
           "10n", "3u", "7Ki", "1Ti", "1E", "12345"]  # fmt: skip


@pytest.mark.parametrize("text", SAMPLES)
def test_agrees_with_the_kubernetes_client(text: str) -> None:
    assert parse_quantity(text) == Fraction(str(reference(text)))


@pytest.mark.parametrize("text", ["", "1Xi", "abc", "1.2.3", "--1"])
def test_rejects_non_quantities(text: str) -> None:
    with pytest.raises(ValueError, match="not a quantity"):
        parse_quantity(text)


def test_units_round_up_and_format() -> None:
    assert to_units("cpu", "0.3333") == 334
    assert to_units("cpu", 2) == 2000
    assert to_units("memory", "1.5Ki") == 1536
    assert format_millicores(334) == "334m"
    assert format_bytes(3 * 2**20) == "3Mi"
    assert format_bytes(1000) == "1000"
