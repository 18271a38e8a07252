"""`make bench` writes `bench/results/webhook.json`: what the webhook costs a pod create.

On a local control plane (tests/cluster), with the operator running as a process (`libinject
run`, the local overlay), one run measures:

- pod creates through the real API server in an opted-in namespace (our webhook called, two
  libraries injected) and in a plain one (no webhook call), interleaved so that both sides see
  the same machine noise; the ratio of their medians and p99s is the webhook's cost (goal: at
  most 1.15x). A third side splits that cost: pods that already carry the injection, in the
  opted-in namespace (our webhook called, nothing to change): the price of the call itself,
  apart from that of storing a bigger pod;
- the admission latency at the operator, from its own log line per admission (the first call,
  which injects, and the API server's reinvocation, which changes nothing);
- admissions per second: AdmissionReviews sent straight to the operator's HTTPS endpoint by
  concurrent clients, the most this machine's operator process answers.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import functools
import json
import ssl
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from kubernetes import client, config

from bench.stats import environment, summarize, write_results
from cluster import build, harness, kubejson, poll
from cluster.fixtures import GROUP, PLURAL, VERSION
from cluster.kubectl import Kubectl
from cluster.operator import NAMESPACE, OperatorProcess
from cluster.workloads import ENABLED, app_pod, wait_until_injecting

REPO = Path(__file__).parents[1]
RESULTS = Path(__file__).parent / "results" / "webhook.json"
WARMUP_PODS = 30
PODS = 300  # per side
THROUGHPUT_REQUESTS = 3000
CONCURRENCY = 16
TARGET_RATIO = 1.15
CALLED_ONLY = "webhook_called_nothing_to_change"


def main() -> None:
    started, clock = datetime.now(UTC), time.perf_counter()
    binaries = build.binaries()
    with (
        tempfile.TemporaryDirectory(prefix="libinject-bench-") as scratch,
        harness.ControlPlane(Path(scratch), nodes=2) as plane,
    ):
        kubectl = Kubectl(binary=binaries["kubectl"], kubeconfig=plane.kubeconfig)
        port = harness.free_port()
        install(kubectl, port)
        operator = OperatorProcess(
            kubeconfig=plane.kubeconfig, directory=Path(scratch), webhook_port=port
        ).start()
        try:
            operator.wait_ready()
            report = measure(plane, operator)
        finally:
            operator.stop()
    report["wall_seconds"] = round(time.perf_counter() - clock, 1)
    report = {
        "benchmark": "libinject webhook: pod creates through a real API server, with and without",
        "timestamp": started.isoformat(timespec="seconds"),
        "environment": environment(
            control_plane="local etcd + kube-apiserver + controllers + kwok (tests/cluster)",
            clock="time.perf_counter_ns around each create; the operator's own ms per admission",
        ),
        **report,
    }
    write_results(RESULTS, report)
    print_summary(report)


def install(kubectl: Kubectl, port: int) -> None:
    kubectl("apply", "--server-side", "-k", str(REPO / "manifests" / "overlays" / "local"))
    url = f"https://127.0.0.1:{port}/mutate-pods"
    patch = [{"op": "replace", "path": "/webhooks/0/clientConfig/url", "value": url}]
    kubectl(
        "patch", "mutatingwebhookconfiguration", "libinject", "--type=json", "-p", json.dumps(patch)
    )
    kubectl("wait", "--for=condition=Established", "crd/instrumentationpolicies.libinject.dev")


def _service_accounts(core: client.CoreV1Api, namespace: str) -> list[Any]:
    return list(core.list_namespaced_service_account(namespace).items)


def measure(plane: harness.ControlPlane, operator: OperatorProcess) -> dict[str, Any]:
    api = config.new_client_from_config(config_file=str(plane.kubeconfig))
    core = client.CoreV1Api(api)
    injected, plain = "bench-injected", "bench-plain"
    for name, labels in ((injected, ENABLED), (plain, {})):
        core.create_namespace(kubejson.body({"metadata": {"name": name, "labels": labels}}))
        poll.until(
            functools.partial(_service_accounts, core, name),
            what=f"the default ServiceAccount of {name}",
            timeout=60,
        )
    client.CustomObjectsApi(api).create_cluster_custom_object(
        GROUP, VERSION, PLURAL, policy(injected)
    )
    wait_until_injecting(api, injected)

    template = injected_template(core, injected)
    creates = create_interleaved(core, injected=injected, plain=plain, template=template)
    with_webhook, without = summarize(creates[injected]), summarize(creates[plain])
    called_only = summarize(creates[CALLED_ONLY])
    admissions = admission_times(operator, namespace=injected)
    throughput = asyncio.run(
        admissions_per_second(api, port=operator.webhook_port, namespace=injected)
    )
    ratio = ratios(with_webhook, without)
    return {
        "setup": {
            "pods_per_side": PODS,
            "warmup_pods_per_side": WARMUP_PODS,
            "libraries_injected_per_pod": 2,
            "throughput_requests": THROUGHPUT_REQUESTS,
            "throughput_concurrency": CONCURRENCY,
        },
        "pod_create": {
            "with_webhook": with_webhook,
            "without_webhook": without,
            "webhook_called_nothing_to_change": called_only,
        },
        "ratio_with_to_without": ratio,
        "ratio_called_nothing_to_change_to_without": ratios(called_only, without),
        "admission_at_operator": admissions,
        "admissions_per_second": throughput,
        "target": {"ratio_p50_at_most": TARGET_RATIO, "met": ratio["p50"] <= TARGET_RATIO},
    }


def policy(namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "InstrumentationPolicy",
        "metadata": {"name": "bench"},
        "spec": {
            "libraries": [
                {"language": "python", "version": "3.12.0"},
                {"language": "java", "version": "1.44.0"},
            ],
            "namespaceSelector": {"matchNames": [namespace]},
        },
    }


def ratios(side: dict[str, float], base: dict[str, float]) -> dict[str, float]:
    return {key: round(side[f"{key}_us"] / base[f"{key}_us"], 3) for key in ("p50", "p99", "mean")}


def injected_template(core: client.CoreV1Api, namespace: str) -> dict[str, Any]:
    """A pod as our webhook stored it, minus what the server sets: re-created, it needs nothing."""
    core.create_namespaced_pod(namespace, kubejson.body(app_pod("template")))
    stored = core.read_namespaced_pod("template", namespace, _preload_content=False)
    pod = kubejson.json_of(stored)
    metadata = {key: pod["metadata"][key] for key in ("labels", "annotations")}
    spec = {key: value for key, value in pod["spec"].items() if key != "nodeName"}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec}


def create_interleaved(
    core: client.CoreV1Api, *, injected: str, plain: str, template: dict[str, Any]
) -> dict[str, list[int]]:
    """Rotates the three sides (and which goes first) pod by pod; warm-up pods untimed."""
    sides = [(injected, injected), (plain, plain), (CALLED_ONLY, injected)]
    timings: dict[str, list[int]] = {side: [] for side, _ in sides}
    for index in range(WARMUP_PODS + PODS):
        shift = index % len(sides)
        for side, namespace in sides[shift:] + sides[:shift]:
            body = copy.deepcopy(template) if side == CALLED_ONLY else app_pod("")
            body["metadata"]["name"] = f"{'again' if side == CALLED_ONLY else 'pod'}-{index}"
            payload = kubejson.body(body)
            begun = time.perf_counter_ns()
            core.create_namespaced_pod(namespace, payload)
            elapsed = time.perf_counter_ns() - begun
            if index >= WARMUP_PODS:
                timings[side].append(elapsed)
    return timings


def admission_times(operator: OperatorProcess, *, namespace: str) -> dict[str, Any]:
    """The operator's own timing of each admission of the timed pods, by outcome."""
    by_outcome: dict[str, list[int]] = {}
    for line in operator.log_lines():
        if line.get("event") != "admission" or line.get("namespace") != namespace:
            continue
        _, _, number = str(line.get("pod", "")).rpartition("-")
        if number.isdigit() and int(number) >= WARMUP_PODS:
            ms = float(str(line["ms"]))
            by_outcome.setdefault(str(line["outcome"]), []).append(int(ms * 1_000_000))
    return {outcome: summarize(times) for outcome, times in sorted(by_outcome.items())}


async def admissions_per_second(
    api: client.ApiClient, *, port: int, namespace: str
) -> dict[str, Any]:
    secret = client.CoreV1Api(api).read_namespaced_secret("libinject-webhook-tls", NAMESPACE)
    assert secret.data is not None
    bundle = base64.b64decode(secret.data["ca.crt"]).decode()
    context = ssl.create_default_context(cadata=bundle)
    url = f"https://127.0.0.1:{port}/mutate-pods"
    queue: asyncio.Queue[int] = asyncio.Queue()
    for number in range(THROUGHPUT_REQUESTS):
        queue.put_nowait(number)
    patched = 0

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal patched
        while not queue.empty():
            number = queue.get_nowait()
            review = {
                "apiVersion": "admission.k8s.io/v1",
                "kind": "AdmissionReview",
                "request": {
                    "uid": f"bench-{number}",
                    "namespace": namespace,
                    "operation": "CREATE",
                    "resource": {"group": "", "version": "v1", "resource": "pods"},
                    "kind": {"group": "", "version": "v1", "kind": "Pod"},
                    "userInfo": {"username": "bench"},
                    "object": app_pod(f"direct-{number}"),
                },
            }
            async with session.post(url, json=review, ssl=context) as response:
                answer = await response.json()
                patched += "patch" in answer["response"]

    begun = time.perf_counter()
    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(worker(session) for _ in range(CONCURRENCY)))
    seconds = time.perf_counter() - begun
    return {
        "requests": THROUGHPUT_REQUESTS,
        "injected": patched,
        "seconds": round(seconds, 2),
        "per_second": round(THROUGHPUT_REQUESTS / seconds, 1),
    }


def print_summary(report: dict[str, Any]) -> None:
    creates = report["pod_create"]
    print("libinject webhook benchmark (times in microseconds)")
    for side, stats in creates.items():
        print(f"  pod create {side:<34} p50 {stats['p50_us']:>9.1f}  p99 {stats['p99_us']:>9.1f}")
    ratio = report["ratio_with_to_without"]
    called = report["ratio_called_nothing_to_change_to_without"]
    print(f"  ratio webhook called, nothing to change / without: p50 {called['p50']}x")
    print(
        f"  ratio with/without: p50 {ratio['p50']}x, p99 {ratio['p99']}x (goal <= {TARGET_RATIO}x)"
    )
    for outcome, stats in report["admission_at_operator"].items():
        p50, p99 = stats["p50_us"], stats["p99_us"]
        print(f"  admission at the operator, {outcome:<10} p50 {p50:>8.1f}  p99 {p99:>8.1f}")
    rate = report["admissions_per_second"]["per_second"]
    print(f"  admissions per second (direct, {CONCURRENCY} clients): {rate}")
    print(f"  written to {RESULTS}")


if __name__ == "__main__":
    main()
