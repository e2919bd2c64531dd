"""Which leaderboard cells differ from their column's best: a CI per cell and a mark per column.

In each task column the best cell (the highest value; the lowest for a loss-like metric) is tested against every
other cell. Paired where both runs kept per-sample scores for the same documents (McNemar's exact test for 0/1
scores, a sign-flip permutation test otherwise); an unpaired z-test on value and stderr where they scored different
documents (never paired: the pairs would be of different questions); no test where neither is possible. Holm's
correction across the column's tests; a cell whose adjusted p-value is at least ``ALPHA`` is marked as not
significantly different from the best, which carries the mark too.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

from harness import report, stats
from harness.compare import DOC_FIELDS
from harness.store import read_jsonl

ALPHA = 0.05
TOP = "†"  # the best, or not significantly different from it by a paired test
UNPAIRED_TOP = "‡"  # not significantly different from the best by an unpaired test (different documents)
LOWER_IS_BETTER = {"perplexity", "loss", "kl", "nll", "mse", "error", "failure", "steps", "bpb"}  # name words
RULE = (
    f"{TOP}: the column's best, or not significantly different from it: McNemar's exact test (0/1 scores) or a "
    "sign-flip permutation test, paired by sample id, Holm-corrected across the column, "
    f"p ≥ {ALPHA}. {UNPAIRED_TOP}: the same by an unpaired z-test on value and stderr, for runs that scored "
    "different documents (never paired). Best: highest value, lowest for loss-like metrics (perplexity, loss, KL, "
    "error ...). [low, high]: 95% CI (Wilson for 0/1 scores, t otherwise; value ± 1.96 stderr without samples)."
)


@dataclass(frozen=True)
class Mark:
    """One cell's CI and where it stands against its column's best."""

    low: float | None
    high: float | None
    symbol: str  # TOP, UNPAIRED_TOP or ""
    test: str  # "best", the test against the best, or "" (no test possible)
    p_adjusted: float | None  # Holm-adjusted p-value against the best

    def interval(self) -> str:
        """The CI as text, `` [low, high]``, or "" without one."""
        if self.low is None or self.high is None:
            return ""
        return f" [{report.fmt_value(self.low)}, {report.fmt_value(self.high)}]"

    @property
    def title(self) -> str:
        """What a reader hovering the mark learns: the test and its adjusted p-value."""
        if self.test == "best":
            return "the column's best"
        if not self.test:
            return "no test: the runs keep neither paired samples nor a stderr"
        return f"{self.test} against the best, Holm-adjusted p = {report.fmt_value(self.p_adjusted)}"


def lower_is_better(metric: str) -> bool:
    """Whether a metric's best value is its lowest (perplexity, loss, KL, error rate ...), read from its name."""
    name = metric.rsplit("/", 1)[-1].lower()
    return "bits_per_byte" in name or bool(LOWER_IS_BETTER & set(re.split(r"[^a-z]+", name)))


def cell_scores(cell: report.Cell, run: dict | None) -> dict[str, tuple[str, float]] | None:
    """A cell's per-sample scores by id, each with its document's key, or None where the run kept none that make
    up the cell's value (a sub-model's row, an aggregate such as perplexity that is not a mean of samples)."""
    if run is None or not run.get("primary_metric") or cell.row != report.model_label(run):
        return None
    try:
        samples = read_jsonl(Path(run["dir"]) / "samples.jsonl")
    except Exception:  # a damaged file: the cell falls back to its stderr
        return None
    out = {}
    for sample in samples:
        value = sample.get(run["primary_metric"])
        if "id" not in sample or not isinstance(value, int | float) or not math.isfinite(value):
            return None
        document = json.dumps({f: sample.get(f) for f in DOC_FIELDS}, sort_keys=True, default=str)
        out[str(sample["id"])] = (document, float(value))
    if not out:
        return None
    mean = sum(v for _, v in out.values()) / len(out)
    return out if math.isclose(mean, cell.value, rel_tol=1e-9, abs_tol=1e-12) else None


def cell_interval(cell: report.Cell, scores: dict | None) -> tuple[float | None, float | None]:
    if scores:
        values = [v for _, v in scores.values()]
        ci = stats.wilson_ci(int(sum(values)), len(values)) if stats.is_binary(values) else stats.mean_ci(values)
    elif cell.stderr is not None:
        ci = stats.normal_ci(cell.value, cell.stderr)
    else:
        return None, None
    return (None, None) if math.isnan(ci.low) else (ci.low, ci.high)


def against_best(best: report.Cell, cell: report.Cell, scores: dict) -> tuple[float, str]:
    """The p-value of ``cell`` against ``best`` and the test's name (NaN, "" where none is possible)."""
    left, right = scores.get(best.run_id + best.row), scores.get(cell.run_id + cell.row)
    if left and right and {k: d for k, (d, _) in left.items()} == {k: d for k, (d, _) in right.items()}:
        xs, ys = [left[k][1] for k in left], [right[k][1] for k in left]
        if stats.is_binary(xs) and stats.is_binary(ys):
            return stats.mcnemar_exact(xs, ys).p_value, "paired McNemar exact test"
        return stats.paired_permutation_test(xs, ys), "paired sign-flip permutation test"
    if best.stderr is not None and cell.stderr is not None:
        return stats.unpaired_z_test(best.value, best.stderr, cell.value, cell.stderr), "unpaired z-test"
    return math.nan, ""


def column_marks(cells: list[report.Cell], runs: list[dict], alpha: float = ALPHA) -> dict[tuple[str, str], Mark]:
    """Each cell's mark, by (row, column)."""
    by_id = {r["run_id"]: r for r in runs}
    scores = {c.run_id + c.row: cell_scores(c, by_id.get(c.run_id)) for c in cells}
    marks = {}
    for column in dict.fromkeys(c.column for c in cells):
        group = [c for c in cells if c.column == column]
        sign = -1 if lower_is_better(column) else 1
        best = max(group, key=lambda c: sign * c.value if not math.isnan(c.value) else -math.inf)
        others = [c for c in group if c is not best]
        tests = [against_best(best, c, scores) for c in others]
        adjusted = stats.holm([p for p, _ in tests])
        marks[(best.row, column)] = Mark(*cell_interval(best, scores[best.run_id + best.row]), TOP, "best", None)
        for cell, (_, name), p in zip(others, tests, adjusted):
            symbol = "" if math.isnan(p) or p < alpha else UNPAIRED_TOP if name.startswith("unpaired") else TOP
            low, high = cell_interval(cell, scores[cell.run_id + cell.row])
            marks[(cell.row, column)] = Mark(low, high, symbol, name, None if math.isnan(p) else p)
    return marks
