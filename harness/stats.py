"""The project's statistics, one copy for the core and the plugins: means with confidence intervals, paired tests
between two runs of one task, multiple-comparison correction and fitted slopes.

Two runs of a task scored the same documents, so their per-sample scores come in pairs and a paired test sees the
difference the documents' own spread would hide: McNemar's exact test for 0/1 scores (only the discordant pairs
carry information), a sign-flip permutation test or Wilcoxon's signed-rank test for continuous ones, and a paired
bootstrap for the CI of the mean difference. scipy supplies the distributions; numpy and scipy are imported inside
the functions, so importing this module (``harness --help``) stays cheap.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

CONFIDENCE = 0.95  # every interval's default coverage
RESAMPLES = 10_000  # bootstrap resamples and Monte Carlo sign flips
EXACT_FLIPS = 16  # a sign-flip test enumerates all 2**n flips up to n = 16 (65,536 rows), samples them above
CHUNK = 1_000_000  # values per resampling batch: memory stays ~8 MB whatever the number of samples


@dataclass(frozen=True)
class Interval:
    """An estimate with its confidence interval (NaN bounds where there is too little data for one)."""

    estimate: float
    low: float
    high: float


@dataclass(frozen=True)
class McNemar:
    """McNemar's exact test on paired 0/1 scores: ``b`` pairs where A scored 1 and B 0, ``c`` the reverse."""

    b: int
    c: int
    p_value: float


def mean_stderr(values: Sequence[float]) -> tuple[float, float]:
    """Mean and standard error of the mean (sample standard deviation / sqrt(n); 0 for n < 2)."""
    n = len(values)
    if n == 0:
        return float("nan"), float("nan")
    mean = sum(values) / n
    if n < 2:
        return mean, 0.0
    var = sum((v - mean) ** 2 for v in values) / (n - 1)
    return mean, math.sqrt(var / n)


def is_binary(values: Sequence[float]) -> bool:
    """Whether every value is 0 or 1 (accuracy-like scores, which get McNemar's test and Wilson's interval)."""
    return len(values) > 0 and all(v in (0, 1) for v in values)


def mean_ci(values: Sequence[float], confidence: float = CONFIDENCE) -> Interval:
    """The mean and its t interval (mean ± t_{n-1} · stderr): exact for normal data, good for means of many."""
    mean, stderr = mean_stderr(values)
    if len(values) < 2:
        return Interval(mean, math.nan, math.nan)
    if stderr == 0:
        return Interval(mean, mean, mean)
    from scipy.stats import t

    half = float(t.ppf(0.5 + confidence / 2, len(values) - 1)) * stderr
    return Interval(mean, mean - half, mean + half)


def wilson_ci(successes: int, n: int, confidence: float = CONFIDENCE) -> Interval:
    """A proportion and its Wilson score interval: stays inside [0, 1] and keeps its coverage near 0 and 1, where
    the normal (Wald) interval collapses to a point."""
    if n == 0:
        return Interval(math.nan, math.nan, math.nan)
    from scipy.stats import binomtest

    ci = binomtest(int(successes), int(n)).proportion_ci(confidence_level=confidence, method="wilson")
    return Interval(successes / n, float(ci.low), float(ci.high))


def normal_ci(value: float, stderr: float, confidence: float = CONFIDENCE) -> Interval:
    """value ± z · stderr: the interval a run that kept only its aggregate and stderr allows."""
    from scipy.stats import norm

    half = float(norm.ppf(0.5 + confidence / 2)) * stderr
    return Interval(value, value - half, value + half)


def _pairs(a: Sequence[float], b: Sequence[float]):
    import numpy as np

    if len(a) != len(b):
        raise ValueError(f"paired samples need equal lengths, got {len(a)} and {len(b)}")
    return np.asarray(a, dtype=float), np.asarray(b, dtype=float)


def mcnemar_exact(a: Sequence[float], b: Sequence[float]) -> McNemar:
    """McNemar's exact test of paired 0/1 scores: under "A and B are equally good" each discordant pair is a fair
    coin, so the two-sided binomial p-value of b successes in b + c tosses (1 when there is no discordant pair)."""
    x, y = _pairs(a, b)
    only_a, only_b = int(((x == 1) & (y == 0)).sum()), int(((x == 0) & (y == 1)).sum())
    if only_a + only_b == 0:
        return McNemar(0, 0, 1.0)
    from scipy.stats import binomtest

    return McNemar(only_a, only_b, float(binomtest(only_a, only_a + only_b, 0.5).pvalue))


def paired_bootstrap_ci(
    a: Sequence[float],
    b: Sequence[float],
    confidence: float = CONFIDENCE,
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> Interval:
    """Mean of b - a and its percentile bootstrap interval: documents are resampled with replacement, each keeping
    its pair, so the interval carries the correlation between the runs. Seeded: the same call gives the same CI."""
    import numpy as np

    x, y = _pairs(a, b)
    diff = y - x
    n = len(diff)
    if n == 0:
        return Interval(math.nan, math.nan, math.nan)
    rng = np.random.default_rng(seed)
    means = []
    step = max(1, CHUNK // n)
    for start in range(0, resamples, step):
        rows = min(step, resamples - start)
        means.append(diff[rng.integers(0, n, size=(rows, n))].mean(axis=1))  # (rows, n) -> (rows,)
    low, high = np.quantile(np.concatenate(means), [0.5 - confidence / 2, 0.5 + confidence / 2])
    return Interval(float(diff.mean()), float(low), float(high))


def paired_permutation_test(a: Sequence[float], b: Sequence[float], resamples: int = RESAMPLES, seed: int = 0) -> float:
    """Two-sided p-value of the sign-flip test on the mean of b - a: under "no difference" each pair's difference
    is as likely positive as negative. All 2**n flips up to n = 16 (exact), ``resamples`` random ones above (then
    p = (k + 1) / (resamples + 1), never 0). Defined as scipy.stats.permutation_test defines it."""
    import numpy as np

    x, y = _pairs(a, b)
    diff = y - x
    n = len(diff)
    if n == 0:
        return math.nan
    observed = diff.mean()
    tolerance = 1e-12 * (abs(observed) + np.abs(diff).mean())  # ties in the null distribution count as ties
    less = greater = 0
    if n <= EXACT_FLIPS:
        codes = np.arange(2**n)[:, None] >> np.arange(n)  # (2**n, n): bit i of row k flips pair i
        null = ((1 - 2 * (codes & 1)) * diff).mean(axis=1)
        less, greater = int((null <= observed + tolerance).sum()), int((null >= observed - tolerance).sum())
        total, extra = 2**n, 0
    else:
        rng = np.random.default_rng(seed)
        step = max(1, CHUNK // n)
        for start in range(0, resamples, step):
            signs = rng.choice([-1.0, 1.0], size=(min(step, resamples - start), n))  # (rows, n)
            null = (signs * diff).mean(axis=1)
            less += int((null <= observed + tolerance).sum())
            greater += int((null >= observed - tolerance).sum())
        total, extra = resamples, 1
    return float(min(1.0, 2 * min(less + extra, greater + extra) / (total + extra)))


def wilcoxon_test(a: Sequence[float], b: Sequence[float]) -> float:
    """Two-sided p-value of Wilcoxon's signed-rank test on b - a (zero differences dropped; 1 when all are zero):
    a rank test, so one extreme document cannot decide it as it can a test on the mean."""
    import numpy as np

    x, y = _pairs(a, b)
    diff = y - x
    if len(diff) == 0:
        return math.nan
    if not np.any(diff):
        return 1.0
    from scipy.stats import wilcoxon

    return float(wilcoxon(diff).pvalue)


def unpaired_z_test(value_a: float, stderr_a: float, value_b: float, stderr_b: float) -> float:
    """Two-sided p-value that two independent estimates with these standard errors are equal (normal
    approximation): what is left when two runs did not score the same documents."""
    spread = math.hypot(stderr_a, stderr_b)
    if spread == 0:
        return 1.0 if value_a == value_b else 0.0
    from scipy.stats import norm

    return float(2 * norm.sf(abs(value_a - value_b) / spread))


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values: the smallest of m p-values times m, the next times m - 1, ..., kept
    monotone. Controls the chance of any false "different" across the family with no independence assumption.
    NaN entries stay NaN and do not count towards m."""
    indexed = sorted((p, i) for i, p in enumerate(p_values) if not math.isnan(p))
    adjusted = [math.nan] * len(p_values)
    running = 0.0
    for rank, (p, i) in enumerate(indexed):
        running = max(running, min(1.0, (len(indexed) - rank) * p))
        adjusted[i] = running
    return adjusted


def fit_slope(xs: Sequence[float], ys: Sequence[float]) -> tuple[float, float]:
    """Least-squares slope of y on x and its standard error (NaN with fewer than 2 distinct x; 0 for 2 points)."""
    pairs = [(x, y) for x, y in zip(xs, ys) if math.isfinite(x) and math.isfinite(y)]
    if len(pairs) < 2 or len({x for x, _ in pairs}) < 2:
        return math.nan, math.nan
    from scipy.stats import linregress

    fit = linregress([x for x, _ in pairs], [y for _, y in pairs])
    return float(fit.slope), float(fit.stderr) if len(pairs) > 2 else 0.0


def loglog_slope(xs: Sequence[float], ys: Sequence[float]) -> tuple[float, float]:
    """The exponent of a power law y ~ x^k: the slope of log y on log x and its standard error (pairs with a
    non-positive or non-finite value dropped)."""
    pairs = [(math.log(x), math.log(y)) for x, y in zip(xs, ys) if x > 0 and y > 0 and math.isfinite(y)]
    return fit_slope([x for x, _ in pairs], [y for _, y in pairs])
