import re
from pathlib import Path

import pytest
from cli_helpers import run_harness

from harness import hookspecs
from harness.errors import UsageError
from harness.registry import Plugins


def test_builtin_plugins_load_through_entry_points():
    plugins = Plugins()
    assert "builtin_backends" in plugins.dists
    assert plugins.dists["builtin_backends"][0] == "harness-lm"
    assert "hf" in plugins.registry("backends")


def test_extra_module_and_disable(monkeypatch):
    plugins = Plugins(extra_modules=["harness_testplugin"])
    assert "counting" in plugins.registry("tasks")
    monkeypatch.setenv("HARNESS_DISABLE_PLUGINS", "builtin_backends,harness_testplugin")
    plugins = Plugins(extra_modules=["harness_testplugin"])
    assert "hf" not in plugins.registry("backends") and "counting" not in plugins.registry("tasks")


def test_failing_plugins_are_reported_once_and_others_work(capsys):
    plugins = Plugins(extra_modules=["harness_importerror_plugin", "harness_brokenplugin", "harness_testplugin"])
    assert "counting" in plugins.registry("tasks")
    plugins.registry("tasks")
    err = capsys.readouterr().err
    assert err.count("'harness_importerror_plugin' failed") == 1
    assert err.count("'harness_brokenplugin' failed") == 1


def test_registry_lookup_suggests():
    plugins = Plugins()
    with pytest.raises(UsageError, match="did you mean 'hf'"):
        plugins.registry("backends").get("hff")


def test_plugins_command_lists_hooks_and_failures():
    result = run_harness("-p", "harness_testplugin", "-p", "harness_brokenplugin", "plugins")
    assert result.returncode == 0
    line = next(row for row in result.stdout.splitlines() if row.startswith("harness_testplugin"))
    assert "register_tasks" in line and "register_probes" in line
    assert "'harness_brokenplugin' failed" in result.stderr


def test_hook_tracing(monkeypatch):
    result = run_harness(
        "list",
        "backends",
        env={
            **__import__("os").environ,
            "HARNESS_TRACE_HOOKS": "1",
            "PYTHONPATH": str(Path(__file__).parent / "support"),
        },
    )
    assert "harness_register_commands" in result.stderr


def test_every_hook_is_documented_and_tested():
    """Like datasette: each hookspec has a docstring with :param lines and a test named test_hook_<name>."""
    names = [n for n in dir(hookspecs) if n.startswith("harness_")]
    tests = "\n".join(p.read_text() for p in Path(__file__).parent.rglob("test_*.py"))
    guide = (Path(__file__).parent.parent / "docs" / "plugins.md").read_text()
    for name in names:
        doc = getattr(hookspecs, name).__doc__ or ""
        assert ":param" in doc, f"{name} lacks :param lines"
        assert re.search(rf"def test_hook_{name.removeprefix('harness_')}\b", tests), f"no test_hook_ for {name}"
        assert name in guide, f"{name} is not in the plugin guide (docs/plugins.md)"
