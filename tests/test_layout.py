"""The layout by role holds: no import cycle, physics apart from jobs, makers apart from the funnel.

Read from the source with ``ast`` (nothing is imported), counting imports inside functions too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {"makers": "coatflow.makers", "workflows": "coatflow.workflows", "launchers": "coatflow.launchers"}
#: heavy or orchestration libraries the physics folder must not import
NOT_IN_ANALYSIS = ("jobflow", "atomate2", "maggma", "fireworks", "chgnet", "gpaw", "torch", "custodian", "mp_api")


def _modules() -> dict[str, Path]:
    mods = {}
    for folder, pkg in PACKAGES.items():
        for path in (ROOT / folder).rglob("*.py"):
            rel = path.relative_to(ROOT / folder).with_suffix("")
            if "data" in rel.parts:  # build scripts of the bundled data, not the package
                continue
            parts = [p for p in rel.parts if p != "__init__"]
            mods[".".join([pkg, *parts])] = path
    return mods


MODULES = _modules()


def _imports(path: Path) -> list[tuple[str, bool, int]]:
    """(imported module, inside a function?, line) for every name imported in ``path``."""
    tree = ast.parse(path.read_text())
    out = []

    def visit(node, in_function):
        for child in ast.iter_child_nodes(node):
            nested = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                out.extend((a.name, in_function, child.lineno) for a in child.names)
            elif isinstance(child, ast.ImportFrom) and child.module and child.level == 0:
                for a in child.names:
                    full = f"{child.module}.{a.name}"
                    out.append((full if full in MODULES else child.module, in_function, child.lineno))
            visit(child, nested)

    visit(tree, False)
    return out


def _graph() -> dict[str, set[str]]:
    return {m: {name for name, _, _ in _imports(p) if name in MODULES and name != m} for m, p in MODULES.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def strong(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in graph:
        if v not in index:
            strong(v)
    return out


def test_no_coatflow_module_is_on_an_import_cycle():
    assert _cycles(_graph()) == []


def test_function_level_imports_of_coatflow_modules_are_few():
    inside = sorted({f"{m}:{line}" for m, p in MODULES.items() for name, fn, line in _imports(p)
                     if fn and name.startswith("coatflow")})  # import statements
    assert len(inside) <= 10, "\n".join(inside)


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m.startswith("coatflow.workflows.analysis")))
def test_the_physics_folder_imports_no_jobflow_and_nothing_of_coatflow_outside_itself(module):
    for name, _, _ in _imports(MODULES[module]):
        assert not name.split(".")[0] in NOT_IN_ANALYSIS, f"{module} imports {name}"
        if name.startswith("coatflow"):
            assert name.startswith("coatflow.workflows.analysis"), f"{module} imports {name}"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m.startswith("coatflow.makers")))
def test_makers_import_only_makers_schemas_analysis_and_errors(module):
    allowed = ("coatflow.makers", "coatflow.workflows.schemas", "coatflow.workflows.analysis",
               "coatflow.workflows.errors")
    for name, _, _ in _imports(MODULES[module]):
        if name.startswith("coatflow"):
            assert name.startswith(allowed), f"{module} imports {name}"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if not m.startswith("coatflow.launchers")))
def test_only_launchers_know_the_cli_config_and_stores(module):
    for name, _, _ in _imports(MODULES[module]):
        assert not name.startswith("coatflow.launchers"), f"{module} imports {name}"
