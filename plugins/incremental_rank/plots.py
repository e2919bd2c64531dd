"""Plots: the loss staircase with plateaus shaded and rank jumps marked; singular values of Delta over time."""

from __future__ import annotations

from harness.report import figure, save_figure
from harness.store import read_json


def plot_loss(path, record: dict, title: str) -> None:
    """Loss (log) against rescaled time; grey bands are plateaus, dashed lines rank jumps (coloured by map)."""
    plt = figure()
    fig, ax = plt.subplots(figsize=(6.5, 4))
    ax.plot(record["tau"], record["loss"], color="black", lw=1.3, label="training loss")
    for start, end in record["plateaus"]:
        ax.axvspan(start, end, color="gray", alpha=0.15)
    colors = {}
    for jump in record["jumps"]:
        color = colors.setdefault(jump["map"], f"C{len(colors)}")
        ax.axvline(jump["tau"], color=color, ls="--", lw=1, label=f"rank jump {jump['map']}")
    for k, peak in enumerate(record.get("drop_peaks", [])):
        ax.axvline(peak, color="black", ls=":", lw=1, label="loss drop (fastest fall)" if k == 0 else None)
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles))
    ax.legend(unique.values(), unique.keys(), fontsize=7)
    ax.set(
        yscale="log",
        xlabel="rescaled time  lr x step / log(1/alpha)",
        ylabel="loss",
        title=f"{title} (grey: plateaus, dotted: drops)",
    )
    ax.grid(alpha=0.3)
    save_figure(fig, path)


def plot_spectra(path, record: dict, floor: float, title: str) -> None:
    """Every significant singular value of Delta(W_Q W_K^T) (solid) and Delta(W_V W_O) (dashed), per head."""
    plt = figure()
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for i, (key, values) in enumerate(record["spectra"].items()):
        style = "-" if key.endswith("qk") else "--"
        for k in range(len(values[0])):
            series = [row[k] for row in values]
            if series[-1] >= floor:
                ax.plot(record["tau_probe"], series, style, color=f"C{i}", lw=1.2, label=key if k == 0 else None)
    ax.set(
        xlabel="rescaled time  lr x step / log(1/alpha)",
        ylabel="singular value of Delta",
        title=f"{title}: QK solid, VO dashed",
    )
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    save_figure(fig, path)


def sweep_summary(points: list[dict], ctx) -> dict[str, float]:
    """Loss against rescaled time, one line per alpha, for the toy and the transformer; the fitted sharpening."""
    from harness.plugins.incremental_rank.staircase import width_exponent

    plt = figure()
    fitted = {}
    for name in ("toy", "transformer"):
        key = f"{name}_transition_width"
        pairs = [(float(p["args"]["alpha"]), float(p["metrics"][key])) for p in points if key in p["metrics"]]
        if len({a for a, _ in pairs}) >= 2:
            fitted[f"{name}_width_exponent"] = width_exponent(*zip(*pairs))
        records = []
        for point in points:
            path = point["dir"] / f"{name}_staircase.json"
            if point["seed"] == points[0]["seed"] and path.exists():
                records.append(read_json(path, "delete that point's run folder to run it again"))
        if not records:
            continue
        fig, ax = plt.subplots(figsize=(6.5, 4))
        for record in sorted(records, key=lambda r: -r["alpha"]):
            ax.plot(record["tau"], record["loss"], lw=1.2, label=f"alpha={record['alpha']:g}")
        ax.set(
            yscale="log",
            xlabel="rescaled time  lr x step / log(1/alpha)",
            ylabel="loss",
            title=f"{name}: the staircase sharpens as alpha shrinks",
        )
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(ctx.path(f"{name}_loss_by_alpha.png"), dpi=110)
        plt.close(fig)
    return fitted


def plot_stable_ranks(path, record: dict, title: str) -> None:
    """Loss (top) and, per head, the stable rank of Delta(W_Q W_K^T) (middle) and Delta(W_V W_O) (bottom)."""
    plt = figure()
    fig, axes = plt.subplots(3, 1, figsize=(6.5, 7.5), sharex=True)
    axes[0].plot(record["tau"], record["loss"], color="black", lw=1.2)
    for peak in record.get("drop_peaks", []):
        for ax in axes:
            ax.axvline(peak, color="black", ls=":", lw=0.8)
    axes[0].set(yscale="log", ylabel="training loss", title=f"{title} (dotted: loss drops)")
    for ax, kind in zip(axes[1:], ("qk", "vo")):
        for i, (key, series) in enumerate(r for r in record["stable_rank"].items() if r[0].endswith(kind)):
            ax.plot(record["tau_probe"], series, lw=1, color=f"C{i}", label=key.removesuffix(f"/{kind}"))
        for jump in record["jumps"]:
            if jump["map"].endswith(kind):
                ax.plot(jump["tau"], 0, "|", color="black", ms=10)
        name = "W_Q W_K^T" if kind == "qk" else "W_V W_O"
        ax.set(ylabel=f"stable rank of Delta({name})")
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=6, ncol=4)
    axes[2].set(xlabel="rescaled time  lr x step / log(1/alpha)   (ticks at 0: rank jumps)")
    axes[0].grid(alpha=0.3)
    save_figure(fig, path)


def vit_summary(points: list[dict], ctx) -> dict[str, float]:
    """The ViT on digits at every alpha (first seed): loss and head-mean stable ranks against rescaled time."""
    import numpy as np

    first = points[0]["seed"]
    records = [
        read_json(p["dir"] / "vit_staircase.json", "delete that point's run folder to run it again")
        for p in points
        if p["seed"] == first and (p["dir"] / "vit_staircase.json").exists()
    ]
    if not records:
        return {}
    plt = figure()
    fig, axes = plt.subplots(3, 1, figsize=(6.5, 7.5), sharex=True)
    for i, record in enumerate(sorted(records, key=lambda r: -r["alpha"])):
        axes[0].plot(record["tau"], record["loss"], lw=1.2, color=f"C{i}", label=f"alpha={record['alpha']:g}")
        for ax, kind in zip(axes[1:], ("qk", "vo")):
            series = np.array([r for key, r in record["stable_rank"].items() if key.endswith(kind)])
            ax.plot(record["tau_probe"], series.mean(0), lw=1.2, color=f"C{i}")
    title = "ViT on digits: loss and mean stable rank of Delta per head"
    axes[0].set(yscale="log", ylabel="training loss", title=title)
    axes[0].legend(fontsize=8)
    axes[1].set(ylabel="Delta(W_Q W_K^T)")
    axes[2].set(ylabel="Delta(W_V W_O)", xlabel="rescaled time  lr x step / log(1/alpha)")
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(ctx.path("vit_by_alpha.png"), dpi=110)
    plt.close(fig)
    return {}
