"""We never block a pod: with the operator stopped, killed mid-load, or one of two replicas killed
during a burst, every pod create succeeds (failurePolicy Ignore), and injection resumes as soon as
an operator is back. The shares of pods injected are measured and reported, not asserted exactly:
which admissions land on a dying process is a race."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from kubernetes import client

from cluster import poll
from cluster.fixtures import GROUP, PLURAL, VERSION, NamespaceFactory, OperatorFactory
from cluster.operator import Operator
from cluster.workloads import (
    ENABLED,
    INSTRUMENTED,
    PolicyFactory,
    app_pod,
    condition,
    create_pod,
    init_names,
    policy_status,
    python_policy,
    wait_until_injecting,
)

PEERING_LOGGER = "kopf._core.engines.peering"
BURST = 500
WORKERS = 8

Report = Callable[[str], None]


@pytest.fixture
def operator_kind() -> str:
    """The outage tests kill replicas run from the operator image, as the Deployment defines
    them."""
    return "image"


@pytest.fixture
def enabled_namespace(
    admin: client.ApiClient,
    namespaces: NamespaceFactory,
    policies: PolicyFactory,
    running_operator: Operator,
) -> str:
    """An opted-in namespace that a policy selects, once the operator injects there."""
    namespace = namespaces(labels=ENABLED)
    policies(python_policy("outage", [namespace]))
    wait_until_injecting(admin, namespace)
    return namespace


@pytest.fixture
def extra_operators(operator_processes: OperatorFactory) -> Iterator[list[Operator]]:
    """Operators a test starts itself; stopped at its end (the next test gets a fresh one),
    gracefully, so their peering records do not outlive them."""
    started: list[Operator] = []
    yield started
    for process in started:
        process.stop(signal.SIGTERM)


@pytest.fixture
def two_replicas(
    running_operator: Operator,
    operator_processes: OperatorFactory,
    extra_operators: list[Operator],
) -> tuple[Operator, Operator]:
    """Two fresh replicas sharing the webhook port (as behind a Service), both ready."""
    running_operator.stop(signal.SIGTERM)
    replicas = (operator_processes("replica"), operator_processes("replica"))
    extra_operators.extend(replicas)
    return replicas[0].wait_ready(), replicas[1].wait_ready()


def injected_share(admin: client.ApiClient, namespace: str) -> tuple[int, int]:
    pods = client.CoreV1Api(admin).list_namespaced_pod(namespace).items
    injected = [
        p for p in pods if p.metadata and (p.metadata.labels or {}).get(INSTRUMENTED) == "true"
    ]
    return len(injected), len(pods)


def test_a_stopped_operator_blocks_no_pod_and_injection_resumes(
    admin: client.ApiClient,
    enabled_namespace: str,
    running_operator: Operator,
    operator_processes: OperatorFactory,
    extra_operators: list[Operator],
) -> None:
    """SIGTERM stops the operator cleanly (exit 0); a pod created meanwhile is admitted as it
    came; a new operator injects the next pod."""
    assert running_operator.stop(signal.SIGTERM) == 0
    alone = create_pod(admin, namespace=enabled_namespace, body=app_pod("while-down"))
    assert init_names(alone) == []
    assert INSTRUMENTED not in (alone["metadata"].get("labels") or {})

    extra_operators.append(operator_processes().wait_ready())
    back = create_pod(admin, namespace=enabled_namespace, body=app_pod("when-back"))
    assert init_names(back) == ["libinject-python"]
    assert back["metadata"]["labels"][INSTRUMENTED] == "true"


def test_sigkill_mid_load_fails_no_create(
    admin: client.ApiClient,
    enabled_namespace: str,
    running_operator: Operator,
    operator_processes: OperatorFactory,
    extra_operators: list[Operator],
    report: Report,
) -> None:
    """Pods keep coming while the operator is SIGKILLed (no goodbye, connections cut): every
    create succeeds; those after the kill are plain; a restarted operator injects again."""
    killed = threading.Event()

    def create(index: int) -> None:
        if index == 40:
            running_operator.stop(signal.SIGKILL)
            killed.set()
        create_pod(admin, namespace=enabled_namespace, body=app_pod(f"load-{index}"))

    failures = _create_all(create, count=80)
    assert failures == []
    assert killed.is_set()
    injected, total = injected_share(admin, enabled_namespace)
    assert total == 80
    assert 0 < injected < total  # before the kill injected, after it not
    report(f"{injected}/{total} pods injected with the operator SIGKILLed after 40 creates")

    extra_operators.append(operator_processes().wait_ready())
    back = create_pod(admin, namespace=enabled_namespace, body=app_pod("after-restart"))
    assert back["metadata"]["labels"][INSTRUMENTED] == "true"


def test_two_replicas_one_killed_during_a_burst_fail_no_create(
    admin: client.ApiClient,
    enabled_namespace: str,
    two_replicas: tuple[Operator, Operator],
    report: Report,
) -> None:
    """Two replicas share the webhook (as behind a Service); one is SIGKILLed a fifth of the way
    into 500 concurrent pod creates. No create fails, and the survivor keeps injecting: the
    share injected is reported; every pod created after the kill settled is injected."""
    first, _ = two_replicas

    def create(index: int) -> None:
        if index == BURST // 5:
            first.stop(signal.SIGKILL)
        create_pod(admin, namespace=enabled_namespace, body=app_pod(f"burst-{index}"))

    failures = _create_all(create, count=BURST)
    assert failures == []
    injected, total = injected_share(admin, enabled_namespace)
    assert total == BURST
    report(
        f"{injected}/{total} pods injected ({injected / total:.1%}) with one of two replicas "
        f"SIGKILLed after {BURST // 5} creates"
    )
    # The survivor took over: the last pods of the burst were all injected.
    tail = [
        create_pod(admin, namespace=enabled_namespace, body=app_pod(f"after-{i}")) for i in range(5)
    ]
    assert all(p["metadata"]["labels"][INSTRUMENTED] == "true" for p in tail)
    assert injected >= BURST // 2


def test_only_one_replica_reconciles(
    admin: client.ApiClient,
    namespaces: NamespaceFactory,
    policies: PolicyFactory,
    two_replicas: tuple[Operator, Operator],
) -> None:
    """With two replicas up, Kopf peering leaves one reconciler active: a new policy's status is
    written by exactly one of them, while both serve the webhook."""
    # Each replica learns of the other at its next keep-alive; until then both may be active.
    standby, active = poll.until(
        lambda: elected(admin, two_replicas), what="the peering election to settle", timeout=60
    )
    namespace = namespaces(labels=ENABLED)
    policy = policies(python_policy("peered", [namespace]))
    poll.until(lambda: policy_status(admin, policy), what=f"{policy} status", timeout=60)

    def wrote(process: Operator) -> bool:
        return any(
            line.get("event") == "policy status" and line.get("policy") == policy
            for line in process.log_lines()
        )

    # The replica logs its write after the API server has taken it, so the status can be seen
    # before the line is: the line is polled for too.
    writers = poll.until(
        lambda: [replica for replica in (active, standby) if wrote(replica)] or None,
        what=f"the log line of {policy}'s status write",
        timeout=30,
    )
    assert writers == [active]


def test_a_replica_active_again_keeps_no_policy_deleted_while_it_stood_by(
    admin: client.ApiClient,
    namespaces: NamespaceFactory,
    policies: PolicyFactory,
    running_operator: Operator,
    operator_processes: OperatorFactory,
    extra_operators: list[Operator],
) -> None:
    """A replica reconciles two tied policies (both Conflicting), then stands by for a replica of
    higher priority while one of the two is deleted, and is active again once that replica is
    killed. Kopf's listing on resume names what exists, not what was deleted: the replica must
    not keep the deleted policy, whose ghost would turn the survivor Conflicting again at its
    next pass (the serving operator, never paused, tells it of every deletion)."""
    running_operator.stop(signal.SIGTERM)  # replicas of known priorities instead
    first = operator_processes("first", "--peering-priority=10").wait_ready()
    extra_operators.append(first)
    namespace = namespaces(labels=ENABLED)
    survivor = policies(python_policy("ghost-a", [namespace]))
    deleted = policies(python_policy("ghost-b", [namespace]))
    poll.until(lambda: _conflicting(admin, survivor), what=f"{survivor} Conflicting", timeout=30)
    higher = operator_processes("higher", "--peering-priority=20").wait_ready()
    extra_operators.append(higher)
    poll.until(
        lambda: last_peering_line(first).startswith("Pausing"),
        what="the first replica standing by",
        timeout=60,
    )
    client.CustomObjectsApi(admin).delete_cluster_custom_object(GROUP, VERSION, PLURAL, deleted)
    poll.until(
        lambda: not _conflicting(admin, survivor),
        what=f"{survivor} no longer Conflicting (written by the other replica)",
        timeout=30,
    )
    higher.stop(signal.SIGKILL)
    poll.until(
        lambda: last_peering_line(first).startswith("Resuming"),
        what="the first replica active again once the other's keep-alive expired",
        timeout=90,
    )
    # A policy made now is reconciled by the replica active again: a pass of its has run.
    marker = policies(python_policy("ghost-c", [namespaces(labels=ENABLED)]))
    poll.until(lambda: policy_status(admin, marker), what=f"{marker} status", timeout=30)
    assert not _conflicting(admin, survivor), condition(
        policy_status(admin, survivor), "Conflicting"
    )


def _conflicting(admin: client.ApiClient, name: str) -> bool:
    return condition(policy_status(admin, name), "Conflicting").get("status") == "True"


def _peers(admin: client.ApiClient) -> dict[str, Any]:
    peering: Any = client.CustomObjectsApi(admin).get_cluster_custom_object(
        "kopf.dev", "v1", "clusterkopfpeerings", "libinject"
    )
    return dict(peering.get("status") or {})


def _identity(replica: Operator) -> str:
    """How a replica names itself to its peers."""
    return replica.identity


def elected(
    admin: client.ApiClient, replicas: tuple[Operator, Operator]
) -> tuple[Operator, Operator] | None:
    """(standby, active) once the election has settled: both replicas keep alive in the peering
    object, the higher priority has resumed, and the lower one is not (or no longer) active."""
    alive = _peers(admin)
    by_identity = {_identity(r): r for r in replicas}
    if not all(identity in alive for identity in by_identity):
        return None
    low, high = sorted(by_identity, key=lambda identity: alive[identity]["priority"])
    standby, active = by_identity[low], by_identity[high]
    resumed = "Resuming operations"
    if last_peering_line(active).startswith(resumed) and not last_peering_line(standby).startswith(
        resumed
    ):
        return standby, active
    return None


def last_peering_line(process: Operator) -> str:
    """Kopf's last word on this replica's peering ("Resuming ..." or "Pausing ..."), if any."""
    lines = [line for line in process.log_lines() if line.get("logger") == PEERING_LOGGER]
    return str(lines[-1]["event"]) if lines else ""


def _create_all(create: Callable[[int], Any], *, count: int) -> list[str]:
    """Runs create(0..count-1) on a pool of threads, in order of submission; returns failures."""
    failures: list[str] = []

    def attempt(index: int) -> None:
        try:
            create(index)
        except Exception as error:
            failures.append(f"{index}: {error}")

    with ThreadPoolExecutor(WORKERS) as pool:
        list(pool.map(attempt, range(count)))
    return failures
