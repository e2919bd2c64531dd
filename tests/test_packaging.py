"""The package maps plugins/ to harness.plugins and tasks/ to harness.tasks, and nothing else is top-level."""

import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _declared_packages() -> set[str]:
    return set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])


def _source_packages() -> set[str]:
    found = set()
    for top, name in (("harness", "harness"), ("plugins", "harness.plugins"), ("tasks", "harness.tasks")):
        for init in (ROOT / top).rglob("__init__.py"):
            parts = init.parent.relative_to(ROOT / top).parts
            if "__pycache__" not in parts:
                found.add(".".join((name, *parts)))
    return found


def test_every_package_is_declared():
    assert _source_packages() == _declared_packages()


def test_wheel_contents(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
    )
    wheel = next(tmp_path.glob("harness_lm-*.whl"))  # the distribution harness-lm; the import package harness
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names if not n.startswith("harness_lm-")}
    assert tops == {"harness"}
    assert "harness/tasks/graph_cot.yaml" in names
    assert "harness/plugins/graph_cot/__init__.py" in names
    assert {"harness/plugins/dataset_tasks/capitals.yaml", "harness/plugins/dataset_tasks/capitals.jsonl"} <= set(names)
    metadata = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("METADATA"))).decode()
    assert "\nName: harness-lm\n" in metadata  # free on PyPI, unlike "harness"
    entry_points = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "[harness]" in entry_points and "harness.plugins.graph_cot" in entry_points


def test_installed_import_names():
    import harness.plugins
    import harness.tasks

    assert Path(harness.plugins.__file__).parent == ROOT / "plugins" or "site-packages" in harness.plugins.__file__
    assert Path(harness.tasks.__file__).parent.name in ("tasks",)


def test_the_core_import_contract_covers_every_core_module():
    """The import-linter contract (run by `tox -e lint`) lists its source modules by name: a new core module must
    join the list, or the rule would silently not apply to it."""
    contract = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"][0]
    core = {
        f"harness.{p.stem}"
        for p in (ROOT / "harness").iterdir()
        if (p.suffix == ".py" and p.stem != "__init__") or (p / "__init__.py").exists()
    }
    assert contract["forbidden_modules"] == ["harness.plugins"]
    assert core == set(contract["source_modules"])


def test_no_plugin_imports_another_plugin():
    """What plugins share (plots, probes, statistics) is a public service of the core, so any plugin can be
    disabled or uninstalled without breaking another; imports inside functions count."""
    import ast

    crossings = []
    for package in sorted(p for p in (ROOT / "plugins").iterdir() if (p / "__init__.py").exists()):
        own = f"harness.plugins.{package.name}"
        for path in package.rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
                names += [node.module] if isinstance(node, ast.ImportFrom) and node.module else []
                for name in names:
                    if name.startswith("harness.plugins.") and name != own and not name.startswith(own + "."):
                        crossings.append(f"{path.relative_to(ROOT)} imports {name}")
    assert crossings == []


def test_plugins_use_no_private_core_name():
    """No underscore name across the package line: what a plugin needs is public in the core, so the core can
    change its internals without breaking a plugin (``from harness.report import _figure`` was one)."""
    import ast

    private = []
    for path in (ROOT / "plugins").rglob("*.py"):
        tree = ast.parse(path.read_text())
        core_modules = set()  # local names bound to a core module: `from harness import report`, `import harness.x`
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("harness"):
                if not node.module.startswith("harness.plugins"):
                    private += [
                        f"{path.relative_to(ROOT)}: {node.module}.{a.name}" for a in node.names if _private(a.name)
                    ]
                    core_modules |= {a.asname or a.name for a in node.names}
            elif isinstance(node, ast.Import):
                core_modules |= {(a.asname or a.name).split(".")[0] for a in node.names if a.name.startswith("harness")}
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in core_modules:
                if _private(node.attr):
                    private.append(f"{path.relative_to(ROOT)}: {node.value.id}.{node.attr}")
    assert private == []


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")
