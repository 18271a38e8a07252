"""The per-container step: check, then edit one container's env and mounts.

Checks come first and edit nothing, so a skipped container is left exactly as it was.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from libinject.engine.decision import Code, Reason
from libinject.engine.environment import EnvEntry
from libinject.engine.languages import LoadVariable, OwnTracers, VariableClashError, combine
from libinject.engine.patch import Operation


class Edits:
    """One container's edits by every library, in language order: made at once on the engine's
    copy of the container, so that the next library's checks see them, while the operations wait
    in `ops`, their paths relative to the container. `write` puts them into the patch once every
    library is decided, when the container's path can no longer move (copy containers go in
    before user init containers): one run of operations per container, and no path computed
    per library.

    The container's env and mounts lists are copied from the input's on their first edit, then
    edited in place; an operation never holds a list the container keeps (`engine.patch`'s rule).
    """

    __slots__ = ("_owned", "container", "ops", "positions")

    def __init__(self, container: dict[str, Any]) -> None:
        self.container = container
        # The index of each env variable, by name (the last of duplicates wins, as in the
        # kubelet): `load_values` reads it, `apply` adds the names it appends.
        self.positions = {
            entry.get("name"): index for index, entry in enumerate(container.get("env") or ())
        }
        self.ops: list[Operation] = []
        self._owned: set[str] = set()  # the lists this container no longer shares with the input

    def apply(
        self, *, values: Mapping[str, str], mount: Mapping[str, Any], env: list[EnvEntry]
    ) -> None:
        """Set the load variables, add the mount, and add `env` entries the container lacks."""
        positions = self.positions
        start = len(self.container.get("env") or ())
        added: list[EnvEntry] = []
        for name, value in values.items():
            index = positions.get(name)
            if index is None:
                positions[name] = start + len(added)
                added.append({"name": name, "value": value})
            elif self.container["env"][index].get("value") != value:
                self._set_value(index, value)
        for entry in env:
            if entry["name"] not in positions:
                positions[entry["name"]] = start + len(added)
                added.append(entry)
        self._append("env", added)
        if mount not in (self.container.get("volumeMounts") or ()):
            self._append("volumeMounts", [dict(mount)])

    def _set_value(self, index: int, value: str) -> None:
        """The value of the env entry at `index` (a load variable the user set, which now also
        holds ours), in a new entry: the old one may be the input's, or an operation's value."""
        entries = self._own("env")
        entry = entries[index] = dict(entries[index])
        op = "replace" if "value" in entry else "add"
        entry["value"] = value
        self.ops.append({"op": op, "path": f"/env/{index}/value", "value": value})

    def _append(self, key: str, items: list[Any]) -> None:
        """Append `items` to the list `key`: one operation per item at its index, or one that
        creates the list (holding `items`, which the container does not keep) when it is
        absent or null."""
        if not items:
            return
        current = self.container.get(key)
        if current is None:
            self.container[key] = list(items)
            self._owned.add(key)
            self.ops.append({"op": "add", "path": f"/{key}", "value": items})
            return
        self.ops += [
            {"op": "add", "path": f"/{key}/{index}", "value": item}
            for index, item in enumerate(items, len(current))
        ]
        self._own(key).extend(items)

    def _own(self, key: str) -> list[Any]:
        if key not in self._owned:
            self.container[key] = list(self.container[key])
            self._owned.add(key)
        items: list[Any] = self.container[key]
        return items


def write(edits: list[Edits], ops: list[Operation], *, paths: Mapping[int, str]) -> None:
    """Each edited container's operations, at its path (by the container's identity)."""
    for edit in edits:
        at = paths[id(edit.container)]
        for op in edit.ops:
            op["path"] = at + op["path"]
        ops += edit.ops


def load_values(
    edit: Edits,
    *,
    load: tuple[LoadVariable, ...],
    root: str,
    mount: Mapping[str, Any],
    own: OwnTracers | None = None,
) -> dict[str, str] | Reason:
    """The load variables' new values for this container, or why it is skipped."""
    container, positions = edit.container, edit.positions
    name = container.get("name", "")
    entries = container.get("env") or ()
    if own is not None:
        found = own_tracer(container, own, positions)
        if found is not None:
            return Reason(Code.OWN_TRACER, f"it starts its own tracer: {found}", name)
    values = {}
    for rule in load:
        index = positions.get(rule.name)
        entry = None if index is None else entries[index]
        if entry is not None and "valueFrom" in entry:
            return Reason(
                Code.LOAD_VARIABLE_FROM_SOURCE,
                f"{rule.name} is set with valueFrom, whose value cannot be combined with ours",
                name,
            )
        try:
            values[rule.name] = combine(
                rule, rule.for_root(root), entry.get("value") if entry else None
            )
        except VariableClashError as clash:
            return Reason(
                Code.LOAD_VARIABLE_CONFLICT,
                f"{rule.name} is already {clash}, which another library or profiler needs",
                name,
            )
    for existing in container.get("volumeMounts") or ():
        if existing.get("mountPath") == mount["mountPath"] and existing != mount:
            return Reason(Code.NAME_TAKEN, f"{mount['mountPath']} is already mounted", name)
    return values


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


def env_from_warning(container: Mapping[str, Any], load: tuple[LoadVariable, ...]) -> str:
    """For a container with envFrom: it may hold a load variable we cannot see at admission;
    ours would shadow it."""
    names = ", ".join(rule.name for rule in load)
    return (
        f"container {container.get('name')} uses envFrom: if it sets {names}, the value "
        "libinject sets takes precedence"
    )
