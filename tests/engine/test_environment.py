"""Service tags and agent address per flavor; the user's own values always win."""

from __future__ import annotations

import pytest

from builders import JAVA, NODEJS, PYTHON, container, env_of, pod, policy, run
from libinject.engine.settings import AgentSettings, EngineSettings

DD_LABELS = {
    "tags.datadoghq.com/service": "checkout",
    "tags.datadoghq.com/env": "prod",
    "tags.datadoghq.com/version": "1.4.2",
}
OTEL = {**PYTHON, "flavor": "opentelemetry", "version": "0.50.0"}


def test_ddtrace_tags_and_agent_from_the_node() -> None:
    env = env_of(run(pod(labels=DD_LABELS), policy()))
    assert (env["DD_SERVICE"], env["DD_ENV"], env["DD_VERSION"]) == ("checkout", "prod", "1.4.2")
    assert env["DD_AGENT_HOST"] == {"fieldRef": {"fieldPath": "status.hostIP"}}
    assert env["DD_TRACE_AGENT_PORT"] == "8126"
    assert env["DD_ENTITY_ID"] == {"fieldRef": {"fieldPath": "metadata.uid"}}


def test_ddtrace_tags_fall_back_to_recommended_labels() -> None:
    labels = {"app.kubernetes.io/name": "cart", "app.kubernetes.io/version": "2.0"}
    env = env_of(run(pod(labels=labels), policy()))
    assert (env["DD_SERVICE"], env["DD_VERSION"]) == ("cart", "2.0")
    assert "DD_ENV" not in env, "no label, no tag: the tracer's own default applies"


@pytest.mark.parametrize(
    ("agent", "expected"),
    [
        ({"mode": "hostIP", "port": 9126}, {"DD_TRACE_AGENT_PORT": "9126"}),
        (
            {"mode": "service", "service": {"name": "agent", "namespace": "datadog"}},
            {"DD_AGENT_HOST": "agent.datadog.svc", "DD_TRACE_AGENT_PORT": "8126"},
        ),
        (
            {"mode": "url", "url": "unix:///var/run/datadog/apm.socket"},
            {"DD_TRACE_AGENT_URL": "unix:///var/run/datadog/apm.socket"},
        ),
    ],
)
def test_ddtrace_agent_modes(agent: dict[str, object], expected: dict[str, str]) -> None:
    env = env_of(run(pod(), policy(agent=agent)))
    assert {key: env[key] for key in expected} == expected


def test_opentelemetry_resource_attributes_and_endpoint() -> None:
    env = env_of(run(pod(labels=DD_LABELS), policy(libraries=[OTEL])))
    assert env["OTEL_SERVICE_NAME"] == "checkout"
    attributes = dict(pair.split("=", 1) for pair in env["OTEL_RESOURCE_ATTRIBUTES"].split(","))
    assert attributes == {
        "k8s.namespace.name": "$(LIBINJECT_POD_NAMESPACE)",
        "k8s.pod.name": "$(LIBINJECT_POD_NAME)",
        "k8s.pod.uid": "$(LIBINJECT_POD_UID)",
        "k8s.container.name": "app",
        "service.version": "1.4.2",
        "deployment.environment.name": "prod",
    }
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://$(LIBINJECT_NODE_IP):4318"
    assert env["LIBINJECT_NODE_IP"] == {"fieldRef": {"fieldPath": "status.hostIP"}}


def test_dependent_variables_come_after_what_they_reference() -> None:
    """$(VAR) expands only when VAR is defined earlier in the list."""
    result = run(pod(), policy(libraries=[OTEL]))
    names = [e["name"] for e in result.pod["spec"]["containers"][0]["env"]]
    for entry in result.pod["spec"]["containers"][0]["env"]:
        for referenced in ("LIBINJECT_POD_NAME", "LIBINJECT_NODE_IP"):
            if f"$({referenced})" in entry.get("value", ""):
                assert names.index(referenced) < names.index(entry["name"])


def test_opentelemetry_to_a_service() -> None:
    agent = {"mode": "service", "service": {"name": "otel", "namespace": "obs", "port": 4317}}
    env = env_of(run(pod(), policy(libraries=[OTEL], agent=agent)))
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel.obs.svc:4317"
    assert "LIBINJECT_NODE_IP" not in env


def test_user_env_is_never_overwritten_and_policy_env_beats_defaults() -> None:
    mine = [
        {"name": "DD_SERVICE", "value": "mine"},
        {"name": "DD_AGENT_HOST", "value": "10.0.0.9"},
    ]
    extra = [
        {"name": "DD_TRACE_SAMPLE_RATE", "value": "0.5"},
        {"name": "DD_TRACE_AGENT_PORT", "value": "9999"},
        {"name": "DD_SERVICE", "value": "policy"},
    ]
    result = run(pod(container(env=mine), labels=DD_LABELS), policy(env=extra))
    env = env_of(result)
    assert (env["DD_SERVICE"], env["DD_AGENT_HOST"]) == ("mine", "10.0.0.9")
    assert env["DD_TRACE_SAMPLE_RATE"] == "0.5"
    assert env["DD_TRACE_AGENT_PORT"] == "9999", "policy env wins over our defaults"
    names = [e["name"] for e in result.pod["spec"]["containers"][0]["env"]]
    assert len(names) == len(set(names)), "no variable is duplicated"


@pytest.mark.parametrize(
    ("flavor", "agent", "variable", "expected"),
    [
        ("ddtrace", {}, "DD_TRACE_AGENT_PORT", "9126"),
        ("ddtrace", {"port": 7000}, "DD_TRACE_AGENT_PORT", "7000"),
        ("opentelemetry", {}, "OTEL_EXPORTER_OTLP_ENDPOINT", "http://$(LIBINJECT_NODE_IP):5318"),
        ("opentelemetry", {"mode": "service", "service": {"name": "otel", "namespace": "o"}},
         "OTEL_EXPORTER_OTLP_ENDPOINT", "http://otel.o.svc:5318"),
    ],
    ids=["ddtrace-default", "policy-port-wins", "otlp-default", "otlp-service-default"],
)  # fmt: skip
def test_the_operators_agent_ports_fill_in_for_policies_that_name_none(
    flavor: str, agent: dict[str, object], variable: str, expected: str
) -> None:
    """The operator's agent settings replace the built-in 8126/4318 where the policy is silent."""
    settings = EngineSettings(agent=AgentSettings(ddtrace_port=9126, otlp_port=5318))
    chosen = policy(libraries=[{**PYTHON, "flavor": flavor}], agent=agent)
    assert env_of(run(pod(), chosen, settings=settings))[variable] == expected


SOURCED_ENV = [
    {"name": "DD_API_KEY", "valueFrom": {"secretKeyRef": {"name": "datadog", "key": "api-key"}}},
    {"name": "DD_ENV", "valueFrom": {"configMapKeyRef": {"name": "tags", "key": "env"}}},
    {"name": "TEAM", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['team']"}}},
    {"name": "DD_TAGS", "value": "team:$(TEAM)"},
    {"name": "MEMORY_MI",
     "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}}},
    {"name": "CPUS", "valueFrom": {"resourceFieldRef": {"resource": "requests.cpu"}}},
    {"name": "EMPTY"},
]  # fmt: skip


@pytest.mark.parametrize("library", [PYTHON, OTEL], ids=["ddtrace", "opentelemetry"])
def test_policy_env_from_secrets_config_maps_the_pod_and_resources(
    library: dict[str, str],
) -> None:
    """Each valueFrom is written as Kubernetes env takes it, in the policy's order (so $(TEAM)
    resolves), for both flavors. Secret and ConfigMap keys are always optional: a namespace
    without the object gets the variable unset rather than a pod that cannot start."""
    result = run(pod(labels=DD_LABELS), policy(libraries=[library], env=SOURCED_ENV))
    env = env_of(result)
    assert env["DD_API_KEY"] == {
        "secretKeyRef": {"name": "datadog", "key": "api-key", "optional": True}
    }
    assert env["DD_ENV"] == {"configMapKeyRef": {"name": "tags", "key": "env", "optional": True}}
    assert env["TEAM"] == {"fieldRef": {"fieldPath": "metadata.labels['team']"}}
    assert env["MEMORY_MI"] == {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}}
    assert env["CPUS"] == {"resourceFieldRef": {"resource": "requests.cpu"}}
    assert env["EMPTY"] == "", "a name alone is an empty value, as in Kubernetes"
    names = [e["name"] for e in result.pod["spec"]["containers"][0]["env"]]
    assert names.index("TEAM") < names.index("DD_TAGS")


def test_a_container_that_sets_a_sourced_variable_keeps_its_own() -> None:
    mine = [{"name": "DD_API_KEY", "valueFrom": {"secretKeyRef": {"name": "mine", "key": "k"}}}]
    result = run(pod(container(env=mine)), policy(env=SOURCED_ENV[:1]))
    assert env_of(result)["DD_API_KEY"] == {"secretKeyRef": {"name": "mine", "key": "k"}}


def _tracing_env(library: dict[str, str], tracing: dict[str, object]) -> dict[str, object]:
    env = env_of(run(pod(), policy(libraries=[library], tracing=tracing)))
    return {name: value for name, value in env.items() if "SAMPL" in name or "PROPAGAT" in name}


@pytest.mark.parametrize(
    ("library", "expected"),
    [
        (PYTHON, {"DD_TRACE_SAMPLING_RULES": '[{"sample_rate":0.25}]',
                  "DD_TRACE_PROPAGATION_STYLE": "tracecontext,b3,b3multi,baggage"}),
        (JAVA, {"DD_TRACE_SAMPLING_RULES": '[{"sample_rate":0.25}]',
                "DD_TRACE_PROPAGATION_STYLE": "tracecontext,b3single,b3multi,baggage"}),
        (NODEJS, {"DD_TRACE_SAMPLING_RULES": '[{"sample_rate":0.25}]',
                  "DD_TRACE_PROPAGATION_STYLE": "tracecontext,b3 single header,b3multi,baggage"}),
        (OTEL, {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.25",
                "OTEL_PROPAGATORS": "tracecontext,b3,b3multi,baggage"}),
        ({**JAVA, "flavor": "opentelemetry", "version": "2.22.0"},
         {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.25",
          "OTEL_PROPAGATORS": "tracecontext,b3,b3multi,baggage"}),
    ],
    ids=["python-ddtrace", "java-ddtrace", "nodejs-ddtrace", "python-otel", "java-otel"],
)  # fmt: skip
def test_tracing_settings_in_each_flavors_own_variables(
    library: dict[str, str], expected: dict[str, str]
) -> None:
    """One tracing block, each library's own spelling, in the policy's propagator order (the
    first format found in a request wins). The single b3 header is spelled per ddtrace: "b3" to
    dd-trace-py, "b3single" to dd-trace-java (to which "b3" is the X-B3-* headers, and a space
    separates list items), "b3 single header" to dd-trace-js."""
    tracing = {"sampleRate": 0.25, "propagators": ["tracecontext", "b3", "b3multi", "baggage"]}
    assert _tracing_env(library, tracing) == expected


@pytest.mark.parametrize(
    ("rate", "rules", "arg"),
    [(0, '[{"sample_rate":0.0}]', "0"), (1, '[{"sample_rate":1.0}]', "1"),
     (0.00001, '[{"sample_rate":1e-05}]', "0.00001")],
    ids=["zero", "one", "tiny"],
)  # fmt: skip
def test_sample_rates_are_written_as_numbers_every_sdk_reads(
    rate: float, rules: str, arg: str
) -> None:
    """An integer rate from YAML is a rate all the same, and a tiny one is never written with an
    exponent where a plain decimal is read (OTEL_TRACES_SAMPLER_ARG); JSON allows one."""
    assert _tracing_env(PYTHON, {"sampleRate": rate})["DD_TRACE_SAMPLING_RULES"] == rules
    assert _tracing_env(OTEL, {"sampleRate": rate})["OTEL_TRACES_SAMPLER_ARG"] == arg


def test_no_tracing_settings_leave_the_tracers_defaults() -> None:
    assert _tracing_env(PYTHON, {}) == {}
    assert _tracing_env(OTEL, {}) == {}


@pytest.mark.parametrize(
    ("library", "mine", "ours"),
    [
        (OTEL, {"OTEL_TRACES_SAMPLER": "traceidratio"}, {"OTEL_TRACES_SAMPLER_ARG"}),
        (OTEL, {"OTEL_TRACES_SAMPLER_ARG": "0.1"}, {"OTEL_TRACES_SAMPLER"}),
        (JAVA, {"DD_TRACE_SAMPLE_RATE": "1"}, {"DD_TRACE_SAMPLING_RULES"}),
        (PYTHON, {"DD_TRACE_SAMPLING_RULES": "[]"}, set()),
    ],
    ids=["otel-sampler", "otel-argument", "ddtrace-rate", "ddtrace-rules"],
)
def test_a_container_that_sets_its_own_sampling_keeps_all_of_it(
    library: dict[str, str], mine: dict[str, str], ours: set[str]
) -> None:
    """A container's own sampler with the policy's argument would be a setting nobody chose (a
    ratio sampler of the app's, at the policy's ratio of 0): a container that sets any variable
    of the sampling setting keeps it whole and gets none of the policy's."""
    own = [{"name": name, "value": value} for name, value in mine.items()]
    result = run(pod(container(env=own)), policy(libraries=[library], tracing={"sampleRate": 0}))
    env = env_of(result)
    assert {name: env[name] for name in mine} == mine
    assert not ours & env.keys(), "none of the policy's sampling variables is added"


def test_a_sibling_without_its_own_sampling_still_gets_the_policys() -> None:
    """The rule is per container: the sidecar that sets nothing gets the whole setting."""
    own = [{"name": "OTEL_TRACES_SAMPLER", "value": "always_on"}]
    target = pod(container(env=own), container("worker"))
    result = run(target, policy(libraries=[OTEL], tracing={"sampleRate": 0}))
    assert "OTEL_TRACES_SAMPLER_ARG" not in env_of(result)
    worker = env_of(result, "worker")
    assert (worker["OTEL_TRACES_SAMPLER"], worker["OTEL_TRACES_SAMPLER_ARG"]) == (
        "parentbased_traceidratio",
        "0",
    )
