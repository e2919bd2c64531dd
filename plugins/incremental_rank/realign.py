"""How robust is the alignment test? It reruns it on finished runs under stricter choices.

    python -m harness.plugins.incremental_rank.realign RUNS_FOLDER --out docs/results/incremental_rank/realign

For every ``*_staircase.json`` under RUNS_FOLDER (the --out folder of an ``incremental_rank`` or
``incremental_rank_vit`` sweep), it tests whether rank jumps sit at loss drops three ways (staircase.py's
``alignment_test``): as the run did (every drop peak, jumps drawn independently and uniformly); with jumps moved by
one common random offset (``shift``: bursts of jumps count once, not as independent); and with only the drops that
take the loss to a new low (``new_low_peaks``: recoveries from spikes are not progress) under the shift null.
It writes ``metrics.json`` (one entry per run and model: ``<name>@alpha=<a>,seed=<s>/<variant>_p``),
``inputs.json`` (the loss curve, the jump times and the window it used, so a test can redo it) and
``commands.txt`` (the sweep's command, then this one) into --out.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import yaml
from harness.plugins.incremental_rank.staircase import alignment_test, drop_peaks, new_low_peaks

from harness.report import write_study

VARIANTS = ("uniform", "shift", "new_low_shift")


def tests(tau: list[float], loss: list[float], jumps: list[float], window: list[float]) -> dict[str, float]:
    """The three p-values (and distances) for one loss curve and its jump times."""
    tau_a, loss_a = np.asarray(tau), np.asarray(loss)
    peaks = [peak for _, peak, _ in drop_peaks(tau_a, loss_a)]
    lows = new_low_peaks(tau_a, loss_a)
    out = {}
    choices = (("uniform", peaks, "uniform"), ("shift", peaks, "shift"), ("new_low_shift", lows, "shift"))
    for variant, centres, null in choices:
        result = alignment_test(jumps, centres, (window[0], window[1]), null=null)
        out.update({f"{variant}_p": result["p"], f"{variant}_distance": result["distance"]})
        out[f"{variant}_null_distance"] = result["null_distance"]
    out["n_drops"], out["n_new_lows"] = float(len(peaks)), float(len(lows))
    return out


def collect(folder: Path) -> dict[str, dict]:
    """``{"vit@alpha=0.1,seed=0": {"tau", "loss", "jumps", "window"}}`` from the runs under ``folder``."""
    found = {}
    for path in sorted(folder.glob("*/*_staircase.json")):
        config = yaml.safe_load((path.parent / "config.yaml").read_text())
        record = json.loads(path.read_text())
        name = path.name.removesuffix("_staircase.json")
        key = f"{name}@alpha={config['task_args']['alpha']:g},seed={config['seed']}"
        found[key] = {
            "tau": record["tau"],
            "loss": record["loss"],
            "jumps": [jump["tau"] for jump in record["jumps"]],
            "window": [record["tau_probe"][0], record["tau_probe"][-1]],
        }
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="the alignment test under stricter choices, on finished runs")
    parser.add_argument("runs", type=Path, help="the --out folder of an incremental_rank(_vit) sweep")
    parser.add_argument("--out", type=Path, required=True, help="folder for metrics.json, inputs.json, commands.txt")
    args = parser.parse_args(argv)
    inputs = collect(args.runs)
    if not inputs:
        print(f"error: no */*_staircase.json under {args.runs}: give a sweep's --out folder", file=sys.stderr)
        return 2
    metrics = {f"{key}/{name}": value for key, run in inputs.items() for name, value in tests(**run).items()}
    made = [yaml.safe_load(c.read_text()).get("command", "") for c in sorted(args.runs.glob("sweep_*/config.yaml"))]
    command = "python -m harness.plugins.incremental_rank.realign " + " ".join(argv or sys.argv[1:])
    write_study(args.out, metrics, [*made, command])
    args.out.joinpath("inputs.json").write_text(json.dumps(inputs))
    for key in inputs:
        print(key, " ".join(f"{v}: p={metrics[f'{key}/{v}_p']:.3g}" for v in VARIANTS))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
