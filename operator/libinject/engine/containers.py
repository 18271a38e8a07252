"""The per-container step: check, then edit one container's env and mounts.

Checks come first and edit nothing, so a skipped container is left exactly as it was.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from libinject.engine import patch
from libinject.engine.decision import Code, Reason
from libinject.engine.environment import EnvEntry
from libinject.engine.languages import LoadVariable, OwnTracers, VariableClashError, combine
from libinject.engine.patch import Operation


def _env_by_name(container: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """The container's env entries by name; the last of duplicates wins, as in the kubelet."""
    return {entry["name"]: entry for entry in container.get("env") or () if "name" in entry}


def load_values(
    container: Mapping[str, Any],
    *,
    load: tuple[LoadVariable, ...],
    root: str,
    mount: Mapping[str, Any],
    own: OwnTracers | None = None,
) -> tuple[dict[str, str], Reason]:
    """The load variables' new values for this container, or (empty, why it is skipped)."""
    name = container.get("name", "")
    current = _env_by_name(container)
    if own is not None:
        found = own_tracer(container, own, current)
        if found is not None:
            return {}, Reason(Code.OWN_TRACER, f"it starts its own tracer: {found}", name)
    values = {}
    for rule in load:
        entry = current.get(rule.name)
        if entry is not None and "valueFrom" in entry:
            return {}, Reason(
                Code.LOAD_VARIABLE_FROM_SOURCE,
                f"{rule.name} is set with valueFrom, whose value cannot be combined with ours",
                name,
            )
        try:
            values[rule.name] = combine(
                rule, rule.for_root(root), entry.get("value") if entry else None
            )
        except VariableClashError as clash:
            return {}, Reason(
                Code.LOAD_VARIABLE_CONFLICT,
                f"{rule.name} is already {clash}, which another library or profiler needs",
                name,
            )
    for existing in container.get("volumeMounts") or ():
        if existing.get("mountPath") == mount["mountPath"] and existing != mount:
            return {}, Reason(Code.NAME_TAKEN, f"{mount['mountPath']} is already mounted", name)
    return values, Reason(Code.CONTAINER_INSTRUMENTED, "instrumented", name)


def own_tracer(
    container: Mapping[str, Any], own: OwnTracers, env: Mapping[str, Mapping[str, Any]]
) -> str | None:
    """Where the container already loads a tracer's agent, e.g. `JAVA_TOOL_OPTIONS has
    -javaagent:/dd/dd-java-agent.jar`, or None. A value set with valueFrom cannot be read here;
    the launcher checks the running JVM's options again."""
    places = [(variable, (env.get(variable) or {}).get("value")) for variable in own.variables]
    places += [(key, item) for key in ("command", "args") for item in container.get(key) or ()]
    for place, text in places:
        option = own.found(text) if text else None
        if option is not None:
            return f"{place} has {option}"
    return None


def apply(
    container: dict[str, Any],
    *,
    values: Mapping[str, str],
    mount: Mapping[str, Any],
    env: list[EnvEntry],
    ops: list[Operation],
    at: str,
) -> None:
    """Set the load variables, add the mount, and add `env` entries the container lacks, writing
    the operations into `ops`; `at` is the container's path. Copy-on-write (`engine.patch`): the
    container's lists and entries may be the caller's pod's."""
    current = container.get("env") or ()
    position = {entry.get("name"): index for index, entry in enumerate(current)}
    added: list[EnvEntry] = []
    for name, value in values.items():
        index = position.get(name)
        if index is None:
            position[name] = len(current) + len(added)
            added.append({"name": name, "value": value})
        elif current[index].get("value") != value:
            _set_value(container, index=index, value=value, ops=ops, at=at)
    for entry in env:
        if entry["name"] not in position:
            position[entry["name"]] = len(current) + len(added)
            added.append(entry)
    patch.append(ops, container, "env", added, at=at)
    if mount not in (container.get("volumeMounts") or ()):
        patch.append(ops, container, "volumeMounts", [dict(mount)], at=at)


def _set_value(
    container: dict[str, Any], *, index: int, value: str, ops: list[Operation], at: str
) -> None:
    """The value of the env entry at `index` (a load variable the user set, which now also holds
    ours), in a new entry of a new list."""
    entries = container["env"] = list(container["env"])
    entry = entries[index] = dict(entries[index])
    patch.put(ops, entry, "value", value, at=f"{at}/env/{index}")


def env_from_warning(container: Mapping[str, Any], load: tuple[LoadVariable, ...]) -> str | None:
    """envFrom may hold a load variable we cannot see at admission; ours would shadow it."""
    if not container.get("envFrom"):
        return None
    names = ", ".join(rule.name for rule in load)
    return (
        f"container {container.get('name')} uses envFrom: if it sets {names}, the value "
        "libinject sets takes precedence"
    )
