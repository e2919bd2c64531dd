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


# sweeps: paired by (point, seed) -----------------------------------------------------------------------------------
NOISY = ("-p", "harness_compareplugin")
SEEDS = [0, 1, 2, 3]


def sweep(out, *args) -> str:
    """Run ``harness sweep --task noisy ARGS`` (points in spawned workers) and return the sweep's run id."""
    from cli_helpers import run_harness

    result = run_harness(*NOISY, "sweep", "--task", "noisy", "--out", out, "--workers", "2", "--json", *args)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["run_id"]


def point_values(out, metric: str, **fixed) -> dict[tuple, float]:
    """Every finished noisy run's ``metric`` by (shift, seed), read from its own config.yaml and metrics.json."""
    import yaml

    from harness.store import Index

    values = {}
    for row in Index(out).runs("finished"):
        if row["task"] != "noisy":
            continue
        config = yaml.safe_load(open(f"{row['dir']}/config.yaml"))
        args = config["task_args"]
        if all(args.get(k, 0.0) == v for k, v in fixed.items()):
            values[(args.get("shift", 0.0), config["seed"])] = json.load(open(f"{row['dir']}/metrics.json"))[metric]
    return values


def check_row(row: dict, xs: list[float], ys: list[float]) -> None:
    """One paired row against scipy: t intervals, the exact sign-flip p over seeds, Wilcoxon's p."""
    x, y = np.array(xs), np.array(ys)
    n = len(x)
    assert row["n"] == n and row["a_values"] == pytest.approx(xs) and row["b_values"] == pytest.approx(ys)
    for key, values in (("a", x), ("b", y), ("difference", y - x)):
        mean = row["difference"] if key == "difference" else row[f"mean_{key}"]
        ci = row["difference_ci"] if key == "difference" else row[f"ci_{key}"]
        assert mean == pytest.approx(values.mean())
        assert ci == pytest.approx(
            list(scipy.stats.t.interval(0.95, n - 1, loc=values.mean(), scale=scipy.stats.sem(values)))
        )
    exact = scipy.stats.permutation_test((y - x,), np.mean, permutation_type="samples", n_resamples=np.inf).pvalue
    assert row["exact"] and isinstance(row["p_value"], float) and row["p_value"] == pytest.approx(exact)
    assert row["p_wilcoxon"] == pytest.approx(scipy.stats.wilcoxon(y - x).pvalue)


@pytest.fixture(scope="module")
def sweeps(tmp_path_factory):
    """Two sweeps of noisy over shift=0,1 and 4 seeds (B with bonus=0.8), and a seeds-only sweep of 5 seeds."""
    out = tmp_path_factory.mktemp("sweeps") / "runs"
    a = sweep(out, "--grid", "shift=0,1", "--seeds", "0,1,2,3", "--metrics", "u,v")
    b = sweep(out, "--grid", "shift=0,1", "--seeds", "0,1,2,3", "--task-args", "bonus=0.8")
    seeds_only = sweep(out, "--seeds", "0,1,2,3,4", "--task-args", "shift=2")
    return out, a, b, seeds_only


def test_compare_two_sweeps_pairs_by_point_and_seed(sweeps, capsys):
    out, a, b, _ = sweeps
    assert main(["compare", a, b, "--out", str(out), "--format", "json"]) == 0
    result = json.loads(capsys.readouterr().out)  # JSON only
    assert result["mode"] == "sweeps" and result["seeds"] == SEEDS and result["points"] == 2
    assert result["a"]["run_id"] == a and result["b"]["run_id"] == b and result["a"]["task"] == "sweep:noisy"
    rows = {(row["metric"], row["point"]): row for row in result["paired"]}
    assert set(rows) == {(m, f"shift={s}") for m in ("u", "v") for s in (0, 1)}
    for metric in ("u", "v"):
        left, right = point_values(out, metric, bonus=0.0), point_values(out, metric, bonus=0.8)
        for shift in (0, 1):
            xs, ys = [left[(shift, s)] for s in SEEDS], [right[(shift, s)] for s in SEEDS]
            check_row(rows[(metric, f"shift={shift}")], xs, ys)
    assert all(0 < row["difference"] < 2 for row in result["paired"])  # B adds 0.8 on average, with noise

    assert main(["compare", a, b, "--out", str(out), "--metrics", "v"]) == 0
    text = capsys.readouterr().out
    assert text.startswith(f"A: {a} (sweep:noisy") and "paired by (point, seed): 2 point(s) x 4 seeds" in text
    assert "exact over 2^4 sign flips" in text and "shift=1" in text and "Wilcoxon p" in text
    assert main(["compare", a, b, "--out", str(out), "--format", "csv"]) == 0
    header = capsys.readouterr().out.splitlines()[0].split(",")
    assert {"metric", "point", "p_value", "p_wilcoxon", "difference_ci_low"} <= set(header)


def test_compare_two_arms_of_a_seeds_only_sweep(sweeps, capsys):
    out, _, _, seeds_only = sweeps
    assert main(["compare", seeds_only, "--arms", "u,v", "--out", str(out), "--format", "json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["mode"] == "arms" and result["seeds"] == [0, 1, 2, 3, 4]
    assert (result["a"]["arm"], result["b"]["arm"]) == ("u", "v")
    (row,) = result["paired"]
    assert row["metric"] == "v - u" and row["point"] == ""
    seeds = range(5)
    u, v = point_values(out, "u", shift=2), point_values(out, "v", shift=2)
    check_row(row, [u[(2, s)] for s in seeds], [v[(2, s)] for s in seeds])
    assert main(["compare", seeds_only, "--arms", "u,v", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    header = next(line for line in text.splitlines() if line.startswith("metric"))
    assert "arm u" in text and "arm v" in text and "point" not in header  # seeds alone: no grid values


@pytest.mark.parametrize(
    "args, message",
    [
        (["A", "--grid", "shift=0,1", "--seeds", "0,1,2"], "ran different seeds (0,1,2,3 vs 0,1,2)"),
        (["A", "--grid", "shift=0", "--seeds", "0,1,2,3"], "ran different points (1 only in A, 0 only in B"),
        (["A", "--grid", "shift=0,1", "--seeds", "0"], "ran one seed per point: pairing over seeds needs at least two"),
    ],
)
def test_compare_refuses_sweeps_that_do_not_pair(sweeps, capsys, args, message):
    out, a, _, _ = sweeps
    other = sweep(out, *args[1:])  # its points are A's runs, found finished in --out: nothing runs again
    assert main(["compare", a, other, "--out", str(out)]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and message in error[0], error


def test_compare_refuses_bad_arms_and_run_counts(sweeps, capsys):
    from harness.store import Index

    out, a, _, _ = sweeps
    point = next(r["run_id"] for r in Index(out).runs() if r["task"] == "noisy")
    cases = [
        (["compare", a, point], f"run {point} (noisy) is not a sweep"),
        (["compare", a, "--arms", "u,w"], "'w' is not a metric of every point"),
        (["compare", a, "--arms", "u"], "--arms u: give two metrics"),
        (["compare", a], "1 runs given"),
        (["compare", a, a, "--arms", "u,v"], "2 runs given"),
        (["compare", a, a, "--metrics", "nope"], "metric 'nope' is not in every point"),
    ]
    for argv, message in cases:
        assert main([*argv, "--out", str(out)]) == 2
        error = capsys.readouterr().err.strip().splitlines()
        assert len(error) == 1 and message in error[0], error
