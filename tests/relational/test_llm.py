"""relational_llm: prompts whose query symbols are unseen in the shots, scored on a tiny Llama through the CLI."""

import json

import pytest
from cli_helpers import harness_env, run_harness
from harness.plugins.relational.llm import LETTERS, WORDS, RelationalLLM

from harness.errors import UsageError


class Context:
    """The two things examples() reads from a RunContext."""

    def __init__(self, seed=0, lm=None):
        self.seed, self.lm = seed, lm

    def load_model(self):
        return self.lm


@pytest.mark.parametrize(
    "templates, symbols", [("aba_abb", "letters"), ("aabb_abab", "words"), ("odd_one_out", "letters")]
)
def test_query_symbols_never_occur_in_the_shots_and_labels_are_balanced(templates, symbols):
    task = RelationalLLM(templates=templates, examples=40, shots=6, symbols=symbols)
    examples = task.examples(Context())
    pool = set(LETTERS if symbols == "letters" else WORDS)
    for example in examples:
        lines = example["prompt"].splitlines()
        assert lines[-1] == example["query"] + ":" and len(lines) == 1 + 6 + 1
        shot_symbols = {s for line in lines[1:-1] for s in line.rsplit(":", 1)[0].split()}
        query_symbols = set(example["query"].split())
        assert query_symbols <= pool and not query_symbols & shot_symbols
        assert example["target"] in example["candidates"]
        shot_labels = [line.rsplit(": ", 1)[1] for line in lines[1:-1]]
        assert set(shot_labels) <= set(task.names.values()) | shot_symbols
    counts = [sum(e["template"] == t.pattern for e in examples) for t in task.templates]
    assert max(counts) - min(counts) <= 1
    assert examples == task.examples(Context())  # seeded
    assert examples != task.examples(Context(seed=1))


def test_number_labels_get_label_words_in_order():
    task = RelationalLLM(templates="aba:+1,abb:-1", label_words="yes,no", examples=4, shots=2)
    for example in task.examples(Context()):
        a, b, c = example["query"].split()
        assert example["target"] == ("yes" if a == c else "no") and example["candidates"] == ["yes", "no"]


@pytest.mark.parametrize(
    "args, message",
    [
        ({"symbols": "emoji"}, "choose one of letters"),
        ({"mode": "sample"}, "choose one of loglikelihood"),
        ({"label_words": "A"}, "give 2 words"),
        ({"label_words": "A,A"}, "distinct single words"),
        ({"shots": 0}, "positive"),
        ({"templates": "aba:+1,bab:-1"}, "renaming"),
    ],
)
def test_bad_args(args, message):
    with pytest.raises(UsageError, match=message):
        RelationalLLM(**args)


def test_tiny_model_through_the_cli_both_modes_and_vocabulary_tokens(tmp_path, tiny_folder):
    env = harness_env(HARNESS_CACHE=str(tmp_path / "cache"))
    out = tmp_path / "runs"
    done = run_harness(
        "run",
        "--task",
        "relational_llm",
        "--model",
        f"hf:{tiny_folder}",
        "--task-args",
        "examples=24,shots=4,symbols=tokens",
        "--out",
        out,
        "--json",
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    metrics = result["metrics"]
    assert 0.0 <= metrics["accuracy"] <= 1.0 and metrics["accuracy_stderr"] > 0
    samples = [json.loads(line) for line in (out / result["run_id"] / "samples.jsonl").read_text().splitlines()]
    assert len(samples) == 24 and all(s["prompt"].startswith("Each line is") for s in samples)
    assert sum(s["accuracy"] for s in samples) / 24 == pytest.approx(metrics["accuracy"])
    for s in samples:  # the answer is the candidate with the larger loglikelihood; margin: right minus wrong
        assert s["answer"] == s["candidates"][s["loglikelihoods"].index(max(s["loglikelihoods"]))]
        right, wrong = (s["loglikelihoods"][s["candidates"].index(s["target"])], min(s["loglikelihoods"]))
        assert s["margin"] == pytest.approx(right - wrong if s["accuracy"] else right - max(s["loglikelihoods"]))
    assert "margin_stderr" in metrics

    generated = run_harness(
        "run",
        "--task",
        "relational_llm",
        "--model",
        f"hf:{tiny_folder}",
        "--task-args",
        "examples=6,shots=2,mode=generate",
        "--out",
        out,
        "--json",
        env=env,
        timeout=300,
    )
    assert generated.returncode == 0, generated.stderr[-2000:]
    run_id = json.loads(generated.stdout)["run_id"]
    samples = [json.loads(line) for line in (out / run_id / "samples.jsonl").read_text().splitlines()]
    assert all("completion" in s and s["accuracy"] == float(s["answer"] == s["target"]) for s in samples)


def test_bad_args_through_the_cli_exit_2(tmp_path):
    bad = run_harness(
        "run", "--task", "relational_llm", "--model", "hf:smollm2", "--task-args", "symbols=emoji", "--out", tmp_path
    )
    assert bad.returncode == 2 and "symbols=emoji" in bad.stderr
    bad = run_harness(
        "run", "--task", "relational_llm", "--model", "hf:smollm2", "--task-args", "shot=3", "--out", tmp_path
    )
    assert bad.returncode == 2 and "shots" in bad.stderr
