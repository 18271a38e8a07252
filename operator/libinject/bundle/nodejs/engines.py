"""A tracer's engines.node range, reduced at bundle build time to the form the loader matches.

npm's range syntax (comparators, partial and x versions, ^, ~, hyphen ranges, ||) takes a parser
to read; the loader runs in every Node process of an injected pod, before the application, so it
reads a reduced form instead: for release versions (the only ones a range without pre-release
bounds admits, and the only ones Node ships), every comparator set is one interval, so the range
is written as sets `>=LOW` or `>=LOW <HIGH` joined by ` || `. The reduced text is itself an npm
range that admits the same release versions (tests/nodejs/test_semver.py checks both against
npm's semver package).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from libinject.bundle.stages import BundleError

Version = tuple[int, int, int]

_OPERATORS = r"<=|>=|<|>|=|~>|~|\^"
_PART = r"(0|[1-9]\d*|[xX*])"
_PARTIAL = re.compile(rf"({_OPERATORS})?v?{_PART}(?:\.{_PART}(?:\.{_PART})?)?")
_SPACED_OPERATOR = re.compile(rf"({_OPERATORS})\s+")
_HYPHEN = re.compile(r"(\S+)\s+-\s+(\S+)")


@dataclass(frozen=True)
class Partial:
    """One comparator's text: its operator, its numbers (x parts as 0), and the index of its
    first x or missing part (3 when it names a whole version)."""

    operator: str
    numbers: Version
    wild: int


@dataclass(frozen=True)
class Interval:
    """The versions from `low` (included) up to `high` (excluded; None: no bound)."""

    low: Version
    high: Version | None

    def narrowed(self, bounds: list[tuple[str, Version]]) -> Interval:
        low, high = self.low, self.high
        for operator, version in bounds:
            if operator == ">=":
                low = max(low, version)
            else:
                high = version if high is None else min(high, version)
        return Interval(low, high)

    def empty(self) -> bool:
        return self.high is not None and self.high <= self.low

    def text(self) -> str:
        low = ">=" + ".".join(map(str, self.low))
        return low if self.high is None else f"{low} <{'.'.join(map(str, self.high))}"


def reduced(text: str) -> str:
    """`text`, an npm range, as the loader's form; BundleError for a range it cannot state
    (pre-release bounds, anything malformed): the bundle would be refused at every start."""
    intervals = [_interval(alternative, whole=text) for alternative in text.split("||")]
    kept = [interval for interval in intervals if not interval.empty()]
    if not kept:  # no release version at all
        return ">=0.0.0 <0.0.0"
    return " || ".join(dict.fromkeys(interval.text() for interval in kept))


def _interval(alternative: str, *, whole: str) -> Interval:
    text = _SPACED_OPERATOR.sub(r"\1", alternative.strip())
    hyphen = _HYPHEN.fullmatch(text)
    if hyphen:
        low, high = (_partial(end, whole=whole) for end in hyphen.group(1, 2))
        if low.operator or high.operator:
            raise BundleError(f"engines.node {whole!r}: a hyphen range's ends take no operator")
        bounds = _hyphen(low, high)
    else:
        bounds = [bound for word in text.split() for bound in _bounds(_partial(word, whole=whole))]
    return Interval((0, 0, 0), None).narrowed(bounds)


def _partial(word: str, *, whole: str) -> Partial:
    match = _PARTIAL.fullmatch(word)
    if match is None:
        raise BundleError(
            f"engines.node {whole!r}: {word!r} is not a comparator the loader can check "
            "(release versions, x ranges, ^, ~ and hyphen ranges are)"
        )
    parts = match.group(2, 3, 4)
    wild = next((i for i, part in enumerate(parts) if part is None or part in "xX*"), 3)
    numbers = tuple(0 if part is None or part in "xX*" else int(part) for part in parts)
    return Partial(match[1] or "", (numbers[0], numbers[1], numbers[2]), wild)


def _span(partial: Partial) -> tuple[Version, Version]:
    """The versions a comparator's version names, from the first (included) to the first past
    them (excluded): 1.2.3 is [1.2.3, 1.2.4), 1.2 and 1.2.x are [1.2.0, 1.3.0), 1 is
    [1.0.0, 2.0.0)."""
    major, minor, patch = partial.numbers
    if partial.wild == 3:
        return partial.numbers, (major, minor, patch + 1)
    return partial.numbers, (major + 1, 0, 0) if partial.wild == 1 else (major, minor + 1, 0)


def _bounds(partial: Partial) -> list[tuple[str, Version]]:
    """One comparator's meaning as `>=` and `<` bounds (empty: any version)."""
    if partial.operator in ("^", "~", "~>"):
        return [] if partial.wild == 0 else [(">=", partial.numbers), ("<", _top(partial))]
    if partial.wild == 0:  # `*`: any version, but nothing is below or above all of them
        return [("<", (0, 0, 0))] if partial.operator in ("<", ">") else []
    first, past = _span(partial)
    return {
        ">": [(">=", past)],
        ">=": [(">=", first)],
        "<": [("<", first)],
        "<=": [("<", past)],
    }.get(partial.operator, [(">=", first), ("<", past)])


def _top(partial: Partial) -> Version:
    """Where a ^ or ~ range stops: ~ at the next minor (the next major for ~1); ^ past the
    first non-zero part of the version."""
    major, minor, patch = partial.numbers
    if partial.operator != "^":
        return _span(partial)[1] if partial.wild < 3 else (major, minor + 1, 0)
    if major > 0 or partial.wild == 1:
        return (major + 1, 0, 0)
    if minor > 0 or partial.wild == 2:
        return (0, minor + 1, 0)
    return (0, 0, patch + 1)


def _hyphen(low: Partial, high: Partial) -> list[tuple[str, Version]]:
    """`LOW - HIGH`: from LOW's first version through all that HIGH names."""
    bounds = [] if low.wild == 0 else [(">=", low.numbers)]
    if high.wild > 0:
        bounds.append(("<", _span(high)[1]))
    return bounds
