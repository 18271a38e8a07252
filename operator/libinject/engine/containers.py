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


def env_positions(container: Mapping[str, Any]) -> dict[str, int]:
    """The index of each of the container's env variables, by name (the last of duplicates
    wins, as in the kubelet). Made once per container and pod: `load_values` reads it, and
    `apply` keeps it true for the next library by adding the names it appends."""
    return {entry.get("name"): index for index, entry in enumerate(container.get("env") or ())}


def load_values(
    container: Mapping[str, Any],
    *,
    positions: Mapping[str, int],
    load: tuple[LoadVariable, ...],
    root: str,
    mount: Mapping[str, Any],
    own: OwnTracers | None = None,
) -> tuple[dict[str, str], Reason]:
    """The load variables' new values for this container, or (empty, why it is skipped)."""
    name = container.get("name", "")
    entries = container.get("env") or ()
    if own is not None:
        found = own_tracer(container, own, positions)
        if found is not None:
            return {}, Reason(Code.OWN_TRACER, f"it starts its own tracer: {found}", name)
    values = {}
    for rule in load:
        index = positions.get(rule.name)
        entry = None if index is None else entries[index]
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
    container: Mapping[str, Any], own: OwnTracers, positions: Mapping[str, int]
) -> str | None:
    """Where the container already loads a tracer, e.g. `JAVA_TOOL_OPTIONS has
    -javaagent:/dd/dd-java-agent.jar`, or None. A value set with valueFrom cannot be read here;
    the launcher or loader checks the running process's options again. The command and args are
    read as one line each: an option and its value may be two items (`-r`, `dd-trace/init`)."""
    entries = container.get("env") or ()
    places = [
        (variable, entries[positions[variable]].get("value"))
        for variable in own.variables
        if variable in positions
    ]
    places += [(key, " ".join(container.get(key) or ())) for key in ("command", "args")]
    for place, text in places:
        option = own.found(text) if text else None
        if option is not None:
            return f"{place} has {option}"
    return None


def apply(
    container: dict[str, Any],
    *,
    positions: dict[str, int],
    values: Mapping[str, str],
    mount: Mapping[str, Any],
    env: list[EnvEntry],
    ops: list[Operation],
    at: str,
) -> None:
    """Set the load variables, add the mount, and add `env` entries the container lacks, writing
    the operations into `ops`; `at` is the container's path, `positions` its `env_positions`
    (this call adds to them). Copy-on-write (`engine.patch`): the container's lists and entries
    may be the caller's pod's."""
    current = container.get("env") or ()
    added: list[EnvEntry] = []
    for name, value in values.items():
        index = positions.get(name)
        if index is None:
            positions[name] = len(current) + len(added)
            added.append({"name": name, "value": value})
        elif current[index].get("value") != value:
            _set_value(container, index=index, value=value, ops=ops, at=at)
    for entry in env:
        if entry["name"] not in positions:
            positions[entry["name"]] = len(current) + len(added)
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


def env_from_warning(container: Mapping[str, Any], load: tuple[LoadVariable, ...]) -> str:
    """For a container with envFrom: it may hold a load variable we cannot see at admission;
    ours would shadow it."""
    names = ", ".join(rule.name for rule in load)
    return (
        f"container {container.get('name')} uses envFrom: if it sets {names}, the value "
        "libinject sets takes precedence"
    )
