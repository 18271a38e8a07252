"""The shell of `spec.rolloutOnChange`: lists the workloads of the namespaces a policy selects,
annotates those `libinject.rollout.due` names, and says what it did in an Event.

Patching workloads needs the ClusterRole of manifests/components/rollout, which the base leaves out
(least privilege: most installs never use this). Without it the policy gets a Warning Event
naming the overlay, once per spec change.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from functools import partial
from typing import Any

from libinject.api.parse import InvalidPolicyError
from libinject.api.types import InstrumentationPolicy
from libinject.engine.checks import usable_policy
from libinject.engine.settings import NamespaceSettings
from libinject.rollout import Workload, annotation, due, selected_namespaces, spec_hash
from libinject.runtime import events, kube, logs

NAMED = 10  # workloads named in the Event; the rest are counted
PLURALS = {"Deployment": "deployments", "StatefulSet": "statefulsets", "DaemonSet": "daemonsets"}
FORBIDDEN = 403
log = logs.get(__name__)


class Rollouts:
    def __init__(self, api: kube.Api, settings: NamespaceSettings) -> None:
        self.api = api
        self.settings = settings
        self.done: dict[str, str] = {}  # policy -> the spec hash last rolled out (or refused)

    async def follow(
        self, body: Mapping[str, Any], *, namespaces: Mapping[str, Mapping[str, str]]
    ) -> None:
        """Rolls out what this version of the policy's spec has not rolled out yet."""
        spec = body.get("spec") or {}
        # Called for every policy on every pass: only a spec that asks for rollouts and has not
        # been rolled out is worth parsing again.
        digest = spec_hash(spec)
        name = (body.get("metadata") or {}).get("name")
        if spec.get("rolloutOnChange") is not True or self.done.get(str(name)) == digest:
            return
        try:
            policy = usable_policy(body)
        except InvalidPolicyError:
            return  # its status says why; an invalid spec injects nothing to roll out
        try:
            rolled = await asyncio.to_thread(
                partial(self._roll, policy, digest=digest, namespaces=namespaces)
            )
        except kube.ApiError as error:
            if error.status != FORBIDDEN:
                raise
            message = (
                "rolloutOnChange is set, but the operator may not list or patch workloads: add "
                "manifests/components/rollout; this spec is then rolled out at the operator's "
                f"next start, a later spec at its change ({error})"
            )
            events.post(body, type="Warning", reason="RolloutForbidden", message=message)
        else:
            if rolled:
                events.post(body, type="Normal", reason="RolledOut", message=_message(rolled))
        self.done[policy.name] = digest

    def forget(self, name: str) -> None:
        self.done.pop(name, None)

    def _roll(
        self,
        policy: InstrumentationPolicy,
        *,
        digest: str,
        namespaces: Mapping[str, Mapping[str, str]],
    ) -> list[Workload]:
        chosen = selected_namespaces(policy, namespaces=namespaces, settings=self.settings)
        workloads = [w for namespace in chosen for w in self._workloads(namespace)]
        targets = due(policy, digest=digest, workloads=workloads)
        patch = {
            "spec": {"template": {"metadata": {"annotations": {annotation(policy.name): digest}}}}
        }
        for workload in targets:
            path = f"{_apps(workload.namespace, workload.kind)}/{workload.name}"
            self.api.patch(path, patch, content_type=kube.STRATEGIC_MERGE_PATCH)
            log.info("rolled out", policy=policy.name, kind=workload.kind,
                     namespace=workload.namespace, workload=workload.name)  # fmt: skip
        return targets

    def _workloads(self, namespace: str) -> list[Workload]:
        found = []
        for kind in PLURALS:
            for item in self.api.get(_apps(namespace, kind)).get("items") or []:
                template = (item.get("spec") or {}).get("template", {}).get("metadata") or {}
                found.append(
                    Workload(
                        kind=kind,
                        namespace=namespace,
                        name=item["metadata"]["name"],
                        template_labels=template.get("labels") or {},
                        template_annotations=template.get("annotations") or {},
                    )
                )
        return found


def _apps(namespace: str, kind: str) -> str:
    """The API path of `kind`'s workloads in `namespace`."""
    return f"/apis/apps/v1/namespaces/{namespace}/{PLURALS[kind]}"


def _message(rolled: list[Workload]) -> str:
    names = ", ".join(f"{w.kind} {w.namespace}/{w.name}" for w in rolled[:NAMED])
    more = f" and {len(rolled) - NAMED} more" if len(rolled) > NAMED else ""
    return f"rolled out {len(rolled)} workload(s) for this spec: {names}{more}"
