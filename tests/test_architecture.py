"""The import graph: packages import downward only, and no module cycle exists anywhere.

A newcomer should be able to read the code floor by floor. The order below is
the one source of truth for "downward"; a new package must be placed in it.
The check reads every ``import`` statement with ``ast`` (including ones inside
functions, which would otherwise hide a cycle), so it runs in a second.
"""
from __future__ import annotations

import ast
import os
from typing import Dict, List, Set, Tuple

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Lowest floor first. A package may import its own modules and any package before it.
LAYERS = ("common", "trainer", "edge", "serving", "monitoring", "components", "pipeline", "kubeflow", "loop")


def _modules() -> Dict[str, str]:
    """Dotted module name -> file path, for every Python file of the layered packages."""
    found = {}
    for package in LAYERS:
        root = os.path.join(REPO, package)
        for directory, _, files in os.walk(root):
            for name in files:
                if name.endswith(".py"):
                    path = os.path.join(directory, name)
                    rel = os.path.relpath(path, REPO)[:-3].replace(os.sep, ".")
                    found[rel[:-len(".__init__")] if rel.endswith(".__init__") else rel] = path
    return found


def _imports(path: str, module: str, known: Set[str]) -> Set[str]:
    """Our modules that ``module`` imports (``from pkg import mod`` resolves to ``pkg.mod``)."""
    tree = ast.parse(open(path, encoding="utf-8").read(), filename=path)
    targets: Set[str] = set()
    package = module if path.endswith("__init__.py") else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1] + ([base] if base else []))
            # ``from pkg import mod`` imports the module; ``from mod import name`` the module itself
            names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
                     for alias in node.names]
        else:
            continue
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name and name != module:
                targets.add(name)
    return targets


def _graph() -> Dict[str, Set[str]]:
    modules = _modules()
    known = set(modules)
    return {m: _imports(p, m, known) for m, p in modules.items()}


def _layer(module: str) -> int:
    return LAYERS.index(module.split(".")[0])


def test_packages_import_downward_only():
    upward: List[Tuple[str, str]] = [
        (m, t) for m, targets in _graph().items() for t in targets if _layer(t) > _layer(m)]
    assert not upward, "imports that go up a floor (see LAYERS): " + ", ".join(
        f"{m} -> {t}" for m, t in sorted(upward))


def test_common_imports_nothing_of_ours_but_itself():
    outside = [(m, t) for m, targets in _graph().items() if m.startswith("common")
               for t in targets if not t.startswith("common")]
    assert not outside, outside


def test_no_import_cycle_between_modules():
    graph = _graph()
    # A package __init__ that imports its own submodules is not a cycle worth reporting:
    # Python resolves it, and the package is the submodules' parent, not a peer.
    edges = {m: {t for t in ts if not m.startswith(t + ".")} for m, ts in graph.items()}
    state: Dict[str, int] = {}
    stack: List[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for target in sorted(edges.get(node, ())):
            if state.get(target) == 1:
                cycle = stack[stack.index(target):] + [target]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if target not in state:
                visit(target)
        stack.pop()
        state[node] = 2

    for module in sorted(edges):
        if module not in state:
            visit(module)


def test_the_checker_sees_a_function_level_import(tmp_path):
    """The graph must include imports hidden inside functions (they hid a cycle once)."""
    source = tmp_path / "mod.py"
    source.write_text("def f():\n    from trainer import features\n    return features\n")
    assert _imports(str(source), "serving.mod", {"trainer", "trainer.features"}) == {"trainer.features"}
