"""Kubernetes resource quantities as exact fractions.

The engine may not import the `kubernetes` client (its import pulls the whole API client, far too
slow for the admission path); a test checks this parser against the client's `parse_quantity`.
"""

from __future__ import annotations

import functools
import math
import re
from fractions import Fraction

_SUFFIXES = {
    "n": Fraction(1, 10**9), "u": Fraction(1, 10**6), "m": Fraction(1, 1000), "": Fraction(1),
    "k": Fraction(10**3), "M": Fraction(10**6), "G": Fraction(10**9), "T": Fraction(10**12),
    "P": Fraction(10**15), "E": Fraction(10**18),
    "Ki": Fraction(2**10), "Mi": Fraction(2**20), "Gi": Fraction(2**30), "Ti": Fraction(2**40),
    "Pi": Fraction(2**50), "Ei": Fraction(2**60),
}  # fmt: skip
_QUANTITY = re.compile(r"^([+-]?(?:\d+(?:\.\d*)?|\.\d+))(?:([eE][+-]?\d+)|([a-zA-Z]*))$")


def parse_quantity(text: str | int) -> Fraction:
    """'100m' -> 1/10, '1Gi' -> 1073741824. Raises ValueError on anything else."""
    match = _QUANTITY.match(str(text).strip())
    if match is None or (match.group(3) or "") not in _SUFFIXES:
        raise ValueError(f"not a quantity: {text!r}")
    number, exponent, suffix = match.groups()
    if exponent:
        return Fraction(number + exponent)
    return Fraction(number) * _SUFFIXES[suffix or ""]


@functools.lru_cache(maxsize=4096)
def to_units(resource: str, text: str | int) -> int:
    """Whole millicores for cpu, whole bytes for anything else, rounded up. Pods repeat a few
    quantity strings, so results are cached."""
    scale = 1000 if resource == "cpu" else 1
    return math.ceil(parse_quantity(text) * scale)


def format_millicores(value: int) -> str:
    return f"{value}m"


def format_bytes(value: int) -> str:
    """'NMi' when whole mebibytes, else a whole byte count."""
    return f"{value // 2**20}Mi" if value % 2**20 == 0 else str(value)
