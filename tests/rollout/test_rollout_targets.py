"""Which workloads a policy change rolls out: selected namespaces and pods, opt-outs, and the
spec hash that makes a rollout happen once per change."""

from __future__ import annotations

from typing import Any

import pytest

from builders import policy
from libinject.engine.settings import NamespaceSettings
from libinject.rollout import Workload, annotation, due, selected_namespaces, spec_hash

ENABLED = {"libinject.dev/inject": "enabled"}
NAMESPACES = {
    "shop": {**ENABLED, "team": "shop"},
    "pay": {**ENABLED, "team": "pay"},
    "plain": {"team": "shop"},  # not opted in
    "off": {"libinject.dev/inject": "disabled", "team": "shop"},
    "kube-system": {**ENABLED, "team": "shop"},  # never mutated
}


def workload(name: str, labels: dict[str, str], **annotations: str) -> Workload:
    return Workload("Deployment", "shop", name, labels, annotations)


@pytest.mark.parametrize(
    ("selector", "mutate_unlabelled", "expected"),
    [
        ({}, False, ["pay", "shop"]),
        ({"matchLabels": {"team": "shop"}}, False, ["shop"]),
        ({"matchNames": ["plain", "pay"]}, False, ["pay"]),
        ({"matchLabels": {"team": "shop"}}, True, ["plain", "shop"]),
    ],
    ids=["every-enabled", "by-label", "by-name-enabled-only", "mutate-unlabelled"],
)
def test_only_enabled_namespaces_the_policy_selects(
    selector: dict[str, Any], mutate_unlabelled: bool, expected: list[str]
) -> None:
    """Workloads are looked for only where the webhook would inject: never in disabled, excluded
    or (unless the operator mutates them) unlabelled namespaces."""
    settings = NamespaceSettings(mutate_unlabelled=mutate_unlabelled)
    chosen = policy(namespaceSelector=selector)
    assert selected_namespaces(chosen, namespaces=NAMESPACES, settings=settings) == expected


def test_due_are_the_selected_templates_not_yet_at_this_hash() -> None:
    """podSelector picks the templates; an opted-out template and one already carrying the
    current hash are left alone, one at an older hash is due again."""
    chosen = policy("web", podSelector={"matchLabels": {"tier": "web"}})
    key = annotation("web")
    workloads = [
        workload("fresh", {"tier": "web"}),
        workload("other-tier", {"tier": "db"}),
        workload("opted-out", {"tier": "web"}, **{"libinject.dev/inject": "false"}),
        workload("current", {"tier": "web"}, **{key: "abc"}),
        workload("older", {"tier": "web"}, **{key: "old"}),
    ]
    assert [w.name for w in due(chosen, digest="abc", workloads=workloads)] == ["fresh", "older"]


def test_the_hash_follows_the_spec_not_its_key_order() -> None:
    """Equal specs hash alike whatever their key order; any change of a value changes it."""
    spec = {"libraries": [{"language": "python", "version": "4.16.0"}], "priority": 1}
    reordered = {"priority": 1, "libraries": [{"version": "4.16.0", "language": "python"}]}
    changed = {"libraries": [{"language": "python", "version": "4.16.0"}], "priority": 2}
    assert spec_hash(spec) == spec_hash(reordered)
    assert spec_hash(spec) != spec_hash(changed)
    assert annotation("web") == "libinject.dev/policy.web"


def test_a_long_policy_name_still_makes_a_valid_annotation_key() -> None:
    """The key's name part may hold 63 characters: a longer policy name is cut and given a
    digest of the whole name, so two long names that share a beginning get different keys."""
    first, second = "a" * 60 + "-one", "a" * 60 + "-two"
    keys = [annotation(name) for name in (first, second)]
    assert all(len(key.partition("/")[2]) <= 63 for key in keys)
    assert keys[0] != keys[1]
    assert annotation("short") == "libinject.dev/policy.short"
