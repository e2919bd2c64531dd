"""``harness run --task a,b,c`` and suite presets (``tasks: [a, b, c]``): several tasks, each its own ordinary run
(own id, record, resume), against one loaded model: the engine of the first task that loads it serves the rest
(same spec and model args; the runs' configs record its fingerprint)."""

from __future__ import annotations

import argparse
import contextlib
import io
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


def run_suite(args, presets: dict, run_one) -> int:
    """Run each task with ``run_one(args)`` (the run command), one engine per model for all of them."""
    names, model = expand(args.task, presets)
    shared: dict = {}
    results = []
    fmt = "json" if args.json or getattr(args, "format", "table") == "json" else getattr(args, "format", "table")
    try:
        for name in names:
            sub = argparse.Namespace(
                **{
                    **vars(args),
                    "task": name,
                    "model": args.model or model,
                    "shared_models": shared,
                    "json": True,
                    "format": "json",
                }
            )
            with contextlib.redirect_stdout(io.StringIO()) as printed:
                run_one(sub)
            results.append({"task": name, **json.loads(printed.getvalue())})
    finally:
        for lm in shared.values():
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
