"""The example plugin's own tests: its data is well formed and the task runs through the harness CLI."""

import json
import subprocess
import sys

from harness_example import Capitals


def test_examples_are_well_formed():
    examples = Capitals().examples(ctx=None)
    assert len(examples) == 20
    for example in examples:
        assert example["answer"] in example["choices"] and len(set(example["choices"])) == 4


def test_shots_move_examples_into_the_prompt():
    examples = Capitals(shots=2).examples(ctx=None)
    assert len(examples) == 18 and examples[0]["prompt"].count("The capital of") == 3


def test_runs_through_the_cli(tmp_path):
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "harness.cli",
            "run",
            "--task",
            "capitals",
            "--model",
            "hf:smollm2",
            "--out",
            str(tmp_path),
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert out.returncode == 0, out.stderr
    metrics = json.loads(out.stdout)["metrics"]
    assert metrics["accuracy"] >= 0.5  # chance is 0.25; a 135M instruct model knows most of these capitals
