"""Seeds as evidence: a training result is a distribution over seeds (and machines), not one number.

``harness sweep --task graph_cot --seeds 0,1,...,9`` runs the experiment once per seed; this summary pairs the
strategies seed by seed (each seed trains both on the same problems and evaluates them on the same 100): the mean
and 95% t interval of each strategy's headline evidence, the mean paired difference dfs - path with its interval,
a sign-flip permutation test over seeds (exact), how many seeds show the contrast the preset claims (dfs >= 0.9
and >= 0.1 above path), and the path model's distance from its closed form (a random shortest-or-not path: the
``random-path`` baseline on the same problems).
"""

from __future__ import annotations

from harness.report import save_figure

HEADLINE = "evidence_accuracy"
CLAIM = {"dfs_at_least": 0.9, "margin": 0.1}


def seed_summary(points: list[dict], ctx) -> dict[str, float]:
    from harness.stats import mean_ci, paired_permutation_test

    seeds = sorted({p["seed"] for p in points})
    if len(seeds) < 2 or any(f"dfs/{HEADLINE}" not in p["metrics"] for p in points):
        return {}
    by_seed = {p["seed"]: p["metrics"] for p in points}
    dfs = [by_seed[s][f"dfs/{HEADLINE}"] for s in seeds]
    path = [by_seed[s][f"path/{HEADLINE}"] for s in seeds]
    closed = [by_seed[s]["baseline/random-path/evidence_accuracy"] for s in seeds]
    out: dict[str, float] = {"seeds": len(seeds)}
    for name, values in (
        ("dfs", dfs),
        ("path", path),
        ("path_minus_closed_form", [a - b for a, b in zip(path, closed)]),
    ):
        interval = mean_ci(values)
        out |= {f"seeds/{name}": interval.estimate, f"seeds/{name}_ci_low": interval.low}
        out |= {f"seeds/{name}_ci_high": interval.high}
    difference = mean_ci([a - b for a, b in zip(dfs, path)])
    out |= {
        "seeds/dfs_minus_path": difference.estimate,
        "seeds/dfs_minus_path_ci_low": difference.low,
        "seeds/dfs_minus_path_ci_high": difference.high,
        "seeds/dfs_minus_path_p": paired_permutation_test(dfs, path),
        "seeds/contrast_holds": sum(d >= CLAIM["dfs_at_least"] and d - p >= CLAIM["margin"] for d, p in zip(dfs, path)),
    }
    write_seed_plot(ctx.path("seeds.png"), seeds, dfs, path, closed)
    return out


def write_seed_plot(path, seeds: list[int], dfs: list[float], path_values: list[float], closed: list[float]) -> None:
    """Each seed's dfs and path evidence joined by a line (the pairing), the closed form as a band of crosses."""
    from harness import report

    plt = report.figure()
    fig, ax = plt.subplots(figsize=(5, 4))
    for d, p in zip(dfs, path_values):
        ax.plot([0, 1], [d, p], color="0.7", lw=0.8, zorder=1)
    ax.scatter([0] * len(seeds), dfs, label="dfs (1 chain)", zorder=2)
    ax.scatter([1] * len(seeds), path_values, label="path (1 chain)", zorder=2)
    ax.scatter([1.1] * len(seeds), closed, marker="x", color="0.3", label="random path (closed form)", zorder=2)
    ax.set_xticks([0, 1], ["dfs", "path"])
    ax.set_xlim(-0.4, 1.5)
    ax.set_ylabel("evidence accuracy (N=1, largest budget)")
    ax.set_title(f"graph_cot flagship over {len(seeds)} seeds (one line per seed)")
    ax.legend(loc="lower left", fontsize=8)
    ax.grid(alpha=0.3)
    save_figure(fig, path)


def seed_table(records: list[dict]) -> list[str]:
    """The results page's table of a seeds sweep (its samples.jsonl): one row per seed, then the mean and 95%
    interval of each column."""
    from harness.stats import mean_ci

    rows = sorted((r for r in records if r.get("status") == "finished"), key=lambda r: r["seed"])
    columns = {
        "dfs evidence": lambda m: m[f"dfs/{HEADLINE}"],
        "path evidence": lambda m: m[f"path/{HEADLINE}"],
        "dfs - path": lambda m: m[f"dfs/{HEADLINE}"] - m[f"path/{HEADLINE}"],
        "dfs decision": lambda m: m["dfs/decision_accuracy"],
        "path decision": lambda m: m["path/decision_accuracy"],
        "dfs train loss": lambda m: m["dfs/train_loss"],
    }
    header = [*columns, "path chains to match one dfs chain (tokens)"]
    lines = ["| seed | " + " | ".join(header) + " |", "|---" * (len(header) + 1) + "|"]
    for r in rows:
        cells = [f"{f(r['metrics']):.2f}" for f in columns.values()] + [matching(r["metrics"])]
        lines.append(f"| {r['seed']} | " + " | ".join(cells) + " |")
    cells = []
    for f in columns.values():
        interval = mean_ci([f(r["metrics"]) for r in rows])
        cells.append(f"{interval.estimate:.2f} [{interval.low:.2f}, {interval.high:.2f}]")
    lines.append("| mean [95% CI] | " + " | ".join(cells) + " | |")
    return lines


def matching(metrics: dict) -> str:
    """'N (r x)': the fewest path chains whose best-of-N evidence reaches one dfs chain's, and their tokens over
    the dfs chain's; 'not within N' when the sampled chains never do."""
    n = int(metrics.get("path/match_n", 0))
    return f"{n} ({metrics['path/match_token_ratio']:.1f}x)" if n else "not within the samples drawn"
