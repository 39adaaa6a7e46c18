"""The package has no import cycle, counting imports inside functions too.

A cycle hidden by an import inside a function still ties two modules together: neither
can be read, tested or changed without the other. The graph is built from the source
(every ``from . import x`` and ``from .x import y``, at any depth of the module, except
imports made only for type checkers), so it sees those hidden imports as well.
"""

from __future__ import annotations

import ast
import graphlib
import subprocess
import sys
from pathlib import Path

import jupyter_sched

PACKAGE = Path(jupyter_sched.__file__).parent
MODULES = sorted(path.stem for path in PACKAGE.glob("*.py"))


def _type_checking_only(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _package_imports(module: str) -> set[str]:
    """The modules of the package that ``module`` imports anywhere in its source."""
    tree = ast.parse((PACKAGE / f"{module}.py").read_text(encoding="utf-8"))
    found: set[str] = set()
    pending: list[ast.AST] = [tree]
    while pending:
        node = pending.pop()
        if _type_checking_only(node):
            continue
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module is not None:
                found.add(node.module.split(".")[0])
            else:  # from . import a, b: modules, or names of the package's __init__
                found.update(a.name if a.name in MODULES else "__init__" for a in node.names)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("jupyter_sched"):
            parts = (node.module or "").split(".")
            found.add(parts[1] if len(parts) > 1 else "__init__")
        pending.extend(ast.iter_child_nodes(node))
    found.discard(module)
    return found


def import_graph() -> dict[str, set[str]]:
    """Each module of the package → the modules of the package it imports.

    Imports of the package's ``__init__`` are left out: Python runs it before any of its
    modules, so importing a name from it cannot close a cycle (``test_init_imports_nothing
    _at_import`` checks that it imports none of the package's modules while it runs).
    """
    graph = {module: _package_imports(module) for module in MODULES}
    return {module: imports - {"__init__"} for module, imports in graph.items()}


def test_the_package_has_no_import_cycle() -> None:
    graph = import_graph()
    assert "lifecycle" in graph["ticker"]  # the graph sees the package's imports
    try:
        order = list(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as exc:
        raise AssertionError(f"import cycle: {' -> '.join(exc.args[1])}") from None
    assert sorted(order) == MODULES


def test_low_modules_import_nothing_of_the_package() -> None:
    graph = import_graph()
    assert graph["clock"] == set()
    assert graph["statuses"] == set()
    assert graph["errors"] == set()


def test_init_imports_nothing_at_import() -> None:
    tree = ast.parse((PACKAGE / "__init__.py").read_text(encoding="utf-8"))
    top_level = [
        node
        for node in tree.body
        if isinstance(node, ast.ImportFrom)
        and (node.level or "jupyter_sched" in (node.module or ""))
    ]
    assert top_level == []


def test_the_modules_import_in_dependency_order() -> None:
    """In a fresh interpreter, each module imports after its own dependencies only (the
    graph names every import a module needs)."""
    order = list(graphlib.TopologicalSorter(import_graph()).static_order())
    script = "; ".join(f"import jupyter_sched.{module}" for module in order if module != "__init__")
    subprocess.run([sys.executable, "-c", script], check=True)


def test_importing_the_service_registers_no_papermill_engine() -> None:
    script = (
        "import jupyter_sched.service, jupyter_sched.worker\n"
        "from papermill.engines import papermill_engines\n"
        "assert 'jupyter_sched' not in papermill_engines._engines, papermill_engines._engines\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True)


def test_the_readme_maps_every_module() -> None:
    """A newcomer's map of the package: the README's "How it works" names each module."""
    readme = (PACKAGE.parent / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## How it works", 1)[1].split("\n## ", 1)[0]
    lines = {line.split(":", 1)[0] for line in section.splitlines() if line.startswith("- `")}
    unmapped = [m for m in MODULES if not m.startswith("_") and f"- `{m}.py`" not in lines]
    assert unmapped == [], f"add a line for each of these modules to How it works: {unmapped}"
    stale = sorted(line for line in lines if line[3:-4] not in MODULES)
    assert stale == [], f"How it works names modules that do not exist: {stale}"
