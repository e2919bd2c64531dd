"""The propane results page's tables (docs/papers/propane.md) are read from the committed run records: a code
change that moves a number fails here until the record under docs/results/propane/ is regenerated.

Each table's expected rows are built by a function below from its record; the page must hold exactly those rows."""

import json
import re
from pathlib import Path

import pytest

from harness.evaluation import mean_stderr

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "docs/results/propane"
RECORD = RESULTS / "suite"
PAGE = ROOT / "docs/papers/propane.md"
PM = "\u00b1"


def row(readme: str, label: str) -> list[str]:
    return re.search(rf"^\| {re.escape(label)} \| (.*) \|$", readme, re.M).group(1).split(" | ")


def load(folder: Path) -> dict:
    return json.loads((folder / "metrics.json").read_text())


def samples_of(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "samples.jsonl").read_text().splitlines()]


def pm(m: dict, key: str) -> str:
    return f"{m[key]:.2f} {PM} {m[key + '_stderr']:.2f}"


def pair(values: tuple[float, float]) -> str:
    return f"{values[0]:.2f} {PM} {values[1]:.2f}"


def suite_rows() -> dict[str, list[str]]:
    """PROPANE vs random search: the training KL of each found prompt comes from the record's samples (the record
    predates the suite's kl_train metrics; every sample holds its prompt's kl_train_best)."""
    m, samples = load(RECORD), samples_of(RECORD)
    rows = {}
    for label, method in (("PROPANE", "propane"), ("random search", "random")):
        train = [s["kl_train_best"] for s in samples if s["method"] == method]
        heldout = [s["kl_heldout_best"] for s in samples if s["method"] == method]
        assert mean_stderr(heldout) == pytest.approx((m[f"kl_best_{method}"], m[f"kl_best_{method}_stderr"]))
        gap = mean_stderr([h - t for h, t in zip(heldout, train)])
        rows[label] = [
            pm(m, "kl_initial"),
            pair(mean_stderr(train)),
            pm(m, f"kl_best_{method}"),
            pair(gap),
            pm(m, f"kl_reduction_{method}"),
        ]
    rows["PROPANE \u2212 random, paired by prompt"] = [
        pm(m, "paired_kl_diff"),
        f"{int(m['propane_wins'])} / {int(m['propane_losses'])} / {int(m['ties'])}",
        f"{m['sign_test_p']:.3f}",
    ]
    return rows


def thirty_step_rows() -> dict[str, list[str]]:
    m = load(RESULTS / "smollm2_30_steps")
    return {
        "one search, 30 steps": [pm(m, "kl_heldout_initial"), f"{m['kl_train_best']:.2f}", pm(m, "kl_heldout_best")]
    }


TRANSFER = RESULTS / "transfer_smollm2_to_gemma"
NAMES = {
    "transfer": "PROPANE's prompt",
    "random": "random search's prompt",
    "init": "the start, '! ' x 10",
    "random_prompts": "random prompts",
}


def transfer_rows() -> dict[str, list[str]]:
    """SmolLM2 -> Gemma: per kind of prompt, KL and agreement on Gemma, the share of the way from random prompts
    to p*, and the source model's own held-out and training KL (— where the source has none)."""
    m = load(TRANSFER)
    rows = {}
    for name, label in NAMES.items():
        closed = f"{m[f'closed_{name}']:.2f}" if f"closed_{name}" in m else "0 (by definition)"
        rows[label] = [
            pm(m, f"kl_{name}"),
            pm(m, f"agreement_{name}"),
            closed,
            pm(m, f"kl_{name}_on_source") if f"kl_{name}_on_source_stderr" in m else "\u2014",
            pm(m, f"kl_train_{name}_on_source") if f"kl_train_{name}_on_source_stderr" in m else "\u2014",
        ]
    for a, b in (("transfer", "random_prompts"), ("transfer", "random"), ("transfer", "init")):
        rows[f"{NAMES[a]} \u2212 {NAMES[b]}"] = [
            pm(m, f"diff_{a}_{b}"),
            f"{int(m[f'wins_{a}_{b}'])} / {int(m[f'losses_{a}_{b}'])}",
            f"{m[f'sign_p_{a}_{b}']:.3f}",
        ]
    return rows


WARM = RESULTS / "warm_start"


def warm_rows() -> dict[str, list[str]]:
    m = load(WARM)
    rows = {}
    for label, arm in (("the original prompt", "propane_from_original"), ("random tokens", "propane_from_random")):
        rows[label] = [
            pm(m, f"kl_initial_{arm}"),
            pm(m, f"kl_train_{arm}"),
            pm(m, f"kl_best_{arm}"),
            pm(m, f"kl_gap_{arm}"),
        ]
    rows["from the original \u2212 from random tokens, paired by prompt"] = [
        pm(m, "paired_kl_diff"),
        f"{int(m['propane_from_original_wins'])} / {int(m['propane_from_original_losses'])} / {int(m['ties'])}",
        f"{m['sign_test_p']:.3f}",
    ]
    return rows


WARM_SEEDS = RESULTS / "warm_start_seeds"
SEED_ROWS = {
    "held-out KL after, from the original prompt": "kl_best_propane_from_original",
    "held-out KL after, from random tokens": "kl_best_propane_from_random",
    "training KL after, from the original prompt": "kl_train_propane_from_original",
    "training KL after, from random tokens": "kl_train_propane_from_random",
    "from the original − from random tokens (held-out), paired by prompt": "paired_kl_diff",
}


def warm_seed_rows() -> dict[str, list[str]]:
    """The warm start over seeds: each seed's value is its mean over the 4 prompts; mean and 95% CI over seeds."""
    m = load(WARM_SEEDS)
    return {
        label: [f"{m[key]:.2f}", f"[{m[key + '_ci_low']:.2f}, {m[key + '_ci_high']:.2f}]"]
        for label, key in SEED_ROWS.items()
    }


REVERSE = RESULTS / "transfer_gemma_to_smollm2"
REVERSE_NAMES = {
    "transfer": "PROPANE's prompt, found on Gemma",
    "init": "the Gemma search's start, '! ' x 10",
    "random_prompts": "random SmolLM2 prompts",
}


def reverse_rows() -> dict[str, list[str]]:
    """Gemma -> SmolLM2, one target prompt: means and stderrs over SmolLM2's 32 documents."""
    m, search = load(REVERSE), load(RESULTS / "gemma_search_p0")
    rows = {}
    for name in ("transfer", "init", "random_prompts"):
        on_source = {
            "transfer": f"{search['kl_train_best']:.2f} / {pm(search, 'kl_heldout_best')}",
            "init": f"\u2014 / {pm(search, 'kl_heldout_initial')}",
            "random_prompts": "\u2014",
        }[name]
        closed = f"{m[f'closed_{name}']:.2f}" if f"closed_{name}" in m else "0 (by definition)"
        rows[REVERSE_NAMES[name]] = [pm(m, f"kl_{name}"), pm(m, f"agreement_{name}"), closed, on_source]
    return rows


TABLES = {
    "suite": (RECORD, suite_rows),
    "thirty_steps": (RESULTS / "smollm2_30_steps", thirty_step_rows),
    "transfer": (TRANSFER, transfer_rows),
    "warm_start": (WARM, warm_rows),
    "warm_start_seeds": (WARM_SEEDS, warm_seed_rows),
    "reverse": (REVERSE, reverse_rows),
}


@pytest.mark.parametrize("table", sorted(TABLES))
def test_the_pages_table_matches_its_record(table):
    folder, rows = TABLES[table]
    page = PAGE.read_text()
    for label, cells in rows().items():
        assert row(page, label) == cells, (table, label)
    for plot in folder.glob("*.png"):
        assert f"../results/propane/{folder.name}/{plot.name}" in page or table == "thirty_steps", plot


def test_the_page_says_how_many_prompts_and_seeds():
    page = PAGE.read_text()
    assert f"over {int(load(RECORD)['prompts'])} target prompts" in page
    assert f"{int(load(TRANSFER)['prompts'])} target prompts, one search seed" in page
    assert f"{int(load(WARM)['prompts'])} target prompts, one seed" in page
    points = samples_of(WARM_SEEDS)
    assert len(points) >= 3 and all(p["status"] == "finished" for p in points)
    assert f"over {len(points)} seeds" in page


def test_the_records_are_the_presets_runs():
    config = (RECORD / "config.yaml").read_text()
    assert "task: propane_suite" in config and "model: hf:smollm2" in config
    samples = samples_of(RECORD)
    assert len(samples) == 2 * load(RECORD)["prompts"]
    assert (RECORD / "paired_kl.png").stat().st_size > 5000
    assert "command: harness sweep --task propane_warm_start --seeds 0,1,2" in (WARM_SEEDS / "config.yaml").read_text()
    warm = (WARM / "config.yaml").read_text()
    assert "command: harness run --task propane_warm_start" in warm and "model: hf:smollm2" in warm
    transfer = (TRANSFER / "config.yaml").read_text()
    assert "model: hf:gemma3-270m" in transfer and "source: docs/results/propane/suite" in transfer
    reverse = (REVERSE / "config.yaml").read_text()
    assert "model: hf:smollm2" in reverse and "source: docs/results/propane/gemma_search_p0" in reverse
    assert "model: hf:gemma3-270m" in (RESULTS / "gemma_search_p0/config.yaml").read_text()


def test_readme_thirty_step_search_matches_its_record():
    """The performance page (docs/performance.md) quotes the 30-step search's record."""
    record = ROOT / "docs/results/propane/smollm2_30_steps"
    m = json.loads((record / "metrics.json").read_text())
    readme = (ROOT / "docs/performance.md").read_text()
    after = f"{m['kl_heldout_best']:.2f} \u00b1 {m['kl_heldout_best_stderr']:.2f}"
    assert f"held-out KL {m['kl_heldout_initial']:.2f} to {after}" in readme
    assert int(m["steps"]) == 30 and "steps=30" in (record / "config.yaml").read_text()
    minutes, seconds = re.search(r"Elapsed .*: (\d+):(\d+)\.", (record / "time.txt").read_text()).groups()
    assert f"{int(minutes)} min {int(seconds)} s wall" in readme


if __name__ == "__main__":  # prints the page's rows from the records (what the tables must say)
    for name, (folder, rows) in TABLES.items():
        if (folder / "metrics.json").exists():
            print(f"## {name}")
            for label, cells in rows().items():
                print(f"| {label} | {' | '.join(cells)} |")
