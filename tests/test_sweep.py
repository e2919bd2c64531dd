"""Sweeps (harness/sweep/): grid parsing, preset blocks, bad input, the sweep run's metrics, resume after kill -9,
the graph_cot depth curve against its closed form, and (marked ``ray``, tox -e ray) the same through Ray."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from cli_helpers import harness_env, run_harness
from ray_cluster import live_workers

from harness import registry
from harness.cli import main
from harness.errors import UsageError
from harness.presets import load_presets, parse_preset
from harness.store import Index
from harness.sweep.collect import geometric
from harness.sweep.plan import check_grid_keys, task_threads
from harness.sweep.spec import format_kv, parse_grid

PLUGIN = ("-p", "harness_sweepplugin")


def sweep_run(out: Path) -> dict:
    """The sweep run's index row (exactly one sweep in ``out``)."""
    (row,) = [r for r in Index(out).runs() if r["task"].startswith("sweep:")]
    return row


def point_rows(out: Path, task: str) -> list[dict]:
    return [r for r in Index(out).runs() if r["task"] == task]


def samples(row: dict) -> list[dict]:
    return [json.loads(line) for line in (Path(row["dir"]) / "samples.jsonl").read_text().splitlines()]


# parsing -----------------------------------------------------------------------------------------------------------
def test_grid_string_values_are_parsed_like_task_args():
    grid = parse_grid("n=16,64,256; attention=sdpa,identity;lr=0.001,1e-4;flag=true,false")
    assert grid == {"n": [16, 64, 256], "attention": ["sdpa", "identity"], "lr": [0.001, 1e-4], "flag": [True, False]}
    assert format_kv({"lr": 1e-4, "flag": False, "x": None, "s": "a b"}) == "lr=0.0001,flag=false,x=none,s=a b"


@pytest.mark.parametrize(
    "text, message",
    [
        ("n", "expected arg=v1,v2,... groups"),
        ("n=", "'n' has an empty value"),
        ("n=1,,2", "'n' has an empty value"),
        ("n=1;n=2", "'n' appears twice"),
        ("n=1,1", "lists a value twice"),
        ("1n=2", "expected arg=v1,v2,... groups"),
        (";", "no args to sweep"),
    ],
)
def test_malformed_grid_strings(text, message):
    with pytest.raises(UsageError, match=message):
        parse_grid(text)


def test_geometric_grids_get_log_x():
    assert geometric([16, 64, 256, 1024]) and geometric([0.001, 0.01, 0.1]) and geometric([8, 2, 4])
    assert not geometric([1, 2, 3, 4]) and not geometric([0, 1, 2]) and not geometric([16, 64])
    assert not geometric([1, 2, 8])


def test_importing_sweep_imports_neither_ray_nor_torch():
    code = "import sys, harness.sweep, harness.commands; print(sorted({'ray', 'torch'} & set(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=harness_env())
    assert result.returncode == 0 and result.stdout.strip() == "[]", result.stderr


SWEEP_PRESET = (
    "task: line\nargs: {n: 2}\nsweep:\n  grid: {a: [1, 2], shape: [flat, steep]}\n  seeds: [0, 1]\n"
    "  plots: [{metric: y, x: a}]\n  workers: 1\n"
)


def test_preset_sweep_block_is_parsed_and_described():
    preset = parse_preset("p", SWEEP_PRESET, "p.yaml")
    assert preset.sweep.grid == {"a": [1, 2], "shape": ["flat", "steep"]} and preset.sweep.seeds == [0, 1]
    assert preset.sweep.plots == [{"metric": "y", "x": "a"}] and preset.sweep.workers == 1
    assert preset.description == "(sweep: a x shape x 2 seeds, 8 runs)"
    assert parse_preset("q", "task: line\n", "q.yaml").sweep is None


@pytest.mark.parametrize(
    "block, message",
    [
        ("sweep: [1]", "p.yaml: key 'sweep' must be dict"),
        ("sweep: {seeds: [0]}", "p.yaml: key 'sweep.grid' must be a mapping"),
        ("sweep: {grid: {}}", "p.yaml: key 'sweep.grid' must be a mapping"),
        ("sweep: {grid: {n: []}}", "p.yaml: key 'sweep.grid.n' must be a non-empty list"),
        ("sweep: {grid: {n: 3}}", "p.yaml: key 'sweep.grid.n' must be a non-empty list"),
        ("sweep: {grid: {n: [1, 1]}}", "p.yaml: key 'sweep.grid.n' lists a value twice"),
        ("sweep: {grid: {n: [1]}, seeds: [a]}", "p.yaml: key 'sweep.seeds' must be a non-empty list of integers"),
        ("sweep: {grid: {n: [1]}, metrics: acc}", "p.yaml: key 'sweep.metrics' must be a list"),
        ("sweep: {grid: {n: [1]}, plots: [{metric: y, x: m}]}", "p.yaml: key 'sweep.plots': x 'm' is not swept"),
        ("sweep: {grid: {n: [1]}, plots: [{metric: y}]}", "p.yaml: key 'sweep.plots' entries must be"),
        ("sweep: {grid: {n: [1]}, workers: 0}", "p.yaml: key 'sweep.workers' must be a positive integer"),
        ("sweep: {grid: {n: [1]}, workerz: 2}", "p.yaml: key 'sweep.workerz' is unknown"),
    ],
)
def test_invalid_sweep_blocks_name_file_and_key(block, message):
    with pytest.raises(UsageError, match=message.replace("[", r"\[").replace("(", r"\(")):
        parse_preset("p", f"task: line\n{block}\n", "p.yaml")


# bad input: one line, exit 2, before any point runs ---------------------------------------------------------------
@pytest.fixture
def in_process(tmp_path, capsys):
    """``harness`` in this process: (exit status, stderr); the plugin set is restored afterwards."""
    previous = registry._current

    def call(*args):
        code = main([*PLUGIN, *map(str, args)])
        return code, capsys.readouterr().err

    yield call
    registry.set_plugins(previous)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--grid", "shap=flat,steep"], "task 'line' has no arg 'shap' (--grid); did you mean 'shape'?"),
        (["--grid", "a=1,"], "'a' has an empty value"),
        (["--grid", "a"], "expected arg=v1,v2,... groups"),
        (["--grid", "a=1,2", "--workers", "0"], "--workers 0: give at least 1"),
        (["--grid", "shape=flat,round"], "shape=round: choose flat or steep"),
        (["--grid", "n=two"], "option 'n' must be int"),
        (["--grid", "a=1,2", "--task-args", "a=3"], "'a' is both swept (--grid) and fixed by --task-args"),
        (["--grid", "a=1,2", "--seeds", "0,x"], "--seeds '0,x': give integers"),
        (["--grid", "a=1,2", "--plot", "y:n"], "--plot y:n: 'n' is not swept"),
        (["--grid", "a=1,2", "--ray-address", "auto"], "--ray-address needs --executor ray"),
        ([], "'line' declares no sweep: give the args to sweep"),
    ],
)
def test_bad_input_is_one_line_exit_2(in_process, tmp_path, args, message):
    code, err = in_process("sweep", "--task", "line", "--out", tmp_path, *args)
    assert code == 2 and err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "runs.db").exists()


def test_ray_missing_names_the_pip_command(in_process, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # what `import ray` does where Ray is not installed
    code, err = in_process("sweep", "--task", "line", "--grid", "a=1", "--executor", "ray", "--out", tmp_path)
    assert code == 2 and "harness-lm[ray]" in err and err.count("\n") == 1


def test_unknown_grid_key_in_a_preset_names_the_file(in_process, tmp_path):
    (tmp_path / "bad.yaml").write_text("task: line\nsweep: {grid: {nn: [1, 2]}}\n")
    code, err = in_process("run", "--task", "bad", "--include-path", tmp_path, "--out", tmp_path)
    assert code == 2 and "bad.yaml sweep.grid); did you mean 'n'?" in err, err


# the sweep run -----------------------------------------------------------------------------------------------------
def test_sweep_metrics_plots_summary_records_and_resume(tmp_path):
    """Two swept args, one seed: the sweep's stderr is the run's own (the preset test below covers seeds)."""
    out = tmp_path / "runs"
    command = [
        *PLUGIN,
        "sweep",
        "--task",
        "line",
        "--grid",
        "a=1,4;shape=flat,steep",
        "--seeds",
        "1",
        "--task-args",
        "n=3",
        "--metrics",
        "y,z",
        "--out",
        out,
        "--json",
    ]
    result = run_harness(*command, timeout=600)
    assert result.returncode == 0, result.stderr
    metrics = json.loads(result.stdout)["metrics"]
    for a in (1, 4):
        for shape, k in (("flat", 1), ("steep", 2)):
            # y = a*k*(i+1) + seed for i < 3: mean 2*a*k + 1, sample std a*k, stderr a*k/sqrt(3)
            assert metrics[f"y@a={a},shape={shape}"] == pytest.approx(2 * a * k + 1)
            assert metrics[f"y@a={a},shape={shape}_stderr"] == pytest.approx(a * k / 3**0.5)
            assert metrics[f"z@a={a},shape={shape}"] == pytest.approx(1.0)
    assert metrics["max_y"] == pytest.approx(2 * 4 * 2 + 1)  # the task's sweep_summary, merged
    assert len([m for m in metrics if "@" in m]) == 16  # one seed: each point's value and stderr, no interval

    row = sweep_run(out)
    folder = Path(row["dir"])
    assert row["status"] == "finished" and row["primary_metric"] is None
    assert (folder / "y_vs_a.png").stat().st_size > 5000 and (folder / "z_vs_a.png").exists()
    records = samples(row)
    points = point_rows(out, "line")
    assert len(records) == 4 and len({r["id"] for r in records}) == 4
    assert {r["run_id"] for r in records} == {p["run_id"] for p in points} and len(points) == 4
    assert all(p["status"] == "finished" for p in points)
    for r in records:  # each point is an ordinary run with its own config
        config = yaml.safe_load((out / r["run_id"] / "config.yaml").read_text())
        assert config["seed"] == r["seed"] and config["task_args"] == {"n": 3, **r["point"]} == r["args"]
        assert r["metrics"]["y"] == pytest.approx(
            2 * r["args"]["a"] * (1 + (r["point"]["shape"] == "steep")) + r["seed"]
        )
    given = json.loads((folder / "points.json").read_text())
    assert sorted(p["run_id"] for p in given) == sorted(p["run_id"] for p in points)
    assert all(Path(p["dir"]) == out / p["run_id"] for p in given)

    finished = {p["run_id"]: p["finished"] for p in points}
    again = run_harness(*command, timeout=600)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["metrics"] == metrics
    assert "4 finished before, 0 to run" in again.stderr
    assert {p["run_id"]: p["finished"] for p in point_rows(out, "line")} == finished  # nothing ran again
    assert len(samples(sweep_run(out))) == 4


def test_preset_with_a_sweep_block_runs_its_sweep(tmp_path):
    (tmp_path / "lines.yaml").write_text(
        SWEEP_PRESET.replace(", shape: [flat, steep]", "").replace("args: {n: 2}", "args: {n: 2, shape: steep}")
    )
    listing = run_harness(*PLUGIN, "list", "tasks", "--include-path", tmp_path)
    assert "(sweep: a x 2 seeds, 4 runs)" in listing.stdout
    out = tmp_path / "runs"
    result = run_harness(*PLUGIN, "run", "--task", "lines", "--include-path", tmp_path, "--out", out, "--json")
    assert result.returncode == 0, result.stderr
    metrics = json.loads(result.stdout)["metrics"]
    # default metric: the points' primary metric (y); n=2 from the preset's args: mean of a*k*(i+1) is 1.5*a*k
    assert metrics["y@a=2"] == pytest.approx(1.5 * 2 * 2 + 0.5) and metrics["y@a=2_stderr"] == pytest.approx(0.5)
    assert not [m for m in metrics if m.startswith("z@")]
    assert (Path(sweep_run(out)["dir"]) / "y_vs_a.png").exists()
    assert len(point_rows(out, "lines")) == 4  # the points are runs of the preset, each once
    assert "(local, 1 at a time)" in result.stderr  # the preset's workers


def test_seeds_alone_are_a_sweep_with_a_t_interval(tmp_path):
    """No grid, three seeds: one point, its metric's mean over seeds with the stderr and 95% t interval."""
    from scipy import stats

    out = tmp_path / "runs"
    result = run_harness(*PLUGIN, "sweep", "--task", "line", "--seeds", "0,1,5", "--out", out, "--json")
    assert result.returncode == 0, result.stderr
    metrics = json.loads(result.stdout)["metrics"]
    per_seed = [2 + seed for seed in (0, 1, 5)]  # n=3: a run's mean y is 2 + seed
    low, high = stats.t.interval(0.95, 2, loc=sum(per_seed) / 3, scale=stats.sem(per_seed))
    assert metrics["y"] == pytest.approx(sum(per_seed) / 3) and metrics["y_stderr"] == pytest.approx(
        stats.sem(per_seed)
    )
    assert (metrics["y_ci_low"], metrics["y_ci_high"]) == (pytest.approx(low), pytest.approx(high))
    assert len(point_rows(out, "line")) == 3
    one = run_harness(*PLUGIN, "sweep", "--task", "line", "--seeds", "0", "--out", out)
    assert one.returncode == 2 and "declares no sweep" in one.stderr


def test_preset_file_with_a_sweep_block_runs_its_sweep(tmp_path):
    """``harness run --task path/to/file.yaml``: the points run the same file, so they are runs of that preset."""
    (tmp_path / "two.yaml").write_text("task: line\nsweep: {grid: {a: [1, 3]}}\n")  # no args: still a preset
    out = tmp_path / "runs"
    result = run_harness(*PLUGIN, "run", "--task", tmp_path / "two.yaml", "--out", out, "--json")
    assert result.returncode == 0, result.stderr
    metrics = json.loads(result.stdout)["metrics"]
    assert metrics["y@a=1"] == pytest.approx(2.0) and metrics["y@a=3"] == pytest.approx(6.0)
    assert len(point_rows(out, "two")) == 2 and sweep_run(out)["task"] == "sweep:two"
    # a swept arg given in --task-args narrows the preset's grid to that value: one point, a one-point sweep
    one = run_harness(*PLUGIN, "run", "--task", tmp_path / "two.yaml", "--task-args", "a=3", "--out", out, "--json")
    assert one.returncode == 0, one.stderr
    assert {k for k in json.loads(one.stdout)["metrics"] if "@" in k} == {"y@a=3", "y@a=3_stderr"}
    assert len(point_rows(out, "two")) == 2  # the point a=3 had run: reused, not run again


def test_a_failed_point_fails_the_sweep_and_reruns_alone(tmp_path):
    out = tmp_path / "runs"
    command = [*PLUGIN, "sweep", "--task", "line", "--grid", "crash=false,true", "--out", out, "--json"]
    failed = run_harness(*command, env=harness_env(LINE_CRASH="1"))
    assert failed.returncode == 1 and "1 of 2 points failed" in failed.stderr, failed.stderr
    row = sweep_run(out)
    assert row["status"] == "failed"
    records = {r["point"]["crash"]: r for r in samples(row)}
    assert records[True]["status"] == "failed" and records[True]["run_id"] is None
    assert records[False]["status"] == "finished"
    log = next((Path(row["dir"]) / "logs").glob("crash=true*.log")).read_text()
    assert "crashed on purpose" in log and "$ harness -p harness_sweepplugin run --task line" in log
    good = Index(out).get(records[False]["run_id"])

    fixed = run_harness(*command)
    assert fixed.returncode == 0, fixed.stderr
    assert "1 finished before, 1 to run" in fixed.stderr
    assert json.loads(fixed.stdout)["metrics"]["y@crash=true"] == pytest.approx(2.0)
    assert Index(out).get(good["run_id"])["finished"] == good["finished"]
    assert sorted(r["status"] for r in samples(sweep_run(out))) == ["finished", "finished"]
    assert sweep_run(out)["status"] == "finished"


def wait_for(condition, timeout: float = 120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if value := condition():
            return value
        time.sleep(0.1)
    raise AssertionError("timed out")


def descendants(pid: int) -> list[int]:
    """The processes below ``pid`` (Linux /proc)."""
    parents = {}
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit():
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            pass
    found, frontier = [], [pid]
    while frontier:
        children = [p for p, parent in parents.items() if parent in frontier]
        found += children
        frontier = children
    return found


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="die-with-parent is Linux-only")
def test_kill_9_mid_sweep_loses_no_point_and_leaves_no_orphan(tmp_path):
    out = tmp_path / "runs"
    command = [
        sys.executable,
        "-m",
        "harness.cli",
        "-p",
        "harness_testplugin",
        "sweep",
        "--task",
        "counting",
        "--grid",
        "n=1,2,12,14",
        "--task-args",
        "delay=0.3",
        "--workers",
        "2",
        "--out",
        str(out),
        "--json",
    ]
    sweeper = subprocess.Popen(command, env=harness_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    finished = wait_for(lambda: [r for r in Index(out).runs("finished") if r["task"] == "counting"], timeout=600)
    workers = descendants(sweeper.pid)
    assert workers, "the sweep runs its points in processes of its own"
    os.kill(sweeper.pid, signal.SIGKILL)  # the sweep only: its point processes must die with it
    sweeper.wait()
    assert len(finished) < 4, "the sweep finished before it could be killed; make its points slower"
    wait_for(lambda: not [pid for pid in workers if Path(f"/proc/{pid}").exists()], timeout=30)
    before = {r["run_id"]: r["finished"] for r in Index(out).runs("finished")}

    result = run_harness(*command[3:], timeout=600)
    assert result.returncode == 0, result.stderr
    metrics = json.loads(result.stdout)["metrics"]
    assert sorted(m for m in metrics if not m.endswith("_stderr")) == [f"hit@n={n}" for n in (1, 12, 14, 2)]
    # counting scores sample i as (i * (seed + 1)) % 7 == 0; seed 0: the share of multiples of 7 below n
    for n in (1, 2, 12, 14):
        assert metrics[f"hit@n={n}"] == pytest.approx(len(range(0, n, 7)) / n)
    rows = point_rows(out, "counting")
    assert len(rows) == 4 and all(r["status"] == "finished" for r in rows)
    assert sorted(yaml.safe_load((out / r["run_id"] / "config.yaml").read_text())["task_args"]["n"] for r in rows) == [
        1,
        2,
        12,
        14,
    ]
    records = samples(sweep_run(out))
    assert sorted(r["point"]["n"] for r in records) == [1, 2, 12, 14]
    assert {r["run_id"] for r in records} == {r["run_id"] for r in rows}
    assert all(Index(out).get(run_id)["finished"] == t for run_id, t in before.items())  # not run again


# the done-when command: random-path evidence over depths 1-4, with the local and the Ray executor
DEPTH_SWEEP = (
    "sweep",
    "--task",
    "graph_cot",
    "--model",
    "baseline:random-path",
    "--grid",
    "depth=1,2,3,4",
    "--task-args",
    "examples=2000",
)


def test_graph_cot_random_path_depth_curve_matches_the_closed_form(tmp_path):
    """The issue's done-when command: one run per depth, the sweep's metrics and plot; random-path finds the
    evidence with probability (2/3)(1/2)^(d-1) (graph_cot.baselines)."""
    out = tmp_path / "runs"
    result = run_harness(
        *DEPTH_SWEEP,
        "--out",
        out,
        "--json",
        timeout=900,
    )
    assert result.returncode == 0, result.stderr
    metrics = json.loads(result.stdout)["metrics"]
    for depth in (1, 2, 3, 4):
        expected = (2 / 3) * 0.5 ** (depth - 1)
        stderr = metrics[f"evidence_accuracy@depth={depth}_stderr"]
        assert 0 < stderr < 0.02
        assert abs(metrics[f"evidence_accuracy@depth={depth}"] - expected) < 4 * stderr
    row = sweep_run(out)
    assert (Path(row["dir"]) / "evidence_accuracy_vs_depth.png").stat().st_size > 5000
    rows = point_rows(out, "graph_cot")
    assert len(rows) == 4 and {r["model"] for r in rows} == {"baseline:random-path"}
    assert sorted(r["metrics"]["evidence_accuracy"] for r in rows) == sorted(
        metrics[f"evidence_accuracy@depth={d}"] for d in (1, 2, 3, 4)
    )


# Ray (tox -e ray) --------------------------------------------------------------------------------------------------
@pytest.mark.ray
def test_ray_sweep_on_a_local_cluster_gives_the_local_metrics(tmp_path, ray_env):
    """The done-when command with --executor ray (a local cluster, started by the sweep) and without: same runs,
    same metrics; every point's folder came back from its worker into --out."""
    pytest.importorskip("ray")
    command = [
        *DEPTH_SWEEP,
        "--json",
    ]
    local_env = {**ray_env, "HARNESS_CACHE": str(tmp_path / "local-cache")}
    local = run_harness(*command, "--out", tmp_path / "local", env=local_env, timeout=900)
    assert local.returncode == 0, local.stderr
    result = run_harness(*command, "--out", tmp_path / "ray", "--executor", "ray", env=ray_env, timeout=900)
    assert result.returncode == 0, result.stderr
    metrics = json.loads(result.stdout)["metrics"]
    assert metrics == json.loads(local.stdout)["metrics"] and len(metrics) == 8
    runs = {r["run_id"]: r for r in point_rows(tmp_path / "ray", "graph_cot")}
    assert set(runs) == {r["run_id"] for r in point_rows(tmp_path / "local", "graph_cot")} and len(runs) == 4
    for run_id, row in runs.items():
        assert row["status"] == "finished" and Path(row["dir"]) == tmp_path / "ray" / run_id
        assert (tmp_path / "ray" / run_id / "samples.jsonl").read_text() == (
            tmp_path / "local" / run_id / "samples.jsonl"
        ).read_text()
    assert (Path(sweep_run(tmp_path / "ray")["dir"]) / "evidence_accuracy_vs_depth.png").exists()
    again = run_harness(*command, "--out", tmp_path / "ray", "--executor", "ray", env=ray_env)
    assert again.returncode == 0 and "4 finished before, 0 to run" in again.stderr  # no cluster needed


@pytest.mark.ray
def test_ray_point_whose_worker_dies_is_retried_once_into_out(tmp_path, ray_env, ray_head):
    """On a cluster joined by address: kill -9 the Ray worker running a point; Ray retries it and the point
    lands in --out exactly once."""
    out = tmp_path / "runs"
    command = [
        sys.executable,
        "-m",
        "harness.cli",
        *PLUGIN,
        "sweep",
        "--task",
        "line",
        "--grid",
        "a=1,2,3",
        "--task-args",
        "n=8,delay=2.0",
        "--executor",
        "ray",
        "--ray-address",
        ray_head,
        "--out",
        str(out),
        "--json",
    ]
    sweeper = subprocess.Popen(command, env=ray_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    worker = wait_for(lambda: live_workers(tmp_path / "tmp", "harness-point-*/point.log"), timeout=300)[0]
    assert "harness.cli" not in Path(f"/proc/{worker}/cmdline").read_text()
    os.kill(worker, signal.SIGKILL)
    stdout, stderr = sweeper.communicate(timeout=600)
    assert sweeper.returncode == 0, stderr
    metrics = json.loads(stdout)["metrics"]
    expected = {f"y@a={a}": pytest.approx(a * 4.5) for a in (1, 2, 3)}  # mean of a*(i+1) over i < 8
    assert {m: metrics[m] for m in metrics if not m.endswith("_stderr")} == {**expected, "max_y": 3 * 4.5}
    logs = [f.read_text() for f in (Path(sweep_run(out)["dir"]) / "logs").glob("*.log")]
    assert len(logs) == 3 and not [log for log in logs if f", pid {worker})" in log]  # finished elsewhere
    rows = point_rows(out, "line")
    assert len(rows) == 3 and all(r["status"] == "finished" for r in rows)
    records = samples(sweep_run(out))
    assert sorted(r["point"]["a"] for r in records) == [1, 2, 3]
    assert {r["run_id"] for r in records} == {r["run_id"] for r in rows}
    assert all(len((out / r["run_id"] / "samples.jsonl").read_text().splitlines()) == 8 for r in rows)


def test_example_plugin_sweep_preset_is_valid(monkeypatch):
    """examples/harness-example-plugin ships a sweep preset; its grid names an arg of its task."""
    example = Path(__file__).resolve().parent.parent / "examples" / "harness-example-plugin"
    preset = load_presets([str(example / "presets")])["capitals_shots"]
    assert preset.task == "capitals" and preset.sweep.grid == {"shots": [0, 1, 2, 4]}
    monkeypatch.syspath_prepend(str(example))
    from harness_example import Capitals

    check_grid_keys(Capitals, preset.sweep.grid, {}, "capitals", preset.source)


def test_default_workers_count_the_processes_a_run_starts():
    """A graph_cot experiment trains its strategies in processes of its own: a sweep's default parallelism counts
    them (threads x processes), so two-core machines run one such point at a time, not two."""
    from harness.plugins.graph_cot.task import GraphCoT

    assert task_threads(GraphCoT(cot="dfs,path", workers=2), {}) == 2
    assert task_threads(GraphCoT(cot="dfs", workers=2), {}) == 1
    assert task_threads(GraphCoT(cot="dfs,path", workers=2, threads=2), {}) == 4

    class Plain:
        threads = 3

    assert task_threads(Plain(), {}) == 3 and task_threads(Plain(), {"threads": 2}) == 2
