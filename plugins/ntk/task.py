"""The ``ntk`` task: how large must alpha be for the linearised model to track the real one until time T?

arXiv 2305.13141 proves that alpha = O(T) suffices (the gap between the scaled model and its linearisation is
O(T / alpha)), where Chizat et al. 2019 needed alpha = O(T^2). One run trains a two-layer tanh network and its
linearisation side by side for every alpha of a grid (see lazy.py), records the sup over t <= T of the
held-out prediction gap for each T of a geometric grid, interpolates the alpha needed to keep that gap below
``epsilon`` up to T, and fits its log-log slope against T: ``fitted_exponent``.

The alpha grid lives inside one run, not in a sweep: the alpha needed at each T is read off all alphas together,
and the alphas train as one batch of parameter vectors (one step costs little more than one alpha's). Targets and
seeds are what the preset sweeps. The slope is fitted over ``t_min <= T <= horizon`` only: before T ~ 1 (kernel
time) the gap grows like T^2 by Taylor's theorem (the parameters move at constant speed) for any model, which
says nothing about the bound, and after the training has converged the gap stops growing. ``late_exponent`` is
the slope over the last decade of T alone; ``alpha_over_T_spread`` (and ``_T2_``) is max / min over the grid of
(alpha needed) / T (/ T^2): 1 for an exact power law with that exponent; ``decade_exponent@T=1-10`` (and each
further factor 10) is the local slope over one decade.

One network cannot test "tight": its exponent is a statistic of the window (an S-shaped curve). ``target=tight``
runs, through the same loop and fit, a model built to attain the bound at every T of the window (tight.py: one
quadratic direction per scale of the kernel spectrum, equal loss on each), so its exponent is the bound's own: the
preset sweeps it beside the network's two targets.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from harness.errors import UsageError
from harness.options import Options, option, takes

TARGETS = ("teacher", "random", "tight")


@dataclass(frozen=True)
class NTKOptions(Options):
    """The network and data, the alpha grid, the gaps allowed and the T grid of the fit."""

    target: str = option(
        "teacher",
        "teacher (a random width-4 tanh network), random (i.i.d. N(0, 1) labels) or tight (not a network: the bound's"
        " worst case, a diagonal quadratic model with n_train directions, see tight.py)",
        choices=TARGETS,
    )
    d: int = option(8, "input dimension", ge=1)
    width: int = option(128, "hidden units", ge=1)
    n_train: int = option(64, "training inputs", ge=1)
    n_test: int = option(256, "held-out inputs", ge=1)
    alphas: str = option("0.316,1,3.16,10,31.6,100,316,1000,3160", "the scales trained, comma-separated, increasing")
    epsilon: float = option(1e-3, "the held-out RMS gap allowed (labels have unit variance)", gt=0)
    param_epsilon: float = option(
        0.03, "the parameter gap alpha ||w - w_lin|| allowed (for param_fitted_exponent)", gt=0
    )
    t_min: float = option(1.0, "the first T of the fit, in kernel time (units of 1 / lambda_max of the NTK)", gt=0)
    horizon: float = option(1000.0, "the last T of the fit, in kernel time", gt=0)
    times_per_decade: int = option(4, "points of the geometric T grid per factor 10", ge=1)
    dt: float = option(0.5, "GD step in kernel time (gradient flow is the limit dt -> 0; stable below 2)", gt=0, lt=2)
    curvature: float = option(1.0, "target=tight: the curvature b = Lip(Dh) of its quadratic directions", gt=0)
    spectrum_min: float = option(
        1e-4, "target=tight: its smallest kernel eigenvalue (the largest is ~1); keep it below 1/horizon", gt=0, lt=1
    )

    def check(self) -> None:
        self.alpha_grid  # noqa: B018 (parsing is the check)
        if not self.t_min < self.horizon:
            raise UsageError(f"t_min={self.t_min}, horizon={self.horizon}: need 0 < t_min < horizon")
        if self.dt > self.t_min:
            raise UsageError(f"dt={self.dt}: give a step in (0, 2) no larger than t_min (e.g. 0.25)")

    @property
    def alpha_grid(self) -> list[float]:
        try:
            alphas = [float(a) for a in self.alphas.split(",") if a.strip()]
        except ValueError:
            raise UsageError(
                f"alphas={self.alphas}: give positive numbers separated by commas, e.g. 1,10,100"
            ) from None
        if len(alphas) < 2 or any(a <= 0 for a in alphas) or alphas != sorted(set(alphas)):
            raise UsageError(f"alphas={self.alphas}: give at least two positive, increasing numbers, e.g. 1,10,100")
        return alphas

    @property
    def times(self) -> list[float]:
        """The geometric T grid from t_min to horizon."""
        count = max(2, round(math.log10(self.horizon / self.t_min) * self.times_per_decade) + 1)
        return [self.t_min * (self.horizon / self.t_min) ** (k / (count - 1)) for k in range(count)]


@takes(NTKOptions)
class NTKValidity:
    """Lazy training vs its linearisation: the alpha needed to keep them epsilon-close until time T."""

    name = "ntk"
    threads = 1  # torch threads the run sets: small problems, so a sweep runs its points side by side
    version = "1"
    primary_metric = "fitted_exponent"

    def __init__(self, options: NTKOptions):
        from harness.plugins.ntk.lazy import LazyConfig

        o = self.options = options
        self.config = LazyConfig(
            d=o.d,
            width=o.width,
            n_train=o.n_train,
            n_test=o.n_test,
            target=o.target,
            dt=o.dt,
            horizon=o.horizon,
            curvature=o.curvature,
            spectrum_min=o.spectrum_min,
        )
        self.alphas, self.times = o.alpha_grid, o.times
        self.epsilon, self.param_epsilon = o.epsilon, o.param_epsilon

    def run(self, ctx) -> dict[str, float]:
        import torch
        from harness.plugins.ntk.fit import alpha_needed, decade_exponents, loglog_slope
        from harness.plugins.ntk.lazy import make_problem, train_side_by_side
        from harness.plugins.ntk.plots import plot_alpha_needed, plot_deviations
        from harness.plugins.ntk.tight import make_tight_problem

        make = make_tight_problem if self.config.target == "tight" else make_problem
        problem = make(self.config, torch.Generator().manual_seed(ctx.seed_for("ntk", "problem")))

        def log(t: float, values: dict) -> None:
            ctx.log(
                round(t / self.config.dt),
                {
                    "time": t,
                    **{f"gap@alpha={a:g}": g for a, g in zip(self.alphas, values["gap"])},
                    **{f"loss@alpha={a:g}": v for a, v in zip(self.alphas, values["loss"])},
                },
            )

        result = train_side_by_side(problem, self.alphas, self.config, self.times, on_record=log)
        metrics = {"lambda_max": problem["lambda_max"], "epsilon": self.epsilon}
        for kind, prefix, epsilon in (("pred", "", self.epsilon), ("param", "param_", self.param_epsilon)):
            needed = [
                alpha_needed(self.alphas, [row[j] for row in result[kind]], epsilon) for j in range(len(self.times))
            ]
            slope, stderr = loglog_slope(self.times, needed)
            metrics[f"{prefix}fitted_exponent"], metrics[f"{prefix}fitted_exponent_stderr"] = slope, stderr
            metrics.update({f"{prefix}alpha_needed@T={t:.3g}": a for t, a in zip(self.times, needed)})
            metrics[f"{prefix}fit_points"] = sum(math.isfinite(a) for a in needed)
            for power, name in ((1, "T"), (2, "T2")):  # how far alpha needed is from c T^power over the grid
                ratios = [a / t**power for t, a in zip(self.times, needed) if math.isfinite(a)]
                metrics[f"{prefix}alpha_over_{name}_spread"] = max(ratios) / min(ratios) if ratios else math.nan
            last_decade = [k for k, t in enumerate(self.times) if t >= self.times[-1] / 10 - 1e-9]
            metrics[f"{prefix}late_exponent"] = loglog_slope(
                [self.times[k] for k in last_decade], [needed[k] for k in last_decade]
            )[0]
            if not prefix:
                metrics.update(decade_exponents(self.times, needed))
        # the gap times alpha at the largest alpha: the constant c(T) of gap = c(T) / alpha
        metrics.update({f"scaled_gap@T={t:.3g}": self.alphas[-1] * g for t, g in zip(self.times, result["pred"][-1])})
        metrics["final_loss"] = result["loss"][-1][-1]
        plot_deviations(
            ctx.path("deviation_curves.png"), self.times, self.alphas, result, self.epsilon, self.config.target
        )
        plot_alpha_needed(
            ctx.path("alpha_needed.png"),
            {self.config.target: (self.times, [metrics[f"alpha_needed@T={t:.3g}"] for t in self.times])},
            {self.config.target: metrics["fitted_exponent"]},
            self.epsilon,
        )
        return metrics

    @staticmethod
    def sweep_summary(points: list[dict], ctx) -> dict:
        """Across targets and seeds: the alpha needed (geometric mean over seeds) against T, one line per target,
        and ``fitted_exponent`` = the largest per-target mean (with its 95% t interval over seeds)."""
        from harness.plugins.ntk.plots import plot_alpha_needed

        from harness.stats import mean_ci

        by_target: dict[str, list[dict]] = {}
        for point in points:
            by_target.setdefault(point["args"].get("target", "teacher"), []).append(point["metrics"])
        series, slopes, intervals = {}, {}, {}
        for target, runs in by_target.items():
            keys = sorted((k for k in runs[0] if k.startswith("alpha_needed@T=")), key=lambda k: float(k[15:]))
            times = [float(k[15:]) for k in keys]
            means = []
            for key in keys:
                values = [r[key] for r in runs if math.isfinite(r.get(key, math.nan))]
                means.append(
                    math.exp(sum(map(math.log, values)) / len(values)) if len(values) == len(runs) else math.nan
                )
            series[target] = (times, means)
            intervals[target] = mean_ci([r["fitted_exponent"] for r in runs])
            slopes[target] = intervals[target].estimate
        worst = intervals[max(slopes, key=slopes.get)]
        out = {"fitted_exponent": worst.estimate, "fitted_exponent_low": worst.low, "fitted_exponent_high": worst.high}
        epsilon = points[0]["metrics"].get("epsilon", math.nan)
        plot_alpha_needed(ctx.path("alpha_needed_vs_T.png"), series, slopes, epsilon)
        return out
