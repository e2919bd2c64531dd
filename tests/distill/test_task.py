"""distill_trees end to end in-process through the CLI: a small network trained to ~100%, distilled back to its
tree; the same network distilled again from its checkpoint; bad args exit with status 2."""

import json

from harness.cli import main

SMALL = "d=10,r=2,width=32,steps=400,batch_size=64,samples=1000,heldout=1000,test_size=2000,beam=4"


def run(capsys, out, task_args: str) -> dict:
    code = main(["run", "--task", "distill", "--task-args", task_args, "--out", str(out), "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err[-2000:]
    return json.loads(captured.out)


def test_train_distil_and_distil_the_checkpoint_again(tmp_path, capsys, one_thread):
    first = run(capsys, tmp_path, SMALL)
    metrics = first["metrics"]
    assert metrics["network_test_accuracy"] > 0.97
    assert metrics["agreement"] > 0.97 and metrics["agreement_with_target"] > 0.95
    assert metrics["tree_depth"] <= 2 and metrics["probes_used"] == 2 * 10  # level 1 only is scored at r=2
    assert 0 <= metrics["baseline_agreement"] <= 1 and metrics["queries"] == 2000
    checkpoint = f"{first['dir']}/network/checkpoint"
    again = run(capsys, tmp_path, f"checkpoint={checkpoint},r=2,samples=1000,heldout=1000,test_size=2000,beam=4")
    assert "agreement_with_target" not in again["metrics"]  # no target known for a checkpoint
    assert abs(again["metrics"]["agreement"] - metrics["agreement"]) < 0.03
    # several beam widths in one run: each width's tree is the one a run at that width alone finds
    common = f"checkpoint={checkpoint},r=3,samples=1000,heldout=1000,test_size=2000"
    alone = run(capsys, tmp_path, f"{common},beam=1")["metrics"]
    both = run(capsys, tmp_path, f"{common},beam=6,beams=1,6")["metrics"]
    for name in ("agreement", "probes_used", "tree_depth"):
        assert both[f"{name}@beam=1"] == alone[name], name
    assert both["probes_used"] > both["probes_used@beam=1"] and both["probes_distinct"] == both["probes_used"]
    assert "agreement@beam=6" not in both  # the run's own beam carries no suffix


def test_bad_args_exit_2(tmp_path, capsys):
    for args, message in [
        ("d=3,r=4", "r=4 is larger than d=3"),
        ("beam=0", "beam=0"),
        (f"checkpoint={tmp_path}/nothing", "no checkpoint folder"),
        ("depth=3", "did you mean"),
        ("ridge=-1", "ridge=-1"),
        ("family=same", "family='same': choose one of opposite, independent"),
        ("beams=10,x", "beams=10,x: give beam widths"),
        ("beams=0,5", "beams=0,5: give beam widths >= 1"),
    ]:
        code = main(["run", "--task", "distill", "--task-args", args, "--out", str(tmp_path)])
        err = capsys.readouterr().err
        assert code == 2 and message in err, (args, err[-500:])
