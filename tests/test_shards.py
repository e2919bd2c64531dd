"""The shard contract any launcher can use (harness/shards.py): ``harness run --shard i/N`` for each i, then
``harness merge``, gives the run one process writes (same id, samples.jsonl, metrics.json), on a shipped dataset
task with a real model and on a graph_cot evaluation; merge refuses what is not one run's complete set of shards."""

import json
import shutil
from pathlib import Path

import pytest

from harness.cli import main
from harness.runs import RunRequest, prepare
from harness.shards import IDENTITY_KEYS
from harness.store import Index

REACHABILITY = Path(__file__).resolve().parent.parent / "plugins" / "dataset_tasks" / "graph_reachability.yaml"
LINE = ("-p", "harness_sweepplugin")  # tests/support: the model-free "line" task, y = a * (i + 1) + seed


def run_json(capsys, *args) -> dict:
    code = main([str(a) for a in args] + ["--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return json.loads(captured.out)


def fails(capsys, *args) -> str:
    """The one error line a refused command prints last (exit status 2; a run that opened its record names it
    first)."""
    assert main([str(a) for a in args]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert lines[-1].startswith("harness: error: ") and len(lines) <= 2 and lines[0].startswith(("run ", "harness")), (
        lines
    )
    return lines[-1]


def files(run_dir: Path) -> tuple[str, str]:
    return (run_dir / "samples.jsonl").read_text(), (run_dir / "metrics.json").read_text()


def sharded_equals_single(capsys, tmp_path: Path, count: int, *run_args) -> dict:
    """Run ``run_args`` whole, then as ``count`` shards (each in its own --out, as on separate machines) merged into
    a third --out; the merged run is the whole run, file for file. Returns the whole run's JSON."""
    whole = run_json(capsys, *run_args, "--out", tmp_path / "whole")
    shard_dirs = []
    for i in range(count):
        shard = run_json(capsys, *run_args, "--shard", f"{i}/{count}", "--out", tmp_path / f"shard{i}")
        assert shard["run_id"] == f"{whole['run_id']}-{i}of{count}"  # named after the run it merges into
        (row,) = Index(tmp_path / f"shard{i}").runs()
        assert row["status"] == "shard"  # partial metrics: not on the leaderboard
        shard_dirs.append(shard["dir"])
    merged = run_json(capsys, "merge", *reversed(shard_dirs), "--out", tmp_path / "merged")
    assert merged["run_id"] == whole["run_id"] and merged["metrics"] == whole["metrics"]
    assert files(Path(merged["dir"])) == files(Path(whole["dir"]))
    (row,) = Index(tmp_path / "merged").runs()
    assert row["status"] == "finished" and row["metrics"] == whole["metrics"]
    return whole


def test_shards_of_a_dataset_task_on_a_real_model_merge_into_the_single_run(tiny_folder, tmp_path, capsys, one_thread):
    """graph_reachability (multiple choice, per-sample loglikelihoods) on the tiny Llama, 3 shards of 10 samples."""
    whole = sharded_equals_single(
        capsys, tmp_path, 3, "run", "--task", REACHABILITY, "--model", f"hf:{tiny_folder}", "--limit", 10, "--no-cache"
    )
    samples = (Path(whole["dir"]) / "samples.jsonl").read_text().splitlines()
    assert [json.loads(s)["id"] for s in samples] == [str(i) for i in range(10)]
    assert set(whole["metrics"]) == {"acc", "acc_stderr"}


def test_shards_of_a_graph_cot_evaluation_merge_into_the_single_run(tmp_path, capsys):
    """graph_cot evaluated with a baseline policy (generation, several metrics): 2 shards of 7 problems."""
    sharded_equals_single(
        capsys,
        tmp_path,
        2,
        "run",
        "--task",
        "graph_cot",
        "--model",
        "baseline:random-path",
        "--task-args",
        "examples=7,depth=2",
        "--no-cache",
    )


def test_the_shard_split_is_every_nth_sample(tmp_path, capsys):
    """Shard i of N scores positions i, i+N, ...: disjoint, together all of them, balanced."""
    ids = []
    for i in range(3):
        shard = run_json(
            capsys, *LINE, "run", "--task", "line", "--task-args", "n=8", "--shard", f"{i}/3", "--out", tmp_path
        )
        ids.append([json.loads(s)["id"] for s in (Path(shard["dir"]) / "samples.jsonl").read_text().splitlines()])
    assert ids == [["ex0", "ex3", "ex6"], ["ex1", "ex4", "ex7"], ["ex2", "ex5"]]


def test_identity_keys_are_what_a_run_is_identified_by():
    """merge rebuilds the whole run's identity from a shard's config: the keys must be prepare()'s."""
    _, identity = prepare(RunRequest(task="graph_cot", model="baseline:random-path"))
    assert tuple(identity) == IDENTITY_KEYS
    _, shard = prepare(RunRequest(task="graph_cot", model="baseline:random-path", shard=(1, 4)))
    assert shard == {**identity, "shard": {"index": 1, "count": 4}}


@pytest.fixture
def line_shards(tmp_path, capsys, monkeypatch):
    """Shards 0/3, 1/3 and 2/3 of the line task in ./runs (the working directory is tmp_path)."""
    monkeypatch.chdir(tmp_path)
    return [
        Path(run_json(capsys, *LINE, "run", "--task", "line", "--task-args", "n=7", "--shard", f"{i}/3")["dir"])
        for i in range(3)
    ]


def test_merge_by_run_id_and_twice_gives_the_same_run(line_shards, capsys):
    merged = run_json(capsys, *LINE, "merge", *(d.name for d in line_shards))
    assert merged["metrics"]["y"] == pytest.approx(4.0)  # mean of 1..7
    again = run_json(capsys, *LINE, "merge", *line_shards)
    assert again == merged and len((Path(merged["dir"]) / "samples.jsonl").read_text().splitlines()) == 7


def test_merge_refuses_missing_duplicated_and_foreign_shards(line_shards, tmp_path, capsys):
    zero, one, two = line_shards
    assert "shard(s) 2/3 missing" in fails(capsys, *LINE, "merge", zero, one)
    assert "shard 1/3 given twice" in fails(capsys, *LINE, "merge", zero, one, one, two)
    other = run_json(capsys, *LINE, "run", "--task", "line", "--task-args", "n=7", "--seed", "1", "--shard", "2/3")
    assert "differ in seed" in fails(capsys, *LINE, "merge", zero, one, other["dir"])
    split = run_json(capsys, *LINE, "run", "--task", "line", "--task-args", "n=7", "--shard", "1/2")
    assert "split the run differently" in fails(capsys, *LINE, "merge", zero, split["dir"], two)
    whole = run_json(capsys, *LINE, "run", "--task", "line", "--task-args", "n=7")
    assert "is not a shard" in fails(capsys, *LINE, "merge", zero, one, whole["dir"])
    assert "is not a run folder" in fails(capsys, *LINE, "merge", zero, one, tmp_path / "nowhere")
    unfinished = tmp_path / "unfinished" / two.name
    shutil.copytree(two, unfinished)
    (unfinished / "metrics.json").unlink()
    assert "did not finish" in fails(capsys, *LINE, "merge", zero, one, unfinished)
    lines = (two / "samples.jsonl").read_text().splitlines()
    (two / "samples.jsonl").write_text("\n".join(lines[:-1]) + "\n")  # a shard that lost a sample
    assert "not its share" in fails(capsys, *LINE, "merge", zero, one, two)
    (two / "samples.jsonl").write_text("\n".join([*lines, lines[0]]) + "\n")
    assert "is in shard 2/3" in fails(capsys, *LINE, "merge", zero, one, two)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--shard", "2/2"], "--shard 2/2: give i/N with 0 <= i < N"),
        (["--shard", "one"], "--shard one: give i/N"),
        (["--shards", "2"], "--shards and --shard-gpus need --executor ray"),
        (["--executor", "ray"], "--executor ray needs --shards N"),
        (["--executor", "ray", "--shards", "2", "--shard", "0/2"], "give one"),
        (["--shard", "0/9"], "the run has 7 samples; give at most that many"),
    ],
)
def test_bad_shard_flags_are_one_line(args, message, tmp_path, capsys):
    err = fails(capsys, *LINE, "run", "--task", "line", "--task-args", "n=7", "--out", tmp_path, *args)
    assert message in err


def test_a_task_that_does_not_split_is_refused_before_it_runs(tmp_path, capsys):
    """graph_cot without a model trains (an experiment): no shard, and no record opened."""
    err = fails(capsys, "run", "--task", "graph_cot", "--shard", "0/2", "--out", tmp_path)
    assert "task graph_cot is not an evaluation over samples here" in err
    assert not (tmp_path / "runs.db").exists()
