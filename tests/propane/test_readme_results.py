"""The propane results page's tables (docs/papers/propane.md) are read from the committed run records: a code
change that moves a number fails here until the record under docs/results/propane/ is regenerated.

Each table's expected rows are built by a function below from its record; the page must hold exactly those rows."""

import json
import re
from pathlib import Path

import pytest
from harness.plugins.propane.suite import sign_test

from harness.evaluation import mean_stderr
from harness.stats import mean_ci

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


# Over seeds, SmolLM2 -> Gemma: seed 0 is the one-seed record above (docs/results/propane/suite, and the transfer of
# its prompts); seeds 1 and 2 are `harness sweep --seeds 1,2` records with each point's run record beside them
# (seed<N>/). Gemma -> SmolLM2: both sweeps ran seeds 0, 1 and 2 (no seed-0 record of their own).
SUITE_SEEDS = RESULTS / "suite_seeds"
TRANSFER_SEEDS = RESULTS / "transfer_seeds"
GEMMA_SEEDS = RESULTS / "gemma_suite_seeds"
REVERSE_SEEDS = RESULTS / "reverse_seeds"


def seed_records(zero: Path | None, sweep: Path) -> list[Path]:
    """The run records of seeds 0, 1, 2, ...: seed 0's own record when the sweep starts at seed 1, then the sweep's
    points (each point's metrics in the sweep's samples must equal its committed run record's)."""
    points = samples_of(sweep)
    first = 0 if zero is None else 1
    assert [p["seed"] for p in points] == list(range(first, first + len(points)))
    assert all(p["status"] == "finished" for p in points)
    for point in points:
        m = load(sweep / f"seed{point['seed']}")
        assert all(m[key] == pytest.approx(value) for key, value in point["metrics"].items()), point["seed"]
    sweep_metrics = load(sweep)
    for key in sweep_metrics:
        if not key.endswith(("_stderr", "_ci_low", "_ci_high")):
            mean = sum(p["metrics"][key] for p in points) / len(points)
            assert sweep_metrics[key] == pytest.approx(mean), key
    return ([zero] if zero else []) + [sweep / f"seed{p['seed']}" for p in points]


def over_seeds(values: list[float]) -> str:
    """Mean over seeds and its 95% t interval (harness.stats.mean_ci, what harness sweep reports)."""
    interval = mean_ci(values)
    return f"{interval.estimate:.2f} [{interval.low:.2f}, {interval.high:.2f}]"


def per_seed(values: list[float]) -> str:
    return ", ".join(f"{v:.2f}" for v in values)


def prompt_wins(first: list[list[float]], second: list[list[float]]) -> list[str]:
    """Per target prompt, the mean over seeds of first minus second; prompts lower / higher, and the sign test."""
    diff = [sum(a) / len(a) - sum(b) / len(b) for a, b in zip(zip(*first), zip(*second))]
    wins, losses = sum(d < 0 for d in diff), sum(d > 0 for d in diff)
    return [f"{wins} / {losses}", f"{sign_test(wins, losses):.3f}"]


def suite_seed_values(folder: Path, prompts: int) -> dict[str, dict[str, list[float]]]:
    """One suite record's values per method for its first ``prompts`` target prompts, from its samples (seed 0's
    record ran all 10 prompts and predates kl_train; a prompt's search does not depend on how many others ran)."""
    values = {}
    for method in ("propane", "random"):
        samples = [s for s in samples_of(folder) if s["method"] == method][:prompts]
        before = [s["kl_heldout_initial"] for s in samples]
        train = [s["kl_train_best"] for s in samples]
        after = [s["kl_heldout_best"] for s in samples]
        values[method] = {
            "before": before,
            "train": train,
            "after": after,
            "gap": [a - t for a, t in zip(after, train)],
            "reduction": [b - a for b, a in zip(before, after)],
        }
        m = load(folder)
        if m["prompts"] == prompts:
            assert mean_stderr(after) == pytest.approx((m[f"kl_best_{method}"], m[f"kl_best_{method}_stderr"]))
            if f"kl_train_{method}" in m:  # seed 0's record predates it
                assert mean_stderr(train) == pytest.approx((m[f"kl_train_{method}"], m[f"kl_train_{method}_stderr"]))
    return values


SUITE_SEED_ROWS = {
    "held-out KL before search": "before",
    "training KL after search": "train",
    "held-out KL after search": "after",
    "held-out − training after search": "gap",
    "reduction of the held-out KL": "reduction",
}


def suite_seed_rows(zero: Path | None = RECORD, sweep: Path = SUITE_SEEDS, prefix: str = "") -> dict[str, list[str]]:
    """The suite over seeds: each seed's value is its mean over the sweep's prompts (the first n of the 10); mean
    and 95% t CI over seeds; the paired row adds each seed's difference and the sign test over prompts (each
    prompt's mean over seeds). ``prefix`` starts each row's label (the page has one such table per model)."""
    folders = seed_records(zero, sweep)
    prompts = int(load(folders[-1])["prompts"])
    seeds = [suite_seed_values(folder, prompts) for folder in folders]

    def seed_means(method: str, kind: str) -> list[float]:
        return [sum(s[method][kind]) / len(s[method][kind]) for s in seeds]

    rows = {
        prefix + label: [over_seeds(seed_means("propane", kind)), over_seeds(seed_means("random", kind))]
        for label, kind in SUITE_SEED_ROWS.items()
    }
    diffs = [a - b for a, b in zip(seed_means("propane", "after"), seed_means("random", "after"))]
    rows[prefix + "PROPANE − random search, paired by prompt and seed"] = [
        over_seeds(diffs),
        per_seed(diffs),
        *prompt_wins([s["propane"]["after"] for s in seeds], [s["random"]["after"] for s in seeds]),
    ]
    return rows


TRANSFER_SEED_NAMES = {name: f"{label}, over seeds" for name, label in NAMES.items()}
REVERSE_SEED_NAMES = {
    "transfer": "PROPANE's prompt, found on Gemma, over seeds",
    "random": "random search's prompt, found on Gemma, over seeds",
    "init": "the Gemma search's start, '! ' x 10, over seeds",
    "random_prompts": "random SmolLM2 prompts, over seeds",
}
ON_SOURCE = {"transfer": ("propane", "after"), "random": ("random", "after"), "init": ("propane", "before")}


def transfer_seed_rows(
    transfer: tuple = (TRANSFER, TRANSFER_SEEDS),
    suite: tuple = (RECORD, SUITE_SEEDS),
    names: dict = TRANSFER_SEED_NAMES,
) -> dict[str, list[str]]:
    """A transfer over search seeds, on the suite sweep's prompts (SmolLM2 -> Gemma's seed 0: the first n of the
    one-seed transfer record's): per kind of prompt, each seed's mean over prompts of its KL on the other model,
    then the mean and 95% t CI over seeds; the share closed per seed from those means; the source model's own KLs
    from the suite's records. ``transfer`` and ``suite`` are (seed-0 record or None, sweep)."""
    folders = seed_records(*transfer)
    suite_folders = seed_records(*suite)
    prompts = int(load(suite_folders[-1])["prompts"])
    per_prompt = [samples_of(folder)[:prompts] for folder in folders]
    for folder, samples in zip(folders, per_prompt):
        m = load(folder)
        assert m["prompts"] >= prompts
        if m["prompts"] == prompts:
            assert m["kl_transfer"] == pytest.approx(mean_stderr([s["kl_transfer"] for s in samples])[0])
    suites = [suite_seed_values(folder, prompts) for folder in suite_folders]

    def seed_means(name: str) -> list[float]:
        return [sum(s[f"kl_{name}"] for s in samples) / prompts for samples in per_prompt]

    rows = {}
    for name, label in names.items():
        closed = "0 (by definition)"
        if name != "random_prompts":
            closed = over_seeds([1 - a / b for a, b in zip(seed_means(name), seed_means("random_prompts"))])
        on_source = ["\u2014", "\u2014"]
        if name in ON_SOURCE:
            method, kind = ON_SOURCE[name]
            on_source[0] = over_seeds([sum(s[method][kind]) / prompts for s in suites])
            if kind == "after":
                on_source[1] = over_seeds([sum(s[method]["train"]) / prompts for s in suites])
        rows[label] = [over_seeds(seed_means(name)), closed, *on_source]
    for a, b in (("transfer", "random_prompts"), ("transfer", "random"), ("transfer", "init")):
        diffs = [x - y for x, y in zip(seed_means(a), seed_means(b))]
        compared = " \u2212 ".join(names[k].removesuffix(", over seeds") for k in (a, b))
        rows[f"{compared}, paired by prompt and seed"] = [
            over_seeds(diffs),
            per_seed(diffs),
            *prompt_wins(
                [[s[f"kl_{a}"] for s in samples] for samples in per_prompt],
                [[s[f"kl_{b}"] for s in samples] for samples in per_prompt],
            ),
        ]
    return rows


TABLES = {
    "suite": (RECORD, suite_rows),
    "thirty_steps": (RESULTS / "smollm2_30_steps", thirty_step_rows),
    "transfer": (TRANSFER, transfer_rows),
    "warm_start": (WARM, warm_rows),
    "warm_start_seeds": (WARM_SEEDS, warm_seed_rows),
    "reverse": (REVERSE, reverse_rows),
    "suite_seeds": (SUITE_SEEDS, suite_seed_rows),
    "transfer_seeds": (TRANSFER_SEEDS, transfer_seed_rows),
    "gemma_suite_seeds": (GEMMA_SEEDS, lambda: suite_seed_rows(None, GEMMA_SEEDS, "on Gemma: ")),
    "reverse_seeds": (
        REVERSE_SEEDS,
        lambda: transfer_seed_rows((None, REVERSE_SEEDS), (None, GEMMA_SEEDS), REVERSE_SEED_NAMES),
    ),
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
    prompts = int(load(SUITE_SEEDS / "seed1")["prompts"])
    which = "all" if prompts == load(RECORD)["prompts"] else "the first"
    assert f"Over {len(samples_of(SUITE_SEEDS)) + 1} seeds, on {which} {prompts} target prompts" in page
    gemma = samples_of(GEMMA_SEEDS)
    assert f"over {len(gemma)} seeds, on the first {int(load(GEMMA_SEEDS / 'seed0')['prompts'])} target prompts" in page


def test_the_pages_per_seed_gaps_are_the_records():
    """The prose under the 3-seed table quotes each seed's mean held-out minus training gap per method."""
    folders = seed_records(RECORD, SUITE_SEEDS)
    seeds = [suite_seed_values(folder, int(load(folders[-1])["prompts"])) for folder in folders]
    gaps = {m: ", ".join(f"{sum(s[m]['gap']) / len(s[m]['gap']):.2f}" for s in seeds) for m in ("propane", "random")}
    text = " ".join(PAGE.read_text().split())
    assert f"(PROPANE {gaps['propane']}; random search {gaps['random']})" in text


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
    assert "command: harness sweep --task propane_suite --seeds 1,2" in (SUITE_SEEDS / "config.yaml").read_text()
    for point in samples_of(SUITE_SEEDS):
        config = (SUITE_SEEDS / f"seed{point['seed']}" / "config.yaml").read_text()
        assert f"seed: {point['seed']}" in config and "model: hf:smollm2" in config and "task: propane_suite" in config
    transfer_seeds = (TRANSFER_SEEDS / "config.yaml").read_text()
    assert "command: harness sweep --task propane_transfer --seeds 1,2" in transfer_seeds
    assert "source: docs/results/propane/suite_seeds/seed{seed}" in transfer_seeds
    for point in samples_of(TRANSFER_SEEDS):
        config = (TRANSFER_SEEDS / f"seed{point['seed']}" / "config.yaml").read_text()
        assert f"seed: {point['seed']}" in config and "model: hf:gemma3-270m" in config
    assert (
        "command: harness sweep --task propane_suite --model hf:gemma3-270m --seeds 0,1,2"
        in (GEMMA_SEEDS / "config.yaml").read_text()
    )
    reverse = (REVERSE_SEEDS / "config.yaml").read_text()
    assert "command: harness sweep --task propane_transfer --model hf:smollm2 --seeds 0,1,2" in reverse
    assert "source: docs/results/propane/gemma_suite_seeds/seed{seed}" in reverse
    for folder, model in ((GEMMA_SEEDS, "gemma3-270m"), (REVERSE_SEEDS, "smollm2")):
        for point in samples_of(folder):
            config = (folder / f"seed{point['seed']}" / "config.yaml").read_text()
            assert f"seed: {point['seed']}" in config and f"model: hf:{model}" in config


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
