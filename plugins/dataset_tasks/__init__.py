"""dataset_tasks: evaluation on any dataset, defined by a YAML (lm-evaluation-harness task keys) over ``datasets``
and Jinja2 templates; no Python needed.

Registers the task family ``dataset`` (``--task-args config=PATH.yaml``); ``harness run --task FILE.yaml`` hands a
task YAML to it. Ships small task YAMLs beside their data (arithmetic, capitals, relational and graph
tasks in context, and openbookqa from the hub); the presets in ``tasks/`` name them.
"""

from __future__ import annotations

from harness import hookimpl


@hookimpl
def harness_register_tasks(register):
    from harness.plugins.dataset_tasks.task import DatasetTask

    register("dataset", DatasetTask, description="any dataset scored as a task YAML says (lm-eval keys; config=PATH)")
