"""The pod annotation libinject.dev/mode: a delivery mode granted when the winning policy's
injection.allowedModes names it and the cluster can deliver it, refused and recorded otherwise
(the policy's mode then applies), as version requests are."""

from __future__ import annotations

import json
from typing import Any

import pytest

from builders import PYTHON, pod, policy, run
from libinject.api.types import Mode
from libinject.engine.decision import Code
from libinject.engine.settings import EngineSettings, ImageVolumeSupport, LibrarySettings

CSI_CLUSTER = EngineSettings(libraries=LibrarySettings(csi_registered=True))
IMAGE_CLUSTER = EngineSettings(
    libraries=LibrarySettings(image_volumes=ImageVolumeSupport(available=True, reason="v1.35"))
)


def _asking(mode: str) -> dict[str, Any]:
    return pod(annotations={"libinject.dev/mode": mode})


def _record(result: Any) -> dict[str, Any]:
    [record] = json.loads(result.pod["metadata"]["annotations"]["libinject.dev/injected"])
    return dict(record)


def test_an_allowed_mode_is_granted_and_recorded() -> None:
    """A csi policy whose pods may ask for a copy: the pod that asks gets an init container."""
    rule = policy(injection={"mode": "csi", "allowedModes": ["init-container"]})
    result = run(_asking("init-container"), rule, settings=CSI_CLUSTER)
    [choice] = result.decision.injected
    assert choice.mode is Mode.INIT_CONTAINER
    assert choice.mode_request is not None
    assert choice.mode_request.code is Code.MODE_REQUESTED
    assert [c["name"] for c in result.pod["spec"]["initContainers"]] == ["libinject-python"]
    assert _record(result)["modeRequested"] == "libinject.dev/mode='init-container' is allowed"
    assert "csi" not in json.dumps(result.pod["spec"]["volumes"])


def test_a_pod_that_asks_nothing_gets_the_policys_mode() -> None:
    rule = policy(injection={"mode": "csi", "allowedModes": ["init-container"]})
    [choice] = run(pod(), rule, settings=CSI_CLUSTER).decision.injected
    assert (choice.mode, choice.mode_request) == (Mode.CSI, None)


@pytest.mark.parametrize(
    ("asked", "injection", "settings", "why"),
    [
        ("csi", {"mode": "init-container"}, CSI_CLUSTER, "allowedModes is [none]"),
        ("image-volume", {"mode": "init-container", "allowedModes": ["csi"]}, IMAGE_CLUSTER,
         "allowedModes is [csi]"),
        ("auto", {"allowedModes": ["csi"]}, CSI_CLUSTER, "not a mode"),
        ("CSI", {"allowedModes": ["csi"]}, CSI_CLUSTER, "not a mode"),
        ("csi\n", {"allowedModes": ["csi"]}, CSI_CLUSTER, "not a mode"),
        ("csi", {"mode": "init-container", "allowedModes": ["csi"]}, EngineSettings(),
         "the CSI driver csi.libinject.dev is not registered"),
        ("image-volume", {"mode": "init-container", "allowedModes": ["image-volume"]},
         EngineSettings(), "no image volumes"),
    ],
    ids=["none-allowed", "not-allowed", "auto", "case", "newline", "no-csi-driver",
         "no-image-volumes"],
)  # fmt: skip
def test_a_refused_request_keeps_the_policys_mode_and_says_why(
    asked: str, injection: dict[str, Any], settings: EngineSettings, why: str
) -> None:
    rule = policy(injection=injection)
    result = run(_asking(asked), rule, settings=settings)
    [choice] = result.decision.injected
    expected = run(pod(), rule, settings=settings).decision.injected[0].mode
    assert choice.mode is expected
    assert choice.mode_request is not None
    assert choice.mode_request.code is Code.MODE_NOT_ALLOWED
    assert why in choice.mode_request.message
    assert why in _record(result)["modeRefused"]


def test_csi_is_refused_for_an_image_its_plugin_would_not_pull() -> None:
    """A policy image outside the operator's registry: the plugin would publish an empty volume."""
    lib = {**PYTHON, "image": "registry.example/own/python:4.16.0"}
    rule = policy(libraries=[lib], injection={"mode": "init-container", "allowedModes": ["csi"]})
    [choice] = run(_asking("csi"), rule, settings=CSI_CLUSTER).decision.injected
    assert choice.mode is Mode.INIT_CONTAINER
    assert choice.mode_request is not None
    assert "the CSI plugin pulls only under localhost:5000/libinject" in choice.mode_request.message
