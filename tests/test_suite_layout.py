"""The suite's own layout: no test module imports another.

A test module that imports another drags that module's tests and fixtures along (pytest collects them twice under
xdist's load-by-file, and a fixture override in one changes the other). What tests share lives in
``tests/*_helpers.py``, ``conftest.py`` or ``loadtest/``. import-linter cannot say this (its wildcards replace
whole module names only), so this test reads the imports itself.
"""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module is not None:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_no_test_module_imports_another() -> None:
    test_files = sorted(TESTS.rglob("test_*.py"))
    assert len(test_files) > 50  # the walk found the suite
    offenders = {
        str(path.relative_to(TESTS)): sorted(
            name
            for name in _imported_modules(path)
            if name.startswith("tests.") and name.rsplit(".", 1)[-1].startswith("test_")
        )
        for path in test_files
    }
    assert {path: names for path, names in offenders.items() if names} == {}
