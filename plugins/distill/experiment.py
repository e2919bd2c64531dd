"""Train a residual MLP on a random decision tree, distil it back into a tree, and compare with a baseline.

Choices (the paper's setting where /work/shared/papers gives it, ours where not):
- Target: a complete depth-r tree on uniform x in {+1, -1}^d (:func:`trees.random_tree`), drawn from the stream
  ``("tree", d, r)`` of the run seed; ``family`` picks the family (opposite leaves under every last split, or
  independent leaves as in the reference). ``target_recovered``: the distilled tree computes the target's function
  (:func:`trees.equivalent`; with independent leaves a redundant split may be dropped).
- Network: :class:`harness.models.ResidualMLP` (ReLU, biases) with one output trained on the square loss to the
  +-1 label, SGD with momentum 0.9, cosine schedule, fresh samples every step, through the harness Trainer
  (checkpoint in ``<run>/network``); its label is the sign of the output.
- Distillation (:mod:`search`): ``samples`` inputs fit the probes and the dynamic program, ``heldout`` more score
  the probes, so the network is queried on ``samples + heldout`` inputs.
- Baseline at the same query budget: scikit-learn's ``DecisionTreeClassifier(max_depth=r)`` (CART, Gini, greedy)
  fitted on those same ``samples + heldout`` inputs and the network's labels: what a tree learner gets from the
  network's input-output behaviour alone.
- Agreement: fraction of ``test_size`` fresh inputs where the tree's label equals the network's (and the
  target's, ``agreement_with_target``).
"""

from __future__ import annotations

import random
import time

import torch
from harness.plugins.distill.search import RidgeProbes, activations, beam_search, best_tree
from harness.plugins.distill.task import DistillOptions
from harness.plugins.distill.trees import (
    Split,
    Tree,
    depth,
    describe,
    equivalent,
    predict,
    random_tree,
    root_correlation,
    uniform_inputs,
)
from torch import nn

from harness.errors import UsageError
from harness.seeding import derive_seed, generator
from harness.training import TrainConfig


def network_labels(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """+-1 labels (N,) of a network with one output (its sign) or two (class 1 is +1)."""
    with torch.no_grad():
        out = model(x)
    if out.dim() != 2 or out.size(1) not in (1, 2):
        raise UsageError(
            f"the network gives outputs of shape {tuple(out.shape[1:])}; distill needs one output "
            "(its sign is the label) or two classes"
        )
    positive = out[:, 0] >= 0 if out.size(1) == 1 else out[:, 1] > out[:, 0]
    return positive.long() * 2 - 1


def train_network(options: DistillOptions, ctx, target: Tree) -> nn.Module:
    """A ResidualMLP trained by the harness Trainer to fit the target tree on fresh uniform inputs."""
    from harness.models import ResidualMLP

    torch.manual_seed(ctx.seed_for("network init"))
    model = ResidualMLP(options.d, options.width, 1, depth=options.blocks, bias=True, task="regression")
    test_x = uniform_inputs(options.test_size, options.d, generator(ctx.seed, "network test"))
    test_y = predict(target, test_x)

    def batches(step: int, gen: torch.Generator) -> dict:
        x = uniform_inputs(options.batch_size, options.d, gen)
        return {"input_ids": x, "targets": predict(target, x).float().unsqueeze(1)}

    def evaluate(model: nn.Module, step: int) -> dict:
        return {"test_accuracy": float((network_labels(model, test_x) == test_y).float().mean())}

    config = TrainConfig(
        steps=options.steps,
        batch_size=options.batch_size,
        lr=options.lr,
        optimizer="sgd",
        momentum=0.9,
        warmup=0.02,
        schedule="cosine",
        eval_every=max(1, options.steps // 10),
        log_every=max(1, options.steps // 50),
        seed=ctx.seed_for("network batches"),
    )
    ctx.trainer(model, config, batches, name="network", evaluate=evaluate, progress=False).fit()
    return model.eval()


def distill(model: nn.Module, d: int, r: int, options: DistillOptions, seed: int) -> dict:
    """The distilled tree, the baseline tree and the query/probe counts, for a network on {+1, -1}^d."""
    began = time.perf_counter()
    x = uniform_inputs(options.samples, d, generator(seed, "probe inputs"))
    held_x = uniform_inputs(options.heldout, d, generator(seed, "held-out probe inputs"))
    probes = RidgeProbes(activations(model, x), x, activations(model, held_x), held_x, ridge=options.ridge)
    terms = beam_search(probes, d, r, options.beam)
    tree, train_agreement = best_tree(terms, x, network_labels(model, x), r)
    distill_time = time.perf_counter() - began
    baseline = fit_baseline(model, torch.cat([x, held_x]), r, seed)
    return {
        "tree": tree,
        "baseline": baseline,
        "probes_used": probes.used,
        "candidates": len(terms),
        "train_agreement": train_agreement,
        "time_s": distill_time,
    }


def fit_baseline(model: nn.Module, x: torch.Tensor, r: int, seed: int):
    """CART of depth <= r on the network's labels at the inputs the distiller queried."""
    from sklearn.tree import DecisionTreeClassifier

    labels = network_labels(model, x).numpy()
    return DecisionTreeClassifier(max_depth=r, random_state=seed % 2**31).fit(x.numpy(), labels)


def agreements(result: dict, model: nn.Module, x: torch.Tensor, target: Tree | None) -> dict[str, float]:
    """Agreement of the distilled and the baseline tree with the network (and the target) on inputs x."""
    reference = {"": network_labels(model, x)}
    if target is not None:
        reference["_with_target"] = predict(target, x)
    trees = {
        "": predict(result["tree"], x),
        "baseline_": torch.from_numpy(result["baseline"].predict(x.numpy())).long(),
    }
    return {
        f"{who}agreement{suffix}": float((labels == truth).float().mean())
        for who, labels in trees.items()
        for suffix, truth in reference.items()
    }


def run_distill(options: DistillOptions, ctx) -> dict[str, float]:
    torch.set_num_threads(options.threads)
    if options.checkpoint:
        model, d, target = load_boolean_network(options.checkpoint), None, None
        d = model.init_args["d_in"]
        metrics = {}
    else:
        d = options.d
        rng = random.Random(derive_seed(ctx.seed, "tree", d, options.r))
        target = random_tree(d, options.r, rng, options.family)
        model = train_network(options, ctx, target)
    test_x = uniform_inputs(options.test_size, d, generator(ctx.seed, "agreement inputs"))
    if target is not None:
        metrics = {
            "network_test_accuracy": float((network_labels(model, test_x) == predict(target, test_x)).float().mean())
        }
    result = distill(model, d, options.r, options, ctx.seed_for("distill"))
    metrics.update(agreements(result, model, test_x, target))
    metrics.update(
        {
            "probes_used": float(result["probes_used"]),
            "queries": float(options.samples + options.heldout),
            "tree_depth": float(depth(result["tree"])),
            "baseline_depth": float(result["baseline"].get_depth()),
            "time_s": result["time_s"],
        }
    )
    if target is not None:
        metrics["target_recovered"] = float(equivalent(result["tree"], target))
        metrics.update(greedy_view(target, result["baseline"]))
    ctx.record(
        [
            {
                "id": "tree",
                "distilled": describe(result["tree"]),
                "target": describe(target) if target is not None else None,
                "probes_used": result["probes_used"],
                "candidate_ands": result["candidates"],
                "dp_train_agreement": result["train_agreement"],
            }
        ]
    )
    return metrics


def greedy_view(target: Tree, baseline) -> dict[str, float]:
    """What drives CART: ``target_root_correlation`` (|E[f x_root]|, what Gini sees of the target's root) and
    ``baseline_root_correct`` (CART's first split tests the target's root variable)."""
    root = target.var if isinstance(target, Split) else -1
    return {
        "target_root_correlation": root_correlation(target),
        "baseline_root_correct": float(int(baseline.tree_.feature[0]) == root),
    }


def load_boolean_network(path: str) -> nn.Module:
    """A scratch checkpoint (harness.models MLP or ResidualMLP) to be read on inputs in {+1, -1}^d_in."""
    from harness.models import load_checkpoint_dir

    model = load_checkpoint_dir(path)[0]
    if "d_in" not in getattr(model, "init_args", {}):
        raise UsageError(
            f"{path}: a {type(model).__name__} checkpoint; distill reads MLP or ResidualMLP "
            "checkpoints whose inputs are vectors in {+1, -1}^d_in"
        )
    return model.eval()


def agreement_table(points: list[dict], ctx) -> dict[str, float]:
    """The sweep's table (``agreement_table.md``): one row per (d, r), and per beam and family where the sweep
    varies them; means over seeds with standard errors, and the distiller's paired gain over CART (mean, stderr
    and 95% t interval over seeds) as ``agreement_gain@d=..,r=..[,beam=..,family=..]``."""
    from harness.stats import mean_ci, mean_stderr

    columns = (
        "network_test_accuracy",
        "agreement",
        "agreement_with_target",
        "baseline_agreement",
        "baseline_agreement_with_target",
        "probes_used",
        "tree_depth",
        "time_s",
    )
    keys = ["d", "r"] + [k for k in ("beam", "family") if len({str(p["args"].get(k)) for p in points}) > 1]
    groups: dict[tuple, list[dict]] = {}
    for point in points:
        groups.setdefault(tuple(point["args"][k] for k in keys), []).append(point["metrics"])
    header = " | ".join(keys + ["seeds"] + list(columns))
    lines = [f"| {header} |", "|---" * (len(columns) + len(keys) + 1) + "|"]
    out = {}
    for values, runs in sorted(groups.items(), key=lambda item: [str(v).zfill(8) for v in item[0]]):
        cells = []
        for column in columns:
            mean, stderr = mean_stderr([m[column] for m in runs if column in m])
            cells.append(f"{mean:.3f} ± {stderr:.3f}" if len(runs) > 1 else f"{mean:.3f}")
        lines.append("| " + " | ".join([str(v) for v in values] + [str(len(runs))] + cells) + " |")
        label = "agreement_gain@" + ",".join(f"{k}={v}" for k, v in zip(keys, values))
        gain = [m["agreement"] - m["baseline_agreement"] for m in runs]
        out[label], out[f"{label}_stderr"] = mean_stderr(gain)
        if len(gain) > 1:
            interval = mean_ci(gain)
            out[f"{label}_ci_low"], out[f"{label}_ci_high"] = interval.low, interval.high
    ctx.path("agreement_table.md").write_text("\n".join(lines) + "\n")
    return out
