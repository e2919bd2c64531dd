"""``harness compare A B``: two runs of one task, paired by sample id.

Both runs scored the same documents, so each document gives a pair of scores, and the test looks at the pairs:
McNemar's exact test for 0/1 scores (accuracy, exact match), a sign-flip permutation test (with Wilcoxon's
signed-rank test beside it) and a paired bootstrap CI for continuous ones (loglikelihoods, perplexities, KL). Each
run's mean gets its own CI (Wilson for 0/1, t otherwise). The two runs' aggregate metrics are shown first, as before.
Runs of different tasks, or runs that scored different documents, are refused: their scores do not pair.
Two sweeps, or two arms (metrics) of one sweep with ``--arms``, pair by (point, seed) instead
(:mod:`harness.sweep.compare`).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from harness import report, stats
from harness.errors import UsageError
from harness.store import read_jsonl
from harness.sweep import compare as sweeps

DOC_FIELDS = ("target", "choices", "gold", "text")  # what a sample says about its document: equal in both runs
GOLD_LL = "gold_loglikelihood"  # a multiple-choice sample's loglikelihood of its gold choice, derived here
EXTRA = ("loglikelihood", GOLD_LL)  # continuous per-sample values compared beside the task's own metrics
TESTS = {"mcnemar_exact": "McNemar exact", "permutation": "sign-flip permutation"}


def add_options(parser) -> None:
    """The statistics options of ``harness compare``."""
    parser.add_argument("--confidence", type=float, default=stats.CONFIDENCE, help="CI coverage (default 0.95)")
    parser.add_argument(
        "--resamples", type=int, default=stats.RESAMPLES, help="bootstrap and permutation resamples (default 10000)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the resampling (default 0)")
    parser.add_argument(
        "--arms",
        metavar="METRIC_A,METRIC_B",
        help="one sweep: compare two of its metrics, paired by (point, seed), e.g. dfs/accuracy,path/accuracy",
    )
    parser.add_argument("--metrics", help="two sweeps: compare only these metrics, e.g. accuracy,loss")


def compare_command(args, index) -> int:
    """Print the two runs' metrics and the paired statistics, as a table, Markdown, CSV or JSON only."""
    if not 0 < args.confidence < 1:
        raise UsageError(f"--confidence {args.confidence}: give a coverage between 0 and 1, e.g. 0.95")
    if args.resamples < 1:
        raise UsageError(f"--resamples {args.resamples}: give a positive number, e.g. 10000")
    arms = [m.strip() for m in args.arms.split(",")] if args.arms else None
    if len(args.runs) != (1 if arms else 2):
        raise UsageError(
            f"{len(args.runs)} runs given: compare two runs (or two sweeps), or one sweep with --arms METRIC_A,METRIC_B"
        )
    runs = [index.get(r) for r in args.runs]
    if arms or any(sweeps.is_sweep(run) for run in runs):  # over seeds, by (point, seed)
        wanted = [m.strip() for m in args.metrics.split(",") if m.strip()] if args.metrics else None
        result = sweeps.compare_sweeps(
            runs[0], None if arms else runs[1], arms, wanted, args.confidence, args.resamples, args.seed
        )
        print(sweeps.render(result, args.format))
        return 0
    if args.metrics:
        raise UsageError("--metrics selects metrics of two sweeps; two runs are compared on every metric")
    result = compare(*runs, args.confidence, args.resamples, args.seed)
    print(render(result, args.format))
    return 0


def samples_by_id(run: dict) -> dict[str, dict]:
    """A run's per-sample records by id (the last record of an id wins, as a resumed run reads them)."""
    return {str(s["id"]): s for s in read_jsonl(Path(run["dir"]) / "samples.jsonl") if "id" in s}


def check_pairs(a: dict, b: dict, left: dict[str, dict], right: dict[str, dict]) -> list[str]:
    """The shared sample ids, in A's order; refuses runs whose samples do not pair, in one line."""
    if a["task"] != b["task"]:
        raise UsageError(
            f"runs {a['run_id']} and {b['run_id']} are of different tasks ({a['task']}, {b['task']}): "
            "compare two runs of one task"
        )
    if not left or not right:
        empty = a if not left else b
        raise UsageError(
            f"run {empty['run_id']} has no per-sample records (samples.jsonl) to pair with: "
            "compare two runs that both scored samples"
        )
    only_a, only_b = sorted(set(left) - set(right)), sorted(set(right) - set(left))
    if only_a or only_b:
        example = (only_a or only_b)[0]
        raise UsageError(
            f"runs {a['run_id']} and {b['run_id']} scored different samples ({len(only_a)} ids only in A, "
            f"{len(only_b)} only in B, e.g. '{example}'): compare runs made with the same data and --limit"
        )
    for key in left:
        if any(left[key].get(f) != right[key].get(f) for f in DOC_FIELDS):
            raise UsageError(
                f"sample '{key}' is a different document in {a['run_id']} and {b['run_id']} (its target or "
                "choices differ): compare runs made with the same data"
            )
    return list(left)


def score(sample: dict, name: str) -> float | None:
    """A sample's value of ``name`` as a finite number, or None."""
    value = sample.get(name)
    if name == GOLD_LL and isinstance(sample.get("loglikelihoods"), list) and isinstance(sample.get("gold"), int):
        lls = sample["loglikelihoods"]
        value = lls[sample["gold"]] if 0 <= sample["gold"] < len(lls) else None
    if isinstance(value, int | float) and math.isfinite(value):
        return float(value)
    return None


def paired_values(a: dict, b: dict, ids: list[str], left: dict, right: dict) -> dict[str, tuple[list, list]]:
    """Per metric (the runs' aggregate metrics, then loglikelihoods) the aligned per-sample values, for every
    metric that each sample of both runs has as a number."""
    names = [n for n in dict.fromkeys([*a["metrics"], *b["metrics"], *EXTRA]) if not n.endswith("_stderr")]
    out = {}
    for name in names:
        xs = [score(left[i], name) for i in ids]
        ys = [score(right[i], name) for i in ids]
        if None not in xs and None not in ys:
            out[name] = (xs, ys)
    return out


def paired_row(name: str, xs: list[float], ys: list[float], confidence: float, resamples: int, seed: int) -> dict:
    """One metric's paired comparison of B against A."""
    row: dict = {"metric": name, "n": len(xs)}
    if stats.is_binary(xs) and stats.is_binary(ys):
        ci_a, ci_b = (stats.wilson_ci(int(sum(v)), len(v), confidence) for v in (xs, ys))
        difference = stats.mean_ci([y - x for x, y in zip(xs, ys)], confidence)
        test = stats.mcnemar_exact(xs, ys)
        row.update(kind="binary", test="mcnemar_exact", p_value=test.p_value, a_only=test.b, b_only=test.c)
    else:
        ci_a, ci_b = stats.mean_ci(xs, confidence), stats.mean_ci(ys, confidence)
        difference = stats.paired_bootstrap_ci(xs, ys, confidence, resamples, seed)
        row.update(
            kind="continuous",
            test="permutation",
            p_value=stats.paired_permutation_test(xs, ys, resamples, seed),
            p_wilcoxon=stats.wilcoxon_test(xs, ys),
        )
    for key, ci in (("a", ci_a), ("b", ci_b)):
        row[f"mean_{key}"], row[f"ci_{key}"] = ci.estimate, [ci.low, ci.high]
    row["difference"], row["difference_ci"] = difference.estimate, [difference.low, difference.high]
    return row


def metric_rows(a: dict, b: dict) -> list[dict]:
    """The two runs' aggregate metrics side by side (what compare printed before it paired samples)."""
    rows = []
    for name in dict.fromkeys(list(a["metrics"]) + list(b["metrics"])):
        if name.endswith("_stderr"):
            continue
        va, vb = a["metrics"].get(name), b["metrics"].get(name)
        delta = vb - va if isinstance(va, int | float) and isinstance(vb, int | float) else None
        rows.append({"metric": name, a["run_id"]: va, b["run_id"]: vb, "delta": delta})
    return rows


def compare(a: dict, b: dict, confidence: float = stats.CONFIDENCE, resamples: int = stats.RESAMPLES, seed: int = 0):
    """Both runs, their aggregate metrics and the paired statistics per metric (a JSON-ready dict)."""
    left, right = samples_by_id(a), samples_by_id(b)
    paired, ids = [], []
    if left or right or a["task"] != b["task"]:  # runs that keep no samples at all still get the side-by-side
        ids = check_pairs(a, b, left, right)
        values = paired_values(a, b, ids, left, right)
        paired = [paired_row(name, xs, ys, confidence, resamples, seed) for name, (xs, ys) in values.items()]
    return {
        "a": {k: a.get(k) for k in ("run_id", "task", "model", "model_args")},
        "b": {k: b.get(k) for k in ("run_id", "task", "model", "model_args")},
        "n": len(ids),
        "confidence": confidence,
        "metrics": metric_rows(a, b),
        "paired": paired,
    }


def _flat(row: dict) -> dict:
    """A paired row for CSV: each interval as two columns, ``<name>_low`` and ``<name>_high``."""
    out = {}
    for key, value in row.items():
        if isinstance(value, list):
            out[f"{key}_low"], out[f"{key}_high"] = value
        else:
            out[key] = value
    return out


def _interval(mean: float, ci: list) -> str:
    bounds = f" [{report.fmt_value(ci[0])}, {report.fmt_value(ci[1])}]" if not math.isnan(ci[0]) else ""
    return report.fmt_value(mean) + bounds


def render(result: dict, fmt: str) -> str:
    """The comparison as text: JSON only for ``json``; one CSV table of the paired rows for ``csv``."""
    paired = result["paired"]
    if fmt == "json":
        plain = {**result, "paired": [{k: report.json_safe(v) for k, v in row.items()} for row in paired]}
        return json.dumps(plain, indent=2, default=str)
    if fmt == "csv":
        rows = [_flat(row) for row in paired]
        columns = list(dict.fromkeys(k for row in rows for k in row)) or ["metric"]
        return report.render(rows, columns, "csv")
    a, b = result["a"], result["b"]
    lines = [f"{key}: {run['run_id']} ({run['task']}, {report.model_label(run)})" for key, run in (("A", a), ("B", b))]
    lines.append("")
    lines.append(report.render(result["metrics"], ["metric", a["run_id"], b["run_id"], "delta"], fmt))
    if not paired:
        lines.append("\nno per-sample scores that pair: no paired test")
        return "\n".join(lines)
    rows = [
        {
            "metric": row["metric"],
            "test": TESTS[row["test"]],
            "A": _interval(row["mean_a"], row["ci_a"]),
            "B": _interval(row["mean_b"], row["ci_b"]),
            "B - A": _interval(row["difference"], row["difference_ci"]),
            "p": row["p_value"],
            "detail": (
                f"A only {row['a_only']}, B only {row['b_only']}"
                if row["kind"] == "binary"
                else f"Wilcoxon p {report.fmt_value(row['p_wilcoxon'])}"
            ),
        }
        for row in paired
    ]
    confidence = f"{result['confidence']:.0%}"
    lines.append(f"\npaired by sample id: {result['n']} samples, means with {confidence} CIs, B - A per sample\n")
    lines.append(report.render(rows, ["metric", "test", "A", "B", "B - A", "p", "detail"], fmt))
    return "\n".join(lines)
