"""The code's layering rules, read from the source (nothing runs): who may import what."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "blender_humantex"
CLI = "blender_humantex.core.cli"


def imported_modules(path: Path) -> set[str]:
    """Absolute names of the modules a file imports (relative imports resolved against its package)."""
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    package = parts[:-1]  # a module's package; for an __init__.py, the package itself
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *(node.module.split(".") if node.module else [])])
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


def test_library_modules_never_import_the_cli():
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        name = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if name.startswith(CLI) or path.name == "__main__.py":  # the CLI itself and the `python -m` entry points
            continue
        if any(m == CLI or m.startswith(CLI + ".") for m in imported_modules(path)):
            offenders.append(name)
    assert offenders == []


def test_the_rule_sees_relative_imports():
    # The check above must be able to fail: the entry point it exempts does import the CLI, relatively.
    assert f"{CLI}.worker" in imported_modules(PACKAGE / "worker" / "__main__.py")
    assert f"{CLI}.main" in imported_modules(PACKAGE / "__main__.py")


def test_one_vocabulary_for_the_layers():
    from dataclasses import fields

    from blender_humantex.core.job import OUTPUT_FILES
    from blender_humantex.core.layers import LAYER_NAMES
    from blender_humantex.core.pipeline import Layers
    from blender_humantex.core.sheet import PANELS

    assert tuple(f.name for f in fields(Layers)) == LAYER_NAMES
    assert sorted(PANELS) == sorted(LAYER_NAMES)
    assert {name: OUTPUT_FILES[name] for name in LAYER_NAMES} == {name: f"{name}.png" for name in LAYER_NAMES}
