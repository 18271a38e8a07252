"""The environment a flavor needs besides its load variables: service tags and the agent address.

Everything here is added only where the container does not already set the variable.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from libinject.api.types import AgentMode, AgentSpec, EnvVar, Flavor
from libinject.engine.settings import AgentSettings

EnvEntry = dict[str, Any]

SERVICE_LABELS = ("tags.datadoghq.com/service", "app.kubernetes.io/name")
VERSION_LABELS = ("tags.datadoghq.com/version", "app.kubernetes.io/version")
ENV_LABELS = ("tags.datadoghq.com/env",)


@dataclass(frozen=True)
class Tags:
    """Unified service tags, read from the pod's labels once per pod."""

    service: str | None
    env: str | None
    version: str | None


def service_tags(labels: Mapping[str, str]) -> Tags:
    def first(keys: tuple[str, ...]) -> str | None:
        return next((labels[key] for key in keys if labels.get(key)), None)

    return Tags(first(SERVICE_LABELS), first(ENV_LABELS), first(VERSION_LABELS))


def _value(name: str, value: str) -> EnvEntry:
    return {"name": name, "value": value}


def _field(name: str, path: str) -> EnvEntry:
    return {"name": name, "valueFrom": {"fieldRef": {"fieldPath": path}}}


def flavor_env(
    flavor: Flavor, *, agent: AgentSpec, defaults: AgentSettings, tags: Tags, container: str
) -> list[EnvEntry]:
    """Tags and agent address for one container, in dependency order ($(VAR) after VAR)."""
    if flavor is Flavor.DDTRACE:
        return _ddtrace_env(agent, tags, default_port=defaults.ddtrace_port)
    return _otel_env(agent, tags, container, default_port=defaults.otlp_port)


def _ddtrace_env(agent: AgentSpec, tags: Tags, *, default_port: int) -> list[EnvEntry]:
    env = [
        _value(name, value)
        for name, value in (
            ("DD_SERVICE", tags.service),
            ("DD_ENV", tags.env),
            ("DD_VERSION", tags.version),
        )
        if value
    ]
    port = str(agent.port or default_port)
    if agent.mode is AgentMode.HOST_IP:
        env += [_field("DD_AGENT_HOST", "status.hostIP"), _value("DD_TRACE_AGENT_PORT", port)]
    elif agent.mode is AgentMode.SERVICE and agent.service is not None:
        svc = agent.service
        env += [
            _value("DD_AGENT_HOST", f"{svc.name}.{svc.namespace}.svc"),
            _value("DD_TRACE_AGENT_PORT", str(svc.port or default_port)),
        ]
    elif agent.url is not None:
        env.append(_value("DD_TRACE_AGENT_URL", agent.url))
    env.append(_field("DD_ENTITY_ID", "metadata.uid"))
    return env


def _otel_env(agent: AgentSpec, tags: Tags, container: str, *, default_port: int) -> list[EnvEntry]:
    env = [
        _field("LIBINJECT_POD_NAMESPACE", "metadata.namespace"),
        _field("LIBINJECT_POD_NAME", "metadata.name"),
        _field("LIBINJECT_POD_UID", "metadata.uid"),
    ]
    if tags.service:
        env.append(_value("OTEL_SERVICE_NAME", tags.service))
    attributes = [
        "k8s.namespace.name=$(LIBINJECT_POD_NAMESPACE)",
        "k8s.pod.name=$(LIBINJECT_POD_NAME)",
        "k8s.pod.uid=$(LIBINJECT_POD_UID)",
        f"k8s.container.name={container}",
    ]
    if tags.version:
        attributes.append(f"service.version={tags.version}")
    if tags.env:
        attributes.append(f"deployment.environment.name={tags.env}")
    env.append(_value("OTEL_RESOURCE_ATTRIBUTES", ",".join(attributes)))
    port = default_port
    if agent.mode is AgentMode.HOST_IP:
        env.append(_field("LIBINJECT_NODE_IP", "status.hostIP"))
        endpoint = f"http://$(LIBINJECT_NODE_IP):{agent.port or port}"
    elif agent.mode is AgentMode.SERVICE and agent.service is not None:
        svc = agent.service
        endpoint = f"http://{svc.name}.{svc.namespace}.svc:{svc.port or port}"
    else:
        endpoint = agent.url or ""
    env += [
        _value("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint),
        _value("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
    ]
    return env


def policy_env(env: tuple[EnvVar, ...]) -> list[EnvEntry]:
    return [_value(var.name, var.value) for var in env]
