"""The architecture's one rule: the model library (facelocal/) never imports the serving package (service/)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def test_library_never_imports_the_service() -> None:
    sources = sorted((ROOT / "facelocal").rglob("*.py"))
    assert len(sources) > 30
    offenders = {
        str(path.relative_to(ROOT)): sorted(name for name in _imported_modules(path) if name.split(".")[0] == "service")
        for path in sources
    }
    assert {path: names for path, names in offenders.items() if names} == {}
