"""The walk that leaves out of a bundle what its runtime never reads, by rules each language
gives: a rule names why a file or a whole directory goes, and what each rule saved is counted."""

from __future__ import annotations

import os
import re
import shutil
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Licence and notice files travel with the code, whatever their format (LICENSE.md too).
LICENCES = re.compile(r"^(?:licen[cs]e|notice|copying|authors)", re.IGNORECASE)
# Why `directory/name` is left out, or None when it stays (or, for a directory, is walked).
Rule = Callable[[Path, str], str | None]


def by_suffix(name: str, table: tuple[tuple[tuple[str, ...], str], ...]) -> str | None:
    """The rule of the first row of `table` whose name endings end `name` (any case), or None."""
    lowered = name.lower()
    for suffixes, rule in table:
        if lowered.endswith(suffixes):
            return rule
    return None


@dataclass
class Pruned:
    files: int = 0
    bytes: int = 0
    by_rule: Counter[str] = field(default_factory=Counter)  # bytes per rule

    def as_dict(self) -> dict[str, object]:
        return {
            "files": self.files,
            "bytes": self.bytes,
            "by_rule": dict(self.by_rule.most_common()),
        }

    @classmethod
    def from_dict(cls, saved: dict[str, Any]) -> Pruned:
        """The inverse of `as_dict` (a build cache keeps it as JSON)."""
        return cls(saved["files"], saved["bytes"], Counter(saved["by_rule"]))

    def add(self, other: Pruned) -> None:
        self.files += other.files
        self.bytes += other.bytes
        self.by_rule.update(other.by_rule)


def prune(root: Path, *, file_rule: Rule, directory_rule: Rule) -> Pruned:
    """Removes under `root` what the rules name; what that saved."""
    pruned = Pruned()
    for directory, subdirectories, names in os.walk(root):
        here = Path(directory)
        for name in list(subdirectories):
            rule = directory_rule(here, name)
            if rule is not None:
                subdirectories.remove(name)
                _remove(here / name, rule, pruned)
        for name in names:
            rule = file_rule(here, name)
            if rule is not None:
                _remove(here / name, rule, pruned)
    return pruned


def _remove(path: Path, rule: str, pruned: Pruned) -> None:
    whole = path.is_dir() and not path.is_symlink()
    for file in path.rglob("*") if whole else (path,):
        if file.is_file() and not file.is_symlink():  # a link's bytes are its target's
            size = file.stat().st_size
            pruned.files += 1
            pruned.bytes += size
            pruned.by_rule[rule] += size
    if whole:
        shutil.rmtree(path)
    else:
        path.unlink()


def remove_empty_directories(root: Path) -> None:
    """Removes every empty directory under `root` (deepest first, so emptied parents go too)."""
    for directory, _, _ in sorted(os.walk(root), key=lambda entry: -len(entry[0])):
        path = Path(directory)
        if path != root and not any(path.iterdir()):
            path.rmdir()
