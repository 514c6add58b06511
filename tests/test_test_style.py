"""Style rules for the tests themselves, read from their source (ast)."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).parent


def compound_and_asserts(source: str) -> list[int]:
    """Lines of `assert a and b` in source: pytest then reports the whole `and` as false,
    not which half broke; one assert per condition says it."""
    return [
        node.lineno
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Assert)
        and isinstance(node.test, ast.BoolOp)
        and isinstance(node.test.op, ast.And)
    ]


def test_no_test_asserts_two_conditions_joined_by_and():
    found = [
        f"{path.relative_to(TESTS)}:{line}"
        for path in sorted(TESTS.rglob("*.py"))
        for line in compound_and_asserts(path.read_text(encoding="utf-8"))
    ]
    assert found == [], "split these into one assert per condition: " + ", ".join(found)


def test_the_check_finds_compound_asserts_and_leaves_the_rest():
    source = """
assert a and b
assert a
assert a or b
assert all(x and y for x, y in pairs)
assert (
    a
    and b
    and c
), "message"
if a and b:
    assert not (a and b)
"""
    assert compound_and_asserts(source) == [2, 6]
