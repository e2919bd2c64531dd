"""From a training's loss curve and spectra to metrics, the staircase record and the run's plots."""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING

import numpy as np
from harness.plugins.incremental_rank.experiment import spectra
from harness.plugins.incremental_rank.staircase import (
    SIGNIFICANT,
    alignment,
    alignment_test,
    drop_peaks,
    drops,
    plateaus,
    rank_jumps,
    transition_width,
)

if TYPE_CHECKING:
    from harness.plugins.incremental_rank.task import IncrementalRankOptions


def staircase(tau_loss: np.ndarray, loss: np.ndarray, tau_probe: np.ndarray, maps: dict) -> tuple[dict, dict]:
    """Drops, plateaus, rank jumps and the alignment test on one clock: (metrics, the parts a record keeps)."""
    floor = SIGNIFICANT * max(float(s[-1, 0]) for s in maps.values())
    jumps = sorted((t, key) for key, s in maps.items() for t in rank_jumps(tau_probe, s, floor))
    found, flats = drops(tau_loss, loss), plateaus(tau_loss, loss)
    peaks = [peak for _, peak, _ in drop_peaks(tau_loss, loss)]
    rows = alignment([t for t, _ in jumps], found, flats)
    test = alignment_test([t for t, _ in jumps], peaks, (float(tau_probe[0]), float(tau_probe[-1])))
    widths = [
        transition_width(tau_probe, s[:, k])
        for s in maps.values()
        for k in range(s.shape[1])
        if s[-1, k] >= max(floor, SIGNIFICANT * s[-1, 0])
    ]
    metrics = {
        "final_loss": float(loss[-1]),
        "n_plateaus": float(len(flats)),
        "n_drops": float(len(found)),
        "n_rank_jumps": float(len(jumps)),
        "jump_drop_distance": test["distance"],
        "null_jump_drop_distance": test["null_distance"],
        "alignment_p": test["p"],
        "transition_width": float(np.mean(widths)) if widths else math.nan,
    }
    for kind in ("qk", "vo"):
        finals = [s[-1] for key, s in maps.items() if key.endswith(kind)]
        metrics[f"{kind}_rank"] = float(sum(int((f >= max(floor, SIGNIFICANT * f[0])).sum()) for f in finals))
        metrics[f"{kind}_stable_rank"] = float(np.mean([(f**2).sum() / max(f[0] ** 2, 1e-30) for f in finals]))
    parts = {
        "plateaus": flats,
        "drop_peaks": peaks,
        "jumps": [{"tau": t, "map": key} for t, key in jumps],
        "rows": rows,
        "floor": floor,
    }
    return metrics, parts


def analyse(ctx, name: str, result: dict, options: IncrementalRankOptions) -> dict[str, float]:
    """Metrics ``<name>_...``; writes ``<name>_staircase.json`` and the two plots."""
    lr = options.lr if name == "toy" else options.transformer_lr  # tau is lr x step / log(1/alpha) for both
    clock = lr / math.log(1 / options.alpha)  # tau per step
    tau_loss, loss = result["loss_steps"] * clock, result["loss"]
    tau_probe = result["probe_steps"] * clock
    maps = spectra(result["readings"], options.dim)
    metrics, parts = staircase(tau_loss, loss, tau_probe, maps)
    for k, row in enumerate(parts.pop("rows")):
        metrics[f"jump{k}_step"] = float(round(row["jump"] / clock))
        end = row["plateau_end"]
        metrics[f"jump{k}_plateau_end_step"] = float(round(end / clock)) if math.isfinite(end) else math.nan
    floor = parts.pop("floor")
    record = {
        "alpha": options.alpha,
        "tau": tau_loss.tolist(),
        "loss": loss.tolist(),
        **parts,
        "tau_probe": tau_probe.tolist(),
        "spectra": {key: s.tolist() for key, s in maps.items()},
    }
    ctx.path(f"{name}_staircase.json").write_text(json.dumps(record))
    from harness.plugins.incremental_rank.plots import plot_loss, plot_spectra

    title = f"{name}, alpha={options.alpha:g}"
    plot_loss(ctx.path(f"{name}_loss.png"), record, title)
    plot_spectra(ctx.path(f"{name}_singular_values.png"), record, floor, title)
    return {f"{name}_{k}": v for k, v in metrics.items()}
