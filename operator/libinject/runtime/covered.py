"""The pods of the cluster as coverage counts them (libinject.coverage), kept from watch events.

Each pod is kept as its summary, a few hundred bytes, never its body. Its states are judged
again only when its summary changes (a pod's status updates change none), or all of them when
policies or namespaces change, since those decide which policy wins a pod. Summaries change on
the event loop; judging runs in a thread, on a list of work taken on the loop.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

from libinject.coverage import PodSummary, Tally, states, summarize, winners
from libinject.engine.index import PolicyIndex
from libinject.engine.settings import NamespaceSettings

Work = list[tuple[Hashable, PodSummary | None]]


class CoveredPods:
    def __init__(self) -> None:
        self.pods: dict[Hashable, PodSummary] = {}
        self._changed: set[Hashable] = set()
        self._tally = Tally()

    def saw(self, key: Hashable, body: Mapping[str, Any]) -> bool:
        """Keeps the pod as it is now; whether any count may change."""
        summary = summarize(body)
        if self.pods.get(key) == summary:
            return False
        if summary is None:
            del self.pods[key]
        else:
            self.pods[key] = summary
        self._changed.add(key)
        return True

    def forget(self, key: Hashable) -> bool:
        """The pod is gone; whether it counted."""
        if self.pods.pop(key, None) is None:
            return False
        self._changed.add(key)
        return True

    def work(self, *, everything: bool) -> Work:
        """On the loop: the pods to judge, each changed one (or all, after policies or namespaces
        changed) with its summary now, None when gone."""
        keys = self.pods.keys() if everything else self._changed
        work: Work = [(key, self.pods.get(key)) for key in keys]
        self._changed = set()
        return work

    def judge(
        self,
        work: Work,
        *,
        everything: bool,
        index: PolicyIndex,
        namespaces: Mapping[str, Mapping[str, str]],
        settings: NamespaceSettings,
    ) -> None:
        """In a thread: the counts with `work` judged; with `everything`, counted afresh."""
        tally = Tally() if everything else self._tally
        for key, summary in work:
            if summary is None:
                tally.judge(key, ())
                continue
            chosen = winners(summary, index=index, namespaces=namespaces, settings=settings)
            tally.judge(key, states(summary, chosen))
        self._tally = tally

    def status(self, policy: str) -> dict[str, Any]:
        """The policy's `status.pods` and `status.instrumented` as last judged."""
        return self._tally.status(policy)
