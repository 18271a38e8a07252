"""Pods of a workload that the webhook injected, for the demo: a pod it did not inject is named,
with what it shows, and deleted so that its ReplicaSet creates it again, a bounded number of
times.

The webhook's configuration says failurePolicy Ignore: when the API server does not get the
operator's answer in time (timeoutSeconds), or cannot reach it, it admits the pod as it was. Such a
pod carries none of libinject's marks (the injected or skipped annotation, the instrumented
label), which only the operator's answer adds; the operator's side is its log event `admission
answered late` and the counter `libinject_admissions_late_total`.
"""

from __future__ import annotations

import json
from typing import Any

from cluster import poll
from cluster.kubectl import Kubectl
from cluster.operator import OperatorProcess
from libinject.engine.inject import INJECTED_ANNOTATION, INSTRUMENTED_LABEL, SKIPPED_ANNOTATION

RECREATIONS = 3
LATE_METRIC = "libinject_admissions_late_total"
LATE_EVENT = "admission answered late"
WEBHOOK_CONFIGURATION = "libinject"
POD_TIMEOUT = 60.0  # seconds, for a deleted pod to go and its replacement to be created


class NotInjectedError(RuntimeError):
    """No injected pod after the allowed re-creations; the message says what the pods showed."""


def injected_pods(
    kubectl: Kubectl,
    *,
    namespace: str,
    selector: str,
    count: int,
    operator: OperatorProcess,
    recreations: int = RECREATIONS,
) -> list[dict[str, Any]]:
    """`count` live pods of `selector` in `namespace` that the webhook injected.

    Every pod it did not inject is explained on stdout and deleted, at most `recreations` times
    in all rounds; then NotInjectedError. `operator` is where the explanation looks for the
    operator's side (its /metrics and log), running or not.
    """
    recreation = 0
    while True:
        pods = _live_pods(kubectl, namespace=namespace, selector=selector, count=count)
        injected = [pod for pod in pods if INJECTED_ANNOTATION in _annotations(pod)]
        if len(injected) >= count:
            return injected[:count]
        others = {
            pod["metadata"]["name"]: why_not_injected(kubectl, pod=pod, operator=operator)
            for pod in pods
            if pod not in injected
        }
        if recreation == recreations:
            said = " ".join(f"{namespace}/{name}: {why}" for name, why in others.items())
            raise NotInjectedError(
                f"fewer than {count} injected pod(s) of {selector} in {namespace} after "
                f"{recreations} re-creation(s); {said}"
            )
        recreation += 1
        for name, why in others.items():
            print(
                f"{namespace}/{name} was not injected: {why}\n"
                f"Deleting it, so that its ReplicaSet creates it again "
                f"(re-creation {recreation} of at most {recreations}).",
                flush=True,
            )
            kubectl("-n", namespace, "delete", "pod", name, f"--timeout={POD_TIMEOUT:.0f}s")


def why_not_injected(kubectl: Kubectl, *, pod: dict[str, Any], operator: OperatorProcess) -> str:
    """What a pod the webhook did not inject shows: the skip reason, or no answer at all."""
    annotations = _annotations(pod)
    labels = pod["metadata"].get("labels") or {}
    if SKIPPED_ANNOTATION in annotations:
        return f"libinject skipped it: {annotations[SKIPPED_ANNOTATION]}."
    if INSTRUMENTED_LABEL in labels:
        return f"it has {INSTRUMENTED_LABEL}={labels[INSTRUMENTED_LABEL]} but no injection record."
    timeout = kubectl(
        "get",
        "mutatingwebhookconfiguration",
        WEBHOOK_CONFIGURATION,
        "-o",
        "jsonpath={.webhooks[0].timeoutSeconds}",
        check=False,
    ).stdout.strip()
    return (
        f"it carries no {INJECTED_ANNOTATION} or {SKIPPED_ANNOTATION} annotation and no "
        f"{INSTRUMENTED_LABEL} label, so the webhook's answer never reached the API server, which "
        f"admitted the pod as it was (failurePolicy Ignore): the call failed, or the operator "
        f"answered after the configuration's timeout ({timeout or '?'} s), e.g. starved of CPU. "
        f"{operator_side(operator)}"
    )


def operator_side(operator: OperatorProcess) -> str:
    """The operator's count of late answers, from its /metrics (tolerating an operator that
    does not export the counter), and where its log is."""
    log = f"its log: {operator.log} (event {LATE_EVENT!r})"
    status, text = operator.probe("/metrics")
    if status != 200:
        return f"The operator's /metrics did not answer (is it running?); {log}."
    samples = [line.rsplit(" ", 1) for line in text.splitlines() if not line.startswith("#")]
    late = [float(value) for name, value in samples if name.split("{")[0] == LATE_METRIC]
    if not late:
        return f"This operator does not export {LATE_METRIC}; {log}."
    return f"The operator counted {sum(late):g} admission(s) answered late ({LATE_METRIC}); {log}."


def _live_pods(
    kubectl: Kubectl, *, namespace: str, selector: str, count: int
) -> list[dict[str, Any]]:
    """The pods of `selector` not being deleted, once there are `count` of them."""

    def live() -> list[dict[str, Any]]:
        listed = kubectl("-n", namespace, "get", "pods", "-l", selector, "-o", "json").stdout
        pods = [p for p in json.loads(listed)["items"] if "deletionTimestamp" not in p["metadata"]]
        return pods if len(pods) >= count else []

    return poll.until(
        live, what=f"{count} pod(s) of {selector} in {namespace}", timeout=POD_TIMEOUT, interval=0.5
    )


def _annotations(pod: dict[str, Any]) -> dict[str, str]:
    return dict(pod["metadata"].get("annotations") or {})
