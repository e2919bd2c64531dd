"""A plugin that raises while registering: the others must keep working."""

from harness import hookimpl


@hookimpl
def harness_register_tasks(register):
    raise RuntimeError("deliberately broken")
