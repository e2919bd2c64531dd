"""``harness compare A B`` on real runs: the shipped capitals_mc task scored by SmolLM2 and by a tiny random Llama,
paired by sample id, each statistic checked against scipy/statsmodels on the runs' own samples; and the one-line
refusals (different tasks, different samples)."""

import json

import numpy as np
import pytest
import scipy.stats
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.proportion import proportion_confint

from harness.cli import main


def run(capsys, out, *args) -> dict:
    assert main(["run", "--task", "capitals_mc", "--out", str(out), "--json", "--no-cache", *map(str, args)]) == 0
    return json.loads(capsys.readouterr().out)


def samples(result: dict) -> list[dict]:
    return [json.loads(line) for line in open(f"{result['dir']}/samples.jsonl")]


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory, tiny_folder):
    """capitals_mc (20 questions, 4 cities each) by SmolLM2 and by the tiny random Llama, in one results folder."""
    import contextlib
    import io

    out = tmp_path_factory.mktemp("compare") / "runs"
    results = []
    for model in ("hf:smollm2", f"hf:{tiny_folder}"):
        buffer = io.StringIO()
        with contextlib.redirect_stdout(buffer):
            argv = ["run", "--task", "capitals_mc", "--model", model, "--out", str(out), "--json", "--no-cache"]
            assert main(argv) == 0
        results.append(json.loads(buffer.getvalue()))
    return out, results


def test_compare_pairs_two_real_runs_by_sample_id(two_runs, capsys, one_thread):
    out, (a, b) = two_runs
    assert main(["compare", a["run_id"], b["run_id"], "--out", str(out), "--format", "json"]) == 0
    result = json.loads(capsys.readouterr().out)  # JSON only, no header lines
    left, right = samples(a), samples(b)
    assert result["n"] == 20 and [s["id"] for s in left] == [s["id"] for s in right]
    rows = {row["metric"]: row for row in result["paired"]}
    assert set(rows) == {"acc", "acc_norm", "gold_loglikelihood"}
    assert {r["metric"] for r in result["metrics"]} == {"acc", "acc_norm"}  # the side-by-side of before, kept

    for metric in ("acc", "acc_norm"):  # 0/1 scores: McNemar's exact test and Wilson intervals
        x, y = np.array([s[metric] for s in left]), np.array([s[metric] for s in right])
        row = rows[metric]
        b_count, c_count = int(((x == 1) & (y == 0)).sum()), int(((x == 0) & (y == 1)).sum())
        assert (row["kind"], row["test"], row["a_only"], row["b_only"]) == ("binary", "mcnemar_exact", b_count, c_count)
        table = [[int(((x == 1) & (y == 1)).sum()), b_count], [c_count, int(((x == 0) & (y == 0)).sum())]]
        assert isinstance(row["p_value"], float)
        assert row["p_value"] == pytest.approx(mcnemar(table, exact=True).pvalue)
        assert row["ci_a"] == pytest.approx(list(proportion_confint(x.sum(), 20, method="wilson")))
        assert row["ci_b"] == pytest.approx(list(proportion_confint(y.sum(), 20, method="wilson")))
        assert row["difference"] == pytest.approx(y.mean() - x.mean())
    assert rows["acc"]["mean_a"] > rows["acc"]["mean_b"]  # SmolLM2 knows capitals, a random model does not
    assert rows["acc"]["p_value"] < 0.01

    # continuous scores: the gold choice's loglikelihood, a sign-flip test and Wilcoxon's
    x = np.array([s["loglikelihoods"][s["gold"]] for s in left])
    y = np.array([s["loglikelihoods"][s["gold"]] for s in right])
    row = rows["gold_loglikelihood"]
    assert row["kind"] == "continuous" and row["test"] == "permutation"
    assert row["difference"] == pytest.approx(np.mean(y - x))
    assert row["p_wilcoxon"] == pytest.approx(scipy.stats.wilcoxon(y - x).pvalue)
    reference = scipy.stats.permutation_test(
        (y - x,), np.mean, permutation_type="samples", n_resamples=20_000, rng=np.random.default_rng(0)
    ).pvalue
    assert row["p_value"] == pytest.approx(reference, abs=0.005)
    low, high = scipy.stats.t.interval(0.95, 19, loc=x.mean(), scale=scipy.stats.sem(x))
    assert row["ci_a"] == pytest.approx([low, high])
    assert row["difference_ci"][0] < row["difference"] < row["difference_ci"][1]


def test_compare_prints_both_sections_as_a_table(two_runs, capsys):
    out, (a, b) = two_runs
    assert main(["compare", a["run_id"], b["run_id"], "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert text.startswith(f"A: {a['run_id']} (capitals_mc, hf:smollm2)")
    assert "delta" in text and "McNemar exact" in text and "sign-flip permutation" in text and "A only" in text
    assert main(["compare", a["run_id"], b["run_id"], "--out", str(out), "--format", "csv"]) == 0
    header = capsys.readouterr().out.splitlines()[0].split(",")
    assert {"metric", "p_value", "ci_a_low", "difference_ci_high"} <= set(header)


def test_compare_refuses_runs_whose_samples_do_not_pair(two_runs, tiny_folder, capsys, one_thread):
    out, (a, _) = two_runs
    limited = run(capsys, out, "--model", f"hf:{tiny_folder}", "--limit", "5")
    assert main(["compare", a["run_id"], limited["run_id"], "--out", str(out)]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "15 ids only in A" in error[0] and "--limit" in error[0]


def test_compare_refuses_runs_of_different_tasks(tmp_path, capsys):
    from harness.store import Run

    ids = []
    for task in ("qa", "sums"):
        config = {"task": task, "model": "m", "model_args": {}}
        record = Run.open(tmp_path, config, config)
        record.append_samples([{"id": "0", "acc": 1.0}])
        record.finish({"acc": 1.0}, "acc")
        record.close()
        ids.append(record.id)
    assert main(["compare", *ids, "--out", str(tmp_path)]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "different tasks (qa, sums)" in error[0]
    assert main(["compare", *ids, "--out", str(tmp_path), "--confidence", "2"]) == 2
    assert "--confidence 2.0" in capsys.readouterr().err
