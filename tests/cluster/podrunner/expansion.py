"""Kubernetes' `$(VAR)` expansion, as the kubelet applies it to env values, command and args.

A port of k8s.io/kubernetes third_party/forked/golang/expansion (Expand and MappingFuncFor):
`$(NAME)` becomes the variable's value, `$$` becomes `$`, and anything else, an unknown name or an
unterminated `$(` included, is left exactly as written. There is no recursion: a value that
itself contains `$(X)` is inserted as is.
"""

from __future__ import annotations

from collections.abc import Mapping

OPERATOR = "$"
OPENER = "("
CLOSER = ")"


def expand(text: str, variables: Mapping[str, str]) -> str:
    """`text` with its references to `variables` replaced, per Kubernetes' rules."""
    pieces: list[str] = []
    checkpoint = 0
    cursor = 0
    while cursor < len(text):
        # A lone operator at the very end is copied with the tail, like Go's loop does.
        if text[cursor] == OPERATOR and cursor + 1 < len(text):
            pieces.append(text[checkpoint:cursor])
            read, is_name, advance = _read_name(text, cursor + 1)
            pieces.append(_lookup(read, variables) if is_name else read)
            cursor += advance
            checkpoint = cursor + 1
        cursor += 1
    return "".join(pieces) + text[checkpoint:]


def _read_name(text: str, start: int) -> tuple[str, bool, int]:
    """What follows an operator at `start - 1`: the text to emit (or the name to look up),
    whether it is a name, and how many characters it took."""
    first = text[start]
    if first == OPERATOR:  # `$$`: an escaped operator
        return OPERATOR, False, 1
    if first == OPENER:
        close = text.find(CLOSER, start + 1)
        if close != -1:
            return text[start + 1 : close], True, close - start + 1
        # Unterminated: emit `$(` and go on scanning right after the opener.
        return OPERATOR + OPENER, False, 1
    return OPERATOR + first, False, 1


def _lookup(name: str, variables: Mapping[str, str]) -> str:
    value = variables.get(name)
    return f"{OPERATOR}{OPENER}{name}{CLOSER}" if value is None else value
