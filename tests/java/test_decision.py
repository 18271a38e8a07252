"""The launcher's five checks with simulated facts (any Java version, any program, any bundle),
answered by the launcher's own Decision class in real JVMs (apps/probe/DecisionProbe.java)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from java.decisions import CASES, answers
from java.jvms import Jvm


@pytest.fixture(scope="session")
def answered(probe: Path) -> Callable[[Jvm], dict[str, str]]:
    """A JVM's answer to every case, by case id: one probe run per JVM."""
    known: dict[Jvm, dict[str, str]] = {}

    def of(jvm: Jvm) -> dict[str, str]:
        if jvm not in known:
            replies = answers(jvm, probe, [facts for _, facts, _ in CASES])
            known[jvm] = {case: reply for (case, _, _), reply in zip(CASES, replies, strict=True)}
        return known[jvm]

    return of


@pytest.mark.parametrize(
    ("case", "expected"),
    [(case, expected) for case, _, expected in CASES],
    ids=[case for case, _, _ in CASES],
)
def test_decision(
    jdk: Jvm, answered: Callable[[Jvm], dict[str, str]], case: str, expected: str
) -> None:
    """The launcher's Decision answers each case exactly: admitted, or refused with the reason
    its debug line gives, the first failing check winning."""
    assert answered(jdk)[case] == expected
