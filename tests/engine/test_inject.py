"""The shape of an injected pod per mode, and the safety rules around what the pod already has."""

from __future__ import annotations

import json
from typing import Any

import jsonpatch
import pytest

from builders import PYTHON, RESTRICTED, container, pod, policy, run
from libinject.engine.decision import Code

JAVA = {"language": "java", "version": "1.56.0"}


def names(items: list[dict[str, Any]] | None) -> list[str]:
    return [item["name"] for item in items or []]


def test_init_container_mode() -> None:
    result = run(pod(), policy(injection={"mode": "init-container", "sizeLimit": "300Mi"}))
    spec = result.pod["spec"]
    assert spec["volumes"] == [{"name": "libinject-python", "emptyDir": {"sizeLimit": "300Mi"}}]
    (init,) = spec["initContainers"]
    assert init["image"] == "localhost:5000/libinject/python-ddtrace:4.16.0"
    assert init["volumeMounts"] == [{"name": "libinject-python", "mountPath": "/libinject-target"}]
    assert init["command"][:2] == ["/bin/busybox", "cp"]
    assert spec["containers"][0]["volumeMounts"] == [
        {"name": "libinject-python", "mountPath": "/opt/libinject/python", "readOnly": True}
    ]


def test_csi_mode_has_no_copy_step() -> None:
    result = run(pod(), policy(injection={"mode": "csi"}))
    spec = result.pod["spec"]
    assert "initContainers" not in spec
    (volume,) = spec["volumes"]
    assert volume["csi"]["driver"] == "csi.libinject.dev"
    assert volume["csi"]["readOnly"] is True
    assert volume["csi"]["volumeAttributes"]["image"].endswith("python-ddtrace:4.16.0")


def test_image_volume_mode_mounts_the_library_directory() -> None:
    result = run(pod(), policy(injection={"mode": "image-volume"}))
    spec = result.pod["spec"]
    assert "initContainers" not in spec
    assert spec["volumes"][0]["image"]["reference"].endswith("python-ddtrace:4.16.0")
    assert spec["containers"][0]["volumeMounts"][0]["subPath"] == "libinject"


def test_init_containers_go_first_in_language_order() -> None:
    """Ours run before user init containers and native sidecars, so they need no extra room."""
    target = pod(initContainers=[container("migrate"), container("proxy", restartPolicy="Always")])
    result = run(target, policy(libraries=[PYTHON, JAVA]))
    assert names(result.pod["spec"]["initContainers"]) == [
        "libinject-java", "libinject-python", "migrate", "proxy"
    ]  # fmt: skip


def test_restricted_namespace_gets_the_restricted_profile() -> None:
    result = run(pod(), policy(), namespace=RESTRICTED)
    context = result.pod["spec"]["initContainers"][0]["securityContext"]
    assert context == {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"},
        "runAsUser": 65532,
    }


def test_restricted_profile_keeps_the_pod_user() -> None:
    result = run(pod(securityContext={"runAsUser": 1000}), policy(), namespace=RESTRICTED)
    assert "runAsUser" not in result.pod["spec"]["initContainers"][0]["securityContext"]


def test_other_namespaces_get_a_hardened_but_root_tolerant_context() -> None:
    context = run(pod(), policy()).pod["spec"]["initContainers"][0]["securityContext"]
    assert context["allowPrivilegeEscalation"] is False
    assert "runAsNonRoot" not in context


def test_outcome_is_recorded_on_the_pod() -> None:
    """Down to the spec's hash, which says which spec of the policy the pod got."""
    result = run(pod(labels={"app": "web"}), policy("py"))
    meta = result.pod["metadata"]
    assert meta["labels"] == {"app": "web", "libinject.dev/instrumented": "true"}
    assert json.loads(meta["annotations"]["libinject.dev/injected"]) == [
        {
            "containers": ["app"],
            "flavor": "ddtrace",
            "language": "python",
            "mode": "init-container",
            "modeReason": "no CSI driver; no image volumes: not known (the cluster's versions "
            "are not read here); the default mode",
            "policy": "py",
            "specHash": policy("py").spec_hash,
            "version": "4.16.0",
        }
    ]


@pytest.mark.parametrize("mode", ["init-container", "csi", "image-volume"])
def test_second_pass_is_empty(mode: str) -> None:
    """Reinvocation and re-applied pods: a second pass changes nothing."""
    first = run(pod(container(env=[{"name": "PYTHONPATH", "value": "/srv"}])), policy(
        libraries=[PYTHON, JAVA], injection={"mode": mode}
    ))  # fmt: skip
    second = run(first.pod, policy(libraries=[PYTHON, JAVA], injection={"mode": mode}))
    assert second.patch == []
    assert second.pod == first.pod


def test_patch_applies_and_input_is_not_modified() -> None:
    target = pod(container(env=[{"name": "JAVA_TOOL_OPTIONS", "value": "-Xmx1g"}]))
    snapshot = json.loads(json.dumps(target))
    result = run(target, policy(libraries=[PYTHON, JAVA]))
    assert target == snapshot
    assert jsonpatch.apply_patch(snapshot, result.patch) == result.pod


def test_a_user_volume_with_our_name_blocks_that_library() -> None:
    mine = {"name": "libinject-python", "configMap": {"name": "mine"}}
    target = pod(volumes=[mine])
    result = run(target, policy())
    assert result.decision.reason.code is Code.NAME_TAKEN
    assert result.pod["spec"] == target["spec"]


def test_a_user_container_with_our_name_blocks_that_library() -> None:
    target = pod(container("app"), container("libinject-python"))
    result = run(target, policy(containerNames=["app"]))
    assert result.decision.reason.code is Code.NAME_TAKEN


def test_a_mount_path_in_use_skips_the_container() -> None:
    busy = {"name": "data", "mountPath": "/opt/libinject/python"}
    target = pod(container("app", volumeMounts=[busy]), container("side"))
    result = run(target, policy())
    (choice,) = result.decision.injected
    assert choice.instrumented == ("side",)
    assert result.pod["spec"]["containers"][0]["volumeMounts"] == [busy]


def test_container_names_select_app_containers_and_sidecars() -> None:
    sidecar = container("agent", restartPolicy="Always")
    target = pod(container("app"), container("proxy"), initContainers=[sidecar])
    result = run(target, policy(containerNames=["agent", "app", "ghost"]))
    (choice,) = result.decision.injected
    verdicts = {v.container: v.reason.code for v in choice.containers}
    assert verdicts == {
        "agent": Code.CONTAINER_INSTRUMENTED,
        "app": Code.CONTAINER_INSTRUMENTED,
        "proxy": Code.CONTAINER_NOT_NAMED,
        "ghost": Code.CONTAINER_NAME_MISSING,
    }
    assert "env" not in result.pod["spec"]["containers"][1]


def test_native_sidecars_are_not_instrumented_by_default() -> None:
    target = pod(container("app"), initContainers=[container("mesh", restartPolicy="Always")])
    result = run(target, policy())
    mesh = next(c for c in result.pod["spec"]["initContainers"] if c["name"] == "mesh")
    assert mesh == container("mesh", restartPolicy="Always")


def test_ephemeral_containers_are_left_alone() -> None:
    debug = {"name": "debugger", "image": "busybox"}
    result = run(pod(ephemeralContainers=[debug]), policy())
    assert result.pod["spec"]["ephemeralContainers"] == [debug]


def test_a_user_ephemeral_container_with_our_name_blocks_the_copy_step() -> None:
    target = pod(ephemeralContainers=[{"name": "libinject-python", "image": "busybox"}])
    assert run(target, policy()).decision.reason.code is Code.NAME_TAKEN


def test_no_container_selected() -> None:
    result = run(pod(), policy(containerNames=["ghost"]))
    assert result.decision.reason.code is Code.NO_CONTAINER_SELECTED
    assert "volumes" not in result.pod["spec"]


def test_a_stale_skip_annotation_is_removed_once_injected() -> None:
    target = pod(annotations={"libinject.dev/injection-skipped": "NoMatchingPolicy: old"})
    result = run(target, policy())
    assert "libinject.dev/injection-skipped" not in result.pod["metadata"]["annotations"]


@pytest.mark.parametrize("field", ["volumes", "initContainers", "ephemeralContainers"])
def test_null_lists_are_treated_as_empty(field: str) -> None:
    """`volumes:` with no items is null in YAML: valid, and must not break injection."""
    target = pod(**{field: None})
    result = run(target, policy())
    assert result.decision.reason.code is Code.INJECTED
    assert jsonpatch.apply_patch(json.loads(json.dumps(target)), result.patch) == result.pod


def test_an_instrumented_sidecar_is_edited_in_place_not_renamed() -> None:
    sidecar = container("mesh", restartPolicy="Always")
    result = run(pod(initContainers=[sidecar]), policy(containerNames=["app", "mesh"]))
    paths = [op["path"] for op in result.patch if op["path"].startswith("/spec/initContainers")]
    assert paths[0] == "/spec/initContainers/0"
    assert all(p.startswith("/spec/initContainers/1/") for p in paths[1:])
    assert not any(p.endswith("/name") for p in paths)


TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount"


@pytest.mark.parametrize(
    ("volume", "copied"),
    [("kube-api-access-7xk2p", True), ("my-own-token", False)],
    ids=["service-account-plugin-mount", "user-mount-at-that-path"],
)
def test_the_copy_container_gets_the_service_account_plugins_token_mount(
    volume: str, copied: bool
) -> None:
    """The ServiceAccount plugin ran before us and would add its token mount to our copy
    container after us, which makes the API server call the webhook again: we add that same
    mount ourselves (a user's own mount at that path is not the plugin's and is not copied)."""
    token = {"name": volume, "mountPath": TOKEN, "readOnly": True}
    result = run(pod(container(volumeMounts=[token])), policy())
    (init,) = result.pod["spec"]["initContainers"]
    expected = [{"name": "libinject-python", "mountPath": "/libinject-target"}]
    assert init["volumeMounts"] == [*expected, token] if copied else expected
