"""The tests themselves: a test whose every assert sits in a loop must loop over something that
cannot be empty (a literal, `range(N)`, a strict `zip` with one), or it passes by checking
nothing when the collection comes back empty."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def _literal(node: ast.expr, bound: dict[str, ast.expr]) -> bool:
    """Whether `node` is a collection that cannot be empty."""
    if isinstance(node, ast.Name) and node.id in bound:
        return _literal(bound[node.id], bound)
    if isinstance(node, ast.Tuple | ast.List | ast.Set):
        return bool(node.elts)
    if isinstance(node, ast.Dict):
        return bool(node.keys)
    if not isinstance(node, ast.Call):
        return False
    function, arguments = node.func, node.args
    if isinstance(function, ast.Name) and function.id == "range":
        bounds = [a.value for a in arguments if isinstance(a, ast.Constant)]
        numbers = [b for b in bounds if isinstance(b, int)]
        return len(numbers) == len(arguments) and len(range(*numbers)) > 0
    if isinstance(function, ast.Name) and function.id in ("zip", "enumerate", "sorted"):
        strict = function.id != "zip" or any(
            k.arg == "strict" and isinstance(k.value, ast.Constant) and k.value.value is True
            for k in node.keywords
        )
        return strict and any(_literal(a, bound) for a in arguments)
    if isinstance(function, ast.Attribute) and function.attr in ("items", "keys", "values"):
        return _literal(function.value, bound)
    return False


def _reached(node: ast.AST, bound: dict[str, ast.expr], sure: bool, found: list[bool]) -> None:
    """For every assert under `node`: whether every loop around it surely runs."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda | ast.ClassDef):
            continue
        here = sure
        if isinstance(node, ast.For | ast.AsyncFor) and child in node.body:
            here = sure and _literal(node.iter, bound)
        elif isinstance(node, ast.While) and child in node.body:
            here = False
        if isinstance(child, ast.Assert):
            found.append(here)
        _reached(child, bound, here, found)


def vacuous_tests(root: Path) -> list[str]:
    """`path:line name` of each test whose asserts may all be skipped by empty loops."""
    problems = []
    for path in sorted(root.rglob("test_*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.FunctionDef) or not node.name.startswith("test"):
                continue
            bound = {
                target.id: statement.value
                for statement in ast.walk(node)
                if isinstance(statement, ast.Assign)
                for target in statement.targets
                if isinstance(target, ast.Name)
            }
            found: list[bool] = []
            _reached(node, bound, True, found)
            if found and not any(found):
                problems.append(f"{path.relative_to(root)}:{node.lineno} {node.name}")
    return problems


def test_no_test_passes_by_looping_over_nothing() -> None:
    assert vacuous_tests(TESTS) == []


def test_the_check_finds_a_loop_over_a_collection_that_may_be_empty(tmp_path: Path) -> None:
    (tmp_path / "test_sample.py").write_text(
        "def test_loops(items):\n"
        "    for item in items:\n"
        "        assert item\n"
        "def test_literal():\n"
        "    cases = [1, 2]\n"
        "    for case, n in zip(cases, range(2), strict=True):\n"
        "        assert case\n"
        "def test_guarded(items):\n"
        "    assert items\n"
        "    for item in items:\n"
        "        assert item\n",
        encoding="utf-8",
    )
    assert vacuous_tests(tmp_path) == ["test_sample.py:1 test_loops"]
