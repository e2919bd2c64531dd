"""One evaluation split across processes or machines: ``harness run --shard i/N`` scores every N-th sample from
the i-th into a shard run of its own (``<run id>-<i>of<N>``, indexed as status "shard"); ``harness merge`` joins the
N shard folders into the run one process would have written (same id, samples.jsonl, metrics.json). Any launcher
can run the shards (Slurm arrays, Kubernetes jobs, Ray: :mod:`harness.shards_ray`); see docs/sharding.md.
"""

from __future__ import annotations

import contextlib
import json
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from harness.errors import UsageError
from harness.runs import RunResult, run_context

# the parts of a run's config that define its result (runs.prepare's identity): shards must agree on all of them
IDENTITY_KEYS = (
    "task",
    "task_family",
    "task_version",
    "task_args",
    "model",
    "model_args",
    "seed",
    "limit",
    "probes",
    "probe_every",
)


def parse_shard(text: str) -> tuple[int, int]:
    """``--shard i/N`` -> (i, N)."""
    index, _, count = text.partition("/")
    if not (index.strip().isdigit() and count.strip().isdigit()) or not 0 <= int(index) < int(count):
        raise UsageError(f"--shard {text}: give i/N with 0 <= i < N, e.g. --shard 0/4 (the first of four)")
    return int(index), int(count)


@dataclass
class Shard:
    folder: Path
    config: dict
    samples: list[dict]

    @property
    def index(self) -> int:
        return self.config["shard"]["index"]

    @property
    def count(self) -> int:
        return self.config["shard"]["count"]

    @property
    def name(self) -> str:
        return f"shard {self.index}/{self.count} ({self.folder})"


def read_shard(folder: Path) -> Shard:
    """A finished shard run's config and samples, or the one-line reason it cannot be merged."""
    import yaml

    from harness.store import read_jsonl

    if not (folder / "config.yaml").is_file():
        raise UsageError(f"harness merge: {folder} is not a run folder; give the folders harness run --shard i/N wrote")
    config = yaml.safe_load((folder / "config.yaml").read_text()) or {}
    if not isinstance(config.get("shard"), dict):
        raise UsageError(f"harness merge: {folder} is not a shard (its config has no shard); give shard runs only")
    shard = Shard(folder, config, read_jsonl(folder / "samples.jsonl"))
    if not (folder / "metrics.json").is_file():
        raise UsageError(f"harness merge: {shard.name} did not finish; re-run its command to resume it, then merge")
    return shard


def check_shards(shards: list[Shard]) -> None:
    """The shards of one run, each once, all N of them, every sample once."""
    first = shards[0]
    for shard in shards[1:]:
        for key in (*IDENTITY_KEYS, "fingerprint"):
            if shard.config.get(key) != first.config.get(key):
                raise UsageError(
                    f"harness merge: {first.folder} and {shard.folder} differ in {key} ({first.config.get(key)!r} "
                    f"vs {shard.config.get(key)!r}); merge the shards of one run"
                )
        if shard.count != first.count:
            raise UsageError(
                f"harness merge: {first.name} and {shard.name} split the run differently; merge one split's shards"
            )
    seen: dict[int, Shard] = {}
    for shard in shards:
        if shard.index in seen:
            raise UsageError(
                f"harness merge: shard {shard.index}/{shard.count} given twice ({seen[shard.index].folder} and "
                f"{shard.folder}); give each shard once"
            )
        seen[shard.index] = shard
    missing = [f"{i}/{first.count}" for i in range(first.count) if i not in seen]
    if missing:
        raise UsageError(
            f"harness merge: shard(s) {', '.join(missing)} missing; run them (harness run ... --shard i/N) "
            f"and merge all {first.count}"
        )
    owner: dict[str, Shard] = {}
    total = sum(len(s.samples) for s in shards)
    for shard in shards:
        for sample in shard.samples:
            if sample.get("id") in owner:
                raise UsageError(
                    f"harness merge: sample {sample.get('id')!r} is in {owner[sample.get('id')].name} and "
                    f"{shard.name}; re-run one of them into a fresh --out"
                )
            owner[sample.get("id")] = shard
    for shard in shards:
        if len(shard.samples) != len(range(shard.index, total, shard.count)):
            raise UsageError(f"harness merge: {shard.name} holds {len(shard.samples)} samples, not its share")


def interleave(shards: list[Shard]) -> list[dict]:
    """The samples in the whole run's order: shard i holds positions i, i+N, i+2N, ... (RunContext.in_shard)."""
    ordered = sorted(shards, key=lambda s: s.index)
    total = sum(len(s.samples) for s in shards)
    return [ordered[p % len(ordered)].samples[p // len(ordered)] for p in range(total)]


class ShardsOnly:
    """The merged run's engine: every sample is in the shards, so the task must not score any; if it asks, a shard
    lacked samples and merging would mean evaluating them here."""

    def __init__(self, fingerprint: str):
        self.fingerprint = fingerprint

    def __getattr__(self, name: str):
        raise UsageError("harness merge: the task asked for samples the shards lack; re-run the shards and merge")

    def close(self) -> None:
        pass


def merge(folders: list[Path], out: str | Path | None = None, command: str | None = None) -> RunResult:
    """Join the shard runs in ``folders`` into their whole run in ``out``: samples interleaved back into order,
    metrics from the task's own run over them (so its aggregate, stderr included, is the single process's)."""
    from harness import report
    from harness.options import build
    from harness.paths import out_dir
    from harness.registry import get_plugins
    from harness.store import Run, write_bytes_atomic

    if not folders:
        raise UsageError("harness merge: give the shard run folders, e.g. harness merge runs/TASK-ID-*of4")
    shards = [read_shard(Path(f)) for f in folders]
    check_shards(shards)
    config = {k: v for k, v in shards[0].config.items() if k not in ("shard", "machine", "error", "primary_metric")}
    identity = {key: config.get(key) for key in IDENTITY_KEYS}
    plugins = get_plugins()
    task = build(
        plugins.registry("tasks").get(config["task_family"]).factory,
        config["task_args"],
        f"task '{config['task_family']}'",
        "the shards' task_args",
    )
    if str(getattr(task, "version", "")) != str(config["task_version"]):
        raise UsageError(
            f"harness merge: task {config['task']} is version {task.version} here, the shards ran "
            f"{config['task_version']}; run the shards again with this version"
        )
    config.update(
        variant=report.variant_of(task, config["task_args"]),
        command=command or shlex.join(["harness"] + sys.argv[1:]),
        started=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        merged_from=[s.folder.name for s in sorted(shards, key=lambda s: s.index)],
    )
    run = Run.open(out_dir(out), config, identity)
    ctx = run_context(run, identity, use_cache=False)
    try:
        text = "".join(json.dumps(sample, default=str) + "\n" for sample in interleave(shards))
        write_bytes_atomic(run.samples_path, text.encode())
        ctx.adopt_engine(ShardsOnly(config.get("fingerprint") or ""))
        plugins.hook.harness_run_start(run=run)
        with contextlib.redirect_stdout(sys.stderr):
            metrics = task.run(ctx)
    except BaseException as exc:
        run.fail("failed", str(exc) if isinstance(exc, UsageError) else f"{type(exc).__name__}: {exc}")
        run.close()
        raise
    primary = getattr(task, "primary_metric", None)
    run.finish(metrics, primary)
    plugins.hook.harness_run_end(run=run, metrics=metrics)
    run.close()
    return RunResult(run.id, run.dir, metrics, primary)
