"""Everything under tests/live runs against the local control plane (tests/cluster).

Tests that measure something (the share of pods injected through an outage, say) add a line with
the `report` fixture; the lines are printed at the end of the run, pass or fail. The trace tests
(test_traces.py for Python, test_java_traces.py for Java) share the fixtures that make an
injecting namespace, push a spoiled library image and run pods' apps (`injecting`, `odd_image`,
`mode`, `runner`, `serve`)."""

from __future__ import annotations

import secrets
import shutil
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from cluster import kubejson, poll
from cluster.csiplugin import CSIPlugin
from cluster.fixtures import GROUP, PLURAL, VERSION, NamespaceFactory
from cluster.libraries import BundleFactory, ImageFactory, library_versions, push_image
from cluster.podrunner import AppImage, PodRunner, RunningPod
from cluster.registry import Registry
from cluster.testagent import TestAgent
from cluster.traced import answers, library_volume, port_of
from cluster.workloads import ENABLED, PolicyFactory, app_pod, policy
from libinject.engine.platforms import node_platform

HERE = Path(__file__).parent
REPORTS: list[str] = []


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # `pytest -m "not live"` runs the offline tests alone, without building or starting anything.
    for item in items:
        if HERE in Path(item.fspath).parents:
            item.add_marker(pytest.mark.live)


@pytest.fixture
def report(request: pytest.FixtureRequest) -> Callable[[str], None]:
    def add(line: str) -> None:
        REPORTS.append(f"{request.node.name}: {line}")

    return add


@pytest.fixture
def policies(admin: client.ApiClient, installed: None) -> Iterator[PolicyFactory]:
    """Creates cluster-scoped policies with unique names; deletes them afterwards (those the
    test has not deleted itself)."""
    api = client.CustomObjectsApi(admin)
    made: list[str] = []

    def create(body: dict[str, Any]) -> str:
        body["metadata"]["name"] += f"-{secrets.token_hex(3)}"
        api.create_cluster_custom_object(GROUP, VERSION, PLURAL, body)
        made.append(body["metadata"]["name"])
        return str(body["metadata"]["name"])

    yield create
    for name in made:
        try:
            api.delete_cluster_custom_object(GROUP, VERSION, PLURAL, name)
        except client.ApiException as error:
            if error.status != 404:
                raise


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if REPORTS:
        terminalreporter.section("libinject measurements")
        for line in REPORTS:
            terminalreporter.write_line(line)


@pytest.fixture
def mode(request: pytest.FixtureRequest) -> str:
    """The policies' injection mode: init-container unless a test parametrizes it (indirect)."""
    return str(getattr(request, "param", "init-container"))


@pytest.fixture
def runner(
    admin: client.ApiClient, crane: Path, tmp_path: Path, mode: str, request: pytest.FixtureRequest
) -> PodRunner:
    """The pod runner; in csi mode it publishes through the test's CSI plugin."""
    if mode != "csi":
        return PodRunner(admin=admin, crane=crane, directory=tmp_path / "pods")
    plugin: CSIPlugin = request.getfixturevalue("csi_plugin")  # stopped after the pods
    return PodRunner(
        admin=admin,
        crane=crane,
        directory=tmp_path / "pods",
        csi_endpoint=plugin.endpoint,
        kubelet_root=plugin.kubelet_root,
    )


@pytest.fixture
def injecting(
    namespaces: NamespaceFactory,
    policies: PolicyFactory,
    library_images: ImageFactory,
    test_agent: TestAgent,
    mode: str,
    admin: client.ApiClient,
) -> Callable[..., str]:
    """A fresh opted-in namespace whose pods get `language`'s `flavor` library at its listed
    version, from its image in the local registry (or `image`), with the node's agent at the
    test agent's port, and any other `spec` fields given; returns the namespace once the webhook
    injects there. In csi or image-volume mode the policy says so (`injection: {mode: ...}`)."""

    def make(language: str, flavor: str, *, image: str = "", **spec: Any) -> str:
        namespace = namespaces(labels=ENABLED)
        library = {
            "language": language,
            "flavor": flavor,
            "version": library_versions(language)[flavor],
            "image": image or library_images(flavor, language=language),
        }
        port = test_agent.ports["apm" if flavor == "ddtrace" else "otlp-http"]
        injection = {"injection": {"mode": mode}} if mode != "init-container" else {}
        policies(
            policy(
                f"traces-{language}-{flavor}",
                [namespace],
                libraries=[library],
                agent={"mode": "hostIP", "port": port},
                **injection,
                **spec,
            )
        )
        _wait_until_injecting(admin, namespace, mode=mode, language=language)
        return namespace

    return make


def _wait_until_injecting(
    admin: client.ApiClient, namespace: str, *, mode: str, language: str
) -> None:
    """Until the operator's index has the new policy: a dry-run create comes back injected (a
    copy container, or the CSI or image volume of the other modes)."""
    core = client.CoreV1Api(admin)
    name = library_volume(language)

    def injected() -> bool:
        probe = app_pod(f"probe-{secrets.token_hex(2)}")
        response = core.create_namespaced_pod(
            namespace, kubejson.body(probe), dry_run="All", _preload_content=False
        )
        spec = kubejson.json_of(response)["spec"]
        if mode == "init-container":
            return any(c["name"] == name for c in spec.get("initContainers") or ())
        kind = "csi" if mode == "csi" else "image"
        return any(v["name"] == name and kind in v for v in spec.get("volumes") or ())

    poll.until(injected, what=f"injection in {namespace}", timeout=30)


@pytest.fixture
def serve(runner: PodRunner) -> Iterator[Callable[..., tuple[RunningPod, int]]]:
    """Runs a pod's app (what its image would bring: `app`) and waits until it answers HTTP on
    the pod's PORT; stops every app at the end."""
    started: list[RunningPod] = []

    def run(pod: dict[str, Any], app: AppImage | Mapping[str, str]) -> tuple[RunningPod, int]:
        running = runner.start(pod, app=app)
        started.append(running)
        port = port_of(pod)
        poll.until(
            lambda: running.returncode is not None or answers(port),
            what=f"the app on port {port}",
            timeout=60,
        )
        assert running.returncode is None, f"the app exited:\n{running.output()}"
        return running, port

    yield run
    for running in started:
        running.stop()


@pytest.fixture
def odd_image(
    bundles: BundleFactory, registry: Registry, crane: Path, tmp_path: Path
) -> Callable[..., str]:
    """Pushes a copy of `language`'s ddtrace bundle (Python's for the host's interpreter),
    changed by `spoil`, under a tag of its own named `name`."""

    def make(name: str, spoil: Callable[[Path], None], *, language: str = "python") -> str:
        bundle = tmp_path / name
        shutil.copytree(bundles("ddtrace", language=language), bundle)
        spoil(bundle)
        version = library_versions(language)["ddtrace"]
        reference = f"{registry.address}/libinject/{language}-ddtrace:{version}-{name}"
        push_image(bundles={node_platform(): bundle}, reference=reference, crane=crane)
        return reference

    return make
