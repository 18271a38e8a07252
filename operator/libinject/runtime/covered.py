"""The pods of the cluster as coverage counts them (libinject.coverage), kept from watch events.

Each pod is kept as its summary, a few hundred bytes, never its body. Its states are judged
again only when its summary changes (a pod's status updates change none), or all of them when
policies or namespaces change, since those decide which policy wins a pod. Summaries change on
the event loop; judging runs in a thread, on a list of work taken on the loop.

A listing (Kopf's watch starting, or resuming in a replica that was standby) says nothing of the
pods deleted while nobody watched: the pods a complete listing did not name are swept out, once
a watch event shows the listing is over.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from libinject.coverage import PodSummary, Tally, states, summarize, winners
from libinject.engine.index import PolicyIndex
from libinject.engine.settings import NamespaceSettings

Work = list[tuple[str, PodSummary | None]]


class CoveredPods:
    def __init__(self) -> None:
        self.pods: dict[str, PodSummary] = {}
        self._changed: set[str] = set()
        self._tally = Tally()
        self._listing: set[str] | None = None  # the pods named by a listing under way

    def listed(self, key: str, body: Mapping[str, Any]) -> bool:
        """A pod of a listing; whether any count may change."""
        if self._listing is None:
            self._listing = set()
        self._listing.add(key)
        return self.saw(key, body, listing=True)

    def saw(self, key: str, body: Mapping[str, Any], *, listing: bool = False) -> bool:
        """Keeps the pod as it is now; whether any count may change."""
        swept = False if listing else self._sweep()
        summary = summarize(body)
        if self.pods.get(key) == summary:
            return swept
        if summary is None:
            self.pods.pop(key, None)
        else:
            self.pods[key] = summary
        self._changed.add(key)
        return True

    def forget(self, key: str) -> bool:
        """The pod is gone; whether it counted."""
        swept = self._sweep()
        if self.pods.pop(key, None) is None:
            return swept
        self._changed.add(key)
        return True

    def _sweep(self) -> bool:
        """After a listing, the pods it did not name are gone; whether there were any. (A pod
        whose listing event comes after this, Kopf's workers being concurrent, is kept again
        when it comes.)"""
        if self._listing is None:
            return False
        gone = self.pods.keys() - self._listing
        self._listing = None
        for key in gone:
            del self.pods[key]
        self._changed |= gone
        return bool(gone)

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
