"""A dataset task's YAML: the keys of lm-evaluation-harness task YAMLs (a subset), read with safe_load and checked.

The same file format serves tasks written for ``harness`` and lm-eval task YAMLs: ``harness run --task FILE.yaml``.
Keys that would change scores and that this reader does not implement are named in one line (never silently
ignored); keys that only name or group a task (``tag``, ``group``, ``metadata``, decontamination) are accepted.
``include:`` merges a base YAML (relative to the including file) under the file's own keys, as lm-eval does.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import UsageError

OUTPUT_TYPES = ("multiple_choice", "generate_until", "loglikelihood", "loglikelihood_rolling")
METRICS = {  # the metrics each request type can report
    "multiple_choice": ("acc", "acc_norm"),
    "generate_until": ("exact_match",),
    "loglikelihood": ("acc", "perplexity"),
    "loglikelihood_rolling": ("word_perplexity", "byte_perplexity", "bits_per_byte"),
}
EXACT_MATCH_OPTIONS = ("ignore_case", "ignore_punctuation", "ignore_numbers", "regexes_to_ignore")
METRIC_KEYS = ("metric", "aggregation", "higher_is_better", *EXACT_MATCH_OPTIONS)
# keys that name, group or document a task and never change a score
NAMING_KEYS = (
    "tag",
    "group",
    "group_alias",
    "task_alias",
    "metadata",
    "should_decontaminate",
    "doc_to_decontamination_query",
    "dataset_config_name",
)
KEYS = (
    "task",
    "include",
    "dataset_path",
    "dataset_name",
    "dataset_kwargs",
    "training_split",
    "validation_split",
    "test_split",
    "fewshot_split",
    "num_fewshot",
    "fewshot_config",
    "output_type",
    "doc_to_text",
    "doc_to_target",
    "doc_to_choice",
    "target_delimiter",
    "fewshot_delimiter",
    "description",
    "generation_kwargs",
    "metric_list",
    "repeats",
    "filter_list",
    "reducers",
    "chat",
    *NAMING_KEYS,
)
GENERATION_KEYS = ("until", "max_gen_toks", "do_sample", "temperature", "top_p", "top_k")
SAMPLERS = ("default", "first_n")


@dataclass
class TaskConfig:
    """One dataset task, as its YAML says (defaults are lm-eval's)."""

    task: str
    source: Path  # the YAML file; local data files are relative to its folder
    dataset_path: str
    dataset_name: str | None = None
    dataset_kwargs: dict = field(default_factory=dict)
    training_split: str | None = None
    validation_split: str | None = None
    test_split: str | None = None
    fewshot_split: str | None = None
    num_fewshot: int = 0
    fewshot_sampler: str = "default"  # default: a seeded draw per document; first_n: the split's first k
    output_type: str = "generate_until"
    doc_to_text: str | int | None = None  # a field name or a Jinja2 template
    doc_to_target: str | int | None = None
    doc_to_choice: str | list | dict | None = None
    target_delimiter: str = " "
    fewshot_delimiter: str = "\n\n"
    description: str = ""  # prepended to every prompt (a Jinja2 template too)
    until: list[str] | None = None  # generate_until: stop strings (default: the fewshot delimiter)
    max_gen_toks: int = 256
    temperature: float = 0.0
    repeats: int = 1  # generate_until: completions sampled per document (lm-eval's repeats)
    reducers: list[str] = field(default_factory=list)  # how a document's repeats become one score (repeats.py)
    metrics: list[dict] = field(default_factory=list)  # [{"metric": "acc"}, {"metric": "exact_match", ...}]
    chat: bool | None = None  # apply the model's chat template (None: as --model-args says)
    digest: str = ""  # of the YAML and its local data: a changed file is a new task version

    @property
    def metric_names(self) -> list[str]:
        return [m["metric"] for m in self.metrics]

    @property
    def eval_split(self) -> str:
        return self.test_split or self.validation_split or self.training_split or ""

    @property
    def shot_split(self) -> str | None:
        return self.fewshot_split or self.training_split or self.validation_split


def read_yaml(path: Path, seen: tuple = ()) -> dict:
    """A task YAML with its ``include:`` chain merged (the including file wins)."""
    import yaml

    if path in seen:
        raise UsageError(f"{path}: include cycle ({' -> '.join(map(str, seen))}); remove one include")
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise UsageError(f"{path}: no such task file; check the path") from None
    except yaml.constructor.ConstructorError as exc:
        tag = getattr(exc, "problem", "")
        raise UsageError(
            f"{path}: {tag}: python functions (!function) are not supported; write the field as a "
            "Jinja2 template or prepare the data file"
        ) from None
    except yaml.YAMLError as exc:
        raise UsageError(f"{path}: not valid YAML ({getattr(exc, 'problem', exc)}); fix the file") from None
    if not isinstance(data, dict):
        raise UsageError(f"{path}: expected a mapping of task keys (dataset_path, doc_to_text, ...)")
    if "include" in data:
        base = read_yaml(path.parent / str(data["include"]), (*seen, path))
        data = {**base, **{k: v for k, v in data.items() if k != "include"}}
    return data


def load_config(path: Path) -> TaskConfig:
    """Read and check a task YAML; every problem is one line that names the key."""
    path = Path(path).resolve()
    data = read_yaml(path)
    unsupported = [k for k in data if k not in KEYS]
    if unsupported:
        raise UsageError(f"{path}: unsupported key(s) {', '.join(unsupported)}; harness reads {', '.join(KEYS)}")
    for key in ("process_docs", "process_results"):
        if key in data:
            raise UsageError(f"{path}: {key} needs python; prepare the data file instead")
    if "dataset_path" not in data:
        raise UsageError(
            f"{path}: missing dataset_path (a hub dataset, or json/csv/parquet with "
            "dataset_kwargs: {data_files: ...}, or a local .jsonl file)"
        )
    output_type = data.get("output_type", "generate_until")
    if output_type not in OUTPUT_TYPES:
        raise UsageError(
            f"{path}: output_type '{output_type}' is not supported; choose one of {', '.join(OUTPUT_TYPES)}"
        )
    if output_type == "multiple_choice" and data.get("doc_to_choice") is None:
        raise UsageError(f"{path}: multiple_choice needs doc_to_choice (a list field or a Jinja2 list)")
    generation = _generation(path, data.get("generation_kwargs") or {})
    repeats = _repeats(path, output_type, data)
    fewshot = data.get("fewshot_config") or {}
    if not isinstance(fewshot, dict) or set(fewshot) - {"sampler"} or fewshot.get("sampler", "default") not in SAMPLERS:
        raise UsageError(f"{path}: fewshot_config supports only sampler: {' or '.join(SAMPLERS)}")
    config = TaskConfig(
        task=str(data.get("task") or path.stem),
        source=path,
        dataset_path=str(data["dataset_path"]),
        dataset_name=data.get("dataset_name"),
        dataset_kwargs=dict(data.get("dataset_kwargs") or {}),
        training_split=data.get("training_split"),
        validation_split=data.get("validation_split"),
        test_split=data.get("test_split"),
        fewshot_split=data.get("fewshot_split"),
        num_fewshot=int(data.get("num_fewshot") or 0),
        fewshot_sampler=fewshot.get("sampler", "default"),
        output_type=output_type,
        doc_to_text=data.get("doc_to_text"),
        doc_to_target=data.get("doc_to_target"),
        doc_to_choice=data.get("doc_to_choice"),
        target_delimiter=str(data.get("target_delimiter", " ")),
        fewshot_delimiter=str(data.get("fewshot_delimiter", "\n\n")),
        description=str(data.get("description") or ""),
        metrics=_metrics(path, output_type, data.get("metric_list")),
        chat=data.get("chat"),
        **repeats,
        **generation,
    )
    if not config.eval_split:
        raise UsageError(f"{path}: name the split to score: test_split (or validation_split / training_split)")
    config.digest = digest(path, data, config)
    return config


def _generation(path: Path, kwargs: dict) -> dict:
    unknown = [k for k in kwargs if k not in GENERATION_KEYS]
    if unknown:
        raise UsageError(
            f"{path}: generation_kwargs {', '.join(unknown)} not supported; use {', '.join(GENERATION_KEYS)}"
        )
    until = kwargs.get("until")
    if isinstance(until, str):
        until = [until]
    temperature = float(kwargs.get("temperature", 0.0)) if kwargs.get("do_sample") else 0.0
    if kwargs.get("top_p", 1.0) != 1.0 or kwargs.get("top_k", 0) not in (0, None):
        raise UsageError(f"{path}: generation_kwargs top_p/top_k are not supported; greedy or plain temperature")
    return {"until": until, "max_gen_toks": int(kwargs.get("max_gen_toks", 256)), "temperature": temperature}


def _repeats(path: Path, output_type: str, data: dict) -> dict:
    """``repeats`` and the reducers (``reducers:``, or lm-eval's ``filter_list`` majority vote); checked against
    each other by the task, after the command line's overrides."""
    from harness.plugins.dataset_tasks.repeats import filter_reducers

    repeats = data.get("repeats", 1)
    if not isinstance(repeats, int) or isinstance(repeats, bool) or repeats < 1:
        raise UsageError(f"{path}: repeats={repeats!r}: give a whole number of completions per document, e.g. 5")
    reducers = data.get("reducers") or []
    if not isinstance(reducers, list):
        raise UsageError(f"{path}: reducers must be a list, e.g. [mean, maj@5, pass@1]")
    if data.get("filter_list"):
        reducers = [*reducers, *filter_reducers(data["filter_list"], repeats, str(path))]
    if (repeats != 1 or reducers) and output_type != "generate_until":
        raise UsageError(f"{path}: repeats and reducers apply to generate_until (sampled generation); remove them")
    return {"repeats": repeats, "reducers": [str(r) for r in reducers]}


def _metrics(path: Path, output_type: str, metric_list) -> list[dict]:
    """The metric_list, checked against what the request type can report (default: all of them)."""
    allowed = METRICS[output_type]
    if metric_list is None:
        return [{"metric": m} for m in allowed]
    if not isinstance(metric_list, list) or not metric_list:
        raise UsageError(f"{path}: metric_list must be a list like [{{metric: {allowed[0]}}}]")
    out = []
    for item in metric_list:
        item = {"metric": item} if isinstance(item, str) else item
        if not isinstance(item, dict) or "metric" not in item:
            raise UsageError(f"{path}: each metric_list entry needs 'metric:' (one of {', '.join(allowed)})")
        if item["metric"] not in allowed:
            raise UsageError(
                f"{path}: metric '{item['metric']}' is not available for {output_type}; "
                f"choose from {', '.join(allowed)}"
            )
        extra = [k for k in item if k not in METRIC_KEYS]
        if extra:
            raise UsageError(
                f"{path}: metric '{item['metric']}' option(s) {', '.join(extra)} not supported; "
                f"options: {', '.join(EXACT_MATCH_OPTIONS)}"
            )
        if item["metric"] != "exact_match" and set(item) & set(EXACT_MATCH_OPTIONS):
            raise UsageError(f"{path}: {', '.join(set(item) & set(EXACT_MATCH_OPTIONS))} only apply to exact_match")
        if item.get("aggregation", "mean") != "mean" and item["metric"] in ("acc", "acc_norm", "exact_match"):
            raise UsageError(f"{path}: aggregation '{item['aggregation']}' is not supported; use mean")
        out.append(item)
    return out


def digest(path: Path, data: dict, config: TaskConfig) -> str:
    """sha256 of the merged YAML and of every local data file it reads."""
    import json

    from harness.plugins.dataset_tasks.data import local_files

    h = hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode())
    for file in local_files(config):
        h.update(file.read_bytes())
    return h.hexdigest()[:12]
