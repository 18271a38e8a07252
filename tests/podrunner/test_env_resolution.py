"""A container's environment resolves as the kubelet's makeEnvironmentVariables resolves it:
envFrom then env in order, `$(VAR)` in values against what came before, sources read but not
expanded, optional sources leaving variables unset, and the downward API."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

import pytest

from cluster.podrunner.environment import resolve_env
from cluster.podrunner.errors import ContainerConfigError

HOST_IP = "192.0.2.7"


class FakeSources:
    """ConfigMaps and Secrets as the API serves them; counts reads of the node."""

    def __init__(
        self,
        config_maps: Mapping[str, Mapping[str, str]] = {},
        secrets: Mapping[str, Mapping[str, bytes]] = {},
        allocatable: Mapping[str, str] | None = None,
    ) -> None:
        self.config_maps = {name: {"data": dict(data)} for name, data in config_maps.items()}
        self.secrets = {
            name: {"data": {key: base64.b64encode(value).decode() for key, value in data.items()}}
            for name, data in secrets.items()
        }
        self.node = allocatable
        self.node_reads = 0

    def config_map(self, name: str) -> Mapping[str, Any] | None:
        return self.config_maps.get(name)

    def secret(self, name: str) -> Mapping[str, Any] | None:
        return self.secrets.get(name)

    def allocatable(self) -> Mapping[str, str]:
        self.node_reads += 1
        if self.node is None:
            raise ContainerConfigError("no node")
        return self.node


POD: dict[str, Any] = {
    "metadata": {
        "name": "web-1",
        "namespace": "shop",
        "uid": "0b5c-uid",
        "labels": {"tags.datadoghq.com/service": "checkout", "app": "web"},
        "annotations": {"team": "payments"},
    },
    "spec": {"nodeName": "kwok-node-0", "serviceAccountName": "web-sa", "containers": []},
}


def resolve(container: Mapping[str, Any], sources: FakeSources | None = None) -> dict[str, str]:
    return resolve_env(POD, container, sources=sources or FakeSources(), host_ip=HOST_IP)


def field(name: str, path: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"fieldRef": {"fieldPath": path}}}


def test_downward_fields() -> None:
    """Every field path the API allows in env, with the pod's and node's IP being the host's."""
    env = resolve(
        {
            "env": [
                field("NAME", "metadata.name"),
                field("NS", "metadata.namespace"),
                field("UID", "metadata.uid"),
                field("SERVICE", "metadata.labels['tags.datadoghq.com/service']"),
                field("TEAM", "metadata.annotations['team']"),
                field("MISSING", "metadata.labels['nope']"),
                field("NODE", "spec.nodeName"),
                field("SA", "spec.serviceAccountName"),
                field("HOST", "status.hostIP"),
                field("HOSTS", "status.hostIPs"),
                field("POD_IP", "status.podIP"),
                field("POD_IPS", "status.podIPs"),
            ]
        }
    )
    assert env == {
        "NAME": "web-1",
        "NS": "shop",
        "UID": "0b5c-uid",
        "SERVICE": "checkout",
        "TEAM": "payments",
        "MISSING": "",
        "NODE": "kwok-node-0",
        "SA": "web-sa",
        "HOST": HOST_IP,
        "HOSTS": HOST_IP,
        "POD_IP": HOST_IP,
        "POD_IPS": HOST_IP,
    }


@pytest.mark.parametrize(
    "path", ["status.phase", "metadata.labels", "spec.containers['x']", "metadata.generateName"]
)
def test_unsupported_field_paths_are_refused(path: str) -> None:
    """Paths the kubelet cannot resolve for env fail the container, naming the path."""
    with pytest.raises(ContainerConfigError, match=path.replace("[", r"\[")):
        resolve({"env": [field("X", path)]})


def test_values_expand_against_what_came_before() -> None:
    """The engine's own pattern (a fieldRef, then a value that refers to it) resolves; a
    reference to a later variable, or an unknown one, stays as written; `$$` escapes."""
    env = resolve(
        {
            "env": [
                field("LIBINJECT_POD_NAMESPACE", "metadata.namespace"),
                field("LIBINJECT_POD_UID", "metadata.uid"),
                {
                    "name": "OTEL_RESOURCE_ATTRIBUTES",
                    "value": "k8s.namespace.name=$(LIBINJECT_POD_NAMESPACE),k8s.pod.uid=$(LIBINJECT_POD_UID)",
                },
                {"name": "EARLY", "value": "$(LATE)-$(UNKNOWN)-$$(LIBINJECT_POD_UID)"},
                {"name": "LATE", "value": "late"},
                field("LIBINJECT_NODE_IP", "status.hostIP"),
                {
                    "name": "OTEL_EXPORTER_OTLP_ENDPOINT",
                    "value": "http://$(LIBINJECT_NODE_IP):4318",
                },
            ]
        }
    )
    assert env["OTEL_RESOURCE_ATTRIBUTES"] == "k8s.namespace.name=shop,k8s.pod.uid=0b5c-uid"
    assert env["EARLY"] == "$(LATE)-$(UNKNOWN)-$(LIBINJECT_POD_UID)"
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == f"http://{HOST_IP}:4318"


def test_a_redefined_variable_is_expanded_with_its_earlier_value() -> None:
    """A second entry of the same name sees the first one's value, then replaces it."""
    env = resolve({"env": [{"name": "P", "value": "/a"}, {"name": "P", "value": "/b:$(P)"}]})
    assert env == {"P": "/b:/a"}


def test_an_empty_value_sets_an_empty_variable() -> None:
    """`value: ""` (or no value and no source) is an empty variable, not a missing one."""
    assert resolve({"env": [{"name": "E", "value": ""}, {"name": "F"}]}) == {"E": "", "F": ""}


def test_env_from_then_env_overrides() -> None:
    """envFrom sources apply in order (later wins, prefix applied); env entries win over them and
    may refer to them."""
    sources = FakeSources(
        config_maps={"one": {"A": "1", "B": "1"}, "two": {"B": "2", "C": "2"}},
        secrets={"creds": {"TOKEN": b"s3cr3t"}},
    )
    env = resolve(
        {
            "envFrom": [
                {"configMapRef": {"name": "one"}},
                {"configMapRef": {"name": "two"}},
                {"secretRef": {"name": "creds"}, "prefix": "APP_"},
            ],
            "env": [{"name": "C", "value": "env-$(A)-$(APP_TOKEN)"}],
        },
        sources,
    )
    assert env == {"A": "1", "B": "2", "C": "env-1-s3cr3t", "APP_TOKEN": "s3cr3t"}


def test_source_values_are_not_expanded() -> None:
    """A value read from a ConfigMap or Secret is taken as is, `$(...)` and all."""
    sources = FakeSources(config_maps={"cm": {"k": "$(A)"}}, secrets={"s": {"k": b"$(A)"}})
    env = resolve(
        {
            "env": [
                {"name": "A", "value": "a"},
                {"name": "FROM_CM", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "k"}}},
                {"name": "FROM_SECRET", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
            ]
        },
        sources,
    )
    assert env == {"A": "a", "FROM_CM": "$(A)", "FROM_SECRET": "$(A)"}


def test_optional_sources_leave_variables_unset() -> None:
    """A missing optional ConfigMap, Secret or key sets nothing (an envFrom adds nothing)."""
    sources = FakeSources(config_maps={"cm": {"k": "v"}})
    env = resolve(
        {
            "envFrom": [{"configMapRef": {"name": "absent", "optional": True}}],
            "env": [
                {
                    "name": "NO_CM",
                    "valueFrom": {
                        "configMapKeyRef": {"name": "absent", "key": "k", "optional": True}
                    },
                },
                {
                    "name": "NO_KEY",
                    "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "x", "optional": True}},
                },
                {
                    "name": "NO_SECRET",
                    "valueFrom": {"secretKeyRef": {"name": "absent", "key": "k", "optional": True}},
                },
                {"name": "AFTER", "value": "$(NO_CM)"},
            ],
        },
        sources,
    )
    assert env == {"AFTER": "$(NO_CM)"}


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ({"configMapKeyRef": {"name": "absent", "key": "k"}}, "ConfigMap 'absent' not found"),
        ({"configMapKeyRef": {"name": "cm", "key": "x"}}, "couldn't find key x in ConfigMap cm"),
        ({"secretKeyRef": {"name": "absent", "key": "k"}}, "Secret 'absent' not found"),
    ],
)
def test_required_sources_must_exist(source: dict[str, Any], message: str) -> None:
    """A missing ConfigMap, Secret or key that is not optional fails the container, naming it."""
    sources = FakeSources(config_maps={"cm": {"k": "v"}})
    with pytest.raises(ContainerConfigError, match=message):
        resolve({"env": [{"name": "X", "valueFrom": source}]}, sources)


def resource(name: str, selector: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"resourceFieldRef": selector}}


def test_resource_fields_divide_and_round_up() -> None:
    """limits and requests, divided by the divisor (1 by default) and rounded up; the node is
    not read when the container sets its limits."""
    sources = FakeSources(allocatable={"cpu": "8", "memory": "32Gi"})
    container = {
        "resources": {
            "limits": {"cpu": "1500m", "memory": "1Gi"},
            "requests": {"cpu": "250m", "memory": "1000000"},
        },
        "env": [
            resource("CPU_LIMIT", {"resource": "limits.cpu"}),
            resource("CPU_LIMIT_M", {"resource": "limits.cpu", "divisor": "1m"}),
            resource("CPU_REQUEST", {"resource": "requests.cpu"}),
            resource("MEMORY_LIMIT_MI", {"resource": "limits.memory", "divisor": "1Mi"}),
            resource("MEMORY_REQUEST_MI", {"resource": "requests.memory", "divisor": "1Mi"}),
            resource("MEMORY_REQUEST", {"resource": "requests.memory"}),
            resource("STORAGE_REQUEST", {"resource": "requests.ephemeral-storage"}),
        ],
    }
    env = resolve(container, sources)
    assert env == {
        "CPU_LIMIT": "2",
        "CPU_LIMIT_M": "1500",
        "CPU_REQUEST": "1",
        "MEMORY_LIMIT_MI": "1024",
        "MEMORY_REQUEST_MI": "1",
        "MEMORY_REQUEST": "1000000",
        "STORAGE_REQUEST": "0",
    }
    assert sources.node_reads == 0


def test_missing_limits_default_to_the_node() -> None:
    """A limit the container does not set is its node's allocatable amount."""
    sources = FakeSources(allocatable={"cpu": "64", "memory": "256Gi"})
    env = resolve(
        {
            "env": [
                resource("CPU", {"resource": "limits.cpu"}),
                resource("MEMORY_GI", {"resource": "limits.memory", "divisor": "1Gi"}),
            ]
        },
        sources,
    )
    assert env == {"CPU": "64", "MEMORY_GI": "256"}
    with pytest.raises(ContainerConfigError, match="no node"):
        resolve({"env": [resource("CPU", {"resource": "limits.cpu"})]}, FakeSources())


def test_resource_of_another_container() -> None:
    """containerName reads another container's resources (init containers included)."""
    pod = dict(POD)
    pod["spec"] = {
        "containers": [{"name": "side", "resources": {"limits": {"memory": "64Mi"}}}],
        "initContainers": [{"name": "init", "resources": {"requests": {"cpu": "100m"}}}],
    }
    container = {
        "env": [
            resource(
                "SIDE", {"containerName": "side", "resource": "limits.memory", "divisor": "1Mi"}
            ),
            resource(
                "INIT", {"containerName": "init", "resource": "requests.cpu", "divisor": "1m"}
            ),
        ]
    }
    env = resolve_env(pod, container, sources=FakeSources(), host_ip=HOST_IP)
    assert env == {"SIDE": "64", "INIT": "100"}
    with pytest.raises(ContainerConfigError, match="no container 'ghost'"):
        resolve_env(
            pod,
            {"env": [resource("X", {"containerName": "ghost", "resource": "limits.cpu"})]},
            sources=FakeSources(),
            host_ip=HOST_IP,
        )


def test_unsupported_resource_is_refused() -> None:
    """Only cpu, memory, ephemeral-storage and hugepages-* are in the downward API."""
    with pytest.raises(ContainerConfigError, match=r"'limits\.gpu' is not supported"):
        resolve({"env": [resource("X", {"resource": "limits.gpu"})]})
