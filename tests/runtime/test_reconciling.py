"""What the reconciler keeps of each watched policy: only what its passes, rollouts and Events
read, so a policy's managedFields and kubectl's last-applied copy are not held for every policy,
while the verdict, the rollout's input and the object an Event names stay exactly as they were."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, cast

import kopf
from kubernetes import client

from builders import PYTHON, policy_object
from libinject.engine.settings import EngineSettings
from libinject.runtime.reconciling import Picture
from libinject.status import PolicyObject, reconcile

NOW = datetime(2026, 12, 7, tzinfo=UTC)


def served(name: str) -> dict[str, Any]:
    """A policy as the API server sends it after `kubectl apply` and a status write."""
    body = policy_object(name, libraries=[PYTHON], rolloutOnChange=True)
    body["metadata"].update(
        uid=f"uid-{name}",
        generation=3,
        resourceVersion="4711",
        creationTimestamp="2026-12-07T00:00:00Z",
        annotations={
            "kubectl.kubernetes.io/last-applied-configuration": json.dumps(body),
            "team": "platform",
        },
        managedFields=[
            {"manager": "kubectl", "operation": "Apply", "fieldsV1": {"f:spec": {}}},
            {"manager": "libinject", "operation": "Update", "subresource": "status"},
        ],
    )
    body["status"] = {"observedGeneration": 2, "matchedNamespaces": 1}
    return body


def picture() -> Picture:
    return Picture(EngineSettings(), client.ApiClient())


def test_the_picture_keeps_only_what_passes_rollouts_and_events_read() -> None:
    kept = picture()
    kept.saw("p", served("p"))
    assert kept.policies["p"] == {
        "apiVersion": "libinject.dev/v1alpha1",
        "kind": "InstrumentationPolicy",
        "metadata": {"name": "p", "uid": "uid-p", "generation": 3},
        "spec": served("p")["spec"],
        "status": {"observedGeneration": 2, "matchedNamespaces": 1},
    }


def test_a_kept_policy_gets_the_same_verdict_and_event_object_as_the_served_one() -> None:
    full, kept = served("p"), picture()
    kept.saw("p", full)
    slim = kept.policies["p"]
    namespaces = {"shop": {"libinject.dev/inject": "enabled"}}

    def verdict(body: dict[str, Any]) -> Any:
        policy = PolicyObject(name="p", generation=3, body=body, status=dict(body["status"]))
        settings = EngineSettings().namespaces
        return reconcile([policy], namespaces=namespaces, settings=settings, now=NOW)["p"]

    assert verdict(dict(slim)) == verdict(full)
    assert kopf.build_object_reference(cast("kopf.Body", slim)) == kopf.build_object_reference(
        cast("kopf.Body", full)
    )


def test_our_own_status_write_coming_back_is_recognised_on_the_kept_body() -> None:
    kept = picture()
    written = {"observedGeneration": 3, "matchedNamespaces": 2}
    kept.written["p"] = written
    body = served("p")
    body["status"] = dict(written)
    kept.saw("p", body)
    assert "p" not in kept.written
    assert kept.policies["p"]["status"] == written
