"""The ``leap`` task: online SGD steps to learn a target of low-dimensional support, against the dimension d.

arXiv 2302.11055 conjectures that a two-layer network trained by online SGD on isotropic data needs
~ d^max(Leap - 1, 1) steps (one fresh sample each; d^max(Leap, 2) total work) to learn a target of leap Leap, and
that it learns the support coordinates one leap at a time (saddle-to-saddle). One run trains ``runs`` independent
networks on one target at one d (see sgd.py) and reports the steps until the target counts as learned; the d grid
is a sweep (tasks/leap.yaml on the cube, tasks/leap_gaussian.yaml on Gaussian inputs), and ``sweep_summary`` fits
log steps against log d per target: ``exponent@target=...`` beside ``conjecture@target=...``; leap.fit adds the
intervals and the shape fits.

Choices: on Gaussian inputs the targets are the same words read as Hermite products (x1 x2 x3 = He_1 He_1 He_1, so
the same support sets and the same leap; x1^2 is He_2). "Learned" is ``criterion=loss`` (held-out MSE below
``threshold`` x E[f*^2], the cube's preset) or ``criterion=terms`` (the network's held-out coefficient on every
target term at least ``term_level``, the Gaussian preset): on Gaussian inputs the 64-unit ReLU net must
approximate unbounded products, and in trial runs at d = 32 some networks had not brought the MSE under 0.1 after
1.5 x 10^5 steps (the loss also jumps with the heavy-tailed samples), while every network's coefficients had crossed
1/2; the coefficients say when each term is picked up, the thing the leap counts. Each run also reports the other
criterion (``other_*``, a run that had not met it when training stopped counts as that step) for comparison.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from harness.plugins.leap.targets import DATA

from harness.errors import UsageError
from harness.options import Options, option, takes
from harness.stats import mean_stderr


@dataclass(frozen=True)
class LeapOptions(Options):
    """One target at one dimension d: the network, the online SGD and when the target counts as learned."""

    target: str = option(
        "staircase", "staircase, leap2, leap3, or a sum of monomials such as x1+x1*x2 (x1^2: Hermite, gaussian only)"
    )
    d: int = option(32, "input dimension (at least the largest coordinate of the target)", ge=1)
    data: str = option("boolean", "boolean (uniform signs) or gaussian (standard normal)", choices=DATA)
    width: int = option(64, "hidden units of the two-layer network", ge=1)
    lr: float = option(0.1, "SGD step on the second layer; the first layer takes lr / d", gt=0)
    runs: int = option(6, "independent networks (seeds) trained side by side", ge=1)
    max_steps: int = option(400_000, "samples per run before giving up", ge=1)
    threshold: float = option(0.1, "learned = held-out MSE <= threshold * E[f*^2]", gt=0, lt=1)
    n_test: int = option(512, "held-out samples", ge=1)
    criterion: str = option(
        "loss",
        "what counts as learned for log10_steps: loss (held-out MSE <= threshold * E[f*^2]) or terms (the net's "
        "held-out coefficient on every target term >= term_level)",
        choices=("loss", "terms"),
    )
    term_level: float = option(0.5, "the coefficient each target term must reach (criterion=terms)", gt=0, lt=1)
    device: str = option("cpu", "where the networks train: cpu, or cuda for the GPU presets", choices=("cpu", "cuda"))

    def check(self) -> None:
        from harness.plugins.leap.targets import parse_target, support

        last = support(parse_target(self.target, self.data))[-1]
        if self.d <= last:
            raise UsageError(f"d={self.d}: target {self.target} uses x{last + 1}; give d >= {last + 1}")


@takes(LeapOptions)
class Leap:
    """Online SGD steps to learn a low-dimensional target on isotropic data, at one dimension d."""

    name = "leap"
    threads = 1  # torch threads the run sets: small problems, so a sweep runs its points side by side
    version = "1"
    primary_metric = "log10_steps"

    def __init__(self, options: LeapOptions):
        from harness.plugins.leap.sgd import OnlineConfig
        from harness.plugins.leap.targets import leap, parse_target

        self.options = options
        self.terms = parse_target(options.target, options.data)
        self.target, self.leap = options.target, leap(self.terms)
        o = options
        self.config = OnlineConfig(
            d=o.d,
            width=o.width,
            lr=o.lr,
            runs=o.runs,
            max_steps=o.max_steps,
            threshold=o.threshold,
            n_test=o.n_test,
            data=o.data,
            term_level=o.term_level,
            criterion=o.criterion,
        )

    def run(self, ctx) -> dict[str, float]:
        import torch
        from harness.plugins.leap.plots import plot_loss_curve
        from harness.plugins.leap.sgd import train_online

        if self.options.device == "cuda" and not torch.cuda.is_available():
            raise UsageError("device=cuda: torch sees no GPU here; run the GPU preset on a GPU machine, or device=cpu")
        generator = torch.Generator(device=self.options.device)
        generator.manual_seed(ctx.seed_for("leap", self.target, self.config.data, self.config.d))
        result = train_online(self.terms, self.config, generator)
        steps_list, losses = result["curve"]
        for step, row in zip(steps_list, losses):
            ctx.log(step, {"test_loss": sum(row) / len(row)})
        chosen, other = ("steps", "term_steps") if self.options.criterion == "loss" else ("term_steps", "steps")
        metrics = {"leap": self.leap, "conjecture": max(self.leap - 1, 1)}
        metrics.update(self.step_metrics(result[chosen], "", self.config.max_steps))
        # the other criterion, for comparison; a run that had not met it when training stopped counts as that step
        metrics.update(self.step_metrics(result[other], "other_", steps_list[-1]))
        for coordinate, picked in result["pickups"].items():
            found = [math.log10(s) for s in picked if s > 0]
            metrics[f"pickup_log10_step@x{coordinate + 1}"] = sum(found) / len(found) if found else math.nan
        names = ["*".join(f"x{c + 1}" + (f"^{k}" if k > 1 else "") for c, k in term) for term in self.terms]
        plot_loss_curve(
            ctx.path("loss_curve.png"),
            steps_list,
            losses,
            result["pickups"],
            self.config.threshold,
            f"{self.target} ({self.config.data}, d={self.config.d}, leap {self.leap})",
            result["coefficients"],
            names,
        )
        return metrics

    @staticmethod
    def step_metrics(steps: list[float], prefix: str, censor: float) -> dict[str, float]:
        """Share of runs that learned, log10 steps (mean, stderr, geometric mean) and each run's log10 steps."""
        # censored runs count as ``censor``, so an unfinished point is visible as a lower bound, not dropped
        logs = [math.log10(s if s > 0 else censor) for s in steps]
        out = {f"{prefix}reached": sum(s > 0 for s in steps) / len(steps)}
        out[f"{prefix}log10_steps"], out[f"{prefix}log10_steps_stderr"] = mean_stderr(logs)
        out[f"{prefix}steps"] = 10 ** out[f"{prefix}log10_steps"]
        out.update({f"{prefix}log10_steps@run={k}": value for k, value in enumerate(logs)})
        return out

    @staticmethod
    def sweep_summary(points: list[dict], ctx) -> dict:
        """Per target: the slope of log10 steps against log10 d, mean and stderr over the curves (network k of seed s
        at every d is one curve, see fit.py), beside the conjecture max(Leap - 1, 1); one plot."""
        from harness.plugins.leap.fit import curves, loglog_slope
        from harness.plugins.leap.plots import plot_steps_vs_d

        out, lines = {}, {}
        for target, group in curves(points).items():
            ds, rows = group["d"], list(group["curves"].values())
            slopes = [loglog_slope(ds, [10**v for v in row])[0] for row in rows]
            slope, stderr = mean_stderr(slopes)
            mean_steps = [10 ** (sum(column) / len(column)) for column in zip(*rows)]
            conjecture = max(group["leap"] - 1, 1)
            out.update(
                {
                    f"exponent@target={target}": slope,
                    f"exponent@target={target}_stderr": stderr,
                    f"conjecture@target={target}": conjecture,
                    f"leap@target={target}": group["leap"],
                }
            )
            lines[target] = (ds, mean_steps, slope, conjecture)
        terms = bool(points) and points[0]["args"].get("criterion") == "terms"
        learned = "every term's coefficient >= term_level" if terms else "the loss threshold"
        plot_steps_vs_d(ctx.path("steps_vs_d.png"), lines, learned)
        return out
