"""ARCHITECTURE.md against the code: its module map names every module of the package (and no
module that is gone), and its contracts list the fields and parameters the code has."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import re
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "src" / "mitremap"
ARCHITECTURE = REPO / "ARCHITECTURE.md"
# Alembic's revisions, one per schema change: the map names their folder only
UNMAPPED = {"web/workspace/migrations/versions/"}


def _section(text: str, heading: str) -> str:
    """The text under `heading` up to the next heading of any level."""
    start = text.index(f"{heading}\n") + len(heading) + 1
    following = re.search(r"^#{1,6} ", text[start:], flags=re.MULTILINE)
    return text[start : start + following.start()] if following else text[start:]


def module_map(text: str) -> dict[str, list[str]]:
    """The map's packages (`web/routers/`, the top level as `mitremap/`) → what each lists.
    A line starting at the margin names a package; an indented one goes on with the last;
    a "layer:" label before the names is not a name."""
    block = _section(text, "### Module map").split("```")[1]
    listed: dict[str, list[str]] = {}
    package = ""
    for line in block.strip("\n").splitlines():
        if not line.strip():
            continue
        if not line[0].isspace():
            package, _, line = line.partition(" ")
            listed.setdefault(package, [])
        names = re.sub(r"^\s*[a-z][a-z ]*:", "", line).split()
        listed[package] += names
    return listed


def tree() -> dict[str, list[str]]:
    """The same from the package's folders: every package's modules (not `__init__`) and
    folders."""
    found: dict[str, list[str]] = {}
    for init in sorted(PACKAGE.rglob("__init__.py")):
        folder = init.parent
        key = "mitremap/" if folder == PACKAGE else f"{folder.relative_to(PACKAGE).as_posix()}/"
        if key in UNMAPPED:
            continue
        found[key] = sorted(
            [p.stem for p in folder.glob("*.py") if p.name != "__init__.py"]
            + [f"{p.name}/" for p in folder.iterdir() if p.is_dir() and p.name != "__pycache__"]
        )
    return found


def test_the_module_map_names_every_module_and_only_those() -> None:
    listed, found = module_map(ARCHITECTURE.read_text(encoding="utf-8")), tree()
    assert len(found) >= 10  # the package's folders were found
    assert sorted(listed) == sorted(found), "packages in the map ≠ packages in src/mitremap"
    for package, modules in found.items():
        names = listed[package]
        assert len(names) == len(set(names)), f"{package}: a name listed twice"
        missing, gone = set(modules) - set(names), set(names) - set(modules)
        assert not missing, f"ARCHITECTURE.md's module map lacks {package}: {sorted(missing)}"
        assert not gone, f"ARCHITECTURE.md's module map lists {package}: {sorted(gone)}, not there"


def test_the_check_sees_a_module_missing_from_the_map() -> None:
    text = "### Module map\n```\nmitremap/   core: analysis\n            names\ncli/  common\n```\n"
    assert module_map(text) == {"mitremap/": ["analysis", "names"], "cli/": ["common"]}


def _resolve(dotted: str) -> Any:
    """`analysis.TechniqueHit` → the object, from the longest importable module path."""
    parts = dotted.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            found: Any = importlib.import_module("mitremap." + ".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for name in parts[cut:]:
            found = getattr(found, name)
        return found
    raise AssertionError(f"{dotted}: no such module in mitremap")


def _names(thing: Any) -> list[str]:
    """A dataclass's fields, else a function's or method's parameters (without `self`)."""
    if dataclasses.is_dataclass(thing):
        return [f.name for f in dataclasses.fields(thing)]
    return [p for p in inspect.signature(thing).parameters if p != "self"]


def contracts(text: str) -> list[tuple[str, list[str]]]:
    """Each `module.Name(a, b, …)` of the contracts section: (`module.Name`, [a, b, …])."""
    section = _section(text, "## Contracts (dataclasses, frozen where they can be)")
    return [
        (dotted, [name.strip() for name in listed.split(",")])
        for dotted, listed in re.findall(r"`([a-z_]+(?:\.[A-Za-z_]+)+)\(([^)`]*)\)`", section)
    ]


def test_the_contracts_name_the_fields_and_parameters_the_code_has() -> None:
    found = contracts(ARCHITECTURE.read_text(encoding="utf-8"))
    assert len(found) >= 12
    for dotted, listed in found:
        assert listed == _names(_resolve(dotted)), f"ARCHITECTURE.md's `{dotted}(…)`"
