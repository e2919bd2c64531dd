import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_helpers import harness_env, run_harness

from harness.errors import UsageError
from harness.store import Index, Run, append_jsonl, read_jsonl

COUNTING = ("-p", "harness_testplugin", "run", "--task", "counting")


def test_read_jsonl_drops_a_torn_last_line(tmp_path):
    path = tmp_path / "s.jsonl"
    path.write_text('{"id": 1}\n{"id": 2}\n{"id": 3, "x":')
    assert [r["id"] for r in read_jsonl(path)] == [1, 2]
    path.write_text('{"id": 1}\nnot json\n{"id": 3}\n')
    with pytest.raises(UsageError, match=r"s.jsonl:2"):
        read_jsonl(path)


def test_append_after_a_torn_line_starts_a_fresh_line(tmp_path):
    run = Run.open(tmp_path, {"task": "t", "model": "m"}, {"task": "t"})
    run.samples_path.write_text('{"id": "a"}\n{"id": "b", "sc')
    run.append_samples([{"id": "c"}])
    assert [s["id"] for s in run.samples()] == ["a", "c"]
    run.close()


APPEND_MANY = """
import sys
from pathlib import Path
from harness.store import append_jsonl
path, writer = Path(sys.argv[1]), int(sys.argv[2])
for i in range(200):
    pair = [{"writer": writer, "i": i, "pad": "x" * 2000}, {"writer": writer, "i": -i}]
    append_jsonl(path, pair, sync=i % 50 == 0)
"""


def test_append_jsonl_lines_from_several_processes_never_mix(tmp_path):
    """The one JSONL writer (samples, a run's series, the trainer's metrics): whole lines even when processes
    append to the same file at once, each call's records together and in order."""
    path = tmp_path / "m.jsonl"
    workers = [subprocess.Popen([sys.executable, "-c", APPEND_MANY, str(path), str(w)]) for w in range(4)]
    assert [worker.wait(timeout=120) for worker in workers] == [0] * 4
    records = read_jsonl(path)
    assert len(records) == 4 * 200 * 2 and path.read_text().count("\n") == len(records)
    for w in range(4):
        mine = [r["i"] for r in records if r["writer"] == w]
        assert mine == [v for i in range(200) for v in (i, -i)]
    append_jsonl(path, [])  # nothing to write: the file is untouched
    append_jsonl(path, [{"when": Path("p")}])  # what JSON cannot encode is written as its str
    assert read_jsonl(path)[-1] == {"when": "p"} and len(read_jsonl(path)) == len(records) + 1


def test_same_configuration_reopens_the_same_run(tmp_path):
    first = Run.open(tmp_path, {"task": "t", "model": "m"}, {"task": "t", "seed": 1})
    first.close()
    again = Run.open(tmp_path, {"task": "t", "model": "m"}, {"task": "t", "seed": 1})
    other = Run.open(tmp_path, {"task": "t", "model": "m"}, {"task": "t", "seed": 2})
    assert again.id == first.id and again.resumed and other.id != first.id and not other.resumed
    with pytest.raises(UsageError, match="already running"):
        Run.open(tmp_path, {"task": "t", "model": "m"}, {"task": "t", "seed": 2})


def test_kill_9_then_resume_recomputes_nothing(tmp_path):
    args = [sys.executable, "-m", "harness.cli", *COUNTING, "--task-args", "n=40,delay=0.1", "--out", str(tmp_path)]
    proc = subprocess.Popen(args, env=harness_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    run_dir = None
    deadline = time.time() + 60
    while time.time() < deadline:
        dirs = [d for d in tmp_path.glob("counting-*") if (d / "samples.jsonl").exists()]
        if dirs and len(read_jsonl(dirs[0] / "samples.jsonl")) >= 8:
            run_dir = dirs[0]
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert run_dir is not None
    before = read_jsonl(run_dir / "samples.jsonl")
    with sqlite3.connect(tmp_path / "runs.db") as con:  # the index is readable and says the run did not finish
        assert con.execute("SELECT status FROM runs").fetchone()[0] == "running"
    result = run_harness(*COUNTING, "--task-args", "n=40,delay=0.1", "--out", tmp_path, "--json")
    assert result.returncode == 0, result.stderr
    assert "resuming" in result.stderr
    after = read_jsonl(run_dir / "samples.jsonl")
    assert len(after) == 40 and len({s["id"] for s in after}) == 40
    assert after[: len(before)] == before  # finished samples were kept, not recomputed
    assert {s["pid"] for s in after[len(before) :]} != {s["pid"] for s in before}
    assert json.loads(result.stdout)["metrics"]["hit"] == pytest.approx(6 / 40)


def test_four_processes_share_one_out_folder(tmp_path):
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "harness.cli",
                *COUNTING,
                "--task-args",
                "n=30",
                "--seed",
                str(seed),
                "--out",
                str(tmp_path),
            ],
            env=harness_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for seed in range(4)
    ]
    for proc in procs:
        assert proc.wait(timeout=120) == 0, proc.stderr.read()
    runs = Index(tmp_path).runs("finished")
    assert len(runs) == 4
    for run in runs:
        assert len(read_jsonl(tmp_path / run["run_id"] / "samples.jsonl")) == 30


def test_leaderboard_gives_each_variant_its_own_column(tmp_path):
    from harness.report import leaderboard

    for source, kl in (("run-a", 3.0), ("run-b", 5.0), ("run-a", 2.0)):
        identity = {"task": "transfer", "source": source, "kl": kl}
        run = Run.open(tmp_path, {"task": "transfer", "model": "m", "variant": f"source={source}"}, identity)
        run.finish({"kl": kl}, primary_metric="kl")
        run.close()
    rows, columns = leaderboard(Index(tmp_path).runs("finished"))
    assert columns == ["model", "transfer[source=run-a]/kl", "transfer[source=run-b]/kl"]
    assert rows == [{"model": "m", "transfer[source=run-a]/kl": 2.0, "transfer[source=run-b]/kl": 5.0}]


def _index_from_before_variants(folder):
    with sqlite3.connect(folder / "runs.db") as con:
        con.execute(
            "CREATE TABLE runs (run_id TEXT PRIMARY KEY, task TEXT NOT NULL, task_version TEXT, model TEXT "
            "NOT NULL, fingerprint TEXT, status TEXT NOT NULL, primary_metric TEXT, metrics TEXT, created REAL "
            "NOT NULL, finished REAL, dir TEXT NOT NULL)"
        )
        con.execute("INSERT INTO runs VALUES ('old', 't', '1', 'm', '', 'finished', 'x', '{\"x\": 1}', 0, 1, 'd')")


def test_an_index_from_before_variants_gains_the_column(tmp_path):
    _index_from_before_variants(tmp_path)
    runs = Index(tmp_path).runs()
    assert runs[0]["run_id"] == "old" and runs[0]["variant"] is None


def test_processes_migrating_one_old_index_at_once_all_succeed(tmp_path):
    """Two openers adding the same column used to see 'duplicate column name' and call the index damaged."""
    _index_from_before_variants(tmp_path)
    start = time.time() + 3  # every process imports first, then all open the index at one instant
    code = (
        "import time; from harness.store import Index; "
        f"time.sleep(max(0, {start} - time.time())); print(len(Index({str(tmp_path)!r}).runs()))"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(8)
    ]
    results = [(proc.wait(timeout=60), *proc.communicate()) for proc in procs]
    assert [(rc, out.strip(), err) for rc, out, err in results] == [(0, b"1", b"")] * 8
    assert not list(tmp_path.glob("runs.db.broken-*"))


def _finished_runs(out, n=2):
    for seed in range(n):
        result = run_harness(*COUNTING, "--task-args", "n=3", "--seed", seed, "--out", out, "--json")
        assert result.returncode == 0, result.stderr


def test_a_damaged_index_is_rebuilt_from_the_run_folders(tmp_path):
    out = tmp_path / "runs"
    _finished_runs(out)
    before = {r["run_id"]: r["metrics"] for r in Index(out).runs()}
    (out / "runs.db").write_bytes(b"this is not an SQLite database" * 100)
    for suffix in ("-wal", "-shm"):
        (out / f"runs.db{suffix}").unlink(missing_ok=True)
    board = run_harness("leaderboard", "--out", out, "--format", "json")
    assert board.returncode == 0 and "rebuilt the index" in board.stderr, board.stderr
    after = {r["run_id"]: r for r in Index(out).runs()}
    assert {k: r["metrics"] for k, r in after.items()} == before
    assert all(r["status"] == "finished" and r["primary_metric"] == "hit" for r in after.values())
    assert list(out.glob("runs.db.broken-*"))  # the damaged file is kept aside, not deleted


def test_run_ids_match_literally_and_folders_are_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run = Run.open("runs", {"task": "t", "model": "m"}, {"task": "t"})
    run.finish({"x": 1.0}, "x")
    run.close()
    index = Index(tmp_path / "runs")
    assert index.get(run.id[:3])["dir"] == str(tmp_path / "runs" / run.id)
    for pattern in ("%", "_", run.id[:3].upper()):
        with pytest.raises(UsageError, match="unknown run"):
            index.get(pattern)


def test_a_killed_run_shows_as_interrupted(tmp_path):
    out = tmp_path / "runs"
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", *COUNTING, "--task-args", "n=100,delay=0.5", "--out", str(out)],
        env=harness_env(),
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 600  # a loaded machine can take minutes to start Python and torch
    while time.time() < deadline and not any(r["status"] == "running" for r in Index(out).runs()):
        time.sleep(0.2)
    assert [r["status"] for r in Index(out).runs()] == ["running"]  # alive: its lock is held
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert [r["status"] for r in Index(out).runs()] == ["interrupted"]


def test_show_and_leaderboard_read_a_read_only_results_folder(tmp_path, monkeypatch):
    """Fault injected: the folder reads as unwritable (chmod does not bind the root user these tests may run as)."""
    out = tmp_path / "runs"
    _finished_runs(out, n=1)
    real_access = __import__("os").access
    monkeypatch.setattr("harness.store.os.access", lambda path, mode: False if mode == 2 else real_access(path, mode))
    rows = Index(out).runs("finished")
    assert len(rows) == 1 and rows[0]["metrics"]["hit"] >= 0
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        with Index(out).connect() as con:
            con.execute("DELETE FROM runs")


def test_a_damaged_json_record_names_the_file_and_the_fix(tmp_path):
    from harness.store import read_json

    path = tmp_path / "metrics.json"
    path.write_text('{"acc": 0.5, "name": "unfinish')
    with pytest.raises(UsageError, match=r"metrics.json is damaged \(Unterminated string.*\); delete it"):
        read_json(path)


def test_a_damaged_intermediate_is_set_aside_with_one_warning(tmp_path, capsys):
    from harness.store import read_intermediate

    path = tmp_path / "evaluation-d1.json"
    assert read_intermediate(path) is None  # absent: compute it
    path.write_text('{"grid": {"4": {"acc')
    assert read_intermediate(path) is None  # damaged: compute it again, the bad copy kept for a look
    err = capsys.readouterr().err.strip()
    assert str(path) in err and "\n" not in err and "recomputing" in err
    assert not path.exists() and (tmp_path / "evaluation-d1.json.damaged").exists()
    path.write_text('{"grid": {}}')
    assert read_intermediate(path) == {"grid": {}}


def test_a_damaged_checkpoint_folder_is_named(tmp_path):
    from harness.models import load_checkpoint_dir

    (tmp_path / "dfs").mkdir()
    (tmp_path / "dfs" / "config.json").write_text('{"d_model": 3')
    with pytest.raises(UsageError, match=r"dfs/config.json is damaged .*; delete the folder"):
        load_checkpoint_dir(tmp_path / "dfs")


def test_a_rebuilt_index_keeps_each_runs_start_and_skips_a_damaged_folder(tmp_path, capsys):
    out = tmp_path / "runs"
    for task, started in (("a", "2024-03-01T10:00:00+0000"), ("b", "2024-03-02T11:30:00+0100")):
        run = Run.open(out, {"task": task, "model": "m", "started": started}, {"task": task})
        run.finish({"x": 1.0}, "x")
        run.close()
    (out / "broken").mkdir()
    (out / "broken" / "config.yaml").write_text("task: [unclosed\n")
    (out / "runs.db").unlink()
    assert Index(out).rebuild() == 2
    assert str(out / "broken" / "config.yaml") in capsys.readouterr().err
    created = {r["task"]: r["created"] for r in Index(out).runs()}
    assert created == {"a": 1709287200.0, "b": 1709375400.0}  # 10:00 UTC and 10:30 UTC, not the rebuild's time
