"""Pods may pick a library version by annotation, only within the policy's allowedVersions."""

from __future__ import annotations

import json

import pytest

from builders import PYTHON, pod, policy, run
from libinject.engine.decision import Code
from libinject.engine.versions import allows


@pytest.mark.parametrize(
    ("pattern", "version", "allowed"),
    [
        ("*", "9.9.9", True),
        ("3.*", "3.1.0", True),
        ("3.*", "3", True),
        ("3.*", "30.1.0", False),
        ("3.9.*", "3.9.1", True),
        ("3.9.*", "3.10.0", False),
        ("3.9.1", "3.9.1", True),
        ("3.9.1", "3.9.10", False),
        ("3.9.1-rc.1", "3.9.1-rc.1", True),
    ],
)
def test_allows(pattern: str, version: str, allowed: bool) -> None:
    assert allows(pattern, version) is allowed


def _injected(result: object) -> dict[str, object]:
    annotations = result.pod["metadata"]["annotations"]  # type: ignore[attr-defined]
    (record,) = json.loads(annotations["libinject.dev/injected"])
    return record  # type: ignore[no-any-return]


def test_an_allowed_request_picks_version_and_image_tag() -> None:
    lib = {**PYTHON, "allowedVersions": ["3.*"]}
    result = run(
        pod(annotations={"libinject.dev/python.version": "3.9.1"}), policy(libraries=[lib])
    )
    (choice,) = result.decision.injected
    assert choice.version == "3.9.1"
    assert choice.image.endswith("/python-ddtrace:3.9.1")
    assert result.pod["spec"]["initContainers"][0]["image"] == choice.image
    assert _injected(result)["version"] == "3.9.1"


def test_a_refused_request_injects_the_policy_version_and_records_why() -> None:
    lib = {**PYTHON, "allowedVersions": ["3.*"]}
    result = run(
        pod(annotations={"libinject.dev/python.version": "2.21.0"}), policy(libraries=[lib])
    )
    (choice,) = result.decision.injected
    assert choice.version == "3.12.0"
    assert choice.version_reason is not None
    assert choice.version_reason.code is Code.VERSION_NOT_ALLOWED
    record = _injected(result)
    assert record["version"] == "3.12.0"
    assert "2.21.0 refused" in str(record["versionRefused"])


def test_no_allowed_versions_means_no_choice() -> None:
    result = run(pod(annotations={"libinject.dev/python.version": "3.9.1"}), policy())
    assert result.decision.injected[0].version == "3.12.0"


def test_a_pinned_image_refuses_every_request() -> None:
    lib = {**PYTHON, "image": "mirror.example/py:pinned"}
    result = run(
        pod(annotations={"libinject.dev/python.version": "3.9.1"}), policy(libraries=[lib])
    )
    (choice,) = result.decision.injected
    assert (choice.version, choice.image) == ("3.12.0", "mirror.example/py:pinned")
    assert choice.version_reason is not None
    assert "pins the image" in choice.version_reason.message


def test_the_annotation_of_another_language_is_ignored() -> None:
    lib = {**PYTHON, "allowedVersions": ["*"]}
    result = run(pod(annotations={"libinject.dev/java.version": "9.9.9"}), policy(libraries=[lib]))
    assert result.decision.injected[0].version == "3.12.0"
