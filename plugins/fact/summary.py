"""What a ``fact_rfm`` sweep adds to its points' metrics: the accuracy curves, the tuning choice and the comparison.

- Every sweep: held-out accuracy against the RFM iteration, one line per (update, n), mean over seeds.
- A tuning sweep (``validation`` > 0, the test set never read): per update, the grid point with the highest
  validation accuracy (mean over seeds; ties broken by the final validation accuracy, then the fewer iterations)
  and the iteration where it peaked; ``tuned.md`` writes them as the ``tuned=`` string of the comparison preset,
  ``tuning.png`` every point's validation accuracy.
- A comparison sweep (several updates, several seeds): per n, each update's test accuracy with its 95% t interval,
  and every other update against FACT-RFM paired by seed (same data split): the mean difference, its interval and
  the exact sign-flip p-value; pooled over n as well when n is swept.
"""

from __future__ import annotations

from harness.report import save_figure
from harness.stats import mean_ci, mean_stderr, paired_permutation_test

SETTINGS = ("kernel", "bandwidth", "ridge", "normalize")  # the grid a tuning sweep searches (iterations: the curve)


def held_name(points: list[dict]) -> str:
    return "val" if any(float(p["args"].get("validation", 0) or 0) > 0 for p in points) else "test"


def accuracy_curves(points: list[dict], ctx, held: str) -> None:
    from harness.report import plot_lines
    from harness.store import read_jsonl

    curves: dict[tuple, list[list[float]]] = {}
    for point in points:
        series = [r for r in read_jsonl(point["dir"] / "metrics.jsonl") if f"{held}_accuracy" in r]
        key = (point["args"].get("update", "fact"), int(point["args"].get("n", 0)))
        curves.setdefault(key, []).append([r[f"{held}_accuracy"] for r in sorted(series, key=lambda r: r["step"])])
    lines, errors = {}, {}
    for (update, n), runs in sorted(curves.items()):
        steps = min(len(r) for r in runs)
        stats = [mean_stderr([r[t] for r in runs]) for t in range(steps)]
        label = f"{update}, n={n}" if n else update
        lines[label] = (list(range(steps)), [m for m, _ in stats])
        errors[label] = [s for _, s in stats]
    plot_lines(
        ctx.path(f"{held}_accuracy_vs_iteration.png"),
        lines,
        xlabel="RFM iteration (M updates)",
        ylabel=f"{held} accuracy",
        title=f"{held} accuracy over iterations (mean over seeds)",
        errors=errors,
    )


def tuning(points: list[dict], ctx) -> dict[str, float]:
    """The validation-best settings per update (see the module docstring)."""
    from harness.plugins.fact.task import FactRFMOptions

    defaults = FactRFMOptions()  # a point's args hold only what the preset, --task-args and the grid set
    groups: dict[tuple, list[dict]] = {}
    for point in points:
        args = point["args"]
        key = (args.get("update", "fact"), *(str(args.get(name, getattr(defaults, name))) for name in SETTINGS))
        groups.setdefault(key, []).append(point["metrics"])
    scored = []
    for key, runs in groups.items():
        best = mean_stderr([m["best_val_accuracy"] for m in runs])[0]
        final = mean_stderr([m["val_accuracy"] for m in runs])[0]
        iteration = round(mean_stderr([m["best_iteration"] for m in runs])[0])
        scored.append((key, best, final, iteration))
    metrics, lines = {}, ["| update | " + " | ".join(SETTINGS) + " | iterations | best val accuracy | final |"]
    lines.append("|---" * (len(SETTINGS) + 4) + "|")
    tuned = []
    for update in sorted({key[0] for key, *_ in scored}):
        mine = [s for s in scored if s[0][0] == update]
        key, best, final, iteration = max(mine, key=lambda s: (s[1], s[2], -s[3]))
        values = dict(zip(SETTINGS, key[1:]))
        lines.append(f"| {update} | " + " | ".join(values.values()) + f" | {iteration} | {best:.3f} | {final:.3f} |")
        tuned.append(f"{update}:" + ",".join(f"{k}={v}" for k, v in values.items()) + f",iterations={iteration}")
        metrics[f"tuned/{update}/best_val_accuracy"] = best
        metrics[f"tuned/{update}/final_val_accuracy"] = final
        metrics[f"tuned/{update}/iterations"] = float(iteration)
        metrics[f"tuned/{update}/bandwidth"] = float(values["bandwidth"])
        metrics[f"tuned/{update}/ridge"] = float(values["ridge"])
        metrics[f"tuned/{update}/normalize"] = float(values["normalize"].lower() in ("true", "1"))
        metrics[f"tuned/{update}/laplace"] = float(values["kernel"] == "laplace")
        metrics[f"tuned/{update}/configs_at_best"] = float(sum(s[1] == best for s in mine))
    ctx.path("tuned.md").write_text("\n".join(lines) + "\n\ntuned=" + ";".join(tuned) + "\n")
    plot_tuning(ctx.path("tuning.png"), scored)
    return metrics


def plot_tuning(path, scored: list[tuple]) -> None:
    """Best validation accuracy of every grid point, one panel row per update."""
    from harness.report import figure

    plt = figure()
    updates = sorted({key[0] for key, *_ in scored})
    fig, axes = plt.subplots(len(updates), 1, figsize=(10, 2.2 * len(updates)), squeeze=False)
    for ax, update in zip(axes[:, 0], updates):
        mine = sorted((s for s in scored if s[0][0] == update), key=lambda s: s[0])
        ax.bar(range(len(mine)), [s[1] for s in mine], color="tab:blue")
        ax.set_xticks(range(len(mine)), ["/".join(s[0][1:]) for s in mine], rotation=90, fontsize=6)
        ax.set(ylabel="best val acc", ylim=(0, 1.02), title=f"{update}: kernel/bandwidth/ridge/normalize")
    save_figure(fig, path)


def comparison(points: list[dict]) -> dict[str, float]:
    """Test accuracy per update with CIs, and paired-by-seed differences against FACT-RFM (module docstring)."""
    table: dict[tuple, dict[int, float]] = {}
    for point in points:
        key = (point["args"].get("update", "fact"), int(point["args"].get("n", 0)))
        table.setdefault(key, {})[point["seed"]] = point["metrics"]["test_accuracy"]
    ns = sorted({n for _, n in table})
    updates = sorted({u for u, _ in table})
    metrics: dict[str, float] = {}
    pooled: dict[str, tuple[list, list]] = {}
    for n in ns:
        at = f"@n={n}" if n else ""
        for update in updates:
            interval = mean_ci(list(table.get((update, n), {}).values()))
            metrics.update(
                {
                    f"{update}/test_accuracy{at}": interval.estimate,
                    f"{update}/test_accuracy{at}_ci_low": interval.low,
                    f"{update}/test_accuracy{at}_ci_high": interval.high,
                }
            )
        if "fact" not in updates:
            continue
        for other in (u for u in updates if u != "fact"):
            seeds = sorted(set(table.get(("fact", n), {})) & set(table.get((other, n), {})))
            fact = [table["fact", n][s] for s in seeds]
            them = [table[other, n][s] for s in seeds]
            metrics.update(paired(f"fact_minus_{other}{at}", fact, them))
            pooled.setdefault(other, ([], []))[0].extend(fact)
            pooled[other][1].extend(them)
    if len(ns) > 1:
        for other, (fact, them) in pooled.items():
            metrics.update(paired(f"fact_minus_{other}", fact, them))
    return metrics


def paired(name: str, a: list[float], b: list[float]) -> dict[str, float]:
    interval = mean_ci([x - y for x, y in zip(a, b)])
    return {
        name: interval.estimate,
        f"{name}_ci_low": interval.low,
        f"{name}_ci_high": interval.high,
        f"{name}_p": paired_permutation_test(b, a),
        f"{name}_pairs": float(len(a)),
    }


def summarize(points: list[dict], ctx) -> dict[str, float]:
    held = held_name(points)
    if held == "val":
        return tuning(points, ctx)
    accuracy_curves(points, ctx, held)
    seeds = {p["seed"] for p in points}
    updates = {p["args"].get("update", "fact") for p in points}
    return comparison(points) if len(seeds) > 1 and len(updates) > 1 else {}
