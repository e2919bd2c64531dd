"""The core's shape: no import cycle among harness/'s modules (imports inside functions count), no module over
500 lines, no function over 80. Also run by ``tox -e lint`` (``python tests/test_architecture.py``)."""

from __future__ import annotations

import ast
import graphlib
import sys
from pathlib import Path

CORE = Path(__file__).resolve().parent.parent / "harness"
MAX_MODULE_LINES, MAX_FUNCTION_LINES = 500, 80


def modules() -> dict[str, Path]:
    """Dotted name -> file for every module of the core (a package is its ``__init__``)."""
    found = {}
    for path in CORE.rglob("*.py"):
        parts = path.relative_to(CORE.parent).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imported(name: str, path: Path, known: set[str]) -> set[str]:
    """The core modules ``name`` imports anywhere in its file; a package's own ``__init__`` does not count."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets |= {base} | {f"{base}.{alias.name}" for alias in node.names}
    found = set()
    for target in targets:
        while target and target not in known:
            target = target.rpartition(".")[0]
        if target and target != name and not name.startswith(target + "."):
            found.add(target)
    return found


def import_cycle() -> list[str] | None:
    found = modules()
    graph = {name: imported(name, path, set(found)) for name, path in found.items()}
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as error:
        return error.args[1]
    return None


def oversized() -> list[str]:
    """'module: N lines' and 'module:function: N lines' over the limits."""
    problems = []
    for name, path in modules().items():
        text = path.read_text()
        if len(text.splitlines()) > MAX_MODULE_LINES:
            problems.append(f"{name}: {len(text.splitlines())} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    problems.append(f"{name}:{node.name}: {length} lines")
    return problems


def test_no_import_cycle_in_the_core():
    assert import_cycle() is None


def test_cycle_detection_sees_function_level_imports(tmp_path, monkeypatch):
    package = tmp_path / "harness"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from harness import b\n")
    (package / "b.py").write_text("def f():\n    from harness.a import x\n")
    monkeypatch.setattr(sys.modules[__name__], "CORE", package)
    assert set(import_cycle()) == {"harness.a", "harness.b"}


def test_no_module_or_function_over_the_limits():
    assert oversized() == []


def unsafe_loads(roots: list[Path]) -> list[str]:
    """``torch.load`` calls without an explicit ``weights_only=True``: a planted file must not run code on load."""
    found = []
    for root in roots:
        for path in root.rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                    continue
                if node.func.attr == "load" and isinstance(node.func.value, ast.Name) and node.func.value.id == "torch":
                    flags = [getattr(k.value, "value", None) for k in node.keywords if k.arg == "weights_only"]
                    if flags != [True]:
                        found.append(f"{path.relative_to(root.parent)}:{node.lineno}")
    return found


def test_every_torch_load_passes_weights_only_true():
    assert unsafe_loads([CORE, CORE.parent / "plugins"]) == []


def test_the_weights_only_check_sees_a_bare_load(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "m.py").write_text("import torch\nstate = torch.load('initial_weights.pt', map_location=0)\n")
    assert unsafe_loads([tmp_path / "pkg"]) == ["pkg/m.py:2"]


if __name__ == "__main__":
    cycle, sizes = import_cycle(), oversized()
    print(f"import cycle: {' -> '.join(cycle)}" if cycle else "no import cycle")
    print("\n".join(f"too long: {p}" for p in sizes) or "sizes within limits")
    sys.exit(1 if cycle or sizes else 0)
