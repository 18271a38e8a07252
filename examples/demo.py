"""`make demo`: libinject on a live local control plane, step by step.

Starts (or reuses) the control plane of tests/cluster, installs libinject through the local
overlay, starts the operator (`libinject run`, as its ServiceAccount), applies the example
policies, opts the example namespaces in, explains the checkout Deployment, then rolls the example
workloads out and shows what the webhook put into their pods. Last, it builds the Python and Java
library images (no Docker) into a local registry and runs one payments-api pod (Flask) and one
ledger pod (Jetty) the way a kubelet would (tests/cluster/podrunner: the copy init containers,
then the app with the injected env), and prints the trace each pod sent to a local trace agent.

The control plane, the operator, the registry and the trace agent keep running afterwards for
exploring, recorded in the cluster's state directory ($LIBINJECT_CLUSTER_DIR); `make cluster-down`
stops them all. Every step can run again on a live demo: objects are applied, the registry and
the trace agent are reused on their recorded ports (which the pods of earlier runs name), the
operator is restarted. A pod the webhook did not inject (its answer never reached the API server,
say) is named with the reason and created again, a bounded number of times (cluster.admitted).
"""

from __future__ import annotations

import contextlib
import io
import json
import platform
import sys
import tempfile
import urllib.request
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

import yaml
from kubernetes import config as kube_config

from cluster import build, harness, poll, supervisor
from cluster.admitted import NotInjectedError, injected_pods
from cluster.apps import FLASK, WEBAPP, image_env, virtualenv
from cluster.build import BuildError
from cluster.harness import StartupError
from cluster.javaapp import command as java_command
from cluster.javaapp import image_env as java_image_env
from cluster.javaapp import java_webapp
from cluster.kubectl import Kubectl, KubectlError
from cluster.libraries import DDTRACE as VERSION
from cluster.libraries import JAVA_VERSIONS, run_build_script
from cluster.operator import OperatorProcess
from cluster.podrunner import AppImage, ImageStore, PodRunner
from cluster.registry import Registry
from cluster.testagent import TestAgent
from libinject.cli.main import main as cli
from libinject.cli.workloads import pod_slots
from libinject.engine.inject import INJECTED_ANNOTATION as INJECTED
from libinject.engine.inject import INSTRUMENTED_LABEL as INSTRUMENTED
from libinject.engine.inject import SKIPPED_ANNOTATION as SKIPPED
from libinject.engine.platforms import node_platform

REPO = Path(__file__).parents[1]
POLICIES = REPO / "examples" / "policies"
WORKLOADS = REPO / "examples" / "workloads"
LOCAL_OVERLAY = REPO / "manifests" / "overlays" / "local"
OPT_IN = "libinject.dev/inject"
OPERATOR_NAMESPACE, OPERATOR_ACCOUNT = "libinject-system", "libinject-operator"
WEBHOOK_PATH = "mutate-pods"
STEPS = 12
HOST_PYTHON = f"cp{sys.version_info[0]}{sys.version_info[1]}-manylinux-{platform.machine()}"
JAVA_VERSION = JAVA_VERSIONS["ddtrace"]


def step(number: int, title: str) -> None:
    print(f"\n== {number}/{STEPS} {title}", flush=True)


def show(command: str, output: str) -> None:
    print(f"$ {command}")
    print(output.rstrip())


def libinject(*args: str) -> str:
    """The CLI's stdout (its summary goes to stderr, which the demo shows as is)."""
    captured = io.StringIO()
    with contextlib.redirect_stdout(captured):
        if cli(list(args)) != 0:
            raise SystemExit(f"libinject {' '.join(args)} failed")
    return captured.getvalue()


def namespaces_without_opt_in() -> list[dict[str, Any]]:
    """The examples' namespaces, minus the opt-in label that step 5 adds by hand."""
    found = []
    for path in sorted(WORKLOADS.glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            if document and document["kind"] == "Namespace":
                document["metadata"].get("labels", {}).pop(OPT_IN, None)
                found.append(document)
    return found


def summary(stored: dict[str, Any]) -> str:
    """The injected parts of each pod (or pod template) as the server stored them."""
    lines = []
    for slot in pod_slots(stored, source="server", document=1):
        annotations = slot.pod.get("metadata", {}).get("annotations", {})
        labels = slot.pod.get("metadata", {}).get("labels", {})
        lines.append(f"{slot.label}: {INSTRUMENTED}={labels.get(INSTRUMENTED)}")
        for library in json.loads(annotations.get(INJECTED, "[]")):
            targets = ", ".join(library["containers"])
            lines.append(
                f"  {library['language']} {library['flavor']} {library['version']} "
                f"({library['mode']}, policy {library['policy']}) -> {targets}"
            )
        if INJECTED in annotations:
            lines.append(f"  annotation {INJECTED}: {annotations[INJECTED]}")
        if SKIPPED in annotations:
            lines.append(f"  skipped: {annotations[SKIPPED]}")
        for container in slot.pod["spec"].get("initContainers", []):
            lines.append(f"  init container {container['name']}: {container['image']}")
        for container in slot.pod["spec"]["containers"]:
            names = ", ".join(e["name"] for e in container.get("env", [])) or "-"
            lines.append(f"  container {container['name']} env: {names}")
    return "\n".join(lines)


def main() -> int:
    step(1, "Building the control plane (cached in ~/.cache/libinject/testbin after the first run)")
    binaries = build.binaries()
    step(2, "Starting etcd, kube-apiserver, controller-manager, scheduler and kwok")
    directory = supervisor.state_dir()
    kubeconfig = supervisor.ensure_running(directory)
    kubectl = Kubectl(binary=binaries["kubectl"], kubeconfig=kubeconfig)
    show("kubectl get nodes", kubectl("get", "nodes").stdout)
    registry, agent = services(directory)

    step(3, "Installing libinject (the local overlay: the webhook calls the operator on loopback)")
    webhook_port = harness.free_port()
    show(
        f"kubectl kustomize manifests/overlays/local | (webhook URL {webhook_url(webhook_port)}) "
        "| kubectl apply --server-side -f -",
        kubectl("apply", "--server-side", "-f", "-", stdin=install(kubectl, webhook_port)).stdout,
    )
    kubectl("wait", "--for=condition=Established", "crd/instrumentationpolicies.libinject.dev")

    step(4, "Starting the operator as its ServiceAccount: libinject run")
    operator = start_operator(
        kubectl,
        directory,
        webhook_port,
        f"--registry={registry.address}/libinject",
        f"--agent-port-ddtrace={agent.ports['apm']}",
    )
    print(f"(library images from {registry.address}/libinject, traces to {agent.url})")
    show(f"curl http://127.0.0.1:{operator.probe_port}/readyz", operator.probe("/readyz")[1])

    step(5, "Applying the example policies")
    show("kubectl apply -f examples/policies/", kubectl("apply", "-f", str(POLICIES)).stdout)

    step(6, "Creating the example namespaces and opting them in")
    opt_in(kubectl)

    step(7, "Why the checkout Deployment's pods will get what they get")
    show(
        "libinject explain -f examples/workloads/shop.yaml --policies examples/policies",
        libinject("explain", "-f", str(WORKLOADS / "shop.yaml"), "--policies", str(POLICIES)),
    )

    step(8, "Rolling out the example workloads: the webhook injects their pods")
    show("kubectl apply -f examples/workloads/", kubectl("apply", "-f", str(WORKLOADS)).stdout)
    show(
        "kubectl -n shop rollout status deployment/checkout",
        kubectl("-n", "shop", "rollout", "status", "--timeout=60s", "deployment/checkout").stdout,
    )
    pods = injected_pods(
        kubectl, namespace="shop", selector="app=checkout", count=2, operator=operator
    )
    show(
        "kubectl -n shop get pod -l app=checkout -o yaml  (the injected parts)",
        summary({"apiVersion": "v1", "kind": "List", "items": pods}),
    )

    step(9, "Building the Python library image without Docker, pushed to the local registry")
    show(
        f"images/build.sh python ddtrace {VERSION} {registry.address}/libinject",
        build_image(binaries["crane"], registry, language="python", version=VERSION),
    )

    step(10, "Building the Java library image the same way")
    show(
        f"images/build.sh java ddtrace {JAVA_VERSION} {registry.address}/libinject",
        build_image(binaries["crane"], registry, language="java", version=JAVA_VERSION),
    )
    # The pods' images, pulled once for both pods and kept for the next run (by digest).
    images = ImageStore(binaries["crane"], directory / "pod-images")

    step(11, "Running a payments-api pod (Flask) as a kubelet would; the trace it sent")
    webapp = kubectl(
        "-n",
        "payments",
        "create",
        "configmap",
        "webapp",
        f"--from-file={WEBAPP}",
        "--dry-run=client",
        "-o",
        "yaml",
    ).stdout
    kubectl("apply", "-f", "-", stdin=webapp)
    flask = AppImage(env=image_env(virtualenv(FLASK)))
    show_trace(kubectl, "payments-api", app=flask, operator=operator, images=images, agent=agent)

    step(12, "Running a ledger pod (Java, Jetty) as a kubelet would; the trace it sent")
    # Its image's entrypoint: the app's java command line (the app is built on first use).
    ledger = AppImage(env=java_image_env(), entrypoint=tuple(java_command(java_webapp())))
    show_trace(kubectl, "ledger", app=ledger, operator=operator, images=images, agent=agent)

    print(f"\nExplore it:\n  export KUBECONFIG={kubeconfig}\n  {binaries['kubectl']} get ipol")
    print(f"  {binaries['kubectl']} -n shop get pods -L {INSTRUMENTED}")
    print(f"  the operator's log: {operator.log}")
    print(
        f"  the registry: {registry.url}/v2/_catalog; the traces: {agent.url}/test/session/traces"
    )
    print("Stop it all: make cluster-down")
    return 0


def opt_in(kubectl: Kubectl) -> None:
    """The examples' namespaces, applied without the opt-in label, then labelled."""
    kubectl("apply", "-f", "-", stdin=yaml.safe_dump_all(namespaces_without_opt_in()))
    names = [n["metadata"]["name"] for n in namespaces_without_opt_in()]
    for name in names:  # pods are refused until the controllers made this ServiceAccount
        kubectl("wait", "--for=create", "--timeout=30s", "-n", name, "serviceaccount/default")
    label = f"{OPT_IN}=enabled"
    show(
        f"kubectl label namespace {' '.join(names)} {label}",
        kubectl("label", "--overwrite", "namespace", *names, label).stdout,
    )
    # The reconciler writes the columns: Ready and the count of opted-in namespaces.
    kubectl(
        "wait",
        "--for=jsonpath={.status.matchedNamespaces}=2",
        "--timeout=30s",
        "ipol/python-default",
        "ipol/java-default",
    )
    show("kubectl get ipol", kubectl("get", "ipol").stdout)


def services(directory: Path) -> tuple[Registry, TestAgent]:
    """The registry and the trace agent the last steps use (the operator is told their
    addresses), running with the control plane."""
    registry = Registry(
        directory=directory / "registry",
        port=supervisor.companion_ports(directory, "registry").get("http", 0),
        detached=True,
    )
    keep_running(directory, "registry", registry, ports=lambda: {"http": registry.port})
    agent = TestAgent(
        directory=directory / "test-agent",
        ports=supervisor.companion_ports(directory, "test-agent"),
        detached=True,
    )
    keep_running(directory, "test-agent", agent, ports=lambda: agent.ports)
    return registry, agent


class Companion(Protocol):
    """A service the demo leaves running with the control plane (Registry, TestAgent)."""

    process: harness.Process | None

    def start(self) -> None: ...

    def answers(self) -> bool: ...


def keep_running(
    directory: Path, name: str, service: Companion, *, ports: Callable[[], dict[str, int]]
) -> None:
    """Reuses the `name` an earlier run left, if it answers; else starts it (on the ports an
    earlier run recorded, if any: the pods of that run name them) and records it."""
    if supervisor.companion_pid(directory, name) is not None:
        if service.answers():
            print(f"(the {name} of an earlier run, reused on {_ports(ports())})")
            return
        supervisor.stop_companion(directory, name)
    recorded = supervisor.companion_ports(directory, name)
    try:
        service.start()
    except StartupError as error:
        if not recorded:
            raise
        raise StartupError(
            f"the {name} did not start again on the ports an earlier run recorded "
            f"({_ports(recorded)}), which its pods name; `make cluster-down` then `make demo` "
            f"starts afresh.\n{error}"
        ) from None
    if recorded:
        print(
            f"(the {name} started again on the ports an earlier run recorded: {_ports(recorded)})"
        )
    assert service.process is not None
    supervisor.record_companion(directory, name, pid=service.process.popen.pid, ports=ports())


def _ports(ports: dict[str, int]) -> str:
    return ", ".join(f"{name} 127.0.0.1:{port}" for name, port in ports.items())


def webhook_url(port: int) -> str:
    return f"https://127.0.0.1:{port}/{WEBHOOK_PATH}"


def install(kubectl: Kubectl, webhook_port: int) -> str:
    """The local overlay with the webhook's URL on `webhook_port`: a port of this demo's own (not
    the overlay's fixed one), so that no other cluster's operator serves this cluster's calls
    (replicas share a port) and no patch fights the next apply over the field."""
    objects = [d for d in yaml.safe_load_all(kubectl("kustomize", str(LOCAL_OVERLAY)).stdout) if d]
    for document in objects:
        if document["kind"] == "MutatingWebhookConfiguration":
            document["webhooks"][0]["clientConfig"]["url"] = webhook_url(webhook_port)
    return yaml.safe_dump_all(objects)


def build_image(crane: Path, registry: Registry, *, language: str, version: str) -> str:
    """images/build.sh for ddtrace, for this machine's platform only; Python's for this
    machine's interpreter only (a quick local image)."""
    result = run_build_script(
        language=language,
        flavor="ddtrace",
        version=version,
        repository=f"{registry.address}/libinject",
        crane=crane,
        platforms=(node_platform(),),
        bundle_flags=f"--target {HOST_PYTHON}" if language == "python" else "",
    )
    if result.returncode != 0:
        raise SystemExit(f"demo failed: {' '.join(result.args)}:\n{result.stderr}")
    return result.stdout


def show_trace(
    kubectl: Kubectl,
    deployment: str,
    *,
    app: AppImage,
    operator: OperatorProcess,
    images: ImageStore,
    agent: TestAgent,
) -> None:
    """Runs the injected pod of a payments Deployment from what its image would bring (`app`)
    and shows its injected parts, its output and the root span of the trace it sent."""
    kubectl("-n", "payments", "rollout", "status", "--timeout=60s", f"deployment/{deployment}")
    (pod,) = injected_pods(
        kubectl, namespace="payments", selector=f"app={deployment}", count=1, operator=operator
    )
    name = pod["metadata"]["name"]
    show(f"kubectl -n payments get pod/{name} -o yaml  (the injected parts)", summary(pod))
    agent.clear()  # an earlier pod's or run's traces
    output = run_pod(kubectl, images, pod, agent, app=app)
    show("the pod's output, then GET / three times (more if the sampler kept none)", output)
    show(f"curl {agent.url}/test/session/traces  (the root span)", first_span(agent))


def run_pod(
    kubectl: Kubectl, images: ImageStore, pod: dict[str, Any], agent: TestAgent, *, app: AppImage
) -> str:
    """The pod run by the pod runner (as root: private mount namespaces) from what its image
    would bring (`app`), with debug lines on; three requests, more until its tracer keeps one
    (the test agent lets tracers drop unsampled traces); its output once a trace arrived. An app
    that exits or never answers fails the demo with its output (the pod's port is fixed: another
    demo's app may hold it)."""
    port = next(e["value"] for e in pod["spec"]["containers"][0]["env"] if e["name"] == "PORT")
    admin = kube_config.new_client_from_config(config_file=str(kubectl.kubeconfig))
    debug = replace(app, env={**app.env, "LIBINJECT_DEBUG": "true"})
    with tempfile.TemporaryDirectory(prefix="libinject-demo-pod-") as work:
        runner = PodRunner(admin=admin, crane=images.crane, directory=Path(work), images=images)
        with runner.start(pod, app=debug) as running:
            url = f"http://127.0.0.1:{port}/"

            def answers() -> bool:
                if running.returncode is not None:
                    raise StartupError(
                        f"the pod's app exited with {running.returncode}:\n{running.output()}"
                    )
                return _answers(url)

            try:
                poll.until(answers, what=f"the app to answer on {url}", timeout=60)
                replies = [_get(url) for _ in range(3)]

                def kept() -> list[Any]:
                    traces = agent.traces()
                    if not traces:
                        # python-default keeps one trace in two (tracing.sampleRate), and
                        # dd-java-agent drops the others itself: ask again until one is kept.
                        _get(url)
                    return traces

                poll.until(kept, what="a kept trace at the test agent", timeout=30, interval=1)
            except TimeoutError as error:
                raise TimeoutError(f"{error}; the pod's output:\n{running.output()}") from None
            return _clipped(running.output()) + "".join(replies)


def _clipped(output: str, width: int = 200) -> str:
    """The output with long lines cut (dd-java-agent's start-up line is its whole configuration
    as JSON, some 2,000 characters)."""
    lines = output.splitlines(keepends=True)
    return "".join(line if len(line) <= width else f"{line[:width]} ...\n" for line in lines)


def first_span(agent: TestAgent) -> str:
    """The first trace's root span: what the agent got, and from which pod."""
    span = next(span for span in agent.traces()[0] if span.get("parent_id") in (0, None))
    keep = ("service", "name", "resource", "duration")
    shown = {key: span[key] for key in keep} | {
        key: span["meta"][key] for key in ("env", "version", "component") if key in span["meta"]
    }
    return json.dumps(shown, indent=2)


def _answers(url: str) -> bool:
    try:
        _get(url)
    except OSError:
        return False
    return True


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return str(response.read().decode())


def start_operator(
    kubectl: Kubectl, directory: Path, webhook_port: int, *extra_args: str
) -> OperatorProcess:
    """`libinject run` as the operator's ServiceAccount, left running with the control plane."""
    supervisor.stop_companion(directory, "operator")  # one left by an earlier demo run
    token = kubectl(
        "create", "token", "-n", OPERATOR_NAMESPACE, OPERATOR_ACCOUNT, "--duration=24h"
    ).stdout.strip()
    config = yaml.safe_load(kubectl.kubeconfig.read_text())
    cluster = config["clusters"][0]["cluster"]
    operator_config = directory / "operator.kubeconfig"
    operator_config.write_text(
        harness.kubeconfig(
            server=cluster["server"],
            ca=Path(cluster["certificate-authority"]),
            user={"token": token},
        )
    )
    operator = OperatorProcess(
        kubeconfig=operator_config,
        directory=directory,
        webhook_port=webhook_port,
        detached=True,
        extra_args=extra_args,
    ).start()
    assert operator.popen is not None
    supervisor.record_companion(
        directory,
        "operator",
        pid=operator.popen.pid,
        ports={"webhook": webhook_port, "probe": operator.probe_port},
    )
    return operator.wait_ready()


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (KubectlError, BuildError, StartupError, TimeoutError, NotInjectedError) as error:
        sys.exit(f"demo failed: {error}")
