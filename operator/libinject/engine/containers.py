"""The per-container step: check, then edit one container's env and mounts.

Checks come first and edit nothing, so a skipped container is left exactly as it was.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from libinject.engine.decision import Code, Reason
from libinject.engine.environment import TOGETHER, EnvEntry
from libinject.engine.languages import LoadVariable, OwnTracers, VariableClashError, combine
from libinject.engine.patch import Operation


class Edits:
    """One container's edits by every library, in language order, and then their operations.

    The edits are made at once on the engine's copy of the container, so that the next
    library's checks see them; the operations are written once every library is decided
    (`operations`), when the container's path can no longer move (copy containers go in before
    user init containers): one run of operations per container, each item's built once, in one
    loop, instead of one run per library. They are what each library's own operations would
    have been, merged: a value set on one of the input's env entries, then each item added at
    its index; a list the input lacks is created holding what the first library put in it.

    The container's env and mounts lists are copied from the input's on their first edit, then
    edited in place; an operation never holds a list the container keeps (`engine.patch`'s rule).
    """

    __slots__ = ("_changed", "_created", "_own_env", "_starts", "container", "mounted", "positions")

    def __init__(self, container: dict[str, Any]) -> None:
        self.container = container
        # The index of each env variable, by name (the last of duplicates wins, as in the
        # kubelet): `load_values` reads it, `apply` adds the names it appends.
        self.positions = {
            entry.get("name"): index for index, entry in enumerate(container.get("env") or ())
        }
        self._own_env = len(container.get("env") or ())  # indexes below it are the user's
        # The paths of the container's mounts: a path not in it has no mount to compare with,
        # the case of nearly every check; `apply` adds the paths it mounts.
        self.mounted = {mount.get("mountPath") for mount in container.get("volumeMounts") or ()}
        # Env indexes of the input's entries given a new value, and the operation that sets it.
        self._changed: dict[int, str] = {}
        # Each list edited: its length in the input, None when the input lacks it (or has null).
        self._starts: dict[str, int | None] = {}
        # Each list the input lacks: how many items the first library to add any put in it.
        self._created: dict[str, int] = {}

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
            name = entry["name"]
            if name not in positions and not self._sets_together(name):
                positions[name] = start + len(added)
                added.append(entry)
        self._extend("env", added)
        path = mount["mountPath"]
        if path not in self.mounted or mount not in self.container["volumeMounts"]:
            self.mounted.add(path)
            self._extend("volumeMounts", [dict(mount)])

    def _sets_together(self, name: str) -> bool:
        """Whether the container itself sets a variable that goes with `name` (TOGETHER)."""
        partners = TOGETHER.get(name)
        return partners is not None and any(
            self.positions.get(partner, self._own_env) < self._own_env for partner in partners
        )

    def _set_value(self, index: int, value: str) -> None:
        """The value of the env entry at `index` (a load variable the user set, which now also
        holds ours), in a new entry: the old one may be the input's, or shared."""
        entries = self._own("env")
        entry = entries[index] = dict(entries[index])
        start = self._starts["env"] or 0  # the list is the input's: it has the variable
        if index < start and index not in self._changed:
            self._changed[index] = "replace" if "value" in entry else "add"
        entry["value"] = value

    def _extend(self, key: str, items: list[Any]) -> None:
        if not items:
            return
        owned = self._own(key)
        if self._starts[key] is None and key not in self._created:
            self._created[key] = len(items)
        owned.extend(items)

    def _own(self, key: str) -> list[Any]:
        """The container's list `key`, copied from the input's (or made) on its first edit."""
        if key not in self._starts:
            current = self.container.get(key)
            self._starts[key] = None if current is None else len(current)
            self.container[key] = list(current or ())
        items: list[Any] = self.container[key]
        return items

    def operations(self, at: str) -> list[Operation]:
        """The operations that make these edits, for the container at path `at`."""
        env: list[EnvEntry] = self.container.get("env") or []
        ops: list[Operation] = [
            {"op": op, "path": f"{at}/env/{index}/value", "value": env[index]["value"]}
            for index, op in self._changed.items()
        ]
        for key, start in self._starts.items():
            items = self.container[key]
            first = start
            if first is None:
                first = self._created[key]
                ops.append({"op": "add", "path": f"{at}/{key}", "value": items[:first]})
            ops += [
                {"op": "add", "path": f"{at}/{key}/{index}", "value": items[index]}
                for index in range(first, len(items))
            ]
        return ops


def write(edits: list[Edits], ops: list[Operation], *, paths: Mapping[int, str]) -> None:
    """Each edited container's operations, at its path (by the container's identity)."""
    for edit in edits:
        ops += edit.operations(paths[id(edit.container)])


# A load rule, our value for it (its `{root}` filled in), and the value a container that lacks
# the variable gets: made once per library and pod, not once per container.
Load = tuple[tuple[LoadVariable, str, str], ...]


def prepare(rules: tuple[LoadVariable, ...], *, root: str) -> Load:
    """The library's load rules with their values for the library mounted at `root`."""
    ours = [(rule, rule.for_root(root)) for rule in rules]
    return tuple((rule, value, combine(rule, value, None)) for rule, value in ours)


def load_values(
    edit: Edits, *, load: Load, mount: Mapping[str, Any], own: OwnTracers | None = None
) -> dict[str, str] | Reason:
    """The load variables' new values for this container, or why it is skipped."""
    container, positions = edit.container, edit.positions
    name = container.get("name", "")
    if own is not None:
        found = own_tracer(container, own, positions)
        if found is not None:
            return Reason(Code.OWN_TRACER, f"it starts its own tracer: {found}", name)
    values = {}
    for rule, ours, unset in load:
        index = positions.get(rule.name)
        if index is None:
            values[rule.name] = unset
            continue
        entry = container["env"][index]
        if "valueFrom" in entry:
            return Reason(
                Code.LOAD_VARIABLE_FROM_SOURCE,
                f"{rule.name} is set with valueFrom, whose value cannot be combined with ours",
                name,
            )
        try:
            values[rule.name] = combine(rule, ours, entry.get("value"))
        except VariableClashError as clash:
            return Reason(
                Code.LOAD_VARIABLE_CONFLICT,
                f"{rule.name} is already {clash}, which another library or profiler needs",
                name,
            )
    path = mount["mountPath"]
    if path not in edit.mounted:
        return values
    for existing in container["volumeMounts"]:
        if existing.get("mountPath") == path and existing != mount:
            return Reason(Code.NAME_TAKEN, f"{path} is already mounted", name)
    return values


def own_tracer(
    container: Mapping[str, Any], own: OwnTracers, positions: Mapping[str, int]
) -> str | None:
    """Where the container already loads a tracer, e.g. `JAVA_TOOL_OPTIONS has
    -javaagent:/dd/dd-java-agent.jar`, or None. A value set with valueFrom cannot be read here;
    the launcher or loader checks the running process's options again. The command and args are
    read as one line each: an option and its value may be two items (`-r`, `dd-trace/init`)."""
    for variable in own.variables:
        index = positions.get(variable)
        text = None if index is None else container["env"][index].get("value")
        option = own.found(text) if text else None
        if option is not None:
            return f"{variable} has {option}"
    for key in ("command", "args"):
        words = container.get(key)
        option = own.found(" ".join(words)) if words else None
        if option is not None:
            return f"{key} has {option}"
    return None


def env_from_warning(container: Mapping[str, Any], load: tuple[LoadVariable, ...]) -> str:
    """For a container with envFrom: it may hold a load variable we cannot see at admission;
    ours would shadow it."""
    names = ", ".join(rule.name for rule in load)
    return (
        f"container {container.get('name')} uses envFrom: if it sets {names}, the value "
        "libinject sets takes precedence"
    )
