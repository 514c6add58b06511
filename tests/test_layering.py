"""The package's import rules (issue 21, DESIGN.md), read from the source with ast.

Every import counts: at the top of a module, inside functions, and under TYPE_CHECKING (a
type-only import still ties the two modules together for whoever reads or moves them).
Relative imports are resolved. `from package import name` points at the submodule when `name`
is one, else at the package. A module's edge goes to the module it names only, not to the
packages above it: every import of heroforge.nets.ops also runs heroforge/nets/__init__.py, but
counting that would make each package's __init__ part of every circle through its children.

To add a rule, add one line to RULES.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "heroforge"


@dataclass(frozen=True)
class Import:
    importer: str  # the importing module, e.g. "heroforge.generate.model"
    target: str  # the module it names, e.g. "heroforge.train.checkpoint" or "torch.nn"
    file: Path
    line: int

    def where(self, root: Path) -> str:
        return f"{self.file.relative_to(root)}:{self.line}"


@dataclass(frozen=True)
class Rule:
    name: str
    modules: tuple[str, ...]  # the rule binds these modules and everything under them ...
    forbidden: tuple[str, ...]  # ... which must not import these (or anything under them) ...
    allowed: tuple[str, ...] = ()  # ... except these,
    exempt: tuple[str, ...] = ()  # and these importers are not bound by it
    why: str = ""


def _within(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def _layer(*names: str) -> tuple[str, ...]:
    return tuple(f"{PACKAGE}.{n}" for n in names)


# The modules at the bottom, which everything may use: torch-free and importing only each other.
FOUNDATION = _layer("config", "config_sections", "errors", "fileio", "console", "rundir")

RULES = [
    Rule(
        "below-train",
        _layer("nets", "data", "metrics", "generate", "augment", "runtime"),
        _layer("train"),
        why="training builds on these layers; they never import it",
    ),
    Rule(
        "commands-on-top",
        (PACKAGE,),
        _layer("commands"),
        exempt=(*_layer("commands"), f"{PACKAGE}.__main__"),  # `python -m heroforge` runs it
        why="the CLI is the top layer: nothing outside heroforge.commands imports it",
    ),
    Rule(
        "manager-drives-a-process",
        _layer("manager"),
        _layer("nets", "train"),
        why="the manager runs training as a child process, never in its own",
    ),
    Rule(
        "serve-beside-train",
        _layer("serve"),
        _layer("train"),
        why="the server shows runs through manager and generate, never the training code",
    ),
    Rule(
        "runtime-at-the-bottom",
        _layer("runtime"),
        (PACKAGE,),
        allowed=_layer("errors", "runtime"),
        why="runtime (process groups, allocator) sits under every other layer but errors",
    ),
    Rule(
        "foundation-torch-free",
        FOUNDATION,
        ("torch", PACKAGE),
        allowed=FOUNDATION,
        why="config*, errors, fileio, console and rundir import no torch and nothing above them",
    ),
]


def module_name(path: Path, root: Path) -> str:
    """heroforge/nets/ops.py -> heroforge.nets.ops; heroforge/nets/__init__.py -> heroforge.nets."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve(node: ast.ImportFrom, importer: str, is_package: bool) -> str:
    """The absolute module a `from ... import` statement reads from."""
    if not node.level:
        return node.module or ""
    # A package's own __init__ is its level-1 anchor; a plain module's anchor is its parent.
    anchor = importer.split(".")
    drop = node.level - 1 if is_package else node.level
    base = anchor[: len(anchor) - drop] if drop else anchor
    return ".".join(base + ([node.module] if node.module else []))


def read_imports(root: Path, package: str = PACKAGE) -> tuple[set[str], list[Import]]:
    """Every module of root/package and every import statement in them."""
    files = sorted((root / package).rglob("*.py"))
    modules = {module_name(f, root) for f in files}
    imports = []
    for path in files:
        importer = module_name(path, root)
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):  # walk: function bodies and TYPE_CHECKING blocks too
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                source = _resolve(node, importer, path.name == "__init__.py")
                targets = [
                    f"{source}.{alias.name}" if f"{source}.{alias.name}" in modules else source
                    for alias in node.names
                ]
            else:
                continue
            imports += [Import(importer, t, path, node.lineno) for t in dict.fromkeys(targets)]
    return modules, imports


def broken_rules(rule: Rule, imports: list[Import], root: Path) -> list[str]:
    """One line per import that breaks the rule: file, line, what it imports and the rule."""
    return [
        f"{imp.where(root)}: {imp.importer} imports {imp.target}, but {rule.name}: {rule.why}"
        for imp in imports
        if _within(imp.importer, rule.modules)
        and not _within(imp.importer, rule.exempt)
        and _within(imp.target, rule.forbidden)
        and not _within(imp.target, rule.allowed)
    ]


def import_circles(modules: set[str], imports: list[Import]) -> list[tuple[list[str], list[str]]]:
    """The circles of the module graph: per strongly connected group of modules (Tarjan's
    algorithm, iterative), the group's modules and one circle through them, in order."""
    graph: dict[str, list[str]] = {m: [] for m in sorted(modules)}
    for imp in imports:
        if imp.target in modules and imp.target != imp.importer:
            graph[imp.importer].append(imp.target)
    order: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []
    for start in graph:
        if start in order:
            continue
        work = [(start, iter(graph[start]))]
        order[start] = low[start] = len(order)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == order[node]:
                    group = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        group.append(member)
                        if member == node:
                            break
                    if len(group) > 1:
                        groups.append(group)
            elif child not in order:
                order[child] = low[child] = len(order)
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(graph[child])))
            elif child in on_stack:
                low[node] = min(low[node], order[child])
    return [(sorted(group), _circle_through(sorted(group), graph)) for group in groups]


def _circle_through(group: list[str], graph: dict[str, list[str]]) -> list[str]:
    """A shortest path from the group's first module back to itself, inside the group."""
    members = set(group)
    start = group[0]
    came_from: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for child in graph[node]:
                if child == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(came_from[path[-1]])
                    return [*reversed(path), start]
                if child in members and child not in came_from:
                    came_from[child] = node
                    following.append(child)
        frontier = following
    raise AssertionError(f"{group} is not strongly connected")


def describe_circles(
    circles: list[tuple[list[str], list[str]]], imports: list[Import], root: Path
) -> list[str]:
    """Each circle as "a -> b -> a" with where each step is imported, and the other modules
    tangled with it (each of them lies on some circle through these)."""
    first = {}
    for imp in imports:
        first.setdefault((imp.importer, imp.target), imp)
    lines = []
    for group, circle in circles:
        steps = [first[a, b].where(root) for a, b in pairwise(circle)]
        line = f"import circle {' -> '.join(circle)} (at {', '.join(steps)})"
        others = [m for m in group if m not in circle]
        lines.append(line + (f"; tangled with it: {', '.join(others)}" if others else ""))
    return lines


# --- the rules on heroforge itself ---------------------------------------------------------


@pytest.fixture(scope="module")
def heroforge_imports() -> tuple[set[str], list[Import]]:
    return read_imports(SRC)


@pytest.mark.parametrize("rule", RULES, ids=lambda rule: rule.name)
def test_rule_holds(rule, heroforge_imports):
    modules, imports = heroforge_imports
    assert _within_any(modules, rule.modules), f"{rule.name} binds no module: a misspelt name?"
    broken = broken_rules(rule, imports, SRC)
    assert not broken, "\n".join(broken)


def _within_any(modules: set[str], prefixes: tuple[str, ...]) -> bool:
    return any(_within(m, prefixes) for m in modules)


def test_no_import_circles(heroforge_imports):
    modules, imports = heroforge_imports
    circles = describe_circles(import_circles(modules, imports), imports, SRC)
    assert not circles, "\n".join(circles)


# --- the checker itself ----------------------------------------------------------------------


def _write_package(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


@pytest.fixture
def fake_package(tmp_path):
    """A tiny heroforge whose modules break every kind of rule once."""
    return _write_package(
        tmp_path,
        {
            "heroforge/__init__.py": "",
            "heroforge/train/__init__.py": "",
            "heroforge/train/loop.py": "",
            "heroforge/nets/__init__.py": "",
            # a forbidden import hidden in a function
            "heroforge/nets/ops.py": "def f():\n    from heroforge.train import loop\n",
            "heroforge/commands/__init__.py": "from . import train\n",
            "heroforge/commands/train.py": "import heroforge.train.loop\n",
            # an import of the commands package, relative, under TYPE_CHECKING
            "heroforge/generate/__init__.py": "",
            "heroforge/generate/sample.py": (
                "from typing import TYPE_CHECKING\n"
                "if TYPE_CHECKING:\n"
                "    from ..commands import train\n"
            ),
            # a circle of three modules
            "heroforge/data/__init__.py": "",
            "heroforge/data/a.py": "from heroforge.data import b\n",
            "heroforge/data/b.py": "from .c import name\n",
            "heroforge/data/c.py": "import heroforge.data.a\nname = 1\n",
            # torch in the foundation, and errors importing runtime
            "heroforge/config.py": "import torch.nn\n",
            "heroforge/errors.py": "",
            "heroforge/runtime/__init__.py": "",
            "heroforge/runtime/dist.py": "from heroforge.errors import UserError\nimport os\n",
            "heroforge/runtime/allocator.py": "from heroforge import config\n",
        },
    )


def _broken(root: Path, name: str) -> list[str]:
    _, imports = read_imports(root)
    (rule,) = [r for r in RULES if r.name == name]
    return broken_rules(rule, imports, root)


def test_checker_finds_a_forbidden_import_inside_a_function(fake_package):
    assert _broken(fake_package, "below-train") == [
        "heroforge/nets/ops.py:2: heroforge.nets.ops imports heroforge.train.loop, but "
        "below-train: training builds on these layers; they never import it"
    ]


def test_checker_finds_an_import_of_commands_only_outside_commands(fake_package):
    broken = _broken(fake_package, "commands-on-top")
    assert len(broken) == 1
    assert broken[0].startswith(
        "heroforge/generate/sample.py:3: heroforge.generate.sample imports "
        "heroforge.commands.train, but commands-on-top:"
    )


def test_checker_finds_torch_and_upward_imports_at_the_bottom(fake_package):
    foundation = _broken(fake_package, "foundation-torch-free")
    assert [line.split(", but")[0] for line in foundation] == [
        "heroforge/config.py:1: heroforge.config imports torch.nn"
    ]
    runtime = _broken(fake_package, "runtime-at-the-bottom")
    assert [line.split(", but")[0] for line in runtime] == [
        "heroforge/runtime/allocator.py:1: heroforge.runtime.allocator imports heroforge.config"
    ]


def test_checker_finds_an_import_circle_in_order(fake_package):
    modules, imports = read_imports(fake_package)
    circles = import_circles(modules, imports)
    abc = ["heroforge.data.a", "heroforge.data.b", "heroforge.data.c"]
    assert circles == [(abc, [*abc, "heroforge.data.a"])]
    (line,) = describe_circles(circles, imports, fake_package)
    assert line == (
        "import circle heroforge.data.a -> heroforge.data.b -> heroforge.data.c -> "
        "heroforge.data.a (at heroforge/data/a.py:1, heroforge/data/b.py:1, heroforge/data/c.py:1)"
    )


def test_checker_resolves_relative_imports(tmp_path):
    root = _write_package(
        tmp_path,
        {
            "heroforge/__init__.py": "",
            "heroforge/nets/__init__.py": "from . import ops\nfrom .ops import f\n",
            "heroforge/nets/ops.py": "from ..errors import UserError\nfrom . import layers\n",
            "heroforge/nets/layers.py": "from .. import errors\n",
            "heroforge/errors.py": "",
        },
    )
    _, imports = read_imports(root)
    assert sorted((imp.importer, imp.line, imp.target) for imp in imports) == [
        ("heroforge.nets", 1, "heroforge.nets.ops"),
        ("heroforge.nets", 2, "heroforge.nets.ops"),
        ("heroforge.nets.layers", 1, "heroforge.errors"),
        ("heroforge.nets.ops", 1, "heroforge.errors"),
        ("heroforge.nets.ops", 2, "heroforge.nets.layers"),
    ]


def test_clean_package_breaks_no_rule(tmp_path):
    root = _write_package(
        tmp_path,
        {
            "heroforge/__init__.py": "",
            "heroforge/errors.py": "",
            "heroforge/config.py": "from heroforge.errors import ConfigError\nimport tomllib\n",
            "heroforge/runtime/__init__.py": "",
            "heroforge/runtime/dist.py": "import torch\nfrom heroforge.errors import UserError\n",
            "heroforge/nets/__init__.py": "",
            "heroforge/nets/ops.py": "import torch\nfrom heroforge.runtime import dist\n",
            "heroforge/train/__init__.py": "",
            "heroforge/train/loop.py": "from heroforge.nets import ops\n",
            "heroforge/commands/__init__.py": "from heroforge.train import loop\n",
        },
    )
    modules, imports = read_imports(root)
    assert [line for rule in RULES for line in broken_rules(rule, imports, root)] == []
    assert import_circles(modules, imports) == []
