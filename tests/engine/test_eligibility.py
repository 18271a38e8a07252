"""Whether a pod is considered at all: namespace opt-in, exclusions, pod opt-out."""

from __future__ import annotations

import pytest

from builders import container, pod, run
from libinject.engine.decision import Code
from libinject.engine.index import Namespace
from libinject.engine.inject import SKIPPED_ANNOTATION
from libinject.engine.settings import EngineSettings, NamespaceSettings

MUTATE_ALL = EngineSettings(namespaces=NamespaceSettings(mutate_unlabelled=True))


@pytest.mark.parametrize(
    ("name", "labels", "settings", "code"),
    [
        pytest.param("apps", {"libinject.dev/inject": "enabled"}, None, Code.INJECTED, id="enabled"),
        pytest.param("apps", {}, None, Code.NAMESPACE_NOT_ENABLED, id="unlabelled"),
        pytest.param("apps", {}, MUTATE_ALL, Code.INJECTED, id="unlabelled-with-setting"),
        pytest.param("apps", {"libinject.dev/inject": "disabled"}, MUTATE_ALL,
                     Code.NAMESPACE_DISABLED, id="disabled-beats-setting"),
        pytest.param("apps", {"libinject.dev/inject": "yes"}, None, Code.NAMESPACE_NOT_ENABLED,
                     id="other-value-is-not-enabled"),
        pytest.param("kube-system", {"libinject.dev/inject": "enabled"}, MUTATE_ALL,
                     Code.NAMESPACE_EXCLUDED, id="kube-system-never"),
        pytest.param("libinject-system", {"libinject.dev/inject": "enabled"}, MUTATE_ALL,
                     Code.NAMESPACE_EXCLUDED, id="own-namespace-never"),
        pytest.param("libinject-csi", {"libinject.dev/inject": "enabled"}, MUTATE_ALL,
                     Code.NAMESPACE_EXCLUDED, id="csi-plugin-namespace-never"),
    ],
)  # fmt: skip
def test_namespace_opt_in(
    name: str, labels: dict[str, str], settings: EngineSettings | None, code: Code
) -> None:
    result = run(pod(), namespace=Namespace(name, labels), settings=settings)
    assert result.decision.reason.code is code


@pytest.mark.parametrize(
    "labels", [{}, {"libinject.dev/inject": "disabled"}], ids=["unlabelled", "disabled"]
)
def test_namespace_level_refusal_leaves_the_pod_untouched(labels: dict[str, str]) -> None:
    """Pods outside opted-in namespaces get no patch at all, not even an annotation."""
    result = run(pod(), namespace=Namespace("apps", labels))
    assert result.patch == []
    assert result.pod == pod()


@pytest.mark.parametrize(
    ("target", "code"),
    [
        pytest.param(pod(annotations={"libinject.dev/inject": "false"}), Code.POD_OPTED_OUT,
                     id="opted-out"),
        pytest.param(pod(os={"name": "windows"}), Code.WINDOWS_POD, id="windows-os-field"),
        pytest.param(pod(nodeSelector={"kubernetes.io/os": "windows"}), Code.WINDOWS_POD,
                     id="windows-node-selector"),
        pytest.param({"metadata": {"name": "empty"}, "spec": {"containers": []}},
                     Code.NO_CONTAINERS, id="no-containers"),
    ],
)  # fmt: skip
def test_pod_level_skips_are_recorded_on_the_pod(target: dict[str, object], code: Code) -> None:
    """The pod opt-out always wins, and every skip says why in an annotation."""
    result = run(target)
    assert result.decision.reason.code is code
    annotations = result.pod["metadata"]["annotations"]
    assert annotations[SKIPPED_ANNOTATION].startswith(code.value)
    assert result.pod["metadata"]["labels"]["libinject.dev/instrumented"] == "false"
    assert result.pod["spec"] == target["spec"]


def test_opt_out_wins_over_a_version_request() -> None:
    target = pod(
        container(),
        annotations={"libinject.dev/inject": "false", "libinject.dev/python.version": "3.1.0"},
    )
    assert run(target).decision.reason.code is Code.POD_OPTED_OUT
