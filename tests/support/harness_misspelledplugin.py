"""A plugin whose hook implementation is misspelled (``harness_register_task``): pluggy would never call it, so
loading it must fail loudly instead."""

from harness import hookimpl


@hookimpl
def harness_register_task(register):
    register("never", lambda: None)
