"""The ``leap`` task: online SGD steps to learn a target of low-dimensional support, against the dimension d.

arXiv 2302.11055 conjectures that a two-layer network trained by online SGD on isotropic data needs
~ d^max(Leap - 1, 1) steps (one fresh sample each; d^max(Leap, 2) total work) to learn a target of leap Leap, and
that it learns the support coordinates one leap at a time (saddle-to-saddle). One run trains ``runs`` independent
networks on one target at one d (see sgd.py) and reports the steps until the held-out loss falls below
``threshold`` times the target's variance. The d grid is a sweep (tasks/leap.yaml); ``sweep_summary`` fits
log steps against log d per target: ``exponent@target=...`` beside ``conjecture@target=...``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from harness.plugins.leap.targets import DATA

from harness.errors import UsageError
from harness.options import Options, option, takes


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
        )

    def run(self, ctx) -> dict[str, float]:
        import torch
        from harness.plugins.leap.plots import plot_loss_curve
        from harness.plugins.leap.sgd import train_online

        from harness.evaluation import mean_stderr

        generator = torch.Generator().manual_seed(ctx.seed_for("leap", self.target, self.config.data, self.config.d))
        result = train_online(self.terms, self.config, generator)
        steps_list, losses = result["curve"]
        for step, row in zip(steps_list, losses):
            ctx.log(step, {"test_loss": sum(row) / len(row)})
        reached = [s for s in result["steps"] if s > 0]
        metrics = {
            "leap": self.leap,
            "conjecture": max(self.leap - 1, 1),
            "reached": len(reached) / len(result["steps"]),
        }
        # censored runs count as max_steps, so an unfinished point is visible as a lower bound, not dropped
        logs = [math.log10(s if s > 0 else self.config.max_steps) for s in result["steps"]]
        metrics["log10_steps"], metrics["log10_steps_stderr"] = mean_stderr(logs)
        metrics["steps"] = 10 ** metrics["log10_steps"]
        metrics.update({f"log10_steps@run={k}": value for k, value in enumerate(logs)})
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
    def sweep_summary(points: list[dict], ctx) -> dict:
        """Per target: the slope of log10 steps against log10 d, mean and stderr over the runs (run k of every d is
        one curve; several sweep seeds add curves), beside the conjecture max(Leap - 1, 1); one plot."""
        from harness.plugins.leap.fit import loglog_slope
        from harness.plugins.leap.plots import plot_steps_vs_d

        from harness.evaluation import mean_stderr

        groups: dict[str, dict] = {}
        for point in points:
            metrics = point["metrics"]
            group = groups.setdefault(point["args"].get("target", "staircase"), {"leap": metrics["leap"], "d": {}})
            runs = sorted((k for k in metrics if k.startswith("log10_steps@run=")), key=lambda k: int(k[16:]))
            group["d"].setdefault(point["args"]["d"], []).extend(metrics[k] for k in runs)
        out, lines = {}, {}
        for target, group in groups.items():
            ds = sorted(group["d"])
            count = min(len(group["d"][d]) for d in ds)
            # run k at every d makes one curve (independent networks); its slope is one sample of the exponent
            slopes = [loglog_slope(ds, [10 ** group["d"][d][k] for d in ds])[0] for k in range(count)]
            slope, stderr = mean_stderr(slopes)
            mean_steps = [10 ** (sum(group["d"][d]) / len(group["d"][d])) for d in ds]
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
        plot_steps_vs_d(ctx.path("steps_vs_d.png"), lines)
        return out
