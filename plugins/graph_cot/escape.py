"""The escape-step study (issue 25): when does a graph_cot model leave its loss plateau, over seeds and settings?

The escape step of one training is the first logged step (the trainer logs the mean loss of every 25 steps) whose
loss is below ``threshold`` (1.0: the second plateau sits near 1.5-1.6 for dfs at Bridge(1), a trained model near
0.3). Training stops there, so a study costs only the plateau; a seed that never escapes within ``steps`` counts as
"never". Each configuration is a set of ``GraphCoT`` options applied to the dfs strategy.

    python -m harness.plugins.graph_cot.escape --config flagship --seeds 0-9 --out escape.jsonl

Results append to ``--out`` as one JSON line per (config, seed); finished pairs are skipped on a rerun.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from harness.store import append_jsonl, read_jsonl

DEPTH = {"depth": 3, "curriculum": True, "d_model": 96, "n_layer": 4}
# the paper's (Mistral-style) blocks at the flagship's size, with the flagship's walk warm-up (item 5)
REFERENCE = {"walk_warmup": 500, "positions": "rotary", "attention": "sdpa", "ffn": "swiglu", "norm": "rmsnorm"}
# name -> GraphCoT options; "flagship" is the flagship's configuration before this study
CONFIGS: dict[str, dict] = {
    "flagship": {},
    "lr1e-3": {"lr": 1e-3},
    "lr6e-3": {"lr": 6e-3},
    "lr1e-2": {"lr": 1e-2},
    "warmup2": {"warmup": 0.02},
    "wd0": {"weight_decay": 0.0},
    "beta2_0.99": {"adam_beta2": 0.99},
    "batch64": {"batch_size": 64},
    "batch16": {"batch_size": 16},
    "init0.5": {"init_scale": 0.5},
    "layers2": {"n_layer": 2},
    "d128": {"d_model": 128},
    "heads2": {"n_head": 2},
    "ainit0.05": {"identity_init": 0.05},
    "ainit0.2": {"identity_init": 0.2},
    "walk200": {"walk_warmup": 200},
    "walk500": {"walk_warmup": 500},
    "walk500_lr6e-3": {"walk_warmup": 500, "lr": 6e-3},
    "walk300_lr6e-3": {"walk_warmup": 300, "lr": 6e-3},
    # depth 3 (issue 25 item 3): graph_cot_depth's model and curriculum; run with the preset's --steps
    "depth": DEPTH,
    "depth_walk500": {**DEPTH, "walk_warmup": 500},
    # the reference architecture, tuned with the same knobs as the flagship; run with a longer --steps
    "reference": REFERENCE,
    "reference_lr1e-3": {**REFERENCE, "lr": 1e-3},
    "reference_lr1e-2": {**REFERENCE, "lr": 1e-2},
    "reference_d128x4": {**REFERENCE, "d_model": 128, "n_layer": 4},  # the paper's size, 3.5x a step's cost
    "reference_walk2000": {**REFERENCE, "walk_warmup": 2000},
    "reference_learned": {**REFERENCE, "positions": "learned"},
}


class Escaped(Exception):
    """Raised from the trainer's log callback to end a training at its escape step."""


def parse_seeds(text: str) -> list[int]:
    """``0-9`` or ``0,3,5`` -> seeds."""
    if "-" in text:
        lo, hi = text.split("-")
        return list(range(int(lo), int(hi) + 1))
    return [int(s) for s in text.split(",") if s.strip()]


def escape_step(
    config: str, seed: int, threshold: float = 1.0, steps: int = 2500, cap: int | None = None, seconds: float = 0
) -> dict:
    """Train dfs under ``config`` at ``seed`` until the logged loss drops below ``threshold``; the step or None.

    ``steps`` sets the learning-rate schedule (a preset's); ``cap`` stops a training that has not escaped by then
    (default: ``steps``), so a plateau too long for the preset's budget costs only the cap; ``seconds`` (0: none)
    stops it at a wall-clock limit instead, recorded as not escaped within the steps it reached. Only steps after
    the walk warm-up count: a walk's next node is a random neighbour, so a model that learned the lookup could show a
    walk loss below ``threshold`` before it has seen a dfs chain."""
    import torch
    from harness.plugins.graph_cot.experiment import build_strategy_model, make_batches, train_config
    from harness.plugins.graph_cot.task import GraphCoT

    from harness.training import Trainer

    torch.set_num_threads(1)
    task = GraphCoT(cot="dfs", steps=steps, **CONFIGS[config])
    model, tokenizer = build_strategy_model(task, "dfs", seed)
    losses: list[tuple[int, float]] = []

    def escaped(step: int, loss: float) -> bool:
        return loss < threshold and step > task.options.walk_warmup

    def log(step: int, values: dict) -> None:
        losses.append((step, values["train_loss"]))
        if step % 250 == 0:  # a depth-3 plateau lasts an hour on a shared CPU: show where it is
            print(f"{config} seed {seed}: step {step} loss {values['train_loss']:.2f}", flush=True)
        if escaped(step, values["train_loss"]) or step >= (cap or steps):
            raise Escaped
        if seconds and time.perf_counter() - began > seconds:
            raise Escaped

    began = time.perf_counter()
    trainer = Trainer(
        model, train_config(task, seed), make_batches(task, tokenizer, "dfs", seed), log=log, progress=False
    )
    try:
        trainer.fit()
        escape = None
    except Escaped:
        escape = losses[-1][0] if escaped(*losses[-1]) else None
    return {
        "config": config,
        "seed": seed,
        "escape_step": escape,
        "steps": cap or steps if escape or losses[-1][0] >= (cap or steps) else losses[-1][0],
        "schedule": steps,
        "threshold": threshold,
        "seconds": round(time.perf_counter() - began, 1),
        "losses": losses,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
    }


def summarize(records: list[dict]) -> dict[str, dict]:
    """Per config: median and quartiles of the escape step (never-escaped seeds count as infinite), and the
    fraction that never escaped."""
    out = {}
    for config in dict.fromkeys(r["config"] for r in records):
        rows = [r for r in records if r["config"] == config]
        steps = sorted(math.inf if r["escape_step"] is None else r["escape_step"] for r in rows)
        quartiles = statistics.quantiles(steps, n=4, method="inclusive") if len(steps) > 1 else steps * 3
        out[config] = {
            "seeds": len(rows),
            "median": statistics.median(steps),
            "q1": quartiles[0],
            "q3": quartiles[-1],
            "never": sum(s == math.inf for s in steps) / len(steps),
        }
    return out


def summary_table(records: list[dict]) -> list[str]:
    """The results page's table of the study: one row per configuration, in the order first run; the last column
    pairs each configuration with the first one run (the baseline) at the seeds both ran under the same step cap."""
    baseline = records[0]["config"]
    lines = [
        "| configuration | options | seeds | escape step: median | quartiles | never escaped | minus"
        f" {baseline}, same seeds |",
        "|---|---|---|---|---|---|---|",
    ]
    capped = {(r["config"], r["seed"]): r["escape_step"] or r["steps"] for r in records}  # never: the step cap
    cap = {(r["config"], r["seed"]): r["steps"] for r in records}  # pairs need one cap, or "never" means two things
    for config, row in summarize(records).items():
        options = ", ".join(f"{k}={v}" for k, v in CONFIGS[config].items()) or "(the flagship before this study)"
        median = "never" if row["median"] == math.inf else f"{row['median']:.0f}"
        quartiles = " - ".join("never" if q == math.inf else f"{q:.0f}" for q in (row["q1"], row["q3"]))
        seeds = [s for c, s in capped if c == config != baseline and cap[c, s] == cap.get((baseline, s))]
        paired = [capped[config, seed] - capped[baseline, seed] for seed in seeds]
        shift = f"{sum(paired) / len(paired):+.0f} (seeds {min(seeds)}-{max(seeds)})" if seeds else ""
        lines.append(
            f"| {config} | {options} | {row['seeds']} | {median} | {quartiles} | {row['never']:.0%} | {shift} |"
        )
    return lines


def write_report(records: list[dict], folder: Path) -> dict[str, dict]:
    """``summary.json`` (per config: median, quartiles, fraction never escaped) and ``escape.png`` (each seed's
    escape step per config; never-escaped seeds drawn at the step cap)."""
    from harness import report

    summary = summarize(records)
    folder.mkdir(parents=True, exist_ok=True)
    readable = {c: {k: "never" if v == math.inf else v for k, v in row.items()} for c, row in summary.items()}
    (folder / "summary.json").write_text(json.dumps(readable, indent=2) + "\n")
    plt = report.figure()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    configs = list(summary)
    for i, config in enumerate(configs):
        rows = [r for r in records if r["config"] == config]
        steps = [r["escape_step"] if r["escape_step"] is not None else r["steps"] for r in rows]
        left.scatter([i] * len(steps), steps, s=14, color=["C3" if r["escape_step"] is None else "C0" for r in rows])
        left.plot([i - 0.3, i + 0.3], [min(summary[config]["median"], rows[0]["steps"])] * 2, color="k")
    left.set_xticks(range(len(configs)), configs, rotation=45, ha="right", fontsize=8)
    left.set_ylabel(f"escape step (loss < {records[0]['threshold']}); red: never")
    left.set_title("escape step per seed (bar: median)")
    for r in (r for r in records if r["config"] == configs[0]):
        right.plot(*zip(*r["losses"]), lw=0.8, label=f"seed {r['seed']}")
    right.set(xlabel="step", ylabel="train loss (25-step mean)", title=f"{configs[0]}: loss until escape")
    right.legend(fontsize=6, ncol=2)
    for ax in (left, right):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(folder / "escape.png", dpi=110)
    plt.close(fig)
    return summary


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="flagship", help=f"comma list of: {', '.join(CONFIGS)}")
    parser.add_argument("--seeds", default="0-9")
    parser.add_argument("--steps", type=int, default=2500)
    parser.add_argument("--cap", type=int, help="stop a training not escaped by this step (default: --steps)")
    parser.add_argument("--seconds", type=float, default=0, help="wall-clock limit of one training (0: none)")
    parser.add_argument("--threshold", type=float, default=1.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("escape.jsonl"))
    parser.add_argument("--report", type=Path, metavar="DIR", help="only summarize --out into DIR (summary, plot)")
    args = parser.parse_args(argv)
    if args.report:
        records = read_jsonl(args.out)
        print(json.dumps(write_report(records, args.report), indent=2, default=str))
        return
    done = {(r["config"], r["seed"]) for r in read_jsonl(args.out)}
    todo = [(c, s) for c in args.config.split(",") for s in parse_seeds(args.seeds) if (c, s) not in done]
    with ProcessPoolExecutor(args.workers) as pool:
        futures = [pool.submit(escape_step, c, s, args.threshold, args.steps, args.cap, args.seconds) for c, s in todo]
        for future in futures:
            record = future.result()
            append_jsonl(args.out, [record])
            print(record["config"], record["seed"], record["escape_step"], record["seconds"], flush=True)


if __name__ == "__main__":
    main()
