"""A plugin implementing every hook, writing what it saw to $HOOK_LOG (one JSON line per call)."""

from __future__ import annotations

import json
import os

from harness import hookimpl


def _log(hook: str, **data) -> None:
    with open(os.environ["HOOK_LOG"], "a") as f:
        f.write(json.dumps({"hook": hook, **data}, default=str) + "\n")


class EchoTask:
    name = "echo"
    version = "1"
    primary_metric = "value"

    def __init__(self, value: float = 1.0):
        self.value = value

    def run(self, ctx):
        ctx.record([{"id": "only", "value": self.value}])
        return {"value": self.value}


@hookimpl
def harness_register_tasks(register):
    register("echo", EchoTask, description="returns its argument")


@hookimpl
def harness_register_backends(register):
    register("echo", lambda target, **kw: None, description="not a model")


@hookimpl
def harness_register_components(register):
    register("attention", "echo", lambda config, layer_index: None, description="not a layer")


@hookimpl
def harness_register_probes(register):
    register("echo", lambda: None, description="not a probe")


@hookimpl
def harness_register_optimizers(register):
    register("echo", EchoTask, description="not an optimizer")


@hookimpl
def harness_register_commands(cli):
    def configure(parser):
        parser.add_argument("word")

    def handler(args):
        print(f"echo: {args.word}")
        return 0

    cli.command("echo", "print a word", configure, handler)


@hookimpl
def harness_run_start(run):
    _log("run_start", run_id=run.id)


@hookimpl
def harness_sample_end(run, sample):
    _log("sample_end", run_id=run.id, sample=sample)


@hookimpl
def harness_run_end(run, metrics):
    _log("run_end", run_id=run.id, metrics=metrics)


@hookimpl
def harness_train_step(step, model, batch, captures):
    return {"echo_step": step}
