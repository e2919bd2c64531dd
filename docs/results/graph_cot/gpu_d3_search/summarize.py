"""Table and plot of the depth-3 search on a GPU: which model learns the dfs strategy on Bridge(3) in a budget a
2-core CPU can afford (python docs/results/graph_cot/gpu_d3_search/summarize.py rewrites summary.md and loss.png).

Each folder is one `harness run --task graph_cot` on one H200 (its config.yaml holds the command): dfs only, the
depth curriculum, scored at depths 1-3 on 100 problems x 4 chains. `long` was stopped by the call's time limit,
so it has a loss curve and no scores.
"""

import inspect
import json
from pathlib import Path

import matplotlib
import yaml

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

HERE = Path(__file__).resolve().parent
PARTS = ("attention", "positions", "ffn", "norm")


def task_defaults() -> dict:
    """graph_cot's own argument defaults (what a run's task_args leave out)."""
    from harness.plugins.graph_cot.task import GraphCoT

    return {k: p.default for k, p in inspect.signature(GraphCoT.__init__).parameters.items() if k != "self"}


def runs():
    for folder in sorted(p for p in HERE.iterdir() if (p / "config.yaml").exists()):
        args = {**task_defaults(), **yaml.safe_load((folder / "config.yaml").read_text())["task_args"]}
        rows = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines() if line.strip()]
        loss = [(r["step"], r["dfs/train_loss"]) for r in rows if "dfs/train_loss" in r]
        scores = json.loads((folder / "metrics.json").read_text()) if (folder / "metrics.json").exists() else {}
        yield folder.name, args, loss, scores


def table() -> list[str]:
    """The summary table's lines (markdown), one row per run."""
    lines = [
        "| run | d_model x layers | attention, positions, ffn, norm | lr | batch | steps | final loss "
        "| dfs evidence d1 / d2 / d3 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, a, loss, scores in runs():
        evidence = " / ".join(f"{scores[f'd{d}/evidence_accuracy']:.2f}" for d in (1, 2, 3)) if scores else "stopped"
        steps = f"{loss[-1][0]}" + (f" of {a['steps']}" if loss[-1][0] < a["steps"] else "")
        parts = ", ".join(str(a[k]) for k in PARTS)
        lines.append(
            f"| {name} | {a['d_model']} x {a['n_layer']} | {parts} | {a['lr']} "
            f"| {a['batch_size']} | {steps} | {loss[-1][1]:.2f} | {evidence} |"
        )
    return lines


def main() -> None:
    fig, ax = plt.subplots(figsize=(7, 4))
    for i, (name, _, loss, _) in enumerate(runs()):
        ax.plot(*zip(*loss), label=name, lw=1, color=plt.cm.tab20(i))
    ax.set(xlabel="step", ylabel="dfs training loss", yscale="log", title="Bridge(3) curriculum, dfs: training loss")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(HERE / "loss.png", dpi=120)
    lines = table()
    (HERE / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
