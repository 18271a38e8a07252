"""What the reconciler keeps of each watched pod (libinject.runtime.covered): a change that no
count reads (a status update) asks for no pass; a relabelled, finished or deleted pod does, and
only the pods that changed are judged again unless policies or namespaces changed."""

from __future__ import annotations

import copy
from typing import Any

from builders import pod, policy
from libinject.engine.index import PolicyIndex
from libinject.engine.settings import NamespaceSettings
from libinject.runtime.covered import CoveredPods

NAMESPACES = {"apps": {"libinject.dev/inject": "enabled"}}


def _pod(name: str, **labels: str) -> dict[str, Any]:
    body = pod(labels=labels or {"app": "web"})
    body["metadata"].update(name=name, namespace="apps")
    body["status"] = {"phase": "Pending"}
    return body


def _judge(pods: CoveredPods, *, everything: bool, index: PolicyIndex) -> int:
    work = pods.work(everything=everything)
    pods.judge(work, everything=everything, index=index, namespaces=NAMESPACES,
               settings=NamespaceSettings())  # fmt: skip
    return len(work)


def test_only_what_counts_read_asks_for_a_pass() -> None:
    pods = CoveredPods()
    body = _pod("a")
    assert pods.saw(("apps", "a"), body)
    running = copy.deepcopy(body)
    running["status"] = {"phase": "Running", "podIP": "10.0.0.7"}
    assert not pods.saw(("apps", "a"), running)  # a status update: nothing to count again
    relabelled = _pod("a", app="other")
    assert pods.saw(("apps", "a"), relabelled)
    finished = copy.deepcopy(relabelled)
    finished["status"] = {"phase": "Succeeded"}
    assert pods.saw(("apps", "a"), finished)  # counts for no policy any more
    assert pods.pods == {}
    assert not pods.forget(("apps", "a"))  # gone already: nothing counted


def test_changed_pods_alone_are_judged_again_and_counts_follow() -> None:
    index = PolicyIndex([policy("py")])
    pods = CoveredPods()
    for name in ("a", "b", "c"):
        pods.saw(("apps", name), _pod(name))
    assert _judge(pods, everything=True, index=index) == 3
    assert pods.status("py")["instrumented"] == "0/3"
    pods.forget(("apps", "b"))
    assert _judge(pods, everything=False, index=index) == 1
    assert pods.status("py")["pods"]["total"] == 2
    assert _judge(pods, everything=False, index=index) == 0
    assert _judge(pods, everything=True, index=PolicyIndex([])) == 2  # the policy went away
    assert pods.status("py")["pods"]["total"] == 0
