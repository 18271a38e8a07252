"""`make bench` writes `bench/results/scale.json`: each operator's memory with a large cluster's
worth of objects, libinject beside the OpenTelemetry Operator on one local control plane.

The population is the engine bench's (bench/engine.py): 10,000 namespaces with team, env, opt-in
and Pod Security labels, and 1,000 policies of every selector kind. For each operator's process,
its resident memory (VmRSS) when idle after start; once every namespace and policy exists and
libinject's policy statuses have converged; and after 10,000 pod creates, 5,000 through each
webhook, once libinject's coverage counts have converged (libinject watches every pod for
them). Also: how long after the last create the statuses converged
(every policy's matchedNamespaces as `libinject.status.reconcile` derives it from the cluster's
own listing, then every policy's status.pods as `libinject.coverage` derives it from the
listing of pods). Goal: libinject under 150 MiB with everything in place.
"""

from __future__ import annotations

import functools
import random
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kubernetes import client, config

from bench import engine, webhook
from bench.stats import write_results
from cluster import kubejson, poll
from cluster.fixtures import GROUP, PLURAL, VERSION
from cluster.kubectl import Kubectl
from cluster.workloads import app_pod
from libinject.api.types import Flavor, Language
from libinject.coverage import Tally, states, summarize, winners
from libinject.engine.checks import usable_policy
from libinject.engine.index import PolicyIndex
from libinject.engine.settings import EngineSettings
from libinject.engine.versions import library_image
from libinject.status import PolicyObject, reconcile

RESULTS = Path(__file__).parent / "results" / "scale.json"
PODS = 10_000  # half through each webhook
POD_NAMESPACES = 50  # of the population's opted-in ones, for libinject's half
CREATORS = 8  # threads creating objects at once
CONVERGENCE_TIMEOUT = 600.0
GOAL_MIB = 150


def main() -> None:
    started, clock = datetime.now(UTC), time.perf_counter()
    population = random.Random(engine.SEED)
    namespaces = engine.build_namespaces(population)
    policies = engine.build_policy_objects(population, [ns.name for ns in namespaces])
    with webhook.side_by_side("libinject-scale-") as both:
        api = config.new_client_from_config(config_file=str(both.plane.kubeconfig))
        pids = {"libinject": webhook.operator_pid(both.operator), "otel_operator": both.otel.pid}
        report = measure(api, both.kubectl, pids=pids, namespaces=namespaces, policies=policies)
    report = {
        "benchmark": "Each operator's resident memory with 10,000 namespaces, 1,000 policies"
        " and 10,000 pods (5,000 through each webhook) on one local control plane",
        "timestamp": started.isoformat(timespec="seconds"),
        "environment": webhook.side_by_side_environment(
            memory="VmRSS of each operator's process",
        ),
        **report,
        "wall_seconds": round(time.perf_counter() - clock, 1),
    }
    write_results(RESULTS, report)
    print_summary(report)


def measure(
    api: client.ApiClient,
    kubectl: Kubectl,
    *,
    pids: Mapping[str, int],
    namespaces: list[Any],
    policies: list[dict[str, Any]],
) -> dict[str, Any]:
    core = client.CoreV1Api(api)
    custom = client.CustomObjectsApi(api)
    rss: dict[str, dict[str, float]] = {"idle": _rss(pids)}
    print(f"idle: {rss['idle']}", flush=True)
    begun = time.perf_counter()
    _create_all(
        core.create_namespace,
        (
            kubejson.body({"metadata": {"name": ns.name, "labels": _own_labels(ns.labels)}})
            for ns in namespaces
        ),
    )
    create = functools.partial(custom.create_cluster_custom_object, GROUP, VERSION, PLURAL)
    _create_all(create, policies)
    created = time.perf_counter()
    convergence = wait_for_statuses(api, len(policies))
    rss["namespaces_and_policies"] = _rss(pids)
    print(f"namespaces and policies: {rss['namespaces_and_policies']}", flush=True)
    pods = create_pods(core, kubectl, namespaces=namespaces)
    pods_created = time.perf_counter()
    counted = wait_for_pod_counts(api)
    rss["with_pods"] = _rss(pids)
    return {
        "population": {
            "namespaces": len(namespaces),
            "policies": len(policies),
            "pods": pods,
        },
        "create_seconds": round(created - begun, 1),
        "status_convergence_seconds_after_last_create": round(convergence - created, 1),
        "pod_counts_convergence_seconds_after_last_pod": round(counted - pods_created, 1),
        "rss_mib": rss,
        "goal": {
            "libinject_mib_under": GOAL_MIB,
            "met": rss["with_pods"]["libinject"] < GOAL_MIB,
        },
    }


def _own_labels(labels: Mapping[str, str]) -> dict[str, str]:
    """The population's labels less the one the API server sets itself."""
    return {k: v for k, v in labels.items() if k != "kubernetes.io/metadata.name"}


def _create_all(create: Callable[[Any], Any], bodies: Iterable[Any]) -> None:
    with ThreadPoolExecutor(CREATORS) as pool:
        for _ in pool.map(create, bodies):
            pass


def _rss(pids: Mapping[str, int]) -> dict[str, float]:
    return {name: webhook.rss_mib(pid) for name, pid in pids.items()}


def wait_for_statuses(api: client.ApiClient, count: int) -> float:
    """When every policy's status says what `reconcile` derives from the cluster's listing of
    namespaces and policies (its matchedNamespaces): the moment the operator caught up."""
    core = client.CoreV1Api(api)
    custom = client.CustomObjectsApi(api)
    labels = _namespace_labels(core)
    listed = _policies(custom)
    if len(listed) != count:
        raise RuntimeError(f"{len(listed)} policies listed, {count} created")
    objects = [
        PolicyObject(name=p["metadata"]["name"], generation=1, body=p, status={}) for p in listed
    ]
    verdicts = reconcile(
        objects, namespaces=labels, settings=EngineSettings().namespaces, now=datetime.now(UTC)
    )
    expected = {name: v.status.get("matchedNamespaces") for name, v in verdicts.items()}

    def caught_up() -> float | None:
        items = _policies(custom)
        seen = {
            p["metadata"]["name"]: (p.get("status") or {}).get("matchedNamespaces") for p in items
        }
        return time.perf_counter() if seen == expected else None

    return float(
        poll.until(
            caught_up, what="every policy's status", timeout=CONVERGENCE_TIMEOUT, interval=0.5
        )
    )


def wait_for_pod_counts(api: client.ApiClient) -> float:
    """When every policy's status.pods says what `libinject.coverage` derives from the
    cluster's own listing of pods, namespaces and policies."""
    core = client.CoreV1Api(api)
    custom = client.CustomObjectsApi(api)
    labels = _namespace_labels(core)
    index = PolicyIndex(usable_policy(p) for p in _policies(custom))
    listing = kubejson.json_of(core.list_pod_for_all_namespaces(_preload_content=False))
    tally = Tally()
    settings = EngineSettings().namespaces
    for number, pod in enumerate(listing["items"]):
        summary = summarize(pod)
        if summary is not None:
            chosen = winners(summary, index=index, namespaces=labels, settings=settings)
            tally.judge(number, states(summary, chosen))
    expected = {name: tally.status(name)["pods"] for name in (p.name for p in index.policies)}

    def caught_up() -> float | None:
        seen = {
            p["metadata"]["name"]: (p.get("status") or {}).get("pods")
            for p in _policies(custom)
            if p["metadata"]["name"] in expected
        }
        return time.perf_counter() if seen == expected else None

    return float(
        poll.until(
            caught_up, what="every policy's pod counts", timeout=CONVERGENCE_TIMEOUT, interval=1.0
        )
    )


def _namespace_labels(core: client.CoreV1Api) -> dict[str, dict[str, str]]:
    return {
        str(ns.metadata.name): dict(ns.metadata.labels or {})
        for ns in core.list_namespace().items
        if ns.metadata is not None
    }


def _policies(custom: client.CustomObjectsApi) -> list[dict[str, Any]]:
    listing: Any = custom.list_cluster_custom_object(GROUP, VERSION, PLURAL)
    return list(listing["items"])


def create_pods(
    core: client.CoreV1Api, kubectl: Kubectl, *, namespaces: list[Any]
) -> dict[str, int]:
    """Half the pods in opted-in namespaces of the population (libinject's webhook decides each),
    half in a namespace the OpenTelemetry Operator injects."""
    # Opted in, and without restricted Pod Security: the app pod sets no securityContext.
    opted_in = [
        ns.name
        for ns in namespaces
        if ns.labels.get("libinject.dev/inject") == "enabled"
        and "pod-security.kubernetes.io/enforce" not in ns.labels
    ]
    ours = opted_in[:POD_NAMESPACES]
    peer = webhook.ARMS["otel_operator"]
    webhook.create_namespace(core, peer)
    image = library_image(
        registry=EngineSettings().libraries.registry,
        language=Language(webhook.LIBRARY["language"]),
        flavor=Flavor(webhook.LIBRARY["flavor"]),
        version=webhook.LIBRARY["version"],
    )
    webhook.instrument(kubectl, image)
    for namespace in [*ours, peer.namespace]:
        default_service_account(core, namespace)
    half = PODS // 2
    ours_bodies = [(ours[n % len(ours)], app_pod(f"scale-{n}")) for n in range(half)]
    peer_bodies = [(peer.namespace, app_pod(f"scale-{n}")) for n in range(half)]

    def create(item: tuple[str, dict[str, Any]]) -> None:
        core.create_namespaced_pod(item[0], kubejson.body(item[1]))

    _create_all(create, [*ours_bodies, *peer_bodies])
    return {"through_libinject": half, "through_otel_operator": half}


def default_service_account(core: client.CoreV1Api, namespace: str) -> None:
    """The namespace's default ServiceAccount, which pods need: made here when the controller,
    still working through 10,000 new namespaces, has not made it yet."""
    body = kubejson.body({"metadata": {"name": "default"}})
    try:
        core.create_namespaced_service_account(namespace, body)
    except client.ApiException as error:
        if error.status != 409:  # already made by the controller
            raise


def print_summary(report: dict[str, Any]) -> None:
    print("scale benchmark (resident memory, MiB)")
    for stage, by_process in report["rss_mib"].items():
        shown = ", ".join(f"{name} {mib}" for name, mib in by_process.items())
        print(f"  {stage:<24} {shown}")
    seconds = report["status_convergence_seconds_after_last_create"]
    print(f"  statuses converged {seconds} s after the last create")
    counted = report["pod_counts_convergence_seconds_after_last_pod"]
    print(f"  pod counts converged {counted} s after the last pod create")
    print(
        f"  goal: libinject under {GOAL_MIB} MiB: {'met' if report['goal']['met'] else 'not met'}"
    )
    print(f"  written to {RESULTS}")


if __name__ == "__main__":
    main()
