"""Copy init containers take what the pod already reserves, and skip when that is too little."""

from __future__ import annotations

from typing import Any

import pytest

from builders import container, pod, policy, run
from libinject.engine.decision import Code


def res(
    cpu: str | None = None, memory: str | None = None, *, limits: bool = True
) -> dict[str, Any]:
    values = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v}
    return {"requests": values, "limits": values} if limits else {"requests": values}


def copy_resources(result: Any) -> dict[str, Any]:
    inits = result.pod["spec"]["initContainers"]
    return next(c for c in inits if c["name"] == "libinject-python").get("resources", {})


def test_sum_of_app_containers_and_native_sidecars() -> None:
    sidecar = container("proxy", restartPolicy="Always", resources=res("100m", "128Mi"))
    target = pod(
        container("a", resources=res("500m", "256Mi")),
        container("b", resources=res("250m", "128Mi")),
        initContainers=[sidecar],
    )
    got = copy_resources(run(target, policy()))
    assert got == {
        "requests": {"cpu": "850m", "memory": "512Mi"},
        "limits": {"cpu": "850m", "memory": "512Mi"},
    }, "requests == limits: a Guaranteed pod stays Guaranteed"


def test_biggest_init_container_when_it_is_bigger() -> None:
    migrate = container("migrate", resources=res("2", "2Gi"))
    target = pod(container(resources=res("500m", "256Mi")), initContainers=[migrate])
    assert copy_resources(run(target, policy()))["limits"] == {"cpu": "2000m", "memory": "2048Mi"}


def test_no_limit_when_an_app_container_has_none() -> None:
    target = pod(container("a", resources=res("500m", "256Mi")), container("b"))
    got = copy_resources(run(target, policy()))
    assert "limits" not in got
    assert got["requests"] == {"cpu": "500m", "memory": "256Mi"}


def test_best_effort_pods_stay_best_effort() -> None:
    """No resources anywhere: adding requests would change the pod's QoS class."""
    assert copy_resources(run(pod(), policy())) == {}


@pytest.mark.parametrize(
    ("cpu", "memory"), [("20m", "1Gi"), ("1", "64Mi")], ids=["cpu-too-small", "memory-too-small"]
)
def test_too_small_limits_skip_injection(cpu: str, memory: str) -> None:
    """A copy step OOM-killed would leave the pod stuck in Init: skip instead, and say why."""
    target = pod(container(resources=res(cpu, memory)))
    result = run(target, policy())
    assert result.decision.reason.code is Code.RESOURCES_TOO_SMALL
    assert result.pod["spec"] == target["spec"]
    assert (
        "ResourcesTooSmall"
        in result.pod["metadata"]["annotations"]["libinject.dev/injection-skipped"]
    )


def test_too_small_limits_do_not_matter_without_a_copy_step() -> None:
    target = pod(container(resources=res("20m", "64Mi")))
    result = run(target, policy(injection={"mode": "image-volume"}))
    assert result.decision.reason.code is Code.INJECTED


def test_policy_override_wins() -> None:
    override = {"requests": {"cpu": "100m"}, "limits": {"cpu": "200m", "memory": "200Mi"}}
    result = run(
        pod(container(resources=res("4", "4Gi"))), policy(injection={"resources": override})
    )
    assert copy_resources(result) == override
