"""Stored tree text is read within the expression parser's limits: a crafted database holding a tree
20,000 levels deep, or longer than the parser's text limit, is one ConfigError, never a RecursionError."""

from __future__ import annotations

import pytest

from afos.errors import ConfigError
from afos.search.trees import MAX_TREE_DEPTH, parse_tree, primitive_set
from afos.space.parse import MAX_DEPTH, MAX_LENGTH
from afos.space.primitives import primitive_set as resolve_primitives


@pytest.fixture(scope="module")
def pset():  # type: ignore[no-untyped-def]
    return primitive_set(resolve_primitives("afos"), [0.5, 1e-05, 2e+16])


def _chain(depth: int) -> str:
    return "tanh(" * depth + "x" + ")" * depth


def test_limits_are_the_parsers() -> None:
    assert MAX_TREE_DEPTH == MAX_DEPTH


def test_deepest_allowed_tree_reads_back(pset) -> None:  # type: ignore[no-untyped-def]
    tree = parse_tree(_chain(MAX_TREE_DEPTH), pset)
    assert tree.height == MAX_TREE_DEPTH and str(tree) == _chain(MAX_TREE_DEPTH)


@pytest.mark.parametrize("depth", [MAX_TREE_DEPTH + 1, 300, 20_000])
def test_too_deep_tree_is_a_config_error(pset, depth: int) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match=f"deeper than {MAX_TREE_DEPTH}|at most {MAX_LENGTH} characters"):
        parse_tree(_chain(depth), pset)


def test_deep_but_short_tree_is_refused_by_depth(pset) -> None:  # type: ignore[no-untyped-def]
    """Under the length limit yet past Python's recursion limit were there no depth check: 'exp(' is 4."""
    text = _chain(1500)[:MAX_LENGTH]
    assert len(text) <= MAX_LENGTH
    with pytest.raises(ConfigError, match=f"deeper than {MAX_TREE_DEPTH}"):
        parse_tree(text, pset)


def test_too_long_or_non_text_tree_is_a_config_error(pset) -> None:  # type: ignore[no-untyped-def]
    wide = "add(" + ", ".join(["x"] * 1500) + ")"
    with pytest.raises(ConfigError, match=f"{len(wide)} characters long"):
        parse_tree(wide, pset)
    with pytest.raises(ConfigError, match="a list"):
        parse_tree(["x"], pset)  # type: ignore[arg-type]


def test_constants_in_exponent_notation_read_back(pset) -> None:  # type: ignore[no-untyped-def]
    """repr() writes small and large constants as 1e-05 and 2e+16; stored trees must read them back."""
    for text in ("add(x, 1e-05)", "add(x, 2e+16)", "add(x, 0.5)"):
        assert str(parse_tree(text, pset)) == text
