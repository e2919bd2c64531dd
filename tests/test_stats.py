"""harness.stats against reference implementations: scipy.stats and statsmodels, on fixtures that include the
small-count cases (no, one or two discordant pairs; all differences zero; two points on a line)."""

import math

import numpy as np
import pytest
import scipy.stats
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportion_confint
from statsmodels.stats.weightstats import DescrStatsW

from harness import stats


def test_mean_stderr_is_the_standard_error_of_the_mean():
    values = [0.2, 1.5, -0.3, 2.2, 0.9]
    mean, stderr = stats.mean_stderr(values)
    assert mean == pytest.approx(np.mean(values))
    assert stderr == pytest.approx(scipy.stats.sem(values))
    assert stats.mean_stderr([3.0]) == (3.0, 0.0)
    assert all(math.isnan(v) for v in stats.mean_stderr([]))


def test_the_old_import_path_still_works():
    from harness.evaluation import mean_stderr

    assert mean_stderr is stats.mean_stderr


@pytest.mark.parametrize("values", [[1.0, 2.0, 4.0], [0.1 * i**2 for i in range(30)], [-2.0, 5.0]])
@pytest.mark.parametrize("confidence", [0.9, 0.95])
def test_mean_ci_is_the_t_interval(values, confidence):
    ci = stats.mean_ci(values, confidence)
    low, high = DescrStatsW(np.array(values)).tconfint_mean(alpha=1 - confidence)
    assert (ci.estimate, ci.low, ci.high) == pytest.approx((np.mean(values), low, high))


def test_mean_ci_degenerate_cases():
    assert stats.mean_ci([2.0, 2.0, 2.0]) == stats.Interval(2.0, 2.0, 2.0)
    one = stats.mean_ci([5.0])
    assert one.estimate == 5.0 and math.isnan(one.low) and math.isnan(one.high)


@pytest.mark.parametrize("successes,n", [(0, 1), (1, 1), (0, 10), (3, 10), (10, 10), (57, 200)])
def test_wilson_ci_matches_statsmodels(successes, n):
    ci = stats.wilson_ci(successes, n)
    low, high = proportion_confint(successes, n, alpha=0.05, method="wilson")
    assert (ci.estimate, ci.low, ci.high) == pytest.approx((successes / n, low, high))
    assert 0 <= ci.low <= ci.estimate <= ci.high <= 1
    assert math.isnan(stats.wilson_ci(0, 0).estimate)


def pairs_with(b: int, c: int, both: int = 3, neither: int = 2) -> tuple[list[float], list[float]]:
    """0/1 scores of two runs with b pairs (1, 0), c pairs (0, 1) and some concordant ones."""
    a = [1.0] * b + [0.0] * c + [1.0] * both + [0.0] * neither
    other = [0.0] * b + [1.0] * c + [1.0] * both + [0.0] * neither
    return a, other


@pytest.mark.parametrize("b,c", [(0, 0), (1, 0), (0, 1), (1, 1), (2, 0), (0, 2), (5, 1), (3, 12), (40, 25)])
def test_mcnemar_exact_matches_statsmodels_and_binomtest(b, c):
    a, other = pairs_with(b, c)
    result = stats.mcnemar_exact(a, other)
    assert (result.b, result.c) == (b, c)
    table = [[3, b], [c, 2]]  # rows: A scored 1 / 0; columns: B scored 1 / 0
    assert result.p_value == pytest.approx(mcnemar(table, exact=True).pvalue)
    if b + c:
        assert result.p_value == pytest.approx(scipy.stats.binomtest(b, b + c, 0.5).pvalue)
    assert 0 < result.p_value <= 1


def test_mcnemar_small_counts_have_no_evidence():
    # one or two discordant pairs can never reach 0.05: p = 1, 1 and 0.5
    assert stats.mcnemar_exact(*pairs_with(0, 0)).p_value == 1.0
    assert stats.mcnemar_exact(*pairs_with(1, 0)).p_value == 1.0
    assert stats.mcnemar_exact(*pairs_with(2, 0)).p_value == pytest.approx(0.5)
    with pytest.raises(ValueError, match="equal lengths"):
        stats.mcnemar_exact([1.0], [1.0, 0.0])


def differences(n: int, shift: float, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    a = rng.normal(size=n)
    return a, a + shift + rng.normal(scale=0.8, size=n)


def scipy_sign_flip(a, b, n_resamples):
    return scipy.stats.permutation_test(
        (np.asarray(b) - np.asarray(a),),
        np.mean,
        permutation_type="samples",
        n_resamples=n_resamples,
        rng=np.random.default_rng(3),
    ).pvalue


@pytest.mark.parametrize("n,shift", [(2, 0.3), (3, 2.0), (5, 0.0), (9, 0.6), (12, 1.0), (16, 0.2)])
def test_exact_sign_flip_test_matches_scipy(n, shift):
    a, b = differences(n, shift)
    assert stats.paired_permutation_test(a, b) == pytest.approx(scipy_sign_flip(a, b, np.inf))


def test_one_or_two_pairs_can_never_be_significant():
    assert stats.paired_permutation_test([0.0], [5.0]) == 1.0  # two equally likely flips: +5 and -5
    assert stats.paired_permutation_test([0.0, 0.0], [5.0, 6.0]) == 0.5  # the smallest p four flips allow


def test_monte_carlo_sign_flip_test_agrees_with_scipy():
    a, b = differences(60, 0.25)
    ours = stats.paired_permutation_test(a, b, resamples=20_000, seed=0)
    reference = scipy_sign_flip(a, b, 20_000)
    assert ours == pytest.approx(reference, abs=0.01)  # two Monte Carlo estimates of one p-value (~0.03)
    assert stats.paired_permutation_test(a, b, seed=0) == stats.paired_permutation_test(a, b, seed=0)  # seeded
    strong = stats.paired_permutation_test(*differences(200, 1.0), resamples=999)
    assert strong == pytest.approx(2 / 1000)  # never 0: twice (0 + 1) / (999 + 1), as scipy defines it


def test_sign_flip_without_differences_is_one():
    assert stats.paired_permutation_test([1.0, 2.0, 3.0], [1.0, 2.0, 3.0]) == 1.0
    assert stats.wilcoxon_test([1.0, 2.0, 3.0], [1.0, 2.0, 3.0]) == 1.0
    assert math.isnan(stats.paired_permutation_test([], []))


@pytest.mark.parametrize("n,shift", [(6, 0.4), (20, 0.3), (80, 0.1)])
def test_wilcoxon_matches_scipy(n, shift):
    a, b = differences(n, shift)
    assert stats.wilcoxon_test(a, b) == pytest.approx(scipy.stats.wilcoxon(b - a).pvalue)


def test_paired_bootstrap_ci_agrees_with_scipy():
    a, b = differences(50, 0.3)
    ci = stats.paired_bootstrap_ci(a, b, resamples=20_000, seed=0)
    reference = scipy.stats.bootstrap(
        (a, b),
        lambda x, y: np.mean(y - x),
        paired=True,
        method="percentile",
        n_resamples=20_000,
        rng=np.random.default_rng(1),
    ).confidence_interval
    assert ci.estimate == pytest.approx(np.mean(b - a))
    assert (ci.low, ci.high) == pytest.approx((reference.low, reference.high), abs=0.02)
    assert ci == stats.paired_bootstrap_ci(a, b, resamples=20_000, seed=0)  # seeded: the same interval again
    assert ci != stats.paired_bootstrap_ci(a, b, resamples=20_000, seed=1)


def test_paired_bootstrap_ci_degenerate_cases():
    assert stats.paired_bootstrap_ci([1.0, 2.0], [2.0, 3.0]) == stats.Interval(1.0, 1.0, 1.0)  # constant shift
    assert math.isnan(stats.paired_bootstrap_ci([], []).estimate)


@pytest.mark.parametrize(
    "p_values",
    [[0.01, 0.04, 0.03, 0.2], [0.5], [0.001, 0.001, 0.9], [0.04, 0.02, 0.03, 0.01, 0.05, 0.3, 0.0]],
)
def test_holm_matches_statsmodels(p_values):
    assert stats.holm(p_values) == pytest.approx(list(multipletests(p_values, method="holm")[1]))


def test_holm_leaves_nan_out_of_the_family():
    adjusted = stats.holm([0.02, math.nan, 0.04])
    assert math.isnan(adjusted[1])
    assert [adjusted[0], adjusted[2]] == pytest.approx(list(multipletests([0.02, 0.04], method="holm")[1]))
    assert stats.holm([]) == []


def test_unpaired_z_test():
    assert stats.unpaired_z_test(0.7, 0.03, 0.6, 0.04) == pytest.approx(2 * scipy.stats.norm.sf(0.1 / 0.05))
    assert stats.unpaired_z_test(0.5, 0.0, 0.5, 0.0) == 1.0 and stats.unpaired_z_test(0.5, 0.0, 0.6, 0.0) == 0.0


def test_normal_ci():
    ci = stats.normal_ci(0.5, 0.1)
    assert (ci.low, ci.high) == pytest.approx(scipy.stats.norm.interval(0.95, loc=0.5, scale=0.1))


@pytest.mark.parametrize("n", [3, 5, 12])
def test_fit_slope_matches_linregress(n):
    rng = np.random.default_rng(n)
    xs = np.linspace(1, 4, n)
    ys = 2.5 * xs - 1 + rng.normal(scale=0.3, size=n)
    reference = scipy.stats.linregress(xs, ys)
    assert stats.fit_slope(xs, ys) == pytest.approx((reference.slope, reference.stderr))


def test_loglog_slope_fits_the_exponent():
    xs = [1.0, 2.0, 4.0, 8.0, 16.0]
    ys = [3 * x**1.5 * w for x, w in zip(xs, [1.0, 1.1, 0.95, 1.05, 1.0])]
    reference = scipy.stats.linregress(np.log(xs), np.log(ys))
    assert stats.loglog_slope(xs, ys) == pytest.approx((reference.slope, reference.stderr))
    # non-positive and non-finite pairs are dropped; two points give a slope without a standard error
    assert stats.loglog_slope([1.0, 2.0, 0.0, 3.0], [1.0, 4.0, 5.0, math.nan]) == pytest.approx((2.0, 0.0))
    assert all(math.isnan(v) for v in stats.loglog_slope([1.0], [1.0]))
    assert all(math.isnan(v) for v in stats.loglog_slope([2.0, 2.0], [1.0, 3.0]))


def test_the_plugins_share_the_core_fit():
    from harness.plugins.leap.fit import loglog_slope as leap_slope
    from harness.plugins.ntk.fit import loglog_slope as ntk_slope

    assert leap_slope is ntk_slope is stats.loglog_slope
