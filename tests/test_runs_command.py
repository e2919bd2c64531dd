"""harness runs: the list (status, headline, limit, duration, the error line of a failed run), runs rm ID... and
--failed, and --format on run and show."""

import json
from pathlib import Path

from harness.cli import main

COUNTING = ["-p", "harness_testplugin"]


def runs_json(capsys, out) -> dict:
    capsys.readouterr()
    assert main(["runs", "--out", str(out), "--format", "json"]) == 0
    return {r["run"]: r for r in json.loads(capsys.readouterr().out)}


def test_runs_lists_and_removes(tmp_path, capsys):
    out = tmp_path / "runs"
    assert (
        main([*COUNTING, "run", "--task", "counting", "--task-args", "n=14", "--out", str(out), "--format", "markdown"])
        == 0
    )
    printed = capsys.readouterr().out
    assert "| metric | value | stderr |" in printed and "| hit | 0.1429 |" in printed
    assert main([*COUNTING, "run", "--task", "counting", "--limit", "5", "--out", str(out)]) == 0
    capsys.readouterr()
    task = tmp_path / "broken.yaml"
    task.write_text("task: broken\ndataset_path: rows.jsonl\ntest_split: test\ndoc_to_text: x\ndoc_to_target: y\n")
    (tmp_path / "rows.jsonl").write_text('{"x": "a", "y": "b"}\n')
    assert main(["run", "--task", str(task), "--model", f"hf:{tmp_path / 'no-model'}", "--out", str(out)]) == 2
    reason = capsys.readouterr().err.strip().splitlines()[-1].removeprefix("harness: error: ")

    runs = runs_json(capsys, out)
    assert sorted(r["status"] for r in runs.values()) == ["failed", "finished", "finished"]
    failed = next(r for r in runs.values() if r["status"] == "failed")
    assert failed["error"] == reason and "no-model" in reason and failed["task"] == "broken"
    full = next(r for r in runs.values() if r["status"] == "finished" and not r["limit"])
    assert full["headline"] == "hit=0.1429 ± 0.09705" and full["duration"].endswith("s")
    assert next(r for r in runs.values() if r["limit"])["limit"] == "5"

    assert main(["show", full["run"], "--out", str(out), "--format", "markdown"]) == 0
    assert "| hit | 0.1429 | 0.09705 |" in capsys.readouterr().out

    assert main(["runs", "rm", "--failed", "--out", str(out)]) == 0
    assert not (out / failed["run"]).exists() and failed["run"] not in runs_json(capsys, out)
    assert main(["runs", "rm", full["run"][:16], "--out", str(out)]) == 0
    left = runs_json(capsys, out)
    assert list(left) == [r for r in runs if runs[r]["limit"]] and not (out / full["run"]).exists()
    assert Path(out / list(left)[0]).is_dir()


def test_runs_rm_without_ids_is_a_usage_error(tmp_path, capsys):
    out = tmp_path / "runs"
    assert main([*COUNTING, "run", "--task", "counting", "--task-args", "n=2", "--out", str(out)]) == 0
    assert main(["runs", "rm", "--out", str(out)]) == 2
    assert "--failed" in capsys.readouterr().err
    assert main(["runs", "rm", "nope", "--out", str(out)]) == 2


def test_the_run_sets_the_tasks_threads_and_restores_them(tmp_path):
    """A task's ``threads`` is set by the run, in its process and in ctx.map's workers, and the caller's count
    comes back after (tasks of one suite or sweep process do not inherit each other's)."""
    import torch

    from harness.runs import RunRequest, run

    before = torch.get_num_threads()
    other = 2 if before != 2 else 3
    request = RunRequest(
        task="threads", task_args={"threads": other}, out=tmp_path, plugin_modules=["harness_testplugin"], quiet=True
    )
    result = run(request)
    assert result.metrics == {"main": other, "workers": other}
    assert torch.get_num_threads() == before
