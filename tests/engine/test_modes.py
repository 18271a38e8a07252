"""What a policy's injection mode becomes in the pod: `auto` follows the CSI driver's presence."""

from __future__ import annotations

import json

import pytest

from builders import pod, policy, run
from libinject.api.types import Mode
from libinject.engine.inject import Result
from libinject.engine.settings import EngineSettings, LibrarySettings

REGISTERED = EngineSettings(libraries=LibrarySettings(csi_registered=True))
ABSENT = EngineSettings()


def _mode(result: Result) -> str:
    (record,) = json.loads(result.pod["metadata"]["annotations"]["libinject.dev/injected"])
    return str(record["mode"])


def _volume(result: Result) -> dict[str, object]:
    (volume,) = [v for v in result.pod["spec"]["volumes"] if v["name"] == "libinject-python"]
    return dict(volume)


def test_auto_is_csi_once_the_driver_is_registered() -> None:
    """With the CSIDriver object present, an `auto` policy gets the driver's inline volume (one
    copy per node): no emptyDir and no copy container."""
    result = run(pod(), policy(injection={"mode": "auto"}), settings=REGISTERED)
    assert _mode(result) == "csi"
    volume = _volume(result)
    assert volume["csi"] == {
        "driver": "csi.libinject.dev",
        "readOnly": True,
        "volumeAttributes": {
            "image": "localhost:5000/libinject/python-ddtrace:3.12.0",
            "language": "python",
        },
    }
    assert not result.pod["spec"].get("initContainers")


def test_auto_is_the_operators_default_without_the_driver() -> None:
    """Without it, `auto` is the operator's default mode: the emptyDir and its copy container."""
    result = run(pod(), policy(injection={"mode": "auto"}), settings=ABSENT)
    assert _mode(result) == "init-container"
    assert "emptyDir" in _volume(result)
    assert [c["name"] for c in result.pod["spec"]["initContainers"]] == ["libinject-python"]


@pytest.mark.parametrize("mode", [Mode.INIT_CONTAINER, Mode.CSI, Mode.IMAGE_VOLUME])
def test_an_explicit_mode_is_kept_whether_or_not_the_driver_is_registered(mode: Mode) -> None:
    for settings in (REGISTERED, ABSENT):
        result = run(pod(), policy(injection={"mode": str(mode)}), settings=settings)
        assert _mode(result) == str(mode)
