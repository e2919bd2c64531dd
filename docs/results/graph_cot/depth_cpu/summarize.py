"""Why graph_cot_depth does not learn depth 3 in 30 minutes on 2 CPU cores (issue 25, item 3): the steps a budget
leaves after the loss plateau, against the steps the depth-3 search needed after it.

python docs/results/graph_cot/depth_cpu/summarize.py rewrites budget.md from the committed records:

- ``../gpu_d3_search/*``: the depth-3 search on a GPU (dfs, depth curriculum, no walk warm-up): each run's escape
  step (the first logged step whose 25-step mean loss is below 1.0, as in harness.plugins.graph_cot.escape), the
  steps it trained after that, and its dfs evidence at depth 3.
- ``escape.jsonl`` here: graph_cot_depth's model (96 x 4, curriculum) with the flagship's plateau fix (500 steps on
  random walks) under a 4000-step schedule, on the 2-core CPU; its table is escape.summary_table's.

``BUDGET_STEPS``: the steps one model trains in 30 minutes on 2 quiet cores when both models train side by side
(one core each). graph_cot_depth's record trained 2 x 7800 steps of this model and scored both in 52 min 43 s
(docs/results/graph_cot/depth, results page), so at most 0.41 s a step, evaluation included: 30 min is at most
4400 steps, evaluation included.
"""

import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
SEARCH = HERE.parent / "gpu_d3_search"
BUDGET_STEPS = 4400
THRESHOLD = 1.0


def search_runs() -> list[dict]:
    """Per finished run of the GPU search: size, steps, escape step, steps after it, dfs evidence at depth 3."""
    import yaml

    out = []
    for folder in sorted(p for p in SEARCH.iterdir() if (p / "metrics.json").exists()):
        args = yaml.safe_load((folder / "config.yaml").read_text())["task_args"]
        rows = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines() if line.strip()]
        loss = [(r["step"], r["dfs/train_loss"]) for r in rows if "dfs/train_loss" in r]
        escape = next((step for step, value in loss if value < THRESHOLD), None)
        out.append(
            {
                "run": folder.name,
                "size": f"{args.get('d_model', 64)} x {args.get('n_layer', 3)}",
                "steps": loss[-1][0],
                "escape": escape,
                "after": None if escape is None else loss[-1][0] - escape,
                "d3": json.loads((folder / "metrics.json").read_text())["d3/evidence_accuracy"],
            }
        )
    return out


def table() -> list[str]:
    """The results page's table: the GPU search's runs by steps trained after the plateau."""
    lines = [
        "| run (GPU, no warm-up) | d_model x layers | steps | escape step (loss < 1.0) | steps after escape "
        "| dfs evidence d3 |",
        "|---|---|---|---|---|---|",
    ]
    for r in sorted(search_runs(), key=lambda r: -(r["after"] or 0)):
        escape = "never" if r["escape"] is None else r["escape"]
        after = "" if r["after"] is None else r["after"]
        lines.append(f"| {r['run']} | {r['size']} | {r['steps']} | {escape} | {after} | {r['d3']:.2f} |")
    return lines


def main() -> None:
    lines = table()
    (HERE / "budget.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
