"""The code's layering rules, read from the source (nothing runs): who may import what."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "blender_humantex"
CLI = "blender_humantex.cli"


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
        if name.startswith(CLI) or path == PACKAGE / "__main__.py":  # the CLI itself and `python -m blender_humantex`
            continue
        if any(m == CLI or m.startswith(CLI + ".") for m in imported_modules(path)):
            offenders.append(name)
    assert offenders == []


def test_the_rule_sees_relative_imports():
    # The checks here must be able to fail: they see relative imports, at any depth, and function-local ones.
    assert f"{CLI}.main" in imported_modules(PACKAGE / "__main__.py")
    assert "blender_humantex.worker.server" in imported_modules(PACKAGE / "cli" / "worker.py")
    assert "blender_humantex.core.sources.partial" in imported_modules(PACKAGE / "core" / "sources" / "iuv.py")
    assert "blender_humantex.core.errors" in imported_modules(PACKAGE / "core" / "sources" / "meshes.py")  # local
    assert "blender_humantex.worker" in import_graph()["blender_humantex.cli.worker"]


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """module -> the package's modules it imports (module level or inside functions), from the AST.
    An imported name is the longest module it names (`from .a import b` is a.b when b is a module, else a)."""
    modules = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        targets = set()
        for imported in imported_modules(path):
            parts = imported.split(".")
            for end in range(len(parts), 0, -1):
                if ".".join(parts[:end]) in modules:
                    targets.add(".".join(parts[:end]))
                    break
        # an ancestor package is initialised before its modules run: importing it is no edge of a cycle
        graph[name] = {t for t in targets if not (name + ".").startswith(t + ".")}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan's algorithm)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_core_never_imports_the_worker_or_the_cli():
    graph = import_graph()
    offenders = {name: sorted(t for t in targets if t.startswith(("blender_humantex.worker", "blender_humantex.cli")))
                 for name, targets in graph.items() if name.startswith("blender_humantex.core")}
    assert {name: bad for name, bad in offenders.items() if bad} == {}


def test_no_import_cycles():
    assert cycles(import_graph()) == []


def test_the_cycle_check_can_fail():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def string_constants(path: Path) -> list[str]:
    """The string literals of a file, docstrings left out."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef)) and node.body
                  and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
    return [node.value for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings]


def module_assignments(path: Path) -> dict[str, ast.expr]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {target.id: node.value for node in tree.body if isinstance(node, ast.Assign)
            for target in node.targets if isinstance(target, ast.Name)}


def test_source_names_are_defined_once():
    from blender_humantex.core.request import GENERATE_FIELDS, SOURCE_ALIASES, SOURCES

    request_py = PACKAGE / "core" / "request.py"
    tables = sorted(str(path.relative_to(PACKAGE)) for path in PACKAGE.rglob("*.py")
                    if {"SOURCES", "SOURCE_ALIASES"} & set(module_assignments(path)))
    assert tables == ["core/request.py"]
    # every source has its reader module in core/sources/, and the old spellings live in the alias table only
    for source in SOURCES.values():
        assert (PACKAGE / "core" / "sources" / f"{source.reader.split(':')[0].rsplit('.', 1)[1]}.py").is_file()
    assert set(SOURCE_ALIASES.values()) <= set(SOURCES) and not set(SOURCE_ALIASES) & set(SOURCES)
    # ("camera" is a field's name too; "CAMERA" is Blender's object type; "densepose" also names the
    # DensePose model, the `humantex densepose` command and meta.json's section: core/densepose)
    other_things = {*GENERATE_FIELDS, "densepose"}
    old_spellings = {*(alias for alias in SOURCE_ALIASES if alias not in other_things), "PHOTO"}
    users = sorted(str(path.relative_to(PACKAGE)) for path in PACKAGE.rglob("*.py")
                   if path != request_py and old_spellings & set(string_constants(path)))
    assert users == []
    # the add-on's source menu: identifiers are source names (labels may differ)
    items = ast.literal_eval(module_assignments(PACKAGE / "addon" / "properties.py")["SOURCE_ITEMS"])
    assert {identifier for identifier, _, _ in items} <= set(SOURCES)


def test_the_request_imports_only_the_standard_library():
    # Blender's Python imports core/request.py, core/errors.py and core/files.py through the worker client
    for module in ("request", "errors", "files"):
        outside = {name.split(".")[0] for name in imported_modules(PACKAGE / "core" / f"{module}.py")
                   if not name.startswith("blender_humantex.core.errors")}
        assert outside <= set(sys.stdlib_module_names) | {"__future__"}, (module, outside)


def test_one_vocabulary_for_the_layers():
    from dataclasses import fields

    from blender_humantex.core.job import OUTPUT_FILES
    from blender_humantex.core.layers import LAYER_NAMES
    from blender_humantex.core.pipeline import Layers
    from blender_humantex.core.sheet import PANELS

    assert tuple(f.name for f in fields(Layers)) == LAYER_NAMES
    assert sorted(PANELS) == sorted(LAYER_NAMES)
    assert {name: OUTPUT_FILES[name] for name in LAYER_NAMES} == {name: f"{name}.png" for name in LAYER_NAMES}


LONGEST_FUNCTION = 60  # lines, decorators excluded: a longer one is split into named steps


def long_functions(root: Path) -> list[str]:
    found = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > LONGEST_FUNCTION:
                    found.append(f"{path.relative_to(root.parent)}:{node.lineno} {node.name} ({length} lines)")
    return found


def test_no_function_in_the_package_is_over_60_lines():
    assert long_functions(PACKAGE) == []


def test_the_length_rule_can_fail(tmp_path):
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "m.py").write_text("def f():\n" + "    x = 1\n" * LONGEST_FUNCTION + "\n\ndef g():\n    pass\n")
    assert long_functions(package) == ["pkg/m.py:1 f (61 lines)"]
