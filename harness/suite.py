"""``harness run --task a,b,c`` and suite presets (``tasks: [a, b, c]``): several tasks, each its own ordinary run
(own id, record, resume), against one loaded model: the engine of the first task that loads it serves the rest
(same spec and model args; the runs' configs record its fingerprint)."""

from __future__ import annotations

import dataclasses
import json

from harness import report
from harness.errors import UsageError


def is_suite(task: str, presets: dict) -> bool:
    preset = presets.get(task)
    return "," in task or bool(preset is not None and preset.tasks)


def expand(task: str, presets: dict) -> tuple[list[str], str | None]:
    """The task names of ``a,b,c`` or of a suite preset (one level), and the suite's default model."""
    names, model = [], None
    for name in (n.strip() for n in task.split(",") if n.strip()):
        preset = presets.get(name)
        if preset is not None and preset.tasks:
            names += preset.tasks
            model = model or preset.model
        else:
            names.append(name)
    nested = [n for n in names if presets.get(n) is not None and presets[n].tasks]
    if nested:
        raise UsageError(f"suite task(s) {', '.join(nested)} are suites themselves; list their tasks instead")
    if not names:
        raise UsageError(f"--task {task!r}: name at least one task")
    return list(dict.fromkeys(names)), model


def run_suite(request, presets: dict, fmt: str) -> int:
    """Run each task of the suite as its own run (:func:`harness.runs.run`), one engine per model for all of them."""
    from harness.runs import run

    names, model = expand(request.task, presets)
    engines: dict = {}
    results = []
    try:
        for name in names:
            sub = dataclasses.replace(request, task=name, model=request.model or model, quiet=True)
            result = run(sub, engines)
            results.append({"task": name, "run_id": result.run_id, "dir": str(result.dir), "metrics": result.metrics})
    finally:
        for lm in engines.values():
            lm.close()
    if fmt == "json":
        print(json.dumps(results, indent=2, default=float))
        return 0
    rows = []
    for result in results:
        for row in report.metric_rows(result["metrics"]):
            rows.append({"task": result["task"], **row})
    print(report.render(rows, ["task", "metric", "value", "stderr"], fmt))
    print("\n" + "\n".join(f"run {r['run_id']}: {r['dir']}" for r in results))
    return 0
