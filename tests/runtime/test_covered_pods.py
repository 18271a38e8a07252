"""What the reconciler keeps of each watched pod (libinject.runtime.covered): a change that no
count reads (a status update) asks for no pass; a relabelled, finished or deleted pod does, and
only the pods that changed are judged again unless policies or namespaces changed; a listing
(the watch resuming after standby) sweeps out the pods it did not name once it is over."""

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
    assert pods.saw("apps/a", body)
    running = copy.deepcopy(body)
    running["status"] = {"phase": "Running", "podIP": "10.0.0.7"}
    assert not pods.saw("apps/a", running)  # a status update: nothing to count again
    relabelled = _pod("a", app="other")
    assert pods.saw("apps/a", relabelled)
    finished = copy.deepcopy(relabelled)
    finished["status"] = {"phase": "Succeeded"}
    assert pods.saw("apps/a", finished)  # counts for no policy any more
    assert pods.pods == {}
    assert not pods.forget("apps/a")  # gone already: nothing counted


def test_changed_pods_alone_are_judged_again_and_counts_follow() -> None:
    index = PolicyIndex([policy("py")])
    pods = CoveredPods()
    for name in ("a", "b", "c"):
        pods.saw(f"apps/{name}", _pod(name))
    assert _judge(pods, everything=True, index=index) == 3
    assert pods.status("py")["instrumented"] == "0/3"
    pods.forget("apps/b")
    assert _judge(pods, everything=False, index=index) == 1
    assert pods.status("py")["pods"]["total"] == 2
    assert _judge(pods, everything=False, index=index) == 0
    assert _judge(pods, everything=True, index=PolicyIndex([])) == 2  # the policy went away
    assert pods.status("py")["pods"]["total"] == 0


def test_a_listing_sweeps_out_the_pods_deleted_while_nobody_watched() -> None:
    """Kopf lists again on resume and says nothing of what was deleted meanwhile: the first
    watch event after the listing ends it, and the pods it did not name go."""
    index = PolicyIndex([policy("py")])
    pods = CoveredPods()
    for name in ("a", "b", "c"):
        pods.listed(f"apps/{name}", _pod(name))
    pods.saw("apps/d", _pod("d"))  # a watch event: the first listing is over
    _judge(pods, everything=True, index=index)
    assert pods.status("py")["pods"]["total"] == 4
    # Standby, then resumed: b and d were deleted meanwhile.
    assert not pods.listed("apps/a", _pod("a"))
    assert not pods.listed("apps/c", _pod("c"))
    assert pods.saw("apps/e", _pod("e"))
    assert sorted(pods.pods) == ["apps/a", "apps/c", "apps/e"]
    _judge(pods, everything=False, index=index)
    assert pods.status("py")["pods"]["total"] == 3
