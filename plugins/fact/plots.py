"""The FACT plugin's figures and its markdown table (line plots go through harness.report.plot_lines)."""

from __future__ import annotations

from pathlib import Path

from harness.report import plot_lines, save_figure


def plot_accuracy(path: Path, history: list[dict], title: str) -> Path:
    """Train and test accuracy against the RFM iteration (grokking: train at 1 long before test rises), with the
    structure summary of M (circulant fraction or support mass), also in [0, 1]."""
    steps = [h["iteration"] for h in history]
    series = {
        f"{name} accuracy": (steps, [h[f"{name}_accuracy"] for h in history])
        for name in ("train", "val", "test")
        if f"{name}_accuracy" in history[0]
    }
    for key in ("circulant_fraction", "support_mass"):
        if key in history[0]:
            series[f"{key} of M"] = (steps, [h[key] for h in history])
    return plot_lines(path, series, xlabel="RFM iteration (M updates)", ylabel="accuracy / fraction", title=title)


def plot_feature_matrix(path: Path, M, title: str) -> Path:
    """M as an image (diverging colours centred on 0, the diagonal clipped so the off-diagonal structure shows)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    M = M.double().cpu()
    off = M - M.diagonal().diag()
    scale = float(off.abs().max()) or 1.0
    fig, ax = plt.subplots(figsize=(5.5, 4.8))
    image = ax.imshow(M.numpy(), cmap="RdBu_r", vmin=-scale, vmax=scale, interpolation="nearest")
    ax.set(title=title, xlabel="input coordinate", ylabel="input coordinate")
    fig.colorbar(image, ax=ax, fraction=0.046)
    return save_figure(fig, path)


def write_table(path: Path, metrics: dict, datasets: list[str], methods: tuple[str, ...]) -> Path:
    """Datasets x methods test accuracy (mean ± stderr over splits) as a markdown table."""

    def cell(key: str) -> str:
        return f"{metrics[key]:.3f} ± {metrics[key + '_stderr']:.3f}"

    lines = ["| dataset | " + " | ".join(methods) + " |", "|---" * (len(methods) + 1) + "|"]
    for dataset in datasets:
        lines.append(f"| {dataset} | " + " | ".join(cell(f"{dataset}/{m}/test_accuracy") for m in methods) + " |")
    lines.append("| mean | " + " | ".join(cell(f"{m}/test_accuracy") for m in methods) + " |")
    Path(path).write_text("\n".join(lines) + "\n")
    return Path(path)


CURVES = {
    "fact_correlation": "FACT",
    "fact_sym_correlation": "FACT (F F^T)^1/2",
    "nfa_correlation": "NFA (AGOP)",
    "nfa_sqrt_correlation": "NFA (AGOP^1/2)",
    "fact_shuffled_correlation": "control: FACT, g shifted",
}


def plot_layer_curves(path: Path, history: list[dict], n_layers: int) -> Path:
    """One panel per layer: the correlation of W^T W with each candidate over training steps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [h["step"] + 1 for h in history]  # log axis: the agreement forms in the first thousand steps
    fig, axes = plt.subplots(1, n_layers, figsize=(4 * n_layers, 3.6), sharey=True, squeeze=False)
    for i, ax in enumerate(axes[0]):
        for key, label in CURVES.items():
            if f"layer{i}/{key}" in history[0]:  # records made before the control have no control curve
                style = {"color": "grey", "linestyle": ":"} if "shuffled" in key else {}
                ax.plot(steps, [h[f"layer{i}/{key}"] for h in history], label=label, **style)
        ax.set(title=f"layer {i}", xlabel="GD step + 1", xscale="log", ylim=(-1.02, 1.02))
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("correlation with W^T W")
    axes[0][-1].legend(fontsize=7, loc="lower right")
    return save_figure(fig, path)


def plot_training(path: Path, history: list[dict]) -> Path:
    """Training loss and the gradient norm of the regularised objective (log scale)."""
    steps = [h["step"] + 1 for h in history]
    series = {name: (steps, [h[name] for h in history]) for name in ("train_loss", "grad_norm")}
    return plot_lines(path, series, xlabel="GD step + 1", ylabel="value", title="full-batch GD", logx=True, logy=True)
