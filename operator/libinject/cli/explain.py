"""Rendering decisions for people (text) and for tools (JSON)."""

from __future__ import annotations

import dataclasses
import json
from enum import Enum
from typing import Any

from libinject import coverage
from libinject.api.types import EnvVar
from libinject.engine.decision import Code, Decision, LanguageDecision, LibraryChoice
from libinject.engine.environment import policy_entry, tracing_env

Counted = tuple[tuple[str, str], ...]  # (policy, state) as libinject.coverage judges a pod

# What each state of a pod in a policy's status.pods means for the pod's owner.
_STATES = {
    coverage.INSTRUMENTED: "instrumented at the policy's current spec",
    coverage.OUTDATED: (
        "outdated: injected at an older spec of the policy, or admitted before it won the pod; "
        "a restart brings the current spec"
    ),
}


def to_json(label: str, decision: Decision, *, counted: Counted | None = None) -> dict[str, Any]:
    rendered = {"object": label, **_plain(dataclasses.asdict(decision))}
    if counted is not None:
        rendered["counted"] = dict(counted)
    return rendered


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, Enum):
        return value.value
    return value


def to_text(label: str, decision: Decision, *, counted: Counted | None = None) -> str:
    lines = [f"{label} (pod {decision.pod}, namespace {decision.namespace})"]
    for policy, state in counted or ():
        meaning = _STATES.get(state, f"skipped ({state}): a restart would change nothing")
        lines.append(f"  counted by {policy}: {meaning}")
    lines.append(f"  result: {decision.reason}")
    if decision.service_from is not None:
        lines.append(f"  service: the name of its {decision.service_from} (no service label)")
    for language in decision.languages:
        lines.extend(_language_lines(language))
    lines.extend(f"  warning: {warning}" for warning in decision.warnings)
    return "\n".join(lines)


def _language_lines(decision: LanguageDecision) -> list[str]:
    choice = decision.choice
    if choice is None:
        lines = [f"  {decision.language}: not injected ({decision.reason})"]
    else:
        lines = [f"  {decision.language}: policy {choice.policy} wins"]
    for verdict in decision.candidates:
        if verdict.reason.code is not Code.SELECTED:
            lines.append(f"    - {verdict.policy}: {verdict.reason}")
    if choice is not None:
        lines.extend(_choice_lines(choice))
    return lines


def _choice_lines(choice: LibraryChoice) -> list[str]:
    lines = [f"    library: {choice.flavor} {choice.version} ({choice.image}), mode {choice.mode}"]
    if choice.mode_reason is not None:
        lines.append(f"    mode: auto, {choice.mode_reason}")
    if choice.mode_request is not None:
        lines.append(f"    mode: {choice.mode_request}")
    if choice.version_reason is not None:
        lines.append(f"    version: {choice.version_reason}")
    if choice.digest is not None:
        lines.append(f"    digest: {choice.digest}")
    if choice.digest_note is not None:
        lines.append(f"    digest: {choice.digest_note}")
    lines.extend(f"    env {var.name}: {_env_value(var)}" for var in choice.env)
    tracing = tracing_env(choice.tracing, flavor=choice.flavor, language=choice.language)
    if tracing:
        written = ", ".join(f"{entry['name']}={entry['value']}" for entry in tracing)
        lines.append(f"    tracing: {written}")
    lines.extend(_container_lines(choice))
    if choice.skipped is not None:
        lines.append(f"    skipped: {choice.skipped}")
    return lines


_KEYED = {"secretKeyRef": "Secret", "configMapKeyRef": "ConfigMap"}


def _container_lines(choice: LibraryChoice) -> list[str]:
    """Each container's verdict, with the version it asked for and what detection found."""
    undetected = dict(choice.not_detected)
    own = dict(choice.container_versions)
    lines = []
    for verdict in choice.containers:
        line = f"    container {verdict.container}: {verdict.reason}"
        if verdict.container in own and verdict.container in choice.instrumented:
            line += f", version {own[verdict.container]}"
        if verdict.container in undetected:
            line += f" (no language detected: {undetected[verdict.container]})"
        lines.append(line)
    lines.extend(
        f"    version for {name}: {reason}" for name, reason in choice.container_version_reasons
    )
    return lines


def _env_value(var: EnvVar) -> str:
    """The entry the engine writes for `var` (environment.policy_entry), in words."""
    entry = policy_entry(var)
    if "value" in entry:
        return json.dumps(entry["value"])
    [(kind, ref)] = entry["valueFrom"].items()
    if kind == "fieldRef":
        return f"the pod's {ref['fieldPath']}"
    if kind == "resourceFieldRef":
        divisor = f" in {ref['divisor']}" if "divisor" in ref else ""
        return f"the container's {ref['resource']}{divisor}"
    where = f"key {ref['key']} of {_KEYED[kind]} {ref['name']}"
    return f"{where} (unset where the pod's namespace has none)"


def dumps(records: list[dict[str, Any]]) -> str:
    return json.dumps(records, indent=2)
