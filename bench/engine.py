"""Latency of one admission-time mutation, at cluster scale.

`make bench` writes `bench/results/engine.json`: percentiles of `inject` for a 10-container pod,
with 1,000 policies and 10,000 namespaces in memory. The population is generated from a fixed
seed, so two runs measure the same work and only the machine differs.

Pods are sent to namespaces drawn at random, as a webhook sees them. The first pod of a namespace
makes the index build that namespace's plan ("cold"); later pods reuse it ("warm"). Pods in
namespaces without injection return before any policy is looked at; they are reported apart.

`pod_size` times one mutation of ever larger pods (1,000 to 20,000 containers, each with 3 env
entries and 2 mounts, one volume per container): with the bounds of `libinject.engine.limits`
lifted, the engine's own growth (its work is linear, tests/engine/test_scaling.py; the time per
container rises until the pod outgrows the CPU caches, then stays flat); with them, what a pod
beyond them costs (refused as PodTooLarge before any work).
"""

from __future__ import annotations

import copy
import gc
import random
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.stats import environment, summarize, write_results
from libinject.api.parse import parse_policy
from libinject.api.types import InstrumentationPolicy
from libinject.engine import limits
from libinject.engine.decision import Code
from libinject.engine.index import Namespace, PolicyIndex
from libinject.engine.inject import inject
from libinject.engine.settings import EngineSettings

RESULTS = Path(__file__).parent / "results" / "engine.json"
SEED = 20_241_124
TARGET_P99_US = 1_000

NAMESPACE_COUNT = 10_000
TEAMS = tuple(f"team-{number:03d}" for number in range(100))
ENVS = ("prod", "staging", "dev")
APPS = ("checkout", "cart", "payments", "search", "catalog", "auth", "orders", "shipping")

# How the 1,000 policies select namespaces. Most are team-scoped; a handful apply cluster-wide.
POLICY_MIX = (("matchNames", 400), ("matchLabels", 400), ("matchExpressions", 195), ("empty", 5))
# Language weights: the common runtimes dominate, as in most fleets.
LANGUAGES = ("python", "java", "nodejs", "dotnet", "ruby", "php")
LANGUAGE_WEIGHTS = (30, 30, 20, 8, 6, 6)
# Fleet-wide policies pick pods by their main runtime, a label this fleet's pods carry.
RUNTIME_LABEL = "tracing.example.com/runtime"
PROD_ONLY = {"matchExpressions": [{"key": "env", "operator": "In", "values": ["prod"]}]}
CONTAINER_NAMES = (
    "app",
    "worker",
    "scheduler",
    "grpc-gateway",
    "admin-ui",
    "cache-warmer",
    "metrics-proxy",
    "log-shipper",
    "config-reloader",
    "envoy",
)
MAJOR_VERSION = {"python": 2, "java": 1, "nodejs": 5, "dotnet": 3, "ruby": 2, "php": 1}

# Sized to finish in about a minute on 2 cores with the engine as it is.
MUTATIONS = 20_000
WARMUP_MUTATIONS = 2_000
EXPLAIN_MUTATIONS = 500
INDEX_BUILDS = 50

SIZES = (1_000, 5_000, 20_000)  # containers, for the pod-size measure
SIZE_RUNS = 3  # per size; the median is reported

# Outcomes decided from the namespace alone, before the index is consulted.
NAMESPACE_SKIPS = frozenset(
    {Code.NAMESPACE_EXCLUDED, Code.NAMESPACE_DISABLED, Code.NAMESPACE_NOT_ENABLED}
)
# How each timed call is filed: the first enabled pod of a namespace builds its plan.
CALL_KINDS = ("warm_plan", "cold_plan", "namespace_not_enabled")


# --- The population: namespaces, policies and one pod -----------------------------------------


@dataclass(frozen=True)
class Population:
    namespaces: list[Namespace]
    policies: list[InstrumentationPolicy]
    pod: dict[str, Any]


def build_population() -> Population:
    rng = random.Random(SEED)
    namespaces = build_namespaces(rng)
    policies = build_policies(rng, [ns.name for ns in namespaces])
    return Population(namespaces, policies, build_pod())


def build_namespaces(rng: random.Random) -> list[Namespace]:
    return [_namespace(rng, number) for number in range(NAMESPACE_COUNT)]


def _namespace(rng: random.Random, number: int) -> Namespace:
    team = rng.choice(TEAMS)
    env = rng.choices(ENVS, weights=(40, 30, 30))[0]
    name = f"{team}-{env}-{number:05d}"
    # The apiserver sets kubernetes.io/metadata.name on every namespace; the index sees it too.
    labels = {"kubernetes.io/metadata.name": name, "team": team, "env": env}
    opt_in = rng.random()
    if opt_in < 0.90:
        labels["libinject.dev/inject"] = "enabled"
    elif opt_in < 0.92:
        labels["libinject.dev/inject"] = "disabled"
    if rng.random() < 0.25:
        labels["pod-security.kubernetes.io/enforce"] = "restricted"
    return Namespace(name, labels)


def build_policies(
    rng: random.Random, namespace_names: Sequence[str]
) -> list[InstrumentationPolicy]:
    """Policies parsed as the operator parses them from the API."""
    return [parse_policy(body) for body in build_policy_objects(rng, namespace_names)]


def build_policy_objects(
    rng: random.Random, namespace_names: Sequence[str]
) -> list[dict[str, Any]]:
    """Policies as Kubernetes objects (bench/scale.py creates them on an API server)."""
    kinds = [kind for kind, count in POLICY_MIX for _ in range(count)]
    rng.shuffle(kinds)
    return [
        _policy_object(rng, number=number, kind=kind, namespace_names=namespace_names)
        for number, kind in enumerate(kinds)
    ]


def _policy_object(
    rng: random.Random, *, number: int, kind: str, namespace_names: Sequence[str]
) -> dict[str, Any]:
    namespace_selector = _namespace_selector(rng, kind=kind, namespace_names=namespace_names)
    # A fleet-wide default serves one runtime; team policies may bundle several.
    fleet_wide = namespace_selector in ({}, PROD_ONLY)
    libraries = _libraries(rng, most=1 if fleet_wide else 3)
    language = libraries[0]["language"]
    spec: dict[str, Any] = {
        "libraries": libraries,
        "namespaceSelector": namespace_selector,
        "podSelector": _fleet_pod_selector(language) if fleet_wide else _team_pod_selector(rng),
        "priority": rng.choice((-10, 0, 0, 0, 5, 10, 50, 100)),
        "injection": _injection(rng),
        "agent": _agent(rng),
        "env": _policy_env(rng),
    }
    if rng.random() < 0.03:
        spec["paused"] = True
    if rng.random() < 0.10:
        spec["containerNames"] = rng.sample(CONTAINER_NAMES, k=rng.randint(1, 3))
    return {
        "apiVersion": "libinject.dev/v1alpha1",
        "kind": "InstrumentationPolicy",
        "metadata": {"name": f"policy-{number:04d}-{language}", "generation": 1},
        "spec": spec,
    }


def _namespace_selector(
    rng: random.Random, *, kind: str, namespace_names: Sequence[str]
) -> dict[str, Any]:
    team = rng.choice(TEAMS)
    if kind == "matchNames":
        return {"matchNames": rng.sample(namespace_names, k=rng.randint(1, 5))}
    if kind == "matchLabels":
        labels = {"team": team}
        if rng.random() < 0.25:
            labels["env"] = "prod"
        return {"matchLabels": labels}
    if kind == "matchExpressions":
        if rng.random() < 0.10:  # a fleet-wide default for production
            return copy.deepcopy(PROD_ONLY)
        return {"matchExpressions": _namespace_expressions(rng, team)}
    return {}


def _namespace_expressions(rng: random.Random, team: str) -> list[dict[str, Any]]:
    other = rng.choice(TEAMS)
    roll = rng.random()
    if roll < 0.65:
        return [
            {"key": "team", "operator": "In", "values": sorted({team, other})},
            {"key": "env", "operator": "In", "values": ["prod", "staging"]},
        ]
    if roll < 0.80:
        return [
            {"key": "team", "operator": "In", "values": [team]},
            {"key": "pod-security.kubernetes.io/enforce", "operator": "DoesNotExist"},
        ]
    return [
        {"key": "team", "operator": "In", "values": sorted({team, other})},
        {"key": "env", "operator": "NotIn", "values": ["dev"]},
    ]


def _fleet_pod_selector(language: str) -> dict[str, Any]:
    return {"matchLabels": {RUNTIME_LABEL: language}}


def _team_pod_selector(rng: random.Random) -> dict[str, Any]:
    roll = rng.random()
    if roll < 0.15:
        return {}
    if roll < 0.75:
        return {"matchLabels": {"app": rng.choice(APPS)}}
    if roll < 0.90:
        component = {"key": "app.kubernetes.io/component", "operator": "In"}
        return {"matchExpressions": [{**component, "values": ["api", "worker"]}]}
    return {"matchLabels": {"app": rng.choice(APPS), "tags.datadoghq.com/env": "prod"}}


def _libraries(rng: random.Random, *, most: int) -> list[dict[str, Any]]:
    wanted = min(most, rng.choices((1, 2, 3), weights=(60, 30, 10))[0])
    languages: list[str] = []  # a list, not a set: set order would vary with PYTHONHASHSEED
    while len(languages) < wanted:
        language = rng.choices(LANGUAGES, weights=LANGUAGE_WEIGHTS)[0]
        if language not in languages:
            languages.append(language)
    return [_library(rng, language) for language in languages]


def _library(rng: random.Random, language: str) -> dict[str, Any]:
    major = MAJOR_VERSION[language]
    library: dict[str, Any] = {
        "language": language,
        "flavor": "opentelemetry" if rng.random() < 0.30 else "ddtrace",
        "version": f"{major}.{rng.randint(0, 20)}.{rng.randint(0, 3)}",
    }
    roll = rng.random()
    if roll < 0.30:
        library["allowedVersions"] = [f"{major}.*"]
    elif roll < 0.33:
        library["image"] = f"registry.example/tracers/{language}:{library['version']}"
    return library


def _injection(rng: random.Random) -> dict[str, Any]:
    mode = rng.choices(("auto", "init-container", "csi", "image-volume"), weights=(6, 2, 1, 1))[0]
    injection: dict[str, Any] = {"mode": mode}
    if mode in ("auto", "init-container") and rng.random() < 0.10:
        injection["resources"] = {
            "requests": {"cpu": "50m", "memory": "128Mi"},
            "limits": {"cpu": "500m", "memory": "256Mi"},
        }
    if rng.random() < 0.20:
        injection["sizeLimit"] = "512Mi"
    return injection


def _agent(rng: random.Random) -> dict[str, Any]:
    roll = rng.random()
    if roll < 0.70:
        return {"mode": "hostIP"}
    if roll < 0.90:
        return {"mode": "service", "service": {"name": "collector", "namespace": "observability"}}
    return {"mode": "url", "url": "http://collector.observability.svc:4318"}


def _policy_env(rng: random.Random) -> list[dict[str, str]]:
    choices = (
        ("DD_TRACE_SAMPLE_RATE", "0.5"),
        ("DD_LOGS_INJECTION", "true"),
        ("DD_PROFILING_ENABLED", "false"),
        ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
    )
    return [
        {"name": name, "value": value} for name, value in rng.sample(choices, k=rng.randint(0, 3))
    ]


def build_pod() -> dict[str, Any]:
    """A Deployment's pod: 10 containers with env, resources, mounts and probes.

    Some containers already set load variables (PYTHONPATH, JAVA_TOOL_OPTIONS, NODE_OPTIONS, one
    through valueFrom) and one uses envFrom, so the engine's combine, skip and warning paths run.
    """
    containers = [
        _container(name, port=8080 + offset) for offset, name in enumerate(CONTAINER_NAMES)
    ]
    _set_env(containers[0], "PYTHONPATH", "/srv/app")
    _set_env(containers[1], "JAVA_TOOL_OPTIONS", "-Xmx512m -XX:+UseG1GC")
    _set_env(containers[4], "NODE_OPTIONS", "--max-old-space-size=256")
    containers[5]["env"].append(
        {"name": "NODE_OPTIONS", "valueFrom": {"configMapKeyRef": {"name": "node", "key": "opts"}}}
    )
    containers[9]["envFrom"] = [{"configMapRef": {"name": "envoy-env"}}]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "generateName": "checkout-7d9f8b6c5-",
            "labels": {
                "app": "checkout",
                "app.kubernetes.io/name": "checkout",
                "app.kubernetes.io/component": "api",
                "app.kubernetes.io/version": "1.4.2",
                "tags.datadoghq.com/env": "prod",
                RUNTIME_LABEL: "python",
                "pod-template-hash": "7d9f8b6c5",
            },
            "annotations": {
                "prometheus.io/scrape": "true",
                "prometheus.io/port": "9090",
                "libinject.dev/python.version": "2.9.1",
            },
        },
        "spec": {
            "serviceAccountName": "checkout",
            "securityContext": {"runAsNonRoot": True, "runAsUser": 1000, "fsGroup": 2000},
            "initContainers": [_container("migrate", port=None)],
            "containers": containers,
            "volumes": [
                {"name": "config", "configMap": {"name": "checkout-config"}},
                {"name": "tls", "secret": {"secretName": "checkout-tls"}},
                {"name": "tmp", "emptyDir": {}},
            ],
        },
    }


def _container(name: str, *, port: int | None) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": name,
        "image": f"registry.example/shop/{name}:1.4.2",
        "env": [
            {"name": "LOG_LEVEL", "value": "info"},
            {"name": "SERVICE_NAME", "value": name},
            {"name": "REGION", "value": "eu-west-1"},
            {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {
                "name": "DB_PASSWORD",
                "valueFrom": {"secretKeyRef": {"name": "checkout-db", "key": "password"}},
            },
        ],
        "resources": {
            "requests": {"cpu": "100m", "memory": "128Mi"},
            "limits": {"cpu": "500m", "memory": "512Mi"},
        },
        "volumeMounts": [
            {"name": "config", "mountPath": "/etc/checkout", "readOnly": True},
            {"name": "tls", "mountPath": "/etc/tls", "readOnly": True},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
    }
    if port is not None:
        container["ports"] = [{"name": "http", "containerPort": port}]
        probe = {"httpGet": {"path": "/healthz", "port": port}, "periodSeconds": 10}
        container["livenessProbe"] = probe
        container["readinessProbe"] = copy.deepcopy(probe)
    return container


def _set_env(container: dict[str, Any], name: str, value: str) -> None:
    container["env"].append({"name": name, "value": value})


# --- Measurement --------------------------------------------------------------------------------


@contextmanager
def gc_paused() -> Iterator[None]:
    """Collect, then keep the collector off, so a pause lands on no single timed call.

    The numbers are the engine's own cost; a webhook process would add collector pauses.
    """
    was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def time_index_builds(policies: Sequence[InstrumentationPolicy], *, builds: int) -> list[int]:
    timings = []
    with gc_paused():
        for _ in range(builds):
            start = time.perf_counter_ns()
            index = PolicyIndex(policies)
            timings.append(time.perf_counter_ns() - start)
            del index  # freed outside the timed window (see time_mutations)
    return timings


@dataclass
class MutationRun:
    """Nanosecond timings by kind of call, and what the calls decided."""

    timings: dict[str, list[int]] = field(default_factory=dict)
    outcomes: Counter[str] = field(default_factory=Counter)
    patch_operations: list[int] = field(default_factory=list)
    languages_injected: Counter[int] = field(default_factory=Counter)

    def add(self, kind: str, elapsed: int) -> None:
        self.timings.setdefault(kind, []).append(elapsed)

    def everything(self) -> list[int]:
        return [elapsed for timings in self.timings.values() for elapsed in timings]


def time_mutations(
    pod: dict[str, Any],
    *,
    draws: Sequence[Namespace],
    index: PolicyIndex,
    settings: EngineSettings,
) -> MutationRun:
    """One `inject` per draw; the first enabled pod of a namespace is the one that plans it.

    (The index caches 65,536 plans, more than there are namespaces: no plan is evicted.)
    """
    run = MutationRun()
    planned: set[str] = set()
    with gc_paused():
        for namespace in draws:
            start = time.perf_counter_ns()
            result = inject(pod, namespace=namespace, index=index, settings=settings)
            elapsed = time.perf_counter_ns() - start
            code = result.decision.reason.code
            if code in NAMESPACE_SKIPS:
                run.add("namespace_not_enabled", elapsed)
            else:
                run.add("warm_plan" if namespace.name in planned else "cold_plan", elapsed)
                planned.add(namespace.name)
            run.outcomes[code.value] += 1
            run.patch_operations.append(len(result.patch))
            run.languages_injected[len(result.decision.injected)] += 1
            # Free the result now: otherwise rebinding `result` frees it inside the next timed
            # call, billing a mutated pod's deallocation to the next mutation.
            del result
    return run


def time_explain(
    pod: dict[str, Any],
    *,
    draws: Sequence[Namespace],
    index: PolicyIndex,
    settings: EngineSettings,
) -> list[int]:
    timings = []
    with gc_paused():
        for namespace in draws:
            start = time.perf_counter_ns()
            result = inject(pod, namespace=namespace, index=index, settings=settings, explain=True)
            timings.append(time.perf_counter_ns() - start)
            del result  # freed outside the timed window (see time_mutations)
    return timings


def sized_pod(containers: int) -> dict[str, Any]:
    """`containers` containers of 3 env entries and 2 mounts each, one volume per container."""
    return {
        "metadata": {"generateName": "large-"},
        "spec": {
            "containers": [
                {
                    "name": f"c{n}",
                    "image": "registry.example/app:1",
                    "env": [{"name": f"VAR_{k}", "value": "v"} for k in range(3)],
                    "volumeMounts": [
                        {"name": f"v{n}", "mountPath": "/data"},
                        {"name": "shared", "mountPath": "/shared"},
                    ],
                }
                for n in range(containers)
            ],
            "volumes": [{"name": f"v{n}", "emptyDir": {}} for n in range(containers)],
        },
    }


def time_pod_sizes(index: PolicyIndex, namespace: Namespace) -> dict[str, Any]:
    """Median milliseconds of one mutation per pod size, bounds lifted and in force."""
    settings = EngineSettings()
    lifted: dict[str, Any] = {}
    bounded: dict[str, Any] = {}
    for containers in SIZES:
        pod = sized_pod(containers)
        for report, bounds in ((lifted, False), (bounded, True)):
            timings, code = _time_sized(pod, index, namespace, settings, bounds=bounds)
            median = sorted(timings)[len(timings) // 2]
            report[str(containers)] = {
                "ms": round(median / 1e6, 3),
                "us_per_container": round(median / 1e3 / containers, 3),
                "outcome": code,
            }
    return {
        "pod_shape": "N containers x (3 env, 2 mounts), N volumes",
        "runs_per_size": SIZE_RUNS,
        "bounds": {"max_containers": limits.MAX_CONTAINERS, "max_entries": limits.MAX_ENTRIES},
        "bounds_lifted": lifted,
        "bounds_in_force": bounded,
    }


def _time_sized(
    pod: dict[str, Any],
    index: PolicyIndex,
    namespace: Namespace,
    settings: EngineSettings,
    *,
    bounds: bool,
) -> tuple[list[int], str]:
    saved = limits.MAX_CONTAINERS, limits.MAX_ENTRIES
    if not bounds:  # the engine's own growth, past what a webhook would decide
        limits.MAX_CONTAINERS = limits.MAX_ENTRIES = 10**9
    timings, code = [], ""
    try:
        with gc_paused():
            for _ in range(SIZE_RUNS):
                start = time.perf_counter_ns()
                result = inject(pod, namespace=namespace, index=index, settings=settings)
                timings.append(time.perf_counter_ns() - start)
                code = result.decision.reason.code.value
                del result
    finally:
        limits.MAX_CONTAINERS, limits.MAX_ENTRIES = saved
    return timings, code


@dataclass(frozen=True)
class Measurements:
    index_builds: list[int]
    run: MutationRun
    explain: list[int]
    pod_size: dict[str, Any]


def measure(population: Population) -> Measurements:
    pod, policies, namespaces = population.pod, population.policies, population.namespaces
    pristine = copy.deepcopy(pod)
    settings = EngineSettings()
    # Draws come from their own generator so that changing a count leaves the population alone.
    draws = random.Random(SEED + 1)

    index_builds = time_index_builds(policies, builds=INDEX_BUILDS)
    # Warm the interpreter on a throwaway index: the measured index starts with no plans.
    warmup = draws.choices(namespaces, k=WARMUP_MUTATIONS)
    time_mutations(pod, draws=warmup, index=PolicyIndex(policies), settings=settings)
    index = PolicyIndex(policies)
    run = time_mutations(
        pod, draws=draws.choices(namespaces, k=MUTATIONS), index=index, settings=settings
    )
    # Explain only where injection is enabled: elsewhere it returns before explaining anything.
    enabled = [ns for ns in namespaces if _enabled(ns)]
    explain = time_explain(
        pod, draws=draws.choices(enabled, k=EXPLAIN_MUTATIONS), index=index, settings=settings
    )
    if pod != pristine:
        raise RuntimeError("inject changed its input pod: later iterations measured other work")
    # One policy for every container of the large pods, in a namespace of its own.
    large = parse_policy(
        {
            "apiVersion": "libinject.dev/v1alpha1",
            "kind": "InstrumentationPolicy",
            "metadata": {"name": "large"},
            "spec": {
                "libraries": [{"language": "python", "version": "4.16.0"}],
                "namespaceSelector": {"matchNames": ["large"]},
            },
        }
    )
    namespace = Namespace("large", {"libinject.dev/inject": "enabled"})
    pod_size = time_pod_sizes(PolicyIndex([large]), namespace)
    return Measurements(index_builds, run, explain, pod_size)


# --- Reporting ----------------------------------------------------------------------------------


def population_summary(population: Population) -> dict[str, Any]:
    namespaces, policies, pod = population.namespaces, population.policies, population.pod
    return {
        "seed": SEED,
        "namespaces": len(namespaces),
        "namespaces_injection_enabled": sum(_enabled(ns) for ns in namespaces),
        "namespaces_restricted": sum(
            ns.labels.get("pod-security.kubernetes.io/enforce") == "restricted" for ns in namespaces
        ),
        "teams": len(TEAMS),
        "policies": len(policies),
        "policies_paused": sum(p.spec.paused for p in policies),
        "policies_by_namespace_selector": dict(POLICY_MIX),
        "policies_fleet_wide": sum(_fleet_wide(p) for p in policies),
        "pod_containers": len(pod["spec"]["containers"]),
        "pod_init_containers": len(pod["spec"]["initContainers"]),
    }


def _enabled(namespace: Namespace) -> bool:
    return namespace.labels.get("libinject.dev/inject") == "enabled"


def _fleet_wide(policy: InstrumentationPolicy) -> bool:
    """Selects namespaces by nothing narrower than env: every team's namespaces."""
    selector = policy.spec.namespace_selector
    scoped = selector.match_names or selector.match_labels
    return not scoped and all(req.key == "env" for req in selector.match_expressions)


def build_report(
    population: Population, measured: Measurements, *, started: datetime, wall_seconds: float
) -> dict[str, Any]:
    run = measured.run
    overall = summarize(run.everything())
    return {
        "benchmark": "libinject.engine.inject: one mutation of a 10-container pod",
        "timestamp": started.isoformat(timespec="seconds"),
        "environment": environment(
            gc="collected, then disabled during every timed loop (engine cost without GC pauses)",
            clock="time.perf_counter_ns around each call",
        ),
        "population": population_summary(population),
        "iterations": {
            "warmup_mutations": WARMUP_MUTATIONS,
            "mutations": MUTATIONS,
            "explain_mutations": EXPLAIN_MUTATIONS,
            "index_builds": INDEX_BUILDS,
        },
        "mutation": {
            "overall": overall,
            **{kind: summarize(run.timings.get(kind, [])) for kind in CALL_KINDS},
        },
        "explain": summarize(measured.explain),
        "index_build": summarize(measured.index_builds),
        "outcomes": dict(run.outcomes.most_common()),
        "mean_patch_operations": round(sum(run.patch_operations) / len(run.patch_operations), 1),
        "pods_by_languages_injected": {
            str(count): pods for count, pods in sorted(run.languages_injected.items())
        },
        "target": {"p99_us": TARGET_P99_US, "met": overall["p99_us"] < TARGET_P99_US},
        "pod_size": measured.pod_size,
        "wall_seconds": round(wall_seconds, 1),
    }


def print_summary(report: dict[str, Any]) -> None:
    print(f"libinject engine benchmark, Python {report['environment']['python']}")
    population = report["population"]
    print(
        f"  {population['policies']} policies, {population['namespaces']} namespaces, "
        f"a {population['pod_containers']}-container pod; times in microseconds"
    )
    print(f"  {'':32}{'count':>8}{'p50':>9}{'p90':>9}{'p99':>9}{'max':>9}{'mean':>9}")
    rows = [(f"mutation {kind}", stats) for kind, stats in report["mutation"].items()]
    rows += [("explain=True", report["explain"]), ("index build", report["index_build"])]
    for label, stats in rows:
        cells = "".join(f"{stats.get(f'{key}_us', 0):>9.1f}" for key in ("p50", "p90", "p99"))
        tail = "".join(f"{stats.get(f'{key}_us', 0):>9.1f}" for key in ("max", "mean"))
        print(f"  {label:<32}{stats['count']:>8}{cells}{tail}")
    for bounds in ("bounds_lifted", "bounds_in_force"):
        for containers, stats in report["pod_size"][bounds].items():
            print(
                f"  {containers:>6} containers, {bounds:<15} {stats['ms']:>10.3f} ms "
                f"({stats['us_per_container']} us/container, {stats['outcome']})"
            )
    verdict = "met" if report["target"]["met"] else "NOT met"
    print(f"  target p99 < {TARGET_P99_US} us (overall mutation): {verdict}")
    print(f"  written to {RESULTS}")


def main() -> None:
    started, clock = datetime.now(UTC), time.perf_counter()
    population = build_population()
    measured = measure(population)
    report = build_report(
        population, measured, started=started, wall_seconds=time.perf_counter() - clock
    )
    write_results(RESULTS, report)
    print_summary(report)


if __name__ == "__main__":
    main()
