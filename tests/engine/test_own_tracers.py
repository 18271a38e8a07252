"""A Java or Node.js container that already starts its own tracer gets no second one: it is
skipped, named in the annotation and in `explain`, and left exactly as it was."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from builders import JAVA, NODEJS, container, pod, policy, policy_object, run
from libinject.cli.main import main
from libinject.engine.decision import Code
from libinject.engine.inject import INJECTED_ANNOTATION, SKIPPED_ANNOTATION

JAVA_POLICY = policy("java", libraries=[JAVA])
NODE_POLICY = policy("node", libraries=[NODEJS])
NODE_OTEL_POLICY = policy(
    "node", libraries=[{**NODEJS, "flavor": "opentelemetry", "version": "0.82.0"}]
)


def _env(name: str, value: str) -> dict[str, Any]:
    return {"env": [{"name": name, "value": value}]}


@pytest.mark.parametrize(
    ("fields", "where"),
    [
        pytest.param(_env("JAVA_TOOL_OPTIONS", "-Xmx1g -javaagent:/dd/dd-java-agent.jar"),
                     "JAVA_TOOL_OPTIONS has -javaagent:/dd/dd-java-agent.jar", id="tool-options"),
        pytest.param(_env("JDK_JAVA_OPTIONS", "-javaagent:/otel/opentelemetry-javaagent.jar=x"),
                     "JDK_JAVA_OPTIONS has -javaagent:/otel/opentelemetry-javaagent.jar",
                     id="jdk-options-with-agent-arguments"),
        pytest.param({"command": ["java", "-javaagent:dd-java-agent-1.56.0.jar", "-jar", "a.jar"]},
                     "command has -javaagent:dd-java-agent-1.56.0.jar", id="command-versioned-jar"),
        pytest.param({"args": ["-c", "exec java -javaagent:'/o/opentelemetry-javaagent-all.jar' Main"]},
                     "args has -javaagent:'/o/opentelemetry-javaagent-all.jar", id="shell-quoted"),
    ],
)  # fmt: skip
def test_a_container_starting_its_own_tracer_is_skipped_and_named(
    fields: dict[str, Any], where: str
) -> None:
    """The agent is found where the JVM reads it, the container is left as it came, and the
    pod's records say which container and where the agent was found."""
    own = container("app", **fields)
    result = run(pod(own, container("side")), JAVA_POLICY)
    (choice,) = result.decision.injected
    verdicts = {v.container: v.reason for v in choice.containers}
    assert verdicts["app"].code is Code.OWN_TRACER
    assert verdicts["app"].message == f"it starts its own tracer: {where}"
    assert verdicts["side"].code is Code.CONTAINER_INSTRUMENTED
    assert result.pod["spec"]["containers"][0] == own
    (record,) = json.loads(result.pod["metadata"]["annotations"][INJECTED_ANNOTATION])
    assert record["containers"] == ["side"]
    assert record["skippedContainers"] == {"app": "OwnTracer"}


def test_a_pod_whose_only_container_has_its_own_tracer_says_so_on_the_pod() -> None:
    """Nothing injected: the skip annotation names the container and where its agent is."""
    own = container(**_env("JAVA_TOOL_OPTIONS", "-javaagent:/agents/dd-java-agent.jar"))
    result = run(pod(own), JAVA_POLICY)
    assert result.decision.reason.code is Code.NO_CONTAINER_SELECTED
    assert "volumes" not in result.pod["spec"]
    assert "initContainers" not in result.pod["spec"]
    assert result.pod["metadata"]["annotations"][SKIPPED_ANNOTATION] == (
        "NoContainerSelected: java: NoContainerSelected: no container can take the library "
        "(app: OwnTracer: it starts its own tracer: JAVA_TOOL_OPTIONS has "
        "-javaagent:/agents/dd-java-agent.jar)"
    )


def test_many_refused_containers_are_counted_not_listed() -> None:
    """The message stays short whatever the pod: the first container's reason, then a count."""
    agent = {"command": ["java", "-javaagent:/a/opentelemetry-javaagent.jar"]}
    containers = [container(f"c{index}", **agent) for index in range(50)]
    result = run(pod(*containers), JAVA_POLICY)
    assert result.pod["metadata"]["annotations"][SKIPPED_ANNOTATION].endswith(
        "(c0: OwnTracer: it starts its own tracer: command has "
        "-javaagent:/a/opentelemetry-javaagent.jar; and 49 more)"
    )


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param(_env("JAVA_TOOL_OPTIONS", "-javaagent:/jmx/jmx_prometheus_javaagent.jar"),
                     id="another-agent"),
        pytest.param({"args": ["-jar", "/app/dd-java-agent-demo.jar"]}, id="a-jar-not-an-agent"),
        pytest.param(_env("JAVA_OPTS", "-javaagent:/dd/dd-java-agent.jar"),
                     id="a-variable-the-jvm-does-not-read"),
        pytest.param(_env("JAVA_TOOL_OPTIONS", "-javaagent:/x/dd-java-agent.jar.bak"),
                     id="not-a-jar-name"),
    ],
)  # fmt: skip
def test_other_agents_and_mentions_do_not_skip(fields: dict[str, Any]) -> None:
    """Only an agent option that loads one of the tracers counts: another agent (a metrics
    exporter) and a tracer jar run as the application are no reason to skip."""
    result = run(pod(container(**fields)), JAVA_POLICY)
    assert result.decision.reason.code is Code.INJECTED


@pytest.mark.parametrize(
    ("fields", "where"),
    [
        pytest.param(_env("NODE_OPTIONS", "--max-old-space-size=512 --require dd-trace/init"),
                     "NODE_OPTIONS has --require dd-trace/init", id="require-space"),
        pytest.param(_env("NODE_OPTIONS", "--require=dd-trace/init.js"),
                     "NODE_OPTIONS has --require=dd-trace/init.js", id="require-equals"),
        pytest.param(_env("NODE_OPTIONS", "-r /app/node_modules/dd-trace/init"),
                     "NODE_OPTIONS has -r /app/node_modules/dd-trace/init", id="short-path"),
        pytest.param(_env("NODE_OPTIONS", "--import @opentelemetry/auto-instrumentations-node/register"),
                     "NODE_OPTIONS has --import @opentelemetry/auto-instrumentations-node/register",
                     id="import-otel"),
        pytest.param(_env("NODE_OPTIONS", "--experimental-loader=@opentelemetry/instrumentation/hook.mjs"),
                     "NODE_OPTIONS has --experimental-loader=@opentelemetry/instrumentation/hook.mjs",
                     id="otel-esm-hook"),
        pytest.param({"command": ["node", "-r", "dd-trace/init", "server.js"]},
                     "command has -r dd-trace/init", id="command-two-items"),
        pytest.param({"args": ["--import", "dd-trace/initialize.mjs", "server.mjs"]},
                     "args has --import dd-trace/initialize.mjs", id="args-import"),
        pytest.param({"args": ["-c", "exec node --require '/srv/node_modules/dd-trace/init' a.js"]},
                     "args has --require '/srv/node_modules/dd-trace/init", id="shell-quoted"),
    ],
)  # fmt: skip
@pytest.mark.parametrize("node_policy", [NODE_POLICY, NODE_OTEL_POLICY], ids=["ddtrace", "otel"])
def test_a_node_container_preloading_its_own_tracer_is_skipped_and_named(
    fields: dict[str, Any], where: str, node_policy: Any
) -> None:
    """Either flavor: a container whose Node preloads dd-trace or an OpenTelemetry package where
    the pod spec shows it gets no loader (one tracer per process, whatever the vendor), and its
    record says where the preload was found."""
    own = container("app", **fields)
    result = run(pod(own, container("side")), node_policy)
    (choice,) = result.decision.injected
    verdicts = {v.container: v.reason for v in choice.containers}
    assert verdicts["app"].code is Code.OWN_TRACER
    assert verdicts["app"].message == f"it starts its own tracer: {where}"
    assert verdicts["side"].code is Code.CONTAINER_INSTRUMENTED
    assert result.pod["spec"]["containers"][0] == own


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param(_env("NODE_OPTIONS", "--require ./tracing.js"), id="an-app-module"),
        pytest.param(_env("NODE_OPTIONS", "--require=/opt/dd-trace/init.js"),
                     id="a-path-outside-node-modules"),
        pytest.param(_env("NODE_OPTIONS", "-r dotenv/config --max-old-space-size=512"),
                     id="another-package"),
        pytest.param(_env("NODE_OPTIONS", "--require dd-tracer-lite"), id="a-longer-name"),
        pytest.param({"args": ["server.js", "--trace=dd-trace"]}, id="a-mention-not-a-preload"),
        pytest.param(_env("NODE_ARGS", "-r dd-trace/init"), id="a-variable-node-does-not-read"),
    ],
)  # fmt: skip
def test_other_node_preloads_and_mentions_do_not_skip(fields: dict[str, Any]) -> None:
    """Only a preload of a tracer package counts: the app's own modules, other packages and a
    tracer named anywhere but in a preload option are no reason to skip."""
    result = run(pod(container(**fields)), NODE_POLICY)
    assert result.decision.reason.code is Code.INJECTED


@pytest.mark.parametrize("node_policy", [NODE_POLICY, NODE_OTEL_POLICY], ids=["ddtrace", "otel"])
def test_our_own_node_loader_is_not_taken_for_a_tracer(node_policy: Any) -> None:
    """Injecting an injected Node pod changes nothing: our loader's --require is not a tracer."""
    first = run(pod(), node_policy)
    again = run(first.pod, node_policy)
    assert again.decision.reason.code is Code.INJECTED
    assert again.patch == []


def test_our_own_launcher_is_not_taken_for_a_tracer() -> None:
    """Injecting an injected pod changes nothing: our launcher's option is not an own tracer."""
    first = run(pod(), JAVA_POLICY)
    again = run(first.pod, JAVA_POLICY)
    assert again.decision.reason.code is Code.INJECTED
    assert again.patch == []


def test_a_python_container_is_not_searched_for_java_agents() -> None:
    """The check is the language's: a Python library ignores a JVM option in its container."""
    java_options = container(**_env("JAVA_TOOL_OPTIONS", "-javaagent:/dd/dd-java-agent.jar"))
    assert run(pod(java_options), policy()).decision.reason.code is Code.INJECTED


def test_explain_names_the_container_and_where_its_agent_was_found(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`libinject explain` says which container was left out and where its agent is."""
    own = container("app", command=["java", "-javaagent:/dd/dd-java-agent.jar", "Main"])
    manifest = {"apiVersion": "v1", "kind": "Pod", **pod(own, container("side"))}
    (tmp_path / "pod.yaml").write_text(yaml.safe_dump(manifest))
    (tmp_path / "policy.yaml").write_text(yaml.safe_dump(policy_object("java", libraries=[JAVA])))
    args = [
        "explain",
        "-f",
        str(tmp_path / "pod.yaml"),
        "--policies",
        str(tmp_path / "policy.yaml"),
    ]
    assert main(args) == 0
    shown = capsys.readouterr().out
    assert (
        "container app: OwnTracer: it starts its own tracer: command has "
        "-javaagent:/dd/dd-java-agent.jar"
    ) in shown
    assert "container side: ContainerInstrumented: instrumented" in shown
