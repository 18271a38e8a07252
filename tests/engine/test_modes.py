"""What a policy's injection mode becomes in the pod: `auto` is the cheapest the cluster serves
(the CSI driver, else image volumes, else the operator's default), and says why on the pod."""

from __future__ import annotations

import json

import pytest

from builders import ENABLED, PYTHON, pod, policy, run
from libinject.api.types import Mode
from libinject.engine import signature
from libinject.engine.index import Namespace
from libinject.engine.inject import Result
from libinject.engine.settings import EngineSettings, ImageVolumeSupport, LibrarySettings

REGISTERED = EngineSettings(libraries=LibrarySettings(csi_registered=True))
ABSENT = EngineSettings()
MOUNTED = ImageVolumeSupport(True, "the API server is v1.36.3 and every node mounts them")
IMAGE_VOLUMES = EngineSettings(libraries=LibrarySettings(image_volumes=MOUNTED))


def _record(result: Result) -> dict[str, object]:
    (record,) = json.loads(result.pod["metadata"]["annotations"]["libinject.dev/injected"])
    return dict(record)


def _mode(result: Result) -> str:
    return str(_record(result)["mode"])


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
            "image": "localhost:5000/libinject/python-ddtrace:4.16.0",
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


def test_auto_is_an_image_volume_where_every_node_mounts_them_and_says_why() -> None:
    """Without the driver but with image volumes on every node, `auto` mounts the library image
    itself (no copy container), and the pod's record carries the cluster's reason."""
    result = run(pod(), policy(injection={"mode": "auto"}), settings=IMAGE_VOLUMES)
    assert _mode(result) == "image-volume"
    assert _volume(result)["image"] == {
        "reference": "localhost:5000/libinject/python-ddtrace:4.16.0",
        "pullPolicy": "IfNotPresent",
    }
    assert not result.pod["spec"].get("initContainers")
    assert _record(result)["modeReason"] == f"no CSI driver; image volumes: {MOUNTED.reason}"


def test_the_csi_driver_wins_over_image_volumes() -> None:
    both = LibrarySettings(csi_registered=True, image_volumes=MOUNTED)
    result = run(pod(), policy(injection={"mode": "auto"}), settings=EngineSettings(libraries=both))
    assert _mode(result) == "csi"
    assert _record(result)["modeReason"] == "the CSI driver csi.libinject.dev is registered"


def test_auto_falls_back_with_the_first_nodes_reason() -> None:
    """A cluster where a node cannot mount image volumes gets the default mode, and the pod says
    which node stopped it."""
    short = ImageVolumeSupport(False, "node b: container runtime containerd://1.7.27, not ...")
    settings = EngineSettings(libraries=LibrarySettings(image_volumes=short))
    result = run(pod(), policy(injection={"mode": "auto"}), settings=settings)
    assert _mode(result) == "init-container"
    assert _record(result)["modeReason"] == (
        f"no CSI driver; no image volumes: {short.reason}; the default mode"
    )


def test_image_volumes_can_be_turned_off_for_auto() -> None:
    """autoImageVolumes off (a gate turned off by hand, which no version shows) keeps `auto` on
    the default mode even where every node would mount them."""
    off = LibrarySettings(image_volumes=MOUNTED, auto_image_volumes=False)
    result = run(pod(), policy(injection={"mode": "auto"}), settings=EngineSettings(libraries=off))
    assert _mode(result) == "init-container"
    assert "autoImageVolumes" in str(_record(result)["modeReason"])


def test_a_mode_the_policy_sets_has_no_reason_recorded() -> None:
    result = run(pod(), policy(injection={"mode": "csi"}), settings=IMAGE_VOLUMES)
    assert "modeReason" not in _record(result)


@pytest.mark.parametrize("mode", [Mode.INIT_CONTAINER, Mode.CSI, Mode.IMAGE_VOLUME])
def test_an_explicit_mode_is_kept_whether_or_not_the_driver_is_registered(mode: Mode) -> None:
    for settings in (REGISTERED, ABSENT, IMAGE_VOLUMES):
        result = run(pod(), policy(injection={"mode": str(mode)}), settings=settings)
        assert _mode(result) == str(mode)


KEY = b"0123456789abcdef" * 4
SIGNING = EngineSettings(libraries=LibrarySettings(csi_registered=True, csi_key=KEY))


def _attributes(result: Result) -> dict[str, str]:
    return dict(_volume(result)["csi"]["volumeAttributes"])  # type: ignore[index]


def test_csi_volumes_are_signed_for_the_pods_namespace() -> None:
    """With the operator's key the volume carries a signature the CSI plugin verifies for this
    namespace, image and language only: another namespace (where the pod could be copied to),
    image or language does not verify."""
    attributes = _attributes(run(pod(), policy(injection={"mode": "csi"}), settings=SIGNING))
    image, language = attributes["image"], attributes["language"]
    token = attributes[signature.ATTRIBUTE]
    assert set(attributes) == {"image", "language", signature.ATTRIBUTE}
    assert signature.verify(KEY, token, namespace=ENABLED.name, image=image, language=language)
    assert not signature.verify(KEY, token, namespace="other", image=image, language=language)
    assert not signature.verify(
        KEY, token, namespace=ENABLED.name, image=image + "1", language=language
    )
    assert not signature.verify(KEY, token, namespace=ENABLED.name, image=image, language="java")
    assert not signature.verify(
        b"k" * 64, token, namespace=ENABLED.name, image=image, language=language
    )


def test_the_signature_follows_the_namespace() -> None:
    """The same pod and policy in two namespaces get two different signatures."""
    other = Namespace("web", dict(ENABLED.labels))
    first = _attributes(run(pod(), policy(injection={"mode": "csi"}), settings=SIGNING))
    second = _attributes(
        run(pod(), policy(injection={"mode": "csi"}), namespace=other, settings=SIGNING)
    )
    assert first[signature.ATTRIBUTE] != second[signature.ATTRIBUTE]


def test_without_a_key_the_volume_is_unsigned() -> None:
    """The offline CLI has no key: no signature attribute (the plugin will refuse the volume)."""
    attributes = _attributes(run(pod(), policy(injection={"mode": "csi"}), settings=REGISTERED))
    assert signature.ATTRIBUTE not in attributes


def test_signatures_are_unambiguous() -> None:
    """Fields are encoded as a list, so moving characters between them changes the signature."""
    one = signature.sign(KEY, namespace="a", image="b/c:1", language="d")
    two = signature.sign(KEY, namespace="ab", image="/c:1", language="d")
    assert one != two
    assert one.startswith("v1.")


def test_auto_copies_a_policy_image_the_csi_plugin_would_not_pull() -> None:
    """With the CSI driver registered, `auto` means csi for the default images (under the
    operator's registry, the plugin's one allowed repository) but init-container for a policy's
    own image elsewhere, which the plugin would refuse and publish empty; the record says why.
    A policy that asks for csi itself keeps it."""
    settings = EngineSettings(libraries=LibrarySettings(csi_registered=True))
    ours = run(pod(), policy(injection={"mode": "auto"}), settings=settings)
    assert ours.decision.injected[0].mode is Mode.CSI
    mirror = [{**PYTHON, "image": "mirror.example/apm/python:4.16.0"}]
    copied = run(pod(), policy(libraries=mirror, injection={"mode": "auto"}), settings=settings)
    (choice,) = copied.decision.injected
    assert choice.mode is Mode.INIT_CONTAINER
    assert choice.mode_reason == (
        "the CSI driver csi.libinject.dev is registered, but its plugin pulls only under "
        "localhost:5000/libinject and mirror.example/apm/python:4.16.0 is not there: "
        "init-container"
    )
    record = json.loads(copied.pod["metadata"]["annotations"]["libinject.dev/injected"])
    assert record[0]["modeReason"] == choice.mode_reason
    asked = run(pod(), policy(libraries=mirror, injection={"mode": "csi"}), settings=settings)
    assert asked.decision.injected[0].mode is Mode.CSI
