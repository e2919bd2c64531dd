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
from harness.plugins.distill.search import RidgeProbes, activations, beam_search, best_tree, scored
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
    """The distilled tree at each beam width (``beam`` first, then ``beams``), the baseline tree and the
    query/probe counts, for a network on {+1, -1}^d."""
    began = time.perf_counter()
    x = uniform_inputs(options.samples, d, generator(seed, "probe inputs"))
    held_x = uniform_inputs(options.heldout, d, generator(seed, "held-out probe inputs"))
    probes = RidgeProbes(activations(model, x), x, activations(model, held_x), held_x, ridge=options.ridge)
    labels = network_labels(model, x)
    trees = {}
    for width in options.widths():
        terms = beam_search(probes, d, r, width)
        tree, train_agreement = best_tree(terms, x, labels, r)
        trees[width] = {
            "tree": tree,
            "probes_used": scored(terms, r),  # what a search at this width alone probes
            "candidates": len(terms),
            "train_agreement": train_agreement,
        }
    distill_time = time.perf_counter() - began
    baseline = fit_baseline(model, torch.cat([x, held_x]), r, seed)
    return {"trees": trees, "baseline": baseline, "probes_distinct": probes.used, "time_s": distill_time}


def fit_baseline(model: nn.Module, x: torch.Tensor, r: int, seed: int):
    """CART of depth <= r on the network's labels at the inputs the distiller queried."""
    from sklearn.tree import DecisionTreeClassifier

    labels = network_labels(model, x).numpy()
    return DecisionTreeClassifier(max_depth=r, random_state=seed % 2**31).fit(x.numpy(), labels)


def agreements(labels: torch.Tensor, network: torch.Tensor, truth: torch.Tensor | None, who: str = "") -> dict:
    """``<who>agreement`` of a tree's labels with the network's (and ``<who>agreement_with_target``)."""
    out = {f"{who}agreement": float((labels == network).float().mean())}
    if truth is not None:
        out[f"{who}agreement_with_target"] = float((labels == truth).float().mean())
    return out


def tree_metrics(found: dict, x: torch.Tensor, network: torch.Tensor, target: Tree | None) -> dict[str, float]:
    """One beam width's distilled tree: its agreements on x, depth, probes and whether it is the target's
    function."""
    truth = predict(target, x) if target is not None else None
    metrics = agreements(predict(found["tree"], x), network, truth)
    metrics.update({"probes_used": float(found["probes_used"]), "tree_depth": float(depth(found["tree"]))})
    if target is not None:
        metrics["target_recovered"] = float(equivalent(found["tree"], target))
    return metrics


def run_distill(options: DistillOptions, ctx) -> dict[str, float]:
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
    baseline, network = result["baseline"], network_labels(model, test_x)
    cart = torch.from_numpy(baseline.predict(test_x.numpy())).long()
    metrics.update(agreements(cart, network, predict(target, test_x) if target is not None else None, "baseline_"))
    for width, found in result["trees"].items():  # beam first: its metrics carry no suffix
        suffix = "" if width == options.beam else f"@beam={width}"
        metrics.update({key + suffix: value for key, value in tree_metrics(found, test_x, network, target).items()})
    metrics.update(
        {
            "queries": float(options.samples + options.heldout),
            "baseline_depth": float(baseline.get_depth()),
            "probes_distinct": float(result["probes_distinct"]),  # over every width
            "time_s": result["time_s"],
        }
    )
    if target is not None:
        metrics.update(greedy_view(target, baseline))
    ctx.record(
        [
            {
                "id": f"tree@beam={width}" if width != options.beam else "tree",
                "beam": width,
                "distilled": describe(found["tree"]),
                "target": describe(target) if target is not None else None,
                "probes_used": found["probes_used"],
                "candidate_ands": found["candidates"],
                "dp_train_agreement": found["train_agreement"],
            }
            for width, found in result["trees"].items()
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


COLUMNS = (  # the sweep table's columns
    "network_test_accuracy",
    "agreement",
    "agreement_with_target",
    "baseline_agreement",
    "baseline_agreement_with_target",
    "probes_used",
    "tree_depth",
    "time_s",
)
DEFAULT_BEAM = DistillOptions().beam
PER_CELL = COLUMNS[:-1] + ("target_recovered", "target_root_correlation", "baseline_root_correct")


def per_beam(points: list[dict]) -> list[dict]:
    """Points distilled at several widths (``beams=``) as one point per width, the width as its ``beam`` arg and
    its ``<name>@beam=B`` metrics under their plain names; other points as they are."""
    out = []
    for point in points:
        metrics = point["metrics"]
        plain = {k: v for k, v in metrics.items() if "@beam=" not in k}
        out.append({**point, "metrics": plain})
        widths = sorted({int(k.rsplit("@beam=", 1)[1]) for k in metrics if "@beam=" in k})
        if not widths:
            continue
        out[-1]["args"] = {**point["args"], "beam": int(point["args"].get("beam", DEFAULT_BEAM))}
        for width in widths:
            found = {k.rsplit("@beam=", 1)[0]: v for k, v in metrics.items() if k.endswith(f"@beam={width}")}
            out.append({**point, "args": {**point["args"], "beam": width}, "metrics": {**plain, **found}})
    return out


def agreement_table(points: list[dict], ctx) -> dict[str, float]:
    """The sweep's table (``agreement_table.md``): one row per (d, r), and per beam and family where the sweep
    varies them (a run with ``beams=`` counts as one point per width); means over seeds with standard errors, and
    the distiller's paired gain over CART (mean, stderr, 95% t interval over seeds) as
    ``agreement_gain@d=..,r=..[,beam=..,family=..]``. Per-width runs also get every PER_CELL metric so keyed
    (the sweep itself keys them by its grid, which has no beam)."""
    from harness.stats import mean_ci, mean_stderr

    expanded = per_beam(points)
    by_width = len(expanded) > len(points)
    keys = ["d", "r"] + [k for k in ("beam", "family") if len({str(p["args"].get(k)) for p in expanded}) > 1]
    groups: dict[tuple, list[dict]] = {}
    for point in expanded:
        groups.setdefault(tuple(point["args"][k] for k in keys), []).append(point["metrics"])
    lines = ["| " + " | ".join(keys + ["seeds"] + list(COLUMNS)) + " |", "|---" * (len(COLUMNS) + len(keys) + 1) + "|"]
    out = {}
    for values, runs in sorted(groups.items(), key=lambda item: [str(v).zfill(8) for v in item[0]]):
        cells = []
        for column in COLUMNS:
            mean, stderr = mean_stderr([m[column] for m in runs if column in m])
            cells.append(f"{mean:.3f} ± {stderr:.3f}" if len(runs) > 1 else f"{mean:.3f}")
        lines.append("| " + " | ".join([str(v) for v in values] + [str(len(runs))] + cells) + " |")
        label = ",".join(f"{k}={v}" for k, v in zip(keys, values))
        names = ["agreement_gain"] + (list(PER_CELL) if by_width else [])
        for name in names:
            gains = [m["agreement"] - m["baseline_agreement"] for m in runs]
            sample = gains if name == "agreement_gain" else [m[name] for m in runs if name in m]
            if not sample:
                continue
            out[f"{name}@{label}"], out[f"{name}@{label}_stderr"] = mean_stderr(sample)
            if len(sample) > 1:
                interval = mean_ci(sample)
                out[f"{name}@{label}_ci_low"], out[f"{name}@{label}_ci_high"] = interval.low, interval.high
    ctx.path("agreement_table.md").write_text("\n".join(lines) + "\n")
    if "beam" in keys:
        from harness.plugins.distill.figures import beam_curve

        beam_curve(expanded, ctx.path("agreement_vs_beam_width.png"))
    return out
