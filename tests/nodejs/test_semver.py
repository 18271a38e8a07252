"""The Node versions a bundle's tracer supports: the builder reduces the tracer's engines range
(npm's syntax) to the form the loader matches (libinject.bundle.nodejs.engines), and the
loader's answer on the reduced range is npm's own semver package's on the original: the oracle,
installed from the npm registry, run beside the loader in one Node over every version of a grid
and every range of a list (the forms engines ranges use: comparators, partial and x versions, ^,
~, hyphen ranges, spaces, ||). The reduced text is an npm range meaning the same versions.
Ranges the builder cannot state (pre-release bounds, malformed text) stop the build; text in
any other form than the reduced one is null to the loader, which then stands down
(test_node_standdowns)."""

from __future__ import annotations

import itertools
import json
import random
import re
import subprocess
from pathlib import Path

import pytest

from cluster.nodejs import npm_installed
from libinject.bundle.nodejs.engines import reduced
from libinject.bundle.stages import BundleError
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
# npm ranges, but not in the reduced form: the loader reads no other.
NOT_REDUCED = (
    *(">=22", ">=22.0", "^22.0.0", "22.0.0", "<=26.0.0", ">=22.0.0 <=26.0.0", ">22.0.0"),
    *(">=22.0.0  <23.0.0", ">=22.0.0 <23.0.0 <24.0.0", ">=22.0.0||>=24.0.0", " >=22.0.0"),
    *(">=01.0.0", ">=22.0.0-rc.1", ">=22.0.0 <v23.0.0", ">=-1.0.0", ">=1e3.0.0", ""),
)

COMPARE = """
const { satisfies } = require(process.argv[1])
const semver = require(process.argv[2])
const { versions, reductions, others } = JSON.parse(require('fs').readFileSync(0, 'utf8'))
const mismatches = []
for (const [range, reduced] of reductions) {
  for (const version of versions) {
    const theirs = semver.satisfies(version, range)
    const ours = satisfies(version, reduced)
    const reread = semver.satisfies(version, reduced)
    if (ours !== theirs || reread !== theirs) {
      mismatches.push({ version, range, reduced, ours, theirs, reread })
    }
  }
}
const readable = others.filter((range) => satisfies('22.0.0', range) !== null)
console.log(JSON.stringify({ checked: versions.length * reductions.length, mismatches, readable }))
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


def test_reduced_ranges_answer_as_npm_semver_on_the_original(node22: Path) -> None:
    """Every (version, range) of the grid: the loader on the reduced range answers true or false
    as npm's semver on the original (never null), and so does npm's semver on the reduced text;
    text not in the reduced form is null to the loader."""
    semver = npm_installed((SEMVER,)) / "node_modules" / "semver"
    # The mark of a loader that already ran: requiring the loader only gives its exports.
    script = "globalThis[Symbol.for('libinject.loader')] = 'test';" + COMPARE
    cases = {
        "versions": versions(),
        "reductions": [(text, reduced(text)) for text in ranges()],
        "others": list(NOT_REDUCED),
    }
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


@pytest.mark.parametrize("text", UNREADABLE)
def test_a_range_the_builder_cannot_state_stops_the_build(text: str) -> None:
    """Pre-release bounds and malformed text are refused with the range in the message: a
    bundle whose loader could never check its Node is not built."""
    with pytest.raises(BundleError, match=re.escape(repr(text))):
        reduced(text)
