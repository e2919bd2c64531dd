"""The fact results page (docs/papers/fact.md) is its committed records, rounded as printed: every number in its
tables is read from docs/results/fact/<record>/metrics.json (or metrics.jsonl for the curve over training), and the
tuned comparisons ran at the settings their tuning sweeps chose."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs/papers/fact.md"
RESULTS = ROOT / "docs/results/fact"
UPDATES = {"FACT-RFM": "fact", "AGOP-RFM": "agop", "sqrt-AGOP-RFM": "agop_sqrt"}
LAYER_COLUMNS = {
    "FACT": "fact_correlation",
    "FACT (F F^T)^1/2": "fact_sym_correlation",
    "‖W^T W − F‖/‖W^T W‖": "fact_residual",
    "NFA: AGOP": "nfa_correlation",
    "NFA: AGOP^1/2": "nfa_sqrt_correlation",
    "control: g shifted": "fact_shuffled_correlation",
    "control residual": "fact_shuffled_residual",
}


def table(marker: str) -> tuple[list[str], list[list[str]]]:
    """Header and body cells of the first table after ``marker`` on the page."""
    text = PAGE.read_text()
    assert marker in text, marker
    lines = text.split(marker, 1)[1].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in line.strip().strip("|").split("|")])
    return rows[0], [r for r in rows[2:]]


def numbers(cell: str) -> list[str]:
    return re.findall(r"[-+−]?\d+\.?\d*(?:e[-+]\d+)?", cell)


def close(printed: str, value: float) -> bool:
    """``printed`` is ``value`` rounded to the digits shown (scientific or fixed)."""
    printed = printed.replace("−", "-")
    mantissa, _, exponent = printed.partition("e")
    decimals = len(mantissa.split(".")[1]) if "." in mantissa else 0
    half = 0.5 * 10 ** (-decimals) * (10 ** int(exponent) if exponent else 1)
    return abs(float(printed) - value) <= half + 1e-9


def is_interval_of(cell: str, values: list[float]) -> bool:
    """``mean [low, high]``: the 95% t interval over seeds (harness.stats.mean_ci), rounded as printed."""
    from harness.stats import mean_ci

    interval, printed = mean_ci(values), numbers(cell)
    expected = (interval.estimate, interval.low, interval.high)
    return len(printed) == 3 and all(close(text, value) for text, value in zip(printed, expected))


def record(name: str) -> dict:
    return json.loads((RESULTS / name / "metrics.json").read_text())


@pytest.mark.parametrize(
    "marker,name",
    [
        ("**At the stationary point, rank-2 polynomial**", "mlp_lowrank"),
        ("**At the stationary point, wine**", "mlp_wine"),
    ],
)
def test_layer_tables(marker, name):
    metrics = record(name)
    assert metrics["converged"] == 1.0
    header, rows = table(marker)
    assert header[0] == "layer" and len(rows) == 3
    for row in rows:
        for column, cell in zip(header[1:], row[1:]):
            assert close(cell, metrics[f"layer{row[0]}/{LAYER_COLUMNS[column]}"]), (name, row[0], column)


def test_over_training_table_reads_the_curve():
    """The convergence check can fail: early rows are far from 1, and the control never reaches it."""
    series = {r["step"]: r for r in map(json.loads, (RESULTS / "mlp_lowrank/metrics.jsonl").read_text().splitlines())}
    header, rows = table("**Over training, rank-2 polynomial**")
    keys = {"‖∇‖": "grad_norm", **{f"FACT layer {i}": f"layer{i}/fact_correlation" for i in range(3)}}
    keys.update({f"control layer {i}": f"layer{i}/fact_shuffled_correlation" for i in range(3)})
    keys["residual layer 0"] = "layer0/fact_residual"
    assert len(rows) >= 4
    for row in rows:
        point = series[int(row[0])]
        for column, cell in zip(header[1:], row[1:]):
            assert close(cell, point[keys[column]]), (row[0], column)
    assert float(rows[0][header.index("FACT layer 0")].replace("−", "-")) < 0.5


@pytest.mark.parametrize("data", ["modular", "parity"])
def test_tuning_tables_and_the_comparisons_use_what_tuning_chose(data):
    metrics = record(f"tune_{data}")
    header, rows = table(f"**Tuning, {data}**")
    assert {UPDATES[r[0]] for r in rows} == {"fact", "agop", "agop_sqrt"}
    for row in rows:
        update, cells = UPDATES[row[0]], dict(zip(header, row))
        tuned = f"tuned/{update}"
        assert (cells["kernel"] == "laplace") == bool(metrics[f"{tuned}/laplace"])
        assert close(cells["bandwidth"], metrics[f"{tuned}/bandwidth"])
        assert (cells["normalize"] == "on") == bool(metrics[f"{tuned}/normalize"])
        assert int(cells["iterations"]) == metrics[f"{tuned}/iterations"]
        assert close(cells["val accuracy"], metrics[f"{tuned}/best_val_accuracy"])
    chosen = (RESULTS / f"tune_{data}/tuned.md").read_text().split("tuned=", 1)[1].strip()
    compare = yaml.safe_load((RESULTS / f"compare_{data}/config.yaml").read_text())
    assert compare["task_args"]["tuned"] == chosen
    assert yaml.safe_load((RESULTS / f"tune_{data}/config.yaml").read_text())["task_args"]["validation"] > 0


@pytest.mark.parametrize(
    ("name", "marker"),
    [("compare_modular", "modular"), ("compare_parity", "parity"), ("compare_parity_k4", "parity, k = 4")],
)
def test_comparison_tables(name, marker):
    metrics = record(name)
    header, rows = table(f"**Tuned comparison, {marker}**")
    assert len(rows) >= 3
    for row in rows:
        cells = dict(zip(header, row))
        update = UPDATES[cells["update"]]
        at = f"@n={cells['n']}" if "n" in cells else ""
        accuracy = f"{update}/test_accuracy{at}"
        assert close(cells["test accuracy"], metrics[accuracy])
        low, high = numbers(cells["95% CI"])
        assert close(low, metrics[f"{accuracy}_ci_low"]) and close(high, metrics[f"{accuracy}_ci_high"])
        if "circulant fraction" in cells:
            assert close(cells["circulant fraction"], metrics[f"circulant_fraction@update={update}"])
        if update == "fact":
            assert cells["FACT − this"] == "" or cells["FACT − this"] == "—"
            continue
        diff = f"fact_minus_{update}{at}"
        value, low, high = numbers(cells["FACT − this"])
        assert close(value, metrics[diff]) and close(low, metrics[f"{diff}_ci_low"])
        assert close(high, metrics[f"{diff}_ci_high"]) and close(cells["p"], metrics[f"{diff}_p"])


def test_longer_budget_sentence():
    """The sqrt-AGOP-RFM supplement quoted in prose: the long tuning run's peak and the 3-seed test at its choice."""
    text = " ".join(PAGE.read_text().split())
    tuned = record("tune_modular_long")
    assert f"peaks at validation accuracy {tuned['tuned/agop_sqrt/best_val_accuracy']:.3f} at update " in text
    assert int(tuned["tuned/agop_sqrt/iterations"]) == 63 and "(63 updates, 3 seeds" in text
    compared = record("compare_modular_sqrt63")
    key = "test_accuracy@update=agop_sqrt"
    interval = f"{compared[key]:.3f} [{compared[key + '_ci_low']:.3f}, {compared[key + '_ci_high']:.3f}]"
    assert f"its test accuracy is {interval}" in text
    assert yaml.safe_load((RESULTS / "compare_modular_sqrt63/config.yaml").read_text())["task_args"]["iterations"] == 63


@pytest.mark.parametrize(
    "name,sentence",
    [
        (
            "tune_modular_wide",
            "{fact} (FACT-RFM), {agop} (AGOP-RFM) and {agop_sqrt} (sqrt-AGOP-RFM, peak at update 80)",
        ),
        ("tune_parity_ridge", "{fact} (FACT-RFM), {agop} (AGOP-RFM), {agop_sqrt} (sqrt-AGOP-RFM)"),
    ],
)
def test_beyond_the_grid_sentences(name, sentence):
    metrics = record(name)
    values = {u: f"{metrics[f'tuned/{u}/best_val_accuracy']:.3f}" for u in UPDATES.values()}
    assert sentence.format(**values) in " ".join(PAGE.read_text().split())
    if name == "tune_modular_wide":
        assert metrics["tuned/agop_sqrt/iterations"] == 80


def test_tabular_table():
    metrics = record("tabular")
    header, rows = table("**Tabular data.**")
    for row in rows:
        for method, cell in zip(header[1:], row[1:]):
            key = f"{method}/test_accuracy" if row[0] == "mean" else f"{row[0]}/{method}/test_accuracy"
            value, stderr = numbers(cell)
            assert close(value, metrics[key]) and close(stderr, metrics[f"{key}_stderr"]), (row[0], method)


def test_every_record_says_where_it_ran():
    names = ("mlp_lowrank", "tune_modular", "tune_parity", "compare_modular", "compare_parity", "tune_modular_long")
    seeds = ("mlp_lowrank_seeds", "mlp_wine_seeds", "mlp_relu_seeds", "compare_parity_k4")
    for name in (*names, "tune_modular_wide", "tune_parity_ridge", "compare_modular_sqrt63", *seeds):
        assert "machine" in yaml.safe_load((RESULTS / name / "config.yaml").read_text()), name


def test_over_training_table_over_seeds_is_the_three_records():
    """The rank-2 MLP's curve over 3 seeds: seed 0's record and the seeds sweep's two runs, mean [95% t interval] at
    the logged steps and at each seed's own stop; every seed converged."""
    folders = [RESULTS / "mlp_lowrank", *(RESULTS / f"mlp_lowrank_seeds/seed{s}" for s in (1, 2))]
    sweep = [json.loads(line) for line in (RESULTS / "mlp_lowrank_seeds/samples.jsonl").read_text().splitlines()]
    assert [p["seed"] for p in sweep] == [1, 2] and all(p["status"] == "finished" for p in sweep)
    assert (
        "command: harness sweep --task fact_mlp --seeds 1,2" in (RESULTS / "mlp_lowrank_seeds/config.yaml").read_text()
    )
    series = [{r["step"]: r for r in map(json.loads, (f / "metrics.jsonl").read_text().splitlines())} for f in folders]
    finals = [record(f.relative_to(RESULTS).as_posix()) for f in folders]
    assert all(m["converged"] == 1 for m in finals)
    header, rows = table("**Over training, 3 seeds.**")
    keys = {f"FACT layer {i}": f"layer{i}/fact_correlation" for i in range(3)}
    keys.update({f"control layer {i}": f"layer{i}/fact_shuffled_correlation" for i in range(2)})
    keys["residual layer 0"] = "layer0/fact_residual"
    assert [r[0] for r in rows] == ["0", "256", "1024", "stop"]
    for row in rows:
        points = finals if row[0] == "stop" else [s[int(row[0])] for s in series]
        for column, cell in zip(header[1:], row[1:]):
            assert is_interval_of(cell, [p[keys[column]] for p in points]), (row[0], column, cell)
    steps = ", ".join(str(int(m["steps"])) for m in finals[:-1]) + f" and {int(finals[-1]['steps'])} steps"
    assert steps in " ".join(PAGE.read_text().split())


def test_wine_stationary_table_over_seeds_is_the_three_records():
    """Wine at 3 seeds: the largest residual per layer and the NFA correlations' mean [95% t interval]; every seed
    converged with a FACT correlation of 1 to the printed digits."""
    names = ["mlp_wine", "mlp_wine_seeds/seed1", "mlp_wine_seeds/seed2"]
    assert (
        "command: harness sweep --task fact_mlp_wine --seeds 1,2"
        in (RESULTS / "mlp_wine_seeds/config.yaml").read_text()
    )
    finals = [record(name) for name in names]
    assert all(m["converged"] == 1 for m in finals)
    header, rows = table("**At the stationary point, wine, 3 seeds.**")
    assert [r[0] for r in rows] == ["0", "1", "2"]
    for layer, residual, *nfa in rows:
        values = [m[f"layer{layer}/fact_correlation"] for m in finals]
        assert all(close("1.0000", v) for v in values), values
        assert close(residual, max(m[f"layer{layer}/fact_residual"] for m in finals))
        for cell, key in zip(nfa, ("nfa_correlation", "nfa_sqrt_correlation")):
            assert is_interval_of(cell, [m[f"layer{layer}/{key}"] for m in finals]), (layer, key, cell)


def test_relu_runs_over_seeds_are_quoted_from_their_records():
    """The ReLU paragraph's seeds 1 and 2: their gradient norms, and the range of the hidden layers' FACT
    correlations and residuals over all three seeds; no ReLU run converged."""
    finals = [record(name) for name in ("mlp_relu", "mlp_relu_seeds/seed1", "mlp_relu_seeds/seed2")]
    assert not any(m["converged"] for m in finals)
    correlations = [m[f"layer{i}/fact_correlation"] for m in finals for i in (0, 1)]
    residuals = [m[f"layer{i}/fact_residual"] for m in finals for i in (0, 1)]
    text = " ".join(PAGE.read_text().split())
    norms = " and ".join(f"{m['grad_norm']:.3f}" for m in finals[1:])
    assert f"(gradient norm {norms} at step 20000)" in text
    assert f"FACT correlations {min(correlations):.3f} to {max(correlations):.3f}" in text
    assert f"residuals {min(residuals):.2f} to {max(residuals):.2f}." in text


def test_parity_k4_support_mass_sentence():
    """The k = 4 paragraph quotes FACT-RFM's support mass at n = 8000 (mean [95% CI] over seeds) from its record."""
    m = record("compare_parity_k4")
    key = "support_mass@n=8000,update=fact"
    text = " ".join(PAGE.read_text().split())
    assert f"support coordinates {m[key]:.3f} [{m[key + '_ci_low']:.3f}, {m[key + '_ci_high']:.3f}]" in text
    assert yaml.safe_load((RESULTS / "compare_parity_k4/config.yaml").read_text())["task_args"]["k"] == 4
