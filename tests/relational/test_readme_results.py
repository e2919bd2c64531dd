"""The relational results page's tables (docs/papers/relational.md) quote the committed records in
docs/results/relational/."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "docs/results/relational"


def section() -> str:
    match = re.search(r"# relational:.*", (ROOT / "docs/papers/relational.md").read_text(), re.S)
    assert match, "docs/papers/relational.md has no relational section"
    return match.group(0)


def rows(first_cell: str) -> list[list[str]]:
    """Table rows whose first cell matches ``first_cell`` (a regex)."""
    lines = [line for line in section().splitlines() if line.startswith("| ")]
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in lines]
    return [row for row in cells if re.fullmatch(first_cell, row[0])]


def metrics(name: str) -> dict:
    return json.loads((RESULTS / name / "metrics.json").read_text())


def n_value(cell: str) -> float:
    return math.inf if cell.startswith(">") else float(cell)


def check_mean_stderr(cell: str, mean: float, stderr: float | None) -> None:
    numbers = [float(x) for x in re.findall(r"-?[\d.]+", cell)]
    assert numbers[0] == pytest.approx(mean, abs=0.006), cell
    if stderr is not None and len(numbers) > 1:
        assert numbers[1] == pytest.approx(stderr, abs=0.006), cell


def seed_count(record: str) -> int:
    return len(yaml.safe_load((RESULTS / record / "config.yaml").read_text())["seeds"])


def test_templates_accuracy_table():
    """Claim (i): test accuracy at every n of the record's grid, mean [95% CI] over its seeds, for the three
    models (a factor-2 grid, at least 3 seeds)."""
    m = metrics("templates")
    config = yaml.safe_load((RESULTS / "templates" / "config.yaml").read_text())
    grid = sorted(config["grid"]["n"])
    assert seed_count("templates") >= 3
    assert all(b <= 2 * a for a, b in zip(grid, grid[1:])), grid
    header, body = table("model (accuracy)")
    assert header[1:] == [f"n={n}" for n in grid]
    assert [r[0] for r in body] == ["sdpa", "identity", "mlp"]
    for model, *cells in body:
        for n, cell in zip(grid, cells):
            check_interval(cell, m, f"test_accuracy@n={n},attention={model}")


def check_needed(mean_curve: str, per_seed: str, m: dict, name: str, group: str, seeds: int) -> None:
    """An "n to ..." pair of cells: the n on the mean curve, and per seed the geometric mean [95% CI] when every
    seed reaches the threshold, else how many do."""
    assert n_value(mean_curve.replace(" ", "")) == m[f"{name}@{group}"], mean_curve
    reached = int(m[f"{name}_reached@{group}"])
    if reached == seeds:
        numbers = [float(x) for x in re.findall(r"[\d.]+", per_seed)]
        key = f"{name}_geomean@{group}"
        expected = [m[key], m[f"{key}_ci_low"], m[f"{key}_ci_high"]]
        assert numbers == pytest.approx(expected, abs=0.51), per_seed
    else:
        assert per_seed == f"{reached} of {seeds} seeds reach it"


def test_templates_needed_table():
    """Claim (i): n to accuracy 0.9 and to the paper's test loss 0.01, on the mean curve and seed by seed, and the
    test loss at fixed n (mean [95% CI])."""
    m = metrics("templates")
    seeds = seed_count("templates")
    header, body = table("model (n needed)")
    assert [r[0] for r in body] == ["sdpa", "identity", "mlp"]
    for model, to_accuracy, accuracy_seeds, to_loss, loss_seeds, *fixed in body:
        group = f"attention={model}"
        check_needed(to_accuracy, accuracy_seeds, m, "n_to_0.9", group, seeds)
        check_needed(to_loss, loss_seeds, m, "n_to_loss_0.01", group, seeds)
        for name, cell in zip(header[5:], fixed):
            n = re.fullmatch(r"test loss at n=(\d+)", name).group(1)
            check_interval(cell, m, f"test_loss@n={n},attention={model}")


def test_templates_models_fit_their_training_set():
    """The page says every model fits its training set: training accuracy 1 at every point, so at every seed."""
    m = metrics("templates")
    fitted = {k: v for k, v in m.items() if k.startswith("train_accuracy@") and "_" not in k.split("@")[1]}
    assert len(fitted) == 3 * len(yaml.safe_load((RESULTS / "templates" / "config.yaml").read_text())["grid"]["n"])
    assert "All models fit their training set (training accuracy 1.00" in " ".join(section().split())
    assert min(fitted.values()) == 1.0, min(fitted.items(), key=lambda kv: kv[1])


def test_seed_counts_stated():
    """The README's row and the page say how many seeds each claim rests on, as the records have them."""
    first, second = seed_count("templates"), seed_count("inverse_scaling")
    readme = (ROOT / "README.md").read_text()
    row = next(line for line in readme.splitlines() if "docs/papers/relational.md" in line)
    assert f"claim (i) over {first} seeds, claim (ii) over {second} seeds" in row, row
    page = " ".join(section().split())
    assert f"{first} seeds for claim (i)" in page and f"{second} seeds for claim (ii)" in page


def table(first_header: str) -> tuple[list[str], list[list[str]]]:
    """The header and body rows of the table whose first header cell is ``first_header``."""
    lines = section().splitlines()
    found = [i for i, line in enumerate(lines) if line.startswith(f"| {first_header} |")]
    assert len(found) == 1, f"no single table headed {first_header!r}"
    header = [c.strip() for c in lines[found[0]].strip("|").split("|")]
    body = []
    for line in lines[found[0] + 2 :]:
        if not line.startswith("| "):
            break
        body.append([c.strip() for c in line.strip("|").split("|")])
    return header, body


def check_interval(cell: str, m: dict, key: str, tolerance: float = 6e-4) -> None:
    """``mean [low, high]`` (the 95% t interval over seeds) at the printed precision."""
    match = re.fullmatch(r"(-?[\d.]+) \[(-?[\d.]+), (-?[\d.]+)\]", cell)
    assert match, f"{cell!r} is not 'mean [low, high]'"
    for printed, name in zip(map(float, match.groups()), (key, f"{key}_ci_low", f"{key}_ci_high")):
        assert printed == pytest.approx(m[name], abs=tolerance), (cell, name)


@pytest.mark.parametrize(
    ("record", "title", "dims"),
    [("inverse_scaling", "trained", (32, 128)), ("inverse_scaling_frozen", "frozen", (32, 128))],
)
def test_inverse_scaling_tables(record, title, dims):
    """Claim (ii): n to test loss 0.01 on the mean curve and seed by seed, n to error 0.05, loss and error at
    fixed n (mean and 95% CI over 3 seeds), for each attention and embedding dimension."""
    m = metrics(record)
    config = yaml.safe_load((RESULTS / record / "config.yaml").read_text())
    assert len(config["seeds"]) == 3 and "3 seeds" in section()
    assert config["task_args"]["freeze_embeddings"] is (title == "frozen")
    grid = sorted(config["grid"]["n"])
    assert all(b <= 2 * a for a, b in zip(grid, grid[1:])), grid  # a factor-2 grid, finer than the old factor 4
    header, body = table(f"attention ({title})")
    assert [(r[0], int(r[1])) for r in body] == [(a, d) for a in ("sdpa", "identity") for d in dims]
    for attention, d, to_loss, per_seed, to_error, *fixed in body:
        group = f"attention={attention}" + (f",d_model={d}" if len(dims) > 1 else "")  # the summary names what varies
        check_needed(to_loss, per_seed, m, "n_to_loss_0.01", group, 3)
        assert n_value(to_error.replace(" ", "")) == m[f"n_to_error_0.05@{group}"]
        for name, cell in zip(header[5:], fixed):
            metric, n = re.fullmatch(r"test (loss|error) at n=(\d+)", name).groups()
            check_interval(cell, m, f"test_{metric}@d_model={d},n={n},attention={attention}")


def test_llm_table():
    table = rows(r"hf:.*")
    assert [r[0] for r in table] == ["hf:smollm2", "hf:gemma3-270m"]
    for model, accuracy, margin in table:
        m = metrics(f"llm_{model.split(':')[1]}")
        check_mean_stderr(accuracy, m["accuracy"], m["accuracy_stderr"])
        check_mean_stderr(margin, m["margin"], m["margin_stderr"])
