"""The environment a flavor needs besides its load variables: service tags and the agent address.

Everything here is added only where the container does not already set the variable.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from libinject.api.types import (
    AgentMode,
    AgentSpec,
    EnvVar,
    EnvVarSource,
    Flavor,
    KeyRef,
    Language,
    PolicySpec,
    Propagator,
    TracingSpec,
)
from libinject.engine.owners import Workload
from libinject.engine.settings import AgentSettings

EnvEntry = dict[str, Any]

SERVICE_LABELS = ("tags.datadoghq.com/service", "app.kubernetes.io/name")
VERSION_LABELS = ("tags.datadoghq.com/version", "app.kubernetes.io/version")
ENV_LABELS = ("tags.datadoghq.com/env",)


# Variables that make one setting together: a container that sets any of a group keeps its
# setting whole, and gets none of the group from us (our OTEL_TRACES_SAMPLER_ARG would retune its
# own ratio sampler; our DD_TRACE_SAMPLING_RULES would outrank its DD_TRACE_SAMPLE_RATE).
_GROUPS = (
    ("OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG"),
    ("DD_TRACE_SAMPLING_RULES", "DD_TRACE_SAMPLE_RATE"),
)
TOGETHER = {name: tuple(n for n in group if n != name) for group in _GROUPS for name in group}


@dataclass(frozen=True)
class Tags:
    """Unified service tags, read from the pod's labels once per pod."""

    service: str | None
    env: str | None
    version: str | None


def service_tags(labels: Mapping[str, str], *, workload: Workload | None = None) -> Tags:
    """The pod's labels' tags; without a service label, the service is its workload's name."""

    def first(keys: tuple[str, ...]) -> str | None:
        return next((labels[key] for key in keys if labels.get(key)), None)

    service = first(SERVICE_LABELS) or (workload.name if workload else None)
    return Tags(service, first(ENV_LABELS), first(VERSION_LABELS))


def _value(name: str, value: str) -> EnvEntry:
    return {"name": name, "value": value}


def _field(name: str, path: str) -> EnvEntry:
    return {"name": name, "valueFrom": {"fieldRef": {"fieldPath": path}}}


def policy_entry(var: EnvVar) -> EnvEntry:
    """A policy's variable as a container's env entry."""
    if var.value_from is None:
        return _value(var.name, var.value or "")
    return {"name": var.name, "valueFrom": _source(var.value_from)}


def _source(source: EnvVarSource) -> dict[str, Any]:
    """Secret and ConfigMap keys are always optional: a namespace without the object gets the
    variable unset, never a pod that cannot start (Kubernetes' default, CreateContainerConfigError,
    would block it)."""
    if source.secret_key_ref is not None:
        return {"secretKeyRef": _optional_key(source.secret_key_ref)}
    if source.config_map_key_ref is not None:
        return {"configMapKeyRef": _optional_key(source.config_map_key_ref)}
    if source.field_ref is not None:
        return {"fieldRef": {"fieldPath": source.field_ref.field_path}}
    if source.resource_field_ref is not None:
        ref = source.resource_field_ref
        divisor = {} if ref.divisor is None else {"divisor": ref.divisor}
        return {"resourceFieldRef": {"resource": ref.resource.value, **divisor}}
    raise ValueError("an env source with no reference (the API requires exactly one)")


def _optional_key(ref: KeyRef) -> dict[str, Any]:
    return {"name": ref.name, "key": ref.key, "optional": True}


def tracing_env(tracing: TracingSpec, *, flavor: Flavor, language: Language) -> list[EnvEntry]:
    """`tracing` in the flavor's own variables. Both samplers keep a decision that arrives with
    the request (ddtrace's rules apply to new traces only; hence parentbased for OpenTelemetry)."""
    env = []
    rate = tracing.sample_rate
    if flavor is Flavor.DDTRACE:
        if rate is not None:
            rules = json.dumps([{"sample_rate": rate}], separators=(",", ":"))
            env.append(_value("DD_TRACE_SAMPLING_RULES", rules))
        if tracing.propagators:
            styles = (_ddtrace_style(p, language=language) for p in tracing.propagators)
            env.append(_value("DD_TRACE_PROPAGATION_STYLE", ",".join(styles)))
        return env
    if rate is not None:
        env.append(_value("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"))
        env.append(_value("OTEL_TRACES_SAMPLER_ARG", _decimal(rate)))
    if tracing.propagators:
        env.append(_value("OTEL_PROPAGATORS", ",".join(tracing.propagators)))
    return env


def _ddtrace_style(propagator: Propagator, *, language: Language) -> str:
    """ddtrace's name of a format: OpenTelemetry's, except the single b3 header, which each
    ddtrace spells its own way. dd-trace-py (3.0 on) calls it "b3" and no longer reads "b3 single
    header"; dd-trace-java reads "b3" as the X-B3-* headers and splits its lists at spaces, so
    "b3single"; the others read "b3 single header" (dd-trace-js before 6.0 also took "b3" for
    the X-B3-* headers)."""
    if propagator is not Propagator.B3:
        return propagator.value
    return _B3_SINGLE.get(language, "b3 single header")


_B3_SINGLE = {Language.PYTHON: "b3", Language.JAVA: "b3single"}


def _decimal(rate: float) -> str:
    """A rate as plain decimal text (0.00001, never 1e-05): every SDK parses that."""
    return format(Decimal(repr(rate)).normalize(), "f")


# The env one library adds to a container, by the container's name.
ContainerEnv = Callable[[str], list[EnvEntry]]


def library_env(
    flavor: Flavor,
    *,
    language: Language,
    spec: PolicySpec,
    defaults: AgentSettings,
    tags: Tags,
) -> ContainerEnv:
    """The policy's env and tracing settings, then the flavor's tags and agent address, in
    dependency order ($(VAR) after VAR). Built once per library and pod: only OpenTelemetry's
    resource attributes name the container, so every other entry is one object shared by all the
    containers (edits are copy-on-write, `engine.patch`, and the CLI's YAML writes no aliases)."""
    agent = spec.agent
    own = [policy_entry(var) for var in spec.env]
    own += tracing_env(spec.tracing, flavor=flavor, language=language)
    if flavor is Flavor.DDTRACE:
        entries = own + _ddtrace_env(agent, tags, default_port=defaults.ddtrace_port)
        return lambda _container: entries
    before, (prefix, suffix), after = _otel_env(agent, tags, default_port=defaults.otlp_port)
    head = own + before

    def for_container(container: str) -> list[EnvEntry]:
        attributes = _value("OTEL_RESOURCE_ATTRIBUTES", f"{prefix}{container}{suffix}")
        return [*head, attributes, *after]

    return for_container


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


def _otel_env(
    agent: AgentSpec, tags: Tags, *, default_port: int
) -> tuple[list[EnvEntry], tuple[str, str], list[EnvEntry]]:
    """The entries before OTEL_RESOURCE_ATTRIBUTES, its value's text before and after the
    container's name, and the entries after it."""
    before = [
        _field("LIBINJECT_POD_NAMESPACE", "metadata.namespace"),
        _field("LIBINJECT_POD_NAME", "metadata.name"),
        _field("LIBINJECT_POD_UID", "metadata.uid"),
    ]
    if tags.service:
        before.append(_value("OTEL_SERVICE_NAME", tags.service))
    prefix = (
        "k8s.namespace.name=$(LIBINJECT_POD_NAMESPACE),k8s.pod.name=$(LIBINJECT_POD_NAME),"
        "k8s.pod.uid=$(LIBINJECT_POD_UID),k8s.container.name="
    )
    suffix = ""
    if tags.version:
        suffix += f",service.version={tags.version}"
    if tags.env:
        suffix += f",deployment.environment.name={tags.env}"
    after: list[EnvEntry] = []
    port = default_port
    if agent.mode is AgentMode.HOST_IP:
        after.append(_field("LIBINJECT_NODE_IP", "status.hostIP"))
        endpoint = f"http://$(LIBINJECT_NODE_IP):{agent.port or port}"
    elif agent.mode is AgentMode.SERVICE and agent.service is not None:
        svc = agent.service
        endpoint = f"http://{svc.name}.{svc.namespace}.svc:{svc.port or port}"
    else:
        endpoint = agent.url or ""
    after += [
        _value("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint),
        _value("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
    ]
    return before, (prefix, suffix), after
