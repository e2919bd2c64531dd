"""Task presets: YAML files that name a plugin task, its version and default arguments.

A preset ``tasks/graph_cot.yaml``::

    task: graph_cot          # the task family a plugin registers
    version: "1"
    description: Sequential vs parallel scaling on Bridge graphs
    model: scratch           # optional default --model
    args: {depth: 2}         # default --task-args
    sweep:                   # optional: `harness run` runs every combination as its own run (harness.sweep)
      grid: {depth: [1, 2, 3]}
      seeds: [0, 1, 2]                             # optional, default [0]
      metrics: [evidence_accuracy]                 # optional, default: the primary metric
      plots: [{metric: evidence_accuracy, x: depth}]  # optional, default: each metric vs the first arg
      workers: 2                                   # optional, default: cores // the task's threads

Shipped presets live in the package ``harness.tasks``; ``--include-path DIR`` adds a user's (theirs win).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from harness.errors import UsageError

if TYPE_CHECKING:
    from harness.sweep.spec import SweepSpec

FIELDS = {
    "task": str,
    "version": (str, int, float),
    "description": str,
    "model": str,
    "model_args": dict,
    "args": dict,
    "sweep": dict,
    "tasks": list,
}
REQUIRED = ("task",)  # or, for a suite, "tasks": a list of presets run against one loaded model
SUITE = "(suite)"  # the task field of a suite preset


@dataclass
class Preset:
    name: str
    task: str
    version: str = "1"
    description: str = ""
    model: str | None = None
    model_args: dict = field(default_factory=dict)
    args: dict = field(default_factory=dict)
    source: str = ""
    sweep: SweepSpec | None = None  # the preset's sweep: block, validated
    tasks: list[str] = field(default_factory=list)  # a suite: these presets (or task files), one model for all


MAX_YAML_BYTES = 1 << 20  # a task YAML is a page of settings; anything larger is a mistake or an attack


def read_yaml_file(path) -> str:
    """A YAML file's text: UTF-8 and at most MAX_YAML_BYTES, else a one-line UsageError naming the file."""
    data = path.read_bytes()
    if len(data) > MAX_YAML_BYTES:
        raise UsageError(f"{path}: {len(data)} bytes, over the {MAX_YAML_BYTES} a task YAML may have; fix the file")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path}: not UTF-8 text (byte {exc.start}); save it as UTF-8 YAML") from None


def load_yaml(text: str, source: str):
    """``yaml.safe_load`` without anchors and aliases: a few hundred bytes of nested aliases expand to gigabytes
    (a "billion laughs" file), and task YAMLs have no need for them."""
    import yaml

    class NoAliasLoader(yaml.SafeLoader):
        def compose_node(self, parent, index):
            if self.check_event(yaml.AliasEvent):
                mark = self.peek_event().start_mark
                raise UsageError(
                    f"{source}: line {mark.line + 1}: YAML aliases (*name) are not allowed in task "
                    "files; write the value out"
                )
            return super().compose_node(parent, index)

    return yaml.load(text, Loader=NoAliasLoader)  # noqa: S506 - a SafeLoader subclass


def parse_preset(name: str, text: str, source: str) -> Preset:
    """Validate one preset's YAML; errors name the file, the key and what was expected."""
    import yaml

    try:
        data = load_yaml(text, source)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" line {where.line + 1}" if where else ""
        raise UsageError(f"{source}:{line} is not valid YAML ({getattr(exc, 'problem', exc)}); fix the file") from None
    if not isinstance(data, dict):
        raise UsageError(f"{source}: expected a mapping with at least 'task:', got {type(data).__name__}")
    for key in data:
        if key not in FIELDS:
            raise UsageError(f"{source}: unknown key '{key}'; allowed keys: {', '.join(FIELDS)}")
    if "tasks" in data:  # a suite
        if not data["tasks"] or not all(isinstance(t, str) for t in data["tasks"]) or "task" in data:
            raise UsageError(f"{source}: a suite's 'tasks' is a list of preset names (and no 'task' key)")
        data["task"] = SUITE
    for key in REQUIRED:
        if key not in data:
            raise UsageError(f"{source}: missing key '{key}' (the task family, e.g. 'task: graph_cot')")
    for key, value in data.items():
        if not isinstance(value, FIELDS[key]) or (
            key in ("args", "model_args") and not all(isinstance(k, str) for k in value)
        ):
            expected = FIELDS[key].__name__ if isinstance(FIELDS[key], type) else "a string or number"
            raise UsageError(f"{source}: key '{key}' must be {expected}, got {type(value).__name__}")
    data["version"] = str(data.get("version", "1"))
    if "sweep" in data:
        from harness.sweep.spec import parse_sweep_block

        data["sweep"] = parse_sweep_block(data["sweep"], source)
        data["description"] = f"(sweep: {data['sweep'].describe()}) {data.get('description', '')}".rstrip()
    return Preset(name=name, source=source, **data)


def load_presets(include_paths: list[str] = ()) -> dict[str, Preset]:
    """All presets by name: shipped ones, then each --include-path directory in order."""
    presets = {}
    for entry in resources.files("harness.tasks").iterdir():
        if entry.name.endswith(".yaml"):
            name = entry.name[: -len(".yaml")]
            presets[name] = parse_preset(name, read_yaml_file(entry), f"harness.tasks/{entry.name}")
    for directory in include_paths:
        path = Path(directory)
        if not path.is_dir():
            raise UsageError(f"--include-path {directory}: not a directory; give a folder of *.yaml presets")
        for file in sorted(path.glob("*.yaml")) + sorted(path.glob("*.yml")):
            presets[file.stem] = parse_preset(file.stem, read_yaml_file(file), str(file))
    return presets


DATASET_FAMILY = "dataset"  # the task family that reads task YAMLs (the dataset_tasks plugin)


def task_file(text: str) -> Preset | None:
    """``--task path/to/file.yaml``: a preset file, or any other task YAML (lm-eval's keys), which the ``dataset``
    task family reads (``args: {config: the file}``). None when ``text`` is not a YAML file's path."""
    import yaml

    path = Path(text).expanduser()
    if path.suffix not in (".yaml", ".yml"):
        return None
    if not path.is_file():
        raise UsageError(f"--task {text}: no such file; give a preset name (harness list tasks) or a YAML's path")
    source = read_yaml_file(path)
    try:
        data = load_yaml(source, str(path))
    except yaml.YAMLError:
        data = None  # the dataset family reports it (an lm-eval !function tag, a syntax error) with its key
    if (
        isinstance(data, dict)
        and ("task" in data or "tasks" in data)
        and set(data) <= set(FIELDS)
        and ("args" in data or "tasks" in data or "sweep" in data)
    ):
        return parse_preset(path.stem, source, str(path))
    name = str(data.get("task") or path.stem) if isinstance(data, dict) else path.stem
    chat = data.get("chat") if isinstance(data, dict) and isinstance(data.get("chat"), bool) else None
    return Preset(
        name=name,
        task=DATASET_FAMILY,
        args={"config": str(path.resolve())},
        source=str(path),
        model_args={} if chat is None else {"chat": chat},
    )  # the YAML's chat: on or off
