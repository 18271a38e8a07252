"""`$(VAR)` expansion agrees with Kubernetes' (third_party/forked/golang/expansion, v1.36.3):
its test table, case for case, and the kubelet's way of expanding env values in order."""

from __future__ import annotations

from collections import ChainMap

import pytest

from cluster.podrunner.expansion import expand

CONTEXT = {"VAR_A": "A", "VAR_B": "B", "VAR_C": "C", "VAR_REF": "$(VAR_A)", "VAR_EMPTY": ""}

# (name, input, expected), as in expand_test.go's doExpansionTest.
CASES = [
    ("whole string", "$(VAR_A)", "A"),
    ("repeat", "$(VAR_A)-$(VAR_A)", "A-A"),
    ("beginning", "$(VAR_A)-1", "A-1"),
    ("middle", "___$(VAR_B)___", "___B___"),
    ("end", "___$(VAR_C)", "___C"),
    ("compound", "$(VAR_A)_$(VAR_B)_$(VAR_C)", "A_B_C"),
    ("escape & expand", "$$(VAR_B)_$(VAR_A)", "$(VAR_B)_A"),
    ("compound escape", "$$(VAR_A)_$$(VAR_B)", "$(VAR_A)_$(VAR_B)"),
    ("mixed in escapes", "f000-$$VAR_A", "f000-$VAR_A"),
    ("backslash escape ignored", "foo\\$(VAR_C)bar", "foo\\Cbar"),
    ("backslash escape ignored 2", "foo\\\\$(VAR_C)bar", "foo\\\\Cbar"),
    ("lots of backslashes", "foo\\\\\\\\$(VAR_A)bar", "foo\\\\\\\\Abar"),
    ("nested var references", "$(VAR_A$(VAR_B))", "$(VAR_A$(VAR_B))"),
    ("nested var references second type", "$(VAR_A$(VAR_B)", "$(VAR_A$(VAR_B)"),
    ("value is a reference", "$(VAR_REF)", "$(VAR_A)"),
    ("value is a reference x 2", "%%$(VAR_REF)--$(VAR_REF)%%", "%%$(VAR_A)--$(VAR_A)%%"),
    ("empty var", "foo$(VAR_EMPTY)bar", "foobar"),
    ("unterminated expression", "foo$(VAR_Awhoops!", "foo$(VAR_Awhoops!"),
    ("expression without operator", "f00__(VAR_A)__", "f00__(VAR_A)__"),
    ("shell special vars pass through", "$?_boo_$!", "$?_boo_$!"),
    ("bare operators are ignored", "$VAR_A", "$VAR_A"),
    ("undefined vars are passed through", "$(VAR_DNE)", "$(VAR_DNE)"),
    ("multiple (even) operators, var undefined", "$$$$$$(BIG_MONEY)", "$$$(BIG_MONEY)"),
    ("multiple (even) operators, var defined", "$$$$$$(VAR_A)", "$$$(VAR_A)"),
    ("multiple (odd) operators, var undefined", "$$$$$$$(GOOD_ODDS)", "$$$$(GOOD_ODDS)"),
    ("multiple (odd) operators, var defined", "$$$$$$$(VAR_A)", "$$$A"),
    ("missing open expression", "$VAR_A)", "$VAR_A)"),
    ("shell syntax ignored", "${VAR_A}", "${VAR_A}"),
    ("trailing incomplete expression not consumed", "$(VAR_B)_______$(A", "B_______$(A"),
    ("trailing incomplete expression, no content", "$(VAR_C)_______$(", "C_______$("),
    ("operator at end of input string is preserved", "$(VAR_A)foobarzab$", "Afoobarzab$"),
    ("shell escaped incomplete expr", "foo-\\$(VAR_A", "foo-\\$(VAR_A"),
    ("lots of $( in middle", "--$($($($($--", "--$($($($($--"),
    ("lots of $( in beginning", "$($($($($--foo$(", "$($($($($--foo$("),
    ("lots of $( at end", "foo0--$($($($(", "foo0--$($($($("),
    ("escaped operators in variable names are not escaped", "$(foo$$var)", "$(foo$$var)"),
    ("newline not expanded", "\n", "\n"),
    ("dollar sign followed by non-ASCII UTF-8 character", "$£FOO", "$£FOO"),
    (
        "dollar sign followed by multi-byte UTF-8 character in middle",
        "prefix-$€-suffix",
        "prefix-$€-suffix",
    ),
    ("dollar sign followed by Chinese character", "$中文", "$中文"),
]


@pytest.mark.parametrize(("name", "text", "expected"), CASES, ids=[case[0] for case in CASES])
def test_matches_the_kubernetes_table(name: str, text: str, expected: str) -> None:
    """Every case of Kubernetes' own table expands to the same string."""
    assert expand(text, CONTEXT) == expected, name


def test_two_contexts_behave_as_one() -> None:
    """The kubelet looks names up in the container's env, then the service env (TestMappingDual):
    a ChainMap of the two gives the same results as one mapping."""
    first = {"VAR_A": "A", "VAR_EMPTY": ""}
    second = {"VAR_B": "B", "VAR_C": "C", "VAR_REF": "$(VAR_A)"}
    for _, text, expected in CASES:
        assert expand(text, ChainMap(first, second)) == expected


def test_env_values_expand_in_declaration_order() -> None:
    """TestMapReference: each value sees the ones declared before it, already expanded."""
    declared = {"FOO": "bar", "ZOO": "$(FOO)-1", "BLU": "$(ZOO)-2"}
    env: dict[str, str] = dict(declared)
    for name, value in declared.items():
        env[name] = expand(value, env)
    assert env == {"FOO": "bar", "ZOO": "bar-1", "BLU": "bar-1-2"}


def test_no_recursion_into_inserted_values() -> None:
    """An inserted value is not scanned again, even when it holds a reference or `$$`."""
    assert expand("$(X)", {"X": "$(Y)", "Y": "no"}) == "$(Y)"
    assert expand("$(X)", {"X": "$$"}) == "$$"


def test_empty_name_and_lone_operator() -> None:
    """`$()` is a reference to the empty name (unknown: kept); a lone `$` is kept."""
    assert expand("$()", CONTEXT) == "$()"
    assert expand("$()", {"": "empty"}) == "empty"
    assert expand("$", CONTEXT) == "$"
    assert expand("", CONTEXT) == ""
