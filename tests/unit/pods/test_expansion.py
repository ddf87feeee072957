"""`$(VAR)` expansion, checked against the cases of upstream's third_party/forked/golang/expansion tests."""

from __future__ import annotations

import pytest

from vnode.pods.env import expand

VARS = {"VAR_A": "A", "VAR_B": "B", "VAR_C": "C", "VAR_REF": "$(VAR_A)", "VAR_EMPTY": ""}


@pytest.mark.parametrize(("text", "expected"), [
    ("$(VAR_A)", "A"),
    ("$(VAR_A)-$(VAR_A)", "A-A"),
    ("___$(VAR_B)___", "___B___"),
    ("$(VAR_A)_$(VAR_B)_$(VAR_C)", "A_B_C"),
    ("$$(VAR_B)_$(VAR_A)", "$(VAR_B)_A"),
    ("$$(VAR_A)_$$(VAR_B)", "$(VAR_A)_$(VAR_B)"),
    ("f000-$$VAR_A", "f000-$VAR_A"),
    ("foo\\$(VAR_C)bar", "foo\\Cbar"),
    ("$(VAR_A$(VAR_B))", "$(VAR_A$(VAR_B))"),
    ("$(VAR_A$(VAR_B)", "$(VAR_A$(VAR_B)"),
    ("$(VAR_REF)", "$(VAR_A)"),
    ("foo$(VAR_EMPTY)bar", "foobar"),
    ("foo$(VAR_Awhoops!", "foo$(VAR_Awhoops!"),
    ("$?_boo_$!", "$?_boo_$!"),
    ("$VAR_A", "$VAR_A"),
    ("$(VAR_DNE)", "$(VAR_DNE)"),
    ("$$$$$$(BIG_MONEY)", "$$$(BIG_MONEY)"),
    ("$$$$$$$(GOOD_ODDS)", "$$$$(GOOD_ODDS)"),
    ("$$$$$$$(VAR_A)", "$$$A"),
    ("${VAR_A}", "${VAR_A}"),
    ("$(VAR_B)_______$(A", "B_______$(A"),
    ("$(VAR_C)_______$(", "C_______$("),
    ("$(VAR_A)foobarzab$", "Afoobarzab$"),
    ("--$($($($($--", "--$($($($($--"),
    ("$(foo$$var)", "$(foo$$var)"),
])
def test_matches_upstream_cases(text: str, expected: str) -> None:
    """Every upstream expansion case gives upstream's result."""
    assert expand(text, VARS)[0] == expected


def test_unknown_reference_stays_literal() -> None:
    """A reference to an undefined name is kept as written."""
    assert expand("x$(NOPE)y", {}) == ("x$(NOPE)y", [])


def test_double_dollar_escapes_a_reference() -> None:
    """`$$(VAR_A)` yields the literal text `$(VAR_A)`, substituting nothing."""
    assert expand("$$(VAR_A)", VARS) == ("$(VAR_A)", [])


def test_expansion_is_not_recursive() -> None:
    """A substituted value is not itself expanded."""
    assert expand("$(VAR_REF)", VARS) == ("$(VAR_A)", ["VAR_REF"])


def test_reports_the_names_it_substituted() -> None:
    """The names actually substituted are returned, in order, repeats included."""
    assert expand("$(VAR_B)$(NOPE)$(VAR_A)$(VAR_B)", VARS)[1] == ["VAR_B", "VAR_A", "VAR_B"]
