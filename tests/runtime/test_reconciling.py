"""What the reconciler keeps of each watched policy: only what its passes, rollouts and Events
read, so a policy's managedFields and kubectl's last-applied copy are not held for every policy,
while the verdict, the rollout's input and the object an Event names stay exactly as they were.
And when it passes: not for the echo of its own status write, and once a burst pauses (or at the
latest after a limit, for a burst that never does)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import kopf
import pytest
import yaml

from builders import PYTHON, policy_object
from libinject.engine.settings import EngineSettings
from libinject.runtime import kube, reconciling
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


@pytest.fixture
def picture(tmp_path: Path) -> Callable[[], Picture]:
    """Pictures whose client points at no server: these tests make no API call."""
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:9"}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        )
    )
    return lambda: Picture(EngineSettings(), kube.Api(kubeconfig))


def test_the_picture_keeps_only_what_passes_rollouts_and_events_read(
    picture: Callable[[], Picture],
) -> None:
    kept = picture()
    kept.saw("p", served("p"))
    assert kept.policies["p"] == {
        "apiVersion": "libinject.dev/v1alpha1",
        "kind": "InstrumentationPolicy",
        "metadata": {"name": "p", "uid": "uid-p", "generation": 3},
        "spec": served("p")["spec"],
        "status": {"observedGeneration": 2, "matchedNamespaces": 1},
    }


def test_a_kept_policy_gets_the_same_verdict_and_event_object_as_the_served_one(
    picture: Callable[[], Picture],
) -> None:
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


def test_our_own_status_write_coming_back_is_recognised_on_the_kept_body(
    picture: Callable[[], Picture],
) -> None:
    kept = picture()
    written = {"observedGeneration": 3, "matchedNamespaces": 2}
    kept.written["p"] = written
    body = served("p")
    body["status"] = dict(written)
    kept.saw("p", body)
    assert "p" not in kept.written
    assert kept.policies["p"]["status"] == written


def test_only_the_echo_of_our_own_write_asks_for_no_pass(picture: Callable[[], Picture]) -> None:
    kept = picture()
    assert kept.saw("p", served("p"))  # new: a pass must decide its status
    ours = {"observedGeneration": 3, "matchedNamespaces": 2}
    kept.written["p"] = ours
    echo = served("p")
    echo["status"] = dict(ours)
    assert not kept.saw("p", echo)

    kept.written["p"] = ours
    other = served("p")
    other["status"] = {"observedGeneration": 1}  # someone else's write: ours must be restored
    assert kept.saw("p", other)

    kept.written["p"] = ours
    changed = served("p")
    changed["status"] = dict(ours)
    changed["spec"]["priority"] = 7  # our status came back, but with a new spec
    changed["metadata"]["generation"] = 4
    assert kept.saw("p", changed)


def test_a_listed_body_is_the_servers_status_whatever_we_wrote_before(
    picture: Callable[[], Picture],
) -> None:
    """A replica that wrote a status, stood by while another replica wrote a different one, and
    resumes: the listing's status is what the server has, and our older write must not stand in
    for it (a pass would compare its verdict with a status that is no longer there). A watch
    event of the same body, which may predate our write's echo, keeps our write."""
    kept = picture()
    ours = {"observedGeneration": 3, "matchedNamespaces": 2}
    theirs = {"observedGeneration": 3, "matchedNamespaces": 5}
    body = served("p")
    body["status"] = dict(theirs)

    kept.written["p"] = ours
    assert kept.saw("p", body)
    assert kept.written["p"] == ours  # a watch event: our write's echo may still be on its way

    assert kept.saw("p", body, listed=True)
    assert "p" not in kept.written
    assert kept._status("p", kept.policies["p"]) == theirs


async def changes(kept: Picture, *, every: float, count: int | None) -> None:
    """A watch burst: a change every `every` seconds, `count` of them (None: without end)."""
    made = 0
    while count is None or made < count:
        kept.version += 1
        made += 1
        await asyncio.sleep(every)


def test_a_pass_waits_until_a_burst_pauses(
    picture: Callable[[], Picture], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reconciling, "SETTLE_SECONDS", 0.2)
    monkeypatch.setattr(reconciling, "SETTLE_LIMIT_SECONDS", 30.0)

    async def scenario() -> tuple[int, int]:
        kept = picture()
        burst = asyncio.create_task(changes(kept, every=0.002, count=200))
        await kept._quiet()
        seen = kept.version
        await burst
        return seen, kept.version

    seen, last = asyncio.run(scenario())
    assert seen == last == 200  # not returned in the middle of the burst


def test_a_burst_without_pause_still_gets_a_pass(
    picture: Callable[[], Picture], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reconciling, "SETTLE_SECONDS", 0.05)
    monkeypatch.setattr(reconciling, "SETTLE_LIMIT_SECONDS", 0.3)

    async def scenario() -> bool:
        kept = picture()
        endless = asyncio.create_task(changes(kept, every=0.002, count=None))
        try:
            await asyncio.wait_for(kept._quiet(), timeout=10)  # a TimeoutError fails the test
            return not endless.done()
        finally:
            endless.cancel()

    assert asyncio.run(scenario()), "returned only because the changes stopped"
