import re
from pathlib import Path

import pytest
from cli_helpers import harness_env, run_harness

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


def _plugin_module(tmp_path, monkeypatch, name: str, body: str) -> str:
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / f"{name}.py").write_text("from harness import hookimpl\n\n" + body)
    return name


@pytest.mark.parametrize(
    "kind, args, shown",
    [
        ("tasks", "'dup', f", "task 'dup'"),
        ("backends", "'dup', f", "backend 'dup'"),
        ("probes", "'dup', f", "probe 'dup'"),
        ("optimizers", "'dup', f", "optimizer 'dup'"),
        ("components", "'attention', 'dup', f", "component 'attention:dup'"),
    ],
)
def test_a_name_registered_by_two_plugins_is_refused_naming_both(tmp_path, monkeypatch, kind, args, shown):
    body = f"def f():\n    pass\n\n\n@hookimpl\ndef harness_register_{kind}(register):\n    register({args})\n"
    one = _plugin_module(tmp_path, monkeypatch, f"dup_one_{kind}", body)
    two = _plugin_module(tmp_path, monkeypatch, f"dup_two_{kind}", body)
    plugins = Plugins(extra_modules=[one, two])
    with pytest.raises(UsageError) as caught:
        plugins.registry(kind)
    message = str(caught.value)
    assert message.startswith(f"{shown} is registered by two plugins, ") and "\n" not in message
    assert f"'{one}'" in message and f"'{two}'" in message and "HARNESS_DISABLE_PLUGINS=" in message


def test_a_name_registered_twice_by_one_plugin_is_refused(tmp_path, monkeypatch):
    body = "@hookimpl\ndef harness_register_tasks(register):\n    register('dup', int)\n    register('dup', float)\n"
    name = _plugin_module(tmp_path, monkeypatch, "dup_twice", body)
    with pytest.raises(UsageError, match=f"task 'dup' is registered twice by plugin '{name}'"):
        Plugins(extra_modules=[name]).registry("tasks")


def test_a_task_clash_with_an_installed_plugin_is_refused():
    plugins = Plugins(extra_modules=["harness_testplugin", "harness_clashplugin"])
    with pytest.raises(UsageError, match="'counting' is registered by two plugins") as caught:
        plugins.registry("tasks")
    assert "'harness_testplugin'" in str(caught.value) and "'harness_clashplugin'" in str(caught.value)


def test_a_command_clash_exits_2_naming_both_plugins():
    result = run_harness("-p", "harness_clashplugin", "plugins")
    assert result.returncode == 2
    assert result.stderr == (
        "harness: error: command 'list' is registered by two plugins, 'builtin_commands' and "
        "'harness_clashplugin': rename or uninstall one, or skip one with HARNESS_DISABLE_PLUGINS=harness_clashplugin\n"
    )


def test_a_misspelled_hook_implementation_fails_loudly():
    with pytest.raises(UsageError) as caught:
        Plugins(extra_modules=["harness_misspelledplugin"])
    assert str(caught.value) == (
        "plugin 'harness_misspelledplugin': unknown hook 'harness_register_task': did you mean "
        "'harness_register_tasks'? (fix it, or skip the plugin with HARNESS_DISABLE_PLUGINS=harness_misspelledplugin)"
    )
    result = run_harness("-p", "harness_misspelledplugin", "list", "tasks")
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "unknown hook 'harness_register_task'" in result.stderr


def test_builtin_commands_come_through_the_commands_hook_first():
    row = next(r for r in Plugins().listing() if r["name"] == "builtin_commands")
    assert row["hooks"] == ["harness_register_commands"] and row["distribution"] == "harness-lm"
    listed = run_harness("-p", "harness_hookplugin", "--help").stdout
    assert listed.index("\n    run ") < listed.index("\n    runs ") < listed.index("\n    echo ")  # built-ins first
    bare = run_harness(
        "-p", "harness_hookplugin", "--help", env=harness_env(HARNESS_DISABLE_PLUGINS="builtin_commands")
    )
    assert "\n    echo " in bare.stdout and "\n    run " not in bare.stdout
