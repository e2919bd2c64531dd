"""A plugin that claims names others hold: the task ``counting`` (harness_testplugin's) and the command ``list``
(a built-in). The registries must refuse it, naming both plugins, instead of letting the last one win."""

from harness import hookimpl


@hookimpl
def harness_register_tasks(register):
    register("counting", lambda: None, description="a second 'counting'")


@hookimpl
def harness_register_commands(cli):
    cli.command("list", "a second 'list'", lambda parser: None, lambda args: 0)
