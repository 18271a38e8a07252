"""Bounds on what one YAML input may become, checked on the parser's events before any document
is built.

PyYAML's composer and the YAML writer recurse once per level of nesting, and both the writer and
the engine see every alias expanded (a 1 KB "billion laughs" stream expands to gigabytes), so
nothing deep, cyclic or explosive may reach them. The scan below is a loop over events, not a
recursion: it keeps the open collections on a list and, per anchor, the expanded size of the
node it names, so an alias costs one addition however large its expansion.

The bounds are far beyond real manifests (a CRD's schema nests a few dozen levels; aliases repeat
a block a few times) and well below what breaks the tools (the writer exceeds Python's recursion
limit at about 330 levels; a test writes a pod nested to the bound).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

MAX_DEPTH = 100  # levels of nested mappings and lists
EXPANSION_FLOOR = 100_000  # nodes any input may expand to (aliases counted expanded) ...
EXPANSION_RATIO = 10  # ... plus this many times the nodes it is written with
MAX_NUMBER_LENGTH = 100  # characters of a number (int64 has 19 digits)

_NUMBER_TAGS = ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float")


class BoundError(Exception):
    """An input beyond a bound; `document` counts the stream's documents from 1 (0: none)."""

    def __init__(self, *, document: int, path: str, line: int, problem: str) -> None:
        self.document = document
        where = f"{path}: " if path else ""
        super().__init__(f"{where}line {line}: {problem}")


@dataclass
class _Open:
    """A mapping or list being read."""

    start: int  # the expanded count before it
    anchor: str | None
    mapping: bool
    children: int = 0  # nodes read in it so far (keys and values alike)
    key: str = ""  # in a mapping, the last key read

    def position(self) -> str:
        return f".{self.key}" if self.mapping else f"[{self.children - 1}]"

    def add(self, event: Any) -> None:
        if self.mapping and self.children % 2 == 0:
            self.key = event.value if isinstance(event, yaml.ScalarEvent) else "?"
        self.children += 1


class Scan:
    """Reads every event of a loader over the whole input: raises BoundError past a bound, and
    yaml.YAMLError where the input is not YAML (`document` then says in which document)."""

    def __init__(self) -> None:
        self.loader: Any = None
        self.document = 0
        self.done = False
        self.open: list[_Open] = []
        self.sizes: dict[str, int] = {}  # anchor -> expanded size of the node it names
        self.written = 0
        self.expanded = 0

    def run(self, loader: Any) -> None:
        self.loader = loader
        try:
            self._events()
        finally:
            loader.dispose()
        self.done = True

    def _events(self) -> None:
        while self.loader.check_event():
            event = self.loader.get_event()
            if isinstance(event, yaml.DocumentStartEvent):
                self.document += 1
                self.sizes.clear()  # anchors do not cross documents
            elif isinstance(event, yaml.CollectionEndEvent):
                done = self.open.pop()
                if done.anchor is not None:
                    self.sizes[done.anchor] = self.expanded - done.start
            elif isinstance(event, yaml.NodeEvent):
                self.node(event)

    def node(self, event: Any) -> None:
        if self.open:
            self.open[-1].add(event)
        self.written += 1
        if isinstance(event, yaml.AliasEvent):
            self.alias(event)
        elif isinstance(event, yaml.ScalarEvent):
            self.expanded += 1
            self.scalar(event)
        else:
            self.expanded += 1
            self.sizes.pop(event.anchor, None)  # an alias to it from inside would be a cycle
            mapping = isinstance(event, yaml.MappingStartEvent)
            self.open.append(_Open(self.expanded - 1, event.anchor, mapping))
            if len(self.open) > MAX_DEPTH:
                self.refuse(event, f"nested deeper than {MAX_DEPTH} levels")
        if self.expanded > EXPANSION_FLOOR + EXPANSION_RATIO * self.written:
            self.refuse(
                event,
                f"its aliases expand the input to more than {self.expanded} nodes from "
                f"{self.written} (at most {EXPANSION_FLOOR} plus {EXPANSION_RATIO} times as many)",
            )

    def alias(self, event: Any) -> None:
        size = self.sizes.get(event.anchor)
        if size is not None:
            self.expanded += size
        elif any(open_.anchor == event.anchor for open_ in self.open):
            self.refuse(event, f"the alias *{event.anchor} is inside the node it names")
        # else: an undefined alias, which the composer reports

    def scalar(self, event: Any) -> None:
        if event.anchor is not None:
            self.sizes[event.anchor] = 1
        if len(event.value) <= MAX_NUMBER_LENGTH:
            return
        tag = event.tag
        if tag is None or tag == "!":
            tag = self.loader.resolve(yaml.ScalarNode, event.value, event.implicit)
        if tag in _NUMBER_TAGS:
            self.refuse(
                event,
                f"a number of {len(event.value)} characters (at most {MAX_NUMBER_LENGTH}; "
                "quote it if it is text)",
            )

    def refuse(self, event: Any, problem: str) -> None:
        # The node's place: where each open collection is; a collection that just opened is
        # the node itself, not one of its parents.
        parents = self.open[:-1] if isinstance(event, yaml.CollectionStartEvent) else self.open
        path = "".join(open_.position() for open_ in parents)
        raise BoundError(
            document=self.document,
            path=path.lstrip("."),
            line=event.start_mark.line + 1,
            problem=problem,
        )
