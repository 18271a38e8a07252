"""The loader's version ranges (bundle.txt's `node`, the tracer's engines range) answer as npm's
own semver package does: the oracle, installed from the npm registry, and the loader's matcher
run side by side in one Node over every version of a grid and every range of a list (the forms
engines ranges use: comparators, partial and x versions, ^, ~, hyphen ranges, spaces, ||).
Ranges the loader does not read (pre-release bounds, malformed text) give null, and the loader
stands down on them (test_node_standdowns)."""

from __future__ import annotations

import itertools
import json
import random
import subprocess
from pathlib import Path

import pytest

from cluster.nodejs import npm_installed
from nodejs.bundles import LOADER, SEMVER

pytestmark = pytest.mark.network  # Node 22 and semver from the npm registry (cached after)

MAJORS = (0, 1, 2, 19, 20, 21, 22, 23, 24, 25, 26, 27)
MINORS = (0, 1, 2, 15, 22)
PATCHES = (0, 1, 3)
PRERELEASES = ("22.0.0-rc.1", "22.15.0-0", "24.0.0-nightly2025", "1.2.3-alpha.1", "0.0.0-0")
OPERATORS = ("", "=", "<", "<=", ">", ">=", "~", "~>", "^")
PARTIALS = (
    *("*", "x", "X", "0", "1", "22", "0.0", "0.1", "1.2", "22.15", "0.x", "22.x", "1.x.x"),
    *("0.0.0", "0.0.3", "0.2.3", "1.2.3", "22.15.0", "22.15.x", "v22.1.0", "22.0.3", "20.19.0"),
)
RANGES = (
    *(">=22 <27", ">= 22.15.0", ">=20.19.0 <21 || >=22.12", "^18.19.0 || >=20.6.0"),
    *("1.2.3 - 2.3.4", "1.2 - 2", "0 - 22.15", "* - 1", "22.1 - 24.x", "22 || 24 || 26"),
    *(">=22.0.0 ||", "", "<=22.15 >0.1", "~22.15.0 || ^24", ">*", "<*", ">=*", "<=*", "~*"),
    *("^*", "  >=22   <=  26.1 ", "<1.2.3 >=0.0.1 || 22.x || ~> 24.1"),
)
UNREADABLE = (">=22.0.0-rc.1", ">=latest", "1.2.3.4", "01.2.3", ">=22 | <10", "1.2.3 -", "a.b")

COMPARE = """
const { satisfies } = require(process.argv[1])
const semver = require(process.argv[2])
const { versions, ranges, unreadable } = JSON.parse(require('fs').readFileSync(0, 'utf8'))
const mismatches = []
for (const range of ranges) {
  for (const version of versions) {
    const ours = satisfies(version, range)
    const theirs = semver.satisfies(version, range)
    if (ours !== theirs) mismatches.push([version, range, ours, theirs])
  }
}
const readable = unreadable.filter((range) => satisfies('22.0.0', range) !== null)
console.log(JSON.stringify({ checked: versions.length * ranges.length, mismatches, readable }))
"""


def versions() -> list[str]:
    grid = [f"{a}.{b}.{c}" for a, b, c in itertools.product(MAJORS, MINORS, PATCHES)]
    return [*grid, *PRERELEASES]


def ranges() -> list[str]:
    single = [f"{operator}{partial}" for operator in OPERATORS for partial in PARTIALS]
    pick = random.Random(16)  # a fixed seed: the same combinations every run
    pairs = [" ".join(pick.sample(single, 2)) for _ in range(150)]
    alternatives = [" || ".join(pick.sample(single, 2)) for _ in range(150)]
    return [*single, *RANGES, *pairs, *alternatives]


def test_matcher_agrees_with_npm_semver(node22: Path, tmp_path: Path) -> None:
    """Every (version, range) of the grid gets the answer npm's semver gives: true or false,
    never null; and every unreadable range gets null (the loader then stands down)."""
    semver = npm_installed((SEMVER,)) / "node_modules" / "semver"
    # The mark of a loader that already ran: requiring the loader only gives its exports.
    script = "globalThis[Symbol.for('libinject.loader')] = 'test';" + COMPARE
    cases = {"versions": versions(), "ranges": ranges(), "unreadable": list(UNREADABLE)}
    done = subprocess.run(
        [str(node22), "-e", script, str(LOADER), str(semver)],
        input=json.dumps(cases),
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    answer = json.loads(done.stdout)
    assert answer["checked"] > 90_000
    assert answer["mismatches"] == []
    assert answer["readable"] == []
    assert done.stderr == ""
