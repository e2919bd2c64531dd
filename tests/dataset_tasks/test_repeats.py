"""Repeated sampled generation (plugins/dataset_tasks/repeats.py): the pass@k estimator against brute-force
enumeration, the majority vote, and ``--repeats`` end to end on the shipped arithmetic task with SmolLM2 (every
repeat kept, each reducer recomputed from the kept completions, the run's seed stream reproducing them), the YAML
route (``repeats`` + lm-eval's majority-vote ``filter_list``), and the one-line refusals."""

import itertools
import json

import pytest
from harness.plugins.dataset_tasks.repeats import Reducer, majority, parse_reducers, pass_at_k, reduce

from harness.cli import main


def run_json(capsys, *args) -> dict:
    assert main(["run", *map(str, args), "--json", "--no-cache"]) == 0
    return json.loads(capsys.readouterr().out)


def samples(result: dict) -> list[dict]:
    return [json.loads(line) for line in open(f"{result['dir']}/samples.jsonl")]


@pytest.mark.parametrize("n", range(1, 8))
def test_pass_at_k_is_the_chance_that_k_drawn_repeats_hold_a_right_one(n):
    for c in range(n + 1):
        outcomes = [1] * c + [0] * (n - c)
        for k in range(1, n + 1):
            draws = list(itertools.combinations(range(n), k))  # every k-subset of the n repeats, equally likely
            expected = sum(any(outcomes[i] for i in draw) for draw in draws) / len(draws)
            assert pass_at_k(n, c, k) == pytest.approx(expected, abs=1e-12)
    assert pass_at_k(n, 0, 1) == 0.0 and pass_at_k(n, n, n) == 1.0
    with pytest.raises(ValueError):
        pass_at_k(n, 0, n + 1)


def test_reducers_mean_majority_and_pass_at_k():
    assert majority(["7", "8", "8", "7"]) == 0 and majority(["x", "y", "y"]) == 1  # ties: the answer seen first
    scores, answers = [0.0, 1.0, 1.0, 0.0, 0.0], ["6", "5", "5", "4", "6"]
    assert reduce(Reducer("mean"), scores, answers) == pytest.approx(0.4)
    assert reduce(Reducer("maj", 3), scores, answers) == 1.0  # 5 wins among the first three
    assert reduce(Reducer("maj", 5), scores, answers) == 0.0  # 6 and 5 tie at two, 6 came first
    assert reduce(Reducer("pass", 2), scores, answers) == pytest.approx(1 - 3 / 10)
    assert [r.key("exact_match") for r in parse_reducers("mean,maj@3,pass_at_2", 5, "x")] == [
        "exact_match",
        "exact_match_maj_at_3",
        "exact_match_pass_at_2",
    ]


@pytest.fixture(scope="module")
def sampled(tmp_path_factory):
    """arithmetic (3-shot, 8 tokens) by SmolLM2, 5 questions, each sampled 4 times at temperature 0.7."""
    import contextlib
    import io

    out = tmp_path_factory.mktemp("repeats") / "runs"
    args = ["--task", "arithmetic", "--model", "hf:smollm2", "--limit", "5", "--repeats", "4"]
    args += ["--reducers", "mean,maj@3,pass@1,pass@2", "--task-args", "temperature=0.7", "--out", str(out)]
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        assert main(["run", *args, "--json", "--no-cache"]) == 0
    return out, args, json.loads(buffer.getvalue())


def test_repeats_keep_every_completion_and_reduce_each_document(sampled, one_thread):
    from harness.plugins.dataset_tasks.metrics import exact_match

    from harness.backends import SamplingParams, load
    from harness.seeding import derive_seed

    _, _, result = sampled
    records = samples(result)
    names = ["exact_match", "exact_match_maj_at_3", "exact_match_pass_at_1", "exact_match_pass_at_2"]
    assert len(records) == 5 and all(len(r["completions"]) == len(r["finish_reasons"]) == 4 for r in records)
    options = {"regexes_to_ignore": ["^\\s+", "\\s+$"]}  # arithmetic.yaml's exact_match options
    for r in records:
        scores = [exact_match(c, [r["target"]], options) for c in r["completions"]]
        right = int(sum(scores))
        assert r["exact_match_repeats"] == scores
        assert r["exact_match"] == pytest.approx(right / 4)
        assert r["exact_match_pass_at_1"] == pytest.approx(right / 4)  # pass@1 is the mean, unbiased
        assert r["exact_match_pass_at_2"] == pytest.approx(1 - (4 - right) * (3 - right) / 12 if right < 3 else 1.0)
        first = [c.strip() for c in r["completions"][:3]]
        winner = max(first, key=lambda a: (first.count(a), -first.index(a)))
        assert r["exact_match_maj_at_3"] == float(winner == r["target"])
    for name in names:
        values = [r[name] for r in records]
        assert result["metrics"][name] == pytest.approx(sum(values) / 5)
        assert f"{name}_stderr" in result["metrics"]
    assert len({c for r in records for c in r["completions"]}) > 5  # sampled: the repeats are not all one text

    lm = load("hf:smollm2")  # the engine, asked directly with the run's seed stream, gives the same four texts
    try:
        params = SamplingParams(n=4, temperature=0.7, max_tokens=8, stop=("\n",), seed=derive_seed(0, "generate"))
        (again,) = lm.generate([records[2]["prompt"]], params)
    finally:
        lm.close()
    assert [c.text for c in again] == records[2]["completions"]


def test_repeats_are_part_of_the_run_and_reproduce_from_the_seed(sampled, capsys, tmp_path, one_thread):
    out, args, result = sampled
    fewer = run_json(capsys, *args[:-1], tmp_path / "fewer", "--limit", "2")  # other documents in the batch
    assert [r["completions"] for r in samples(fewer)] == [r["completions"] for r in samples(result)[:2]]
    import yaml

    config = yaml.safe_load(open(f"{result['dir']}/config.yaml"))
    assert config["task_args"]["repeats"] == 4 and config["task_args"]["reducers"] == "mean,maj@3,pass@1,pass@2"
    seed1 = run_json(capsys, *args[:-1], tmp_path / "seed1", "--limit", "2", "--seed", "1")
    assert [r["completions"] for r in samples(seed1)] != [r["completions"] for r in samples(fewer)]


def test_repeats_and_majority_vote_from_the_yaml(tiny_folder, tmp_path, capsys, one_thread):
    (tmp_path / "sums.jsonl").write_text(
        "".join(json.dumps({"q": f"{a}+{a}", "a": str(2 * a)}) + "\n" for a in range(3))
    )
    (tmp_path / "sums.yaml").write_text(
        """task: sums
dataset_path: sums.jsonl
test_split: test
output_type: generate_until
doc_to_text: "{{q}}="
doc_to_target: a
generation_kwargs: {until: ["\\n"], max_gen_toks: 3, do_sample: true, temperature: 1.0}
repeats: 3
reducers: [mean, pass@2]
filter_list:
  - name: maj@3
    filter: [{function: majority_vote}, {function: take_first}]
"""
    )
    result = run_json(capsys, "--task", tmp_path / "sums.yaml", "--model", f"hf:{tiny_folder}", "--out", tmp_path)
    names = ["exact_match", "exact_match_pass_at_2", "exact_match_maj_at_3"]  # reducers:, then filter_list's
    assert list(result["metrics"]) == [m for name in names for m in (name, f"{name}_stderr")]
    assert all(len(r["completions"]) == 3 for r in samples(result))


@pytest.mark.parametrize(
    "args, message",
    [
        (["--task", "arithmetic", "--repeats", "3"], "repeats=3 with greedy decoding repeats one completion"),
        (
            ["--task", "arithmetic", "--repeats", "3", "--reducers", "pass@5", "--task-args", "temperature=0.5"],
            "pass@5 needs 1 <= k <= repeats (3)",
        ),
        (["--task", "arithmetic", "--reducers", "best@2"], "reducer 'best@2' is not one of mean, maj@k, pass@k"),
        (["--task", "arithmetic", "--repeats", "0"], "--repeats 0: give a positive number"),
        (["--task", "capitals_mc", "--repeats", "2"], "apply to generate_until tasks only"),
        (["--task", "graph_cot", "--repeats", "2"], "task 'graph_cot' does not sample generations"),
    ],
)
def test_bad_repeats_are_one_line(tmp_path, capsys, args, message):
    assert main(["run", *args, "--model", "hf:x", "--out", str(tmp_path)]) == 2
    error = capsys.readouterr().err.strip()
    assert message in error and "\n" not in error, error
