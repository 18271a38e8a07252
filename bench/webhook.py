"""`make bench` writes `bench/results/webhook.json`: what a webhook costs a pod create, libinject's
beside its peer's.

On one local control plane (tests/cluster), with libinject's operator running as a process
(`libinject run`, the local overlay) and the peers of bench/peers.py beside it, one run measures:

- pod creates through the real API server in four arms, interleaved pod by pod so that all see
  the same machine noise, each arm a namespace that calls at most one webhook: `no_webhook`;
  `floor`, a webhook that allows and changes nothing (what a call costs by itself);
  `libinject`, injecting OpenTelemetry Python (0.66b1); `otel_operator`, the OpenTelemetry
  Operator injecting the same library from the same image. Every stored pod of an injecting arm
  is checked to be injected (an arm that failed open would look fast). Each arm's ratio to
  no_webhook, to the floor, and libinject's to the OTel operator's; goal: libinject no slower
  than the OTel operator, p50 and p99;
- the API server's own timing of each webhook (the mean of its
  apiserver_admission_webhook_admission_duration_seconds histogram over the timed creates: its
  buckets are too coarse for percentiles);
- the admission latency at libinject's operator, from its own log line per admission;
- admissions per second: AdmissionReviews sent straight to each webhook's HTTPS endpoint by 16
  concurrent clients, the most this machine answers, in rounds that rotate the arms (so that
  the cluster settling after the creates slows no arm alone); each arm's median round; goal:
  libinject at least the peer's;
- each webhook process's resident memory after the run;
- one pod cannot stall a libinject replica: the latency of a normal review sent straight to the
  operator, alone, then while large reviews are in flight one after another (a pod at the
  engine's bounds, which is decided; a pod of 15,000 containers, refused as PodTooLarge).
"""

from __future__ import annotations

import asyncio
import base64
import functools
import gc
import json
import ssl
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import aiohttp
from kubernetes import client, config
from prometheus_client.parser import text_string_to_metric_families

from bench import peers
from bench.stats import environment, summarize, write_results
from cluster import build, harness, kubejson, poll
from cluster.fixtures import GROUP, PLURAL, VERSION
from cluster.kubectl import Kubectl
from cluster.operator import NAMESPACE, OperatorProcess
from cluster.workloads import ENABLED, INSTRUMENTED, app_pod, wait_until_injecting
from libinject.engine import limits
from tools.gobuild import go_tool

REPO = Path(__file__).parents[1]
RESULTS = Path(__file__).parent / "results" / "webhook.json"
WARMUP_PODS = 30
PODS = 300  # per arm
THROUGHPUT_REQUESTS = 2000  # per round
THROUGHPUT_ROUNDS = 5
CONCURRENCY = 16
PROBES = 200  # normal reviews timed per condition of the large-review measure
# Beyond the engine's bounds, yet a review under aiohttp's former 1 MiB limit: the code before
# the bounds decided it (for seconds), so the same pod measures before and after.
OVERSIZED_CONTAINERS = 15_000
# The library both injecting arms add: OpenTelemetry Python, the one the peer injects.
LIBRARY = {"language": "python", "flavor": "opentelemetry", "version": "0.66b1"}
OTEL_INIT_CONTAINER = "opentelemetry-auto-instrumentation-python"
OTEL_INJECT = "instrumentation.opentelemetry.io/inject-python"
WEBHOOK_DURATION = "apiserver_admission_webhook_admission_duration_seconds"
# The label values the peers' webhook configurations select (bench/peers.py, register).
FLOOR_SELECTOR, OTEL_SELECTOR = "floor", "otel"


@dataclass(frozen=True)
class Arm:
    """One side of the comparison: its namespace and the labels and annotations that make its
    webhook serve it, and how a stored pod shows it was served."""

    name: str
    namespace: str
    injected: Callable[[Mapping[str, Any]], bool]
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)


def _untouched(pod: Mapping[str, Any]) -> bool:
    return not pod["spec"].get("initContainers")


def _by_libinject(pod: Mapping[str, Any]) -> bool:
    return (pod["metadata"].get("labels") or {}).get(INSTRUMENTED) == "true"


def _by_otel(pod: Mapping[str, Any]) -> bool:
    names = [container["name"] for container in pod["spec"].get("initContainers") or []]
    return OTEL_INIT_CONTAINER in names


ARMS = {
    arm.name: arm
    for arm in (
        Arm("no_webhook", "bench-none", _untouched),
        Arm("floor", "bench-floor", _untouched, labels={peers.ARM_LABEL: FLOOR_SELECTOR}),
        Arm("libinject", "bench-libinject", _by_libinject, labels=ENABLED),
        Arm(
            "otel_operator",
            "bench-otel",
            _by_otel,
            labels={peers.ARM_LABEL: OTEL_SELECTOR},
            annotations={OTEL_INJECT: "true"},
        ),
    )
}
LIBINJECT_NAMESPACE = ARMS["libinject"].namespace
OTEL_NAMESPACE = ARMS["otel_operator"].namespace


@dataclass(frozen=True)
class SideBySide:
    """libinject's operator and the OpenTelemetry Operator on one local control plane."""

    plane: harness.ControlPlane
    directory: Path
    kubectl: Kubectl
    operator: OperatorProcess
    otel: peers.Webhook


@contextmanager
def side_by_side(prefix: str) -> Iterator[SideBySide]:
    """A local control plane (two nodes) with libinject's operator, its webhook installed, and
    the OpenTelemetry Operator, its webhook registered for its arm; each stopped on the way
    out. The peer is built first: a first build takes minutes."""
    binaries = build.binaries()
    build.ensure(build.otel_operator())
    with (
        tempfile.TemporaryDirectory(prefix=prefix) as scratch,
        harness.ControlPlane(Path(scratch), nodes=2) as plane,
    ):
        directory = Path(scratch)
        kubectl = Kubectl(binary=binaries["kubectl"], kubeconfig=plane.kubeconfig)
        port = harness.free_port()
        install(kubectl, port)
        operator = OperatorProcess(
            kubeconfig=plane.kubeconfig, directory=directory, webhook_port=port
        ).start()
        try:
            operator.wait_ready()
            otel = peers.start_otel_operator(
                directory, kubeconfig=plane.kubeconfig, kubectl=kubectl
            )
            try:
                peers.register(kubectl, otel, arm=OTEL_SELECTOR)
                yield SideBySide(plane, directory, kubectl, operator, otel)
            finally:
                otel.stop()
        finally:
            operator.stop()


def side_by_side_environment(**facts: str) -> dict[str, Any]:
    """The results' environment for a side-by-side run, with the bench's own `facts`."""
    return environment(
        control_plane="local etcd + kube-apiserver + controllers + kwok (tests/cluster)",
        otel_operator=f"{build.otel_operator().version}, built from the Go module proxy",
        **facts,
    )


def main() -> None:
    started, clock = datetime.now(UTC), time.perf_counter()
    go_tool("admitfloor")
    with side_by_side("libinject-bench-") as both:
        floor = peers.start_floor(both.directory)
        try:
            peers.register(both.kubectl, floor, arm=FLOOR_SELECTOR)
            report = measure(
                both.plane, both.operator, floor=floor, otel=both.otel, kubectl=both.kubectl
            )
        finally:
            floor.stop()
    report["wall_seconds"] = round(time.perf_counter() - clock, 1)
    report = {
        "benchmark": "Pod creates through a real API server: no webhook, a floor webhook,"
        " libinject's and the OpenTelemetry Operator's",
        "timestamp": started.isoformat(timespec="seconds"),
        "environment": side_by_side_environment(
            clock="time.perf_counter_ns around each create (the answer read, not decoded);"
            " libinject's own ms per admission",
            gc="the bench's heap frozen after set-up (gc.freeze), as libinject freezes its own"
            " once its indexes are primed",
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


def service_accounts(core: client.CoreV1Api, namespace: str) -> list[Any]:
    return list(core.list_namespaced_service_account(namespace).items)


def measure(
    plane: harness.ControlPlane,
    operator: OperatorProcess,
    *,
    floor: peers.Webhook,
    otel: peers.Webhook,
    kubectl: Kubectl,
) -> dict[str, Any]:
    api = config.new_client_from_config(config_file=str(plane.kubeconfig))
    core = client.CoreV1Api(api)
    set_up_arms(api, kubectl)
    # This process's own full collections (about 100 ms each, 9 in a run, measured with a gc
    # callback) would land in whichever arm's create was being timed: its heap from here on is
    # out of the collector's walk, as the operator's is once primed.
    gc.collect()
    gc.freeze()
    before = webhook_seconds(kubectl)
    creates = create_interleaved(core)
    after = webhook_seconds(kubectl)
    # Read now: the reviews sent straight to the operator below are logged in the same namespace.
    admissions = admission_times(operator, namespace=LIBINJECT_NAMESPACE)
    pod_create = {arm: summarize(times) for arm, times in creates.items()}
    context = operator_tls(api)
    libinject_url = f"https://127.0.0.1:{operator.webhook_port}/mutate-pods"
    direct = {
        "floor": (floor.url, peers.client_context(floor)),
        "libinject": (libinject_url, context),
        "otel_operator": (otel.url, peers.client_context(otel)),
    }
    throughput = admissions_per_second_in_rounds(direct)
    stall = asyncio.run(
        large_reviews_in_flight(url=libinject_url, context=context, namespace=LIBINJECT_NAMESPACE)
    )
    return {
        "setup": {
            "pods_per_arm": PODS,
            "warmup_pods_per_arm": WARMUP_PODS,
            "library_injected": LIBRARY,
            "throughput_requests_per_round": THROUGHPUT_REQUESTS,
            "throughput_rounds_per_arm": THROUGHPUT_ROUNDS,
            "throughput_concurrency": CONCURRENCY,
        },
        "pod_create": pod_create,
        "ratios": {
            **{
                f"{arm}_to_no_webhook": ratios(pod_create[arm], pod_create["no_webhook"])
                for arm in ("floor", "libinject", "otel_operator")
            },
            **{
                f"{arm}_to_floor": ratios(pod_create[arm], pod_create["floor"])
                for arm in ("libinject", "otel_operator")
            },
            "libinject_to_otel_operator": ratios(
                pod_create["libinject"], pod_create["otel_operator"]
            ),
        },
        "api_server_webhook_mean_ms": mean_difference(before, after),
        "admission_at_libinject": admissions,
        "admissions_per_second": throughput,
        "rss_mib_after": {
            "libinject": rss_mib(operator_pid(operator)),
            "otel_operator": rss_mib(otel.pid),
            "floor": rss_mib(floor.pid),
        },
        "normal_review_while_large_in_flight": stall,
    }


def set_up_arms(api: client.ApiClient, kubectl: Kubectl) -> None:
    """The four namespaces; libinject's policy and the OTel operator's Instrumentation, each
    injecting the same image; returns when both webhooks inject."""
    core = client.CoreV1Api(api)
    for arm in ARMS.values():
        create_namespace(core, arm)
        poll.until(
            functools.partial(service_accounts, core, arm.namespace),
            what=f"the default ServiceAccount of {arm.namespace}",
            timeout=60,
        )
    client.CustomObjectsApi(api).create_cluster_custom_object(
        GROUP, VERSION, PLURAL, policy(LIBINJECT_NAMESPACE)
    )
    wait_until_injecting(api, LIBINJECT_NAMESPACE)
    instrument(kubectl, dry_run(core, LIBINJECT_NAMESPACE)["spec"]["initContainers"][0]["image"])
    poll.until(
        lambda: _by_otel(dry_run(core, OTEL_NAMESPACE)),
        what=f"the OpenTelemetry Operator injecting in {OTEL_NAMESPACE}",
        timeout=60,
    )


def dry_run(core: client.CoreV1Api, namespace: str) -> dict[str, Any]:
    """The pod a create in `namespace` would store (admission included), storing nothing."""
    response = core.create_namespaced_pod(
        namespace, kubejson.body(app_pod("probe")), dry_run="All", _preload_content=False
    )
    return kubejson.json_of(response)


def policy(namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "InstrumentationPolicy",
        "metadata": {"name": "bench"},
        "spec": {"libraries": [LIBRARY], "namespaceSelector": {"matchNames": [namespace]}},
    }


def create_namespace(core: client.CoreV1Api, arm: Arm) -> None:
    """The arm's namespace, with the labels and annotations that send it to its webhook."""
    metadata = {
        "name": arm.namespace,
        "labels": dict(arm.labels),
        "annotations": dict(arm.annotations),
    }
    core.create_namespace(kubejson.body({"metadata": metadata}))


def instrument(kubectl: Kubectl, image: str) -> None:
    """The OpenTelemetry Operator's Instrumentation for its arm's namespace, injecting `image`."""
    kubectl("apply", "--server-side", "-f", "-", stdin=json.dumps(instrumentation(image)))


def instrumentation(image: str) -> dict[str, Any]:
    """The OTel operator's resource for its arm: Python from `image` (libinject's own)."""
    return {
        "apiVersion": "opentelemetry.io/v1alpha1",
        "kind": "Instrumentation",
        "metadata": {"name": "bench", "namespace": OTEL_NAMESPACE},
        "spec": {
            "exporter": {"endpoint": "http://otel-collector.observability:4318"},
            "python": {"image": image},
        },
    }


def ratios(side: dict[str, float], base: dict[str, float]) -> dict[str, float]:
    return {key: round(side[f"{key}_us"] / base[f"{key}_us"], 3) for key in ("p50", "p99", "mean")}


def create_interleaved(core: client.CoreV1Api) -> dict[str, list[int]]:
    """Rotates the arms (and which goes first) pod by pod; warm-up pods untimed. Each create is
    timed up to its answer's bytes; the stored pod is checked after, untimed."""
    timings: dict[str, list[int]] = {name: [] for name in ARMS}
    arms = list(ARMS.values())
    for index in range(WARMUP_PODS + PODS):
        shift = index % len(arms)
        for arm in arms[shift:] + arms[:shift]:
            payload = kubejson.body(app_pod(f"pod-{index}"))
            begun = time.perf_counter_ns()
            response = core.create_namespaced_pod(arm.namespace, payload, _preload_content=False)
            stored = cast(Any, response).data  # the raw answer (kubejson.json_of)
            elapsed = time.perf_counter_ns() - begun
            if not arm.injected(json.loads(stored)):
                raise RuntimeError(f"{arm.name}: pod-{index} was not served as the arm says")
            if index >= WARMUP_PODS:
                timings[arm.name].append(elapsed)
    return timings


def webhook_seconds(kubectl: Kubectl) -> dict[str, tuple[float, float]]:
    """The API server's webhook duration histogram: (sum, count) of CREATEs per webhook name."""
    text = kubectl("get", "--raw", "/metrics").stdout
    totals: dict[str, list[float]] = {}
    for family in text_string_to_metric_families(text):
        if family.name != WEBHOOK_DURATION:
            continue
        for sample in family.samples:
            kind = sample.name.removeprefix(WEBHOOK_DURATION)
            labels = sample.labels
            if kind not in ("_sum", "_count") or labels.get("operation") != "CREATE":
                continue
            if labels.get("type") == "admit":
                pair = totals.setdefault(labels["name"], [0.0, 0.0])
                pair[0 if kind == "_sum" else 1] += sample.value
    return {name: (pair[0], pair[1]) for name, pair in totals.items()}


def mean_difference(
    before: Mapping[str, tuple[float, float]], after: Mapping[str, tuple[float, float]]
) -> dict[str, float]:
    """Per webhook, the mean call time (ms) of the calls between the two snapshots."""
    means = {}
    for name, (total, count) in after.items():
        earlier_total, earlier_count = before.get(name, (0.0, 0.0))
        if count > earlier_count:
            means[name] = round((total - earlier_total) / (count - earlier_count) * 1000, 3)
    return means


def operator_pid(operator: OperatorProcess) -> int:
    if operator.popen is None:
        raise RuntimeError("libinject's operator is not running")
    return operator.popen.pid


def rss_mib(pid: int) -> float:
    """A process's resident memory now (VmRSS), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    raise RuntimeError(f"no VmRSS in /proc/{pid}/status")


def admission_times(operator: OperatorProcess, *, namespace: str) -> dict[str, Any]:
    """The operator's own timing of each admission of the timed pods (pod-<n>), by outcome."""
    by_outcome: dict[str, list[int]] = {}
    for line in operator.log_lines():
        if line.get("event") != "admission" or line.get("namespace") != namespace:
            continue
        prefix, _, number = str(line.get("pod", "")).rpartition("-")
        if prefix == "pod" and number.isdigit() and int(number) >= WARMUP_PODS:
            ms = float(str(line["ms"]))
            by_outcome.setdefault(str(line["outcome"]), []).append(int(ms * 1_000_000))
    return {outcome: summarize(times) for outcome, times in sorted(by_outcome.items())}


def operator_tls(api: client.ApiClient) -> ssl.SSLContext:
    """Trusts the operator's generated CA, as the API server does."""
    secret = client.CoreV1Api(api).read_namespaced_secret("libinject-webhook-tls", NAMESPACE)
    assert secret.data is not None
    bundle = base64.b64decode(secret.data["ca.crt"]).decode()
    return ssl.create_default_context(cadata=bundle)


def review_of(pod: dict[str, Any], *, uid: str, namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "namespace": namespace,
            "operation": "CREATE",
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "userInfo": {"username": "bench"},
            "object": pod,
        },
    }


def admissions_per_second_in_rounds(
    direct: Mapping[str, tuple[str, ssl.SSLContext]],
) -> dict[str, dict[str, Any]]:
    """THROUGHPUT_ROUNDS rounds of every arm, the arms' order rotated each round; per arm its
    rounds and the median round's rate."""
    names = list(direct)
    rounds: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    for index in range(THROUGHPUT_ROUNDS):
        shift = index % len(names)
        for name in names[shift:] + names[:shift]:
            url, tls = direct[name]
            rate = admissions_per_second(url=url, context=tls, namespace=ARMS[name].namespace)
            rounds[name].append(asyncio.run(rate))
    return {
        name: {
            "per_second": statistics.median(r["per_second"] for r in runs),
            "patched": sum(r["patched"] for r in runs),
            "rounds": runs,
        }
        for name, runs in rounds.items()
    }


async def admissions_per_second(
    *, url: str, context: ssl.SSLContext, namespace: str
) -> dict[str, Any]:
    """THROUGHPUT_REQUESTS reviews (encoded beforehand) sent by CONCURRENCY clients at once."""
    bodies = [
        json.dumps(review_of(app_pod(f"direct-{n}"), uid=f"bench-{n}", namespace=namespace))
        for n in range(THROUGHPUT_REQUESTS)
    ]
    queue: asyncio.Queue[str] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    patched = 0
    headers = {"Content-Type": "application/json"}

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal patched
        while not queue.empty():
            body = queue.get_nowait()
            async with session.post(url, data=body, headers=headers, ssl=context) as response:
                # The OTel operator answers JSON labelled text/plain.
                answer = json.loads(await response.read())
                patched += "patch" in answer["response"]

    begun = time.perf_counter()
    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(worker(session) for _ in range(CONCURRENCY)))
    seconds = time.perf_counter() - begun
    return {
        "requests": THROUGHPUT_REQUESTS,
        "patched": patched,
        "seconds": round(seconds, 2),
        "per_second": round(THROUGHPUT_REQUESTS / seconds, 1),
    }


def large_pod(containers: int, *, env_each: int) -> dict[str, Any]:
    """An app pod with `containers` containers of `env_each` env entries each."""
    pod = app_pod("large")
    env = [{"name": f"VAR_{k}", "value": "v"} for k in range(env_each)]
    pod["spec"]["containers"] = [
        {"name": f"c{n}", "image": "registry.invalid/app:1", "env": env} for n in range(containers)
    ]
    return pod


async def large_reviews_in_flight(
    *, url: str, context: ssl.SSLContext, namespace: str
) -> dict[str, Any]:
    """Normal reviews, one at a time, timed: alone, then while one client keeps large reviews in
    flight back to back. At the bounds: the largest pod the engine decides; oversized: 15,000
    containers, refused (PodTooLarge) before any work."""
    at_bound = large_pod(
        limits.MAX_CONTAINERS, env_each=limits.MAX_ENTRIES // limits.MAX_CONTAINERS - 1
    )
    oversized = large_pod(OVERSIZED_CONTAINERS, env_each=0)
    report: dict[str, Any] = {"probes_per_condition": PROBES}
    async with aiohttp.ClientSession() as session:
        report["alone"] = summarize(await probe(session, url, context, namespace))
        for name, pod in (("at_bounds", at_bound), ("oversized", oversized)):
            body = json.dumps(review_of(pod, uid="large", namespace=namespace)).encode()
            stop = asyncio.Event()
            heavy = asyncio.create_task(keep_sending(session, url, context, body, stop))
            await asyncio.sleep(0.5)  # the first large review is in flight
            probes = await probe(session, url, context, namespace)
            stop.set()
            large_times, outcome = await heavy
            report[f"with_{name}_in_flight"] = summarize(probes)
            report[f"{name}_review"] = {
                "containers": len(pod["spec"]["containers"]),
                "bytes": len(body),
                "answer": outcome,
                **summarize(large_times),
            }
    return report


async def probe(
    session: aiohttp.ClientSession, url: str, context: ssl.SSLContext, namespace: str
) -> list[int]:
    times = []
    for number in range(PROBES):
        review = review_of(app_pod(f"probe-{number}"), uid=f"probe-{number}", namespace=namespace)
        begun = time.perf_counter_ns()
        async with session.post(url, json=review, ssl=context) as response:
            await response.read()
        times.append(time.perf_counter_ns() - begun)
    return times


async def keep_sending(
    session: aiohttp.ClientSession,
    url: str,
    context: ssl.SSLContext,
    body: bytes,
    stop: asyncio.Event,
) -> tuple[list[int], str]:
    """Sends `body` back to back until `stop`; its times and the last answer's skip reason."""
    times, outcome = [], ""
    headers = {"Content-Type": "application/json"}
    while not stop.is_set():
        begun = time.perf_counter_ns()
        async with session.post(url, data=body, headers=headers, ssl=context) as response:
            ok = response.status == 200
            answer = await response.json() if ok else {}
        times.append(time.perf_counter_ns() - begun)
        outcome = skip_reason(answer) if ok else f"HTTP {response.status}"
    return times, outcome


def skip_reason(answer: dict[str, Any]) -> str:
    """The reason code the answer's patch records: PodTooLarge, Injected, ..."""
    encoded = answer["response"].get("patch")
    for op in json.loads(base64.b64decode(encoded)) if encoded else []:
        value = op.get("value")
        if op["path"].endswith("injection-skipped"):
            return str(value).split(":", 1)[0]
        if isinstance(value, dict) and "libinject.dev/injection-skipped" in value:
            return str(value["libinject.dev/injection-skipped"]).split(":", 1)[0]
    return "Injected" if encoded else "no patch"


def print_summary(report: dict[str, Any]) -> None:
    print("webhook benchmark (times in microseconds)")
    for arm, stats in report["pod_create"].items():
        print(f"  pod create {arm:<14} p50 {stats['p50_us']:>9.1f}  p99 {stats['p99_us']:>9.1f}")
    for name, ratio in report["ratios"].items():
        print(f"  {name:<32} p50 {ratio['p50']}x  p99 {ratio['p99']}x")
    for name, ms in report["api_server_webhook_mean_ms"].items():
        print(f"  the API server's mean call to {name}: {ms} ms")
    for outcome, stats in report["admission_at_libinject"].items():
        p50, p99 = stats["p50_us"], stats["p99_us"]
        print(f"  admission at libinject, {outcome:<10} p50 {p50:>8.1f}  p99 {p99:>8.1f}")
    for arm, rate in report["admissions_per_second"].items():
        per_second = rate["per_second"]
        print(
            f"  admissions per second (direct, {CONCURRENCY} clients, median of"
            f" {THROUGHPUT_ROUNDS} rounds), {arm}: {per_second}"
        )
    for arm, mib in report["rss_mib_after"].items():
        print(f"  resident memory after the run, {arm}: {mib} MiB")
    stall = report["normal_review_while_large_in_flight"]
    for condition in ("alone", "with_at_bounds_in_flight", "with_oversized_in_flight"):
        p50, p99 = stall[condition]["p50_us"], stall[condition]["p99_us"]
        print(f"  normal review {condition:<26} p50 {p50:>9.1f}  p99 {p99:>9.1f}")
    print(f"  written to {RESULTS}")


if __name__ == "__main__":
    main()
