"""The dataset task family on the tiny Llama: a YAML over local JSONL gives metrics with stderr and readable
samples; generation, perplexity, few-shot and the one-line errors."""

import json
import math

import pytest

from harness.cli import main

CAPITALS = """task: my_capitals
dataset_path: capitals.jsonl
test_split: test
output_type: multiple_choice
doc_to_text: "The capital of {{country}} is"
doc_to_choice: choices
doc_to_target: answer
metric_list: [{metric: acc}, {metric: acc_norm}]
"""
ROWS = [
    {"country": "France", "answer": "Paris", "choices": ["Rome", "Paris", "Oslo"]},
    {"country": "Spain", "answer": "Madrid", "choices": ["Madrid", "Lima", "Bern"]},
    {"country": "Japan", "answer": "Tokyo", "choices": ["Cairo", "Quito", "Tokyo"]},
]


def write(folder, name: str, text: str, rows: list[dict] | None = None, data: str = "capitals.jsonl"):
    (folder / name).write_text(text)
    if rows is not None:
        (folder / data).write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder / name


def run_json(capsys, *args) -> dict:
    assert main(["run", *map(str, args), "--json", "--no-cache"]) == 0
    return json.loads(capsys.readouterr().out)


def test_a_yaml_over_local_jsonl_gives_accuracy_stderr_and_readable_samples(tiny_folder, tmp_path, capsys, one_thread):
    from harness.backends.hf import HFLM

    path = write(tmp_path, "capitals.yaml", CAPITALS, ROWS)
    out = run_json(capsys, "--task", path, "--model", f"hf:{tiny_folder}", "--out", tmp_path / "runs")
    samples = [json.loads(line) for line in open(f"{out['dir']}/samples.jsonl")]
    assert [s["prompt"] for s in samples] == [f"The capital of {r['country']} is" for r in ROWS]
    assert [s["target"] for s in samples] == [r["answer"] for r in ROWS]
    lm = HFLM(tiny_folder)  # the scores are the engine's loglikelihoods of " " + choice
    for sample, row in zip(samples, ROWS):
        expected = [ll for ll, _ in lm.loglikelihood([(sample["prompt"], " " + c) for c in row["choices"]])]
        assert sample["loglikelihoods"] == pytest.approx(expected, abs=1e-5)
        assert sample["pred"] == row["choices"][expected.index(max(expected))]
    accs = [s["acc"] for s in samples]
    mean = sum(accs) / 3
    assert out["metrics"]["acc"] == pytest.approx(mean)
    assert out["metrics"]["acc_stderr"] == pytest.approx(math.sqrt(sum((a - mean) ** 2 for a in accs) / 2 / 3))
    assert out["run_id"].startswith("my_capitals-")


def test_generation_exact_match_with_normalisation_and_few_shot(tiny_folder, tmp_path, capsys, one_thread):
    from harness.backends import SamplingParams
    from harness.backends.hf import HFLM

    rows = [{"q": f"{a} plus {b}", "a": str(a + b)} for a, b in ((1, 2), (3, 4), (5, 6), (7, 1))]
    yaml = write(
        tmp_path,
        "sums.yaml",
        """task: sums
dataset_path: sums.jsonl
test_split: test
num_fewshot: 2
fewshot_split: test
output_type: generate_until
doc_to_text: "Q: {{q}}\\nA:"
doc_to_target: a
generation_kwargs: {until: ["\\n"], max_gen_toks: 5}
metric_list: [{metric: exact_match, ignore_case: true, regexes_to_ignore: ["\\\\s"]}]
""",
        rows,
        "sums.jsonl",
    )
    out = run_json(capsys, "--task", yaml, "--model", f"hf:{tiny_folder}", "--out", tmp_path / "runs")
    samples = [json.loads(line) for line in open(f"{out['dir']}/samples.jsonl")]
    lm = HFLM(tiny_folder)
    for sample, row in zip(samples, rows):
        shots = sample["prompt"].split("\n\n")
        assert len(shots) == 3 and shots[-1] == f"Q: {row['q']}\nA:"  # two solved examples, never itself
        assert f"Q: {row['q']}\nA: {row['a']}" not in shots[:2]
        ((completion,),) = lm.generate([sample["prompt"]], SamplingParams(max_tokens=5, stop=("\n",)))
        assert sample["completion"] == completion.text
        assert sample["exact_match"] == float("".join(completion.text.split()).lower() == row["a"])
    again = run_json(capsys, "--task", yaml, "--model", f"hf:{tiny_folder}", "--out", tmp_path / "again")
    assert [json.loads(line)["prompt"] for line in open(f"{again['dir']}/samples.jsonl")] == [
        s["prompt"] for s in samples
    ]  # the same seed draws the same shots


def test_rolling_perplexity_is_corpus_level(tiny_folder, tmp_path, capsys, one_thread):
    from harness.backends.hf import HFLM

    texts = [
        "The sun rose over the quiet hills.",
        "A river runs to the sea and never fills it.",
        "Ünïcödé bytes count too.",
    ]
    yaml = write(
        tmp_path,
        "ppl.yaml",
        "task: ppl\ndataset_path: ppl.jsonl\ntest_split: test\n"
        "output_type: loglikelihood_rolling\ndoc_to_target: text\n",
        [{"text": t} for t in texts],
        "ppl.jsonl",
    )
    out = run_json(capsys, "--task", yaml, "--model", f"hf:{tiny_folder}", "--out", tmp_path / "runs")
    lls = HFLM(tiny_folder).loglikelihood_rolling(texts)
    words = sum(len(t.split()) for t in texts)
    size = sum(len(t.encode()) for t in texts)
    assert out["metrics"]["word_perplexity"] == pytest.approx(math.exp(-sum(lls) / words), rel=1e-5)
    assert out["metrics"]["byte_perplexity"] == pytest.approx(math.exp(-sum(lls) / size), rel=1e-5)
    assert out["metrics"]["bits_per_byte"] == pytest.approx(-sum(lls) / size / math.log(2), rel=1e-5)
    assert out["metrics"]["word_perplexity_stderr"] > 0


@pytest.mark.parametrize(
    "extra, message",
    [
        ("process_docs: !function utils.process_docs\n", "!function"),
        ("unsafe_code: true\n", "unsupported key(s) unsafe_code"),
        ("filter_list: [{name: x}]\n", "filter_list supports only [majority_vote, take_first]"),
        ("output_type: loglikelihood_sideways\n", "output_type 'loglikelihood_sideways' is not supported"),
    ],
)
def test_unsupported_yaml_is_one_line(tmp_path, extra, message, capsys):
    yaml = write(
        tmp_path,
        "bad.yaml",
        CAPITALS.replace("output_type: multiple_choice\n", "") + extra if "output_type" in extra else CAPITALS + extra,
        ROWS,
    )
    assert main(["run", "--task", str(yaml), "--model", "hf:x", "--out", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err


def test_a_template_naming_a_missing_field_is_one_line(tmp_path, capsys):
    yaml = write(tmp_path, "bad.yaml", CAPITALS.replace("{{country}}", "{{nation}}"), ROWS)
    assert main(["run", "--task", str(yaml), "--model", "hf:x", "--out", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err.strip()
    assert "'nation' is undefined" in err and "country" in err and "\n" not in err


def test_hub_dataset_offline_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # an empty cache, and nothing written to the user's
    assert main(["run", "--task", "openbookqa", "--model", "hf:x", "--out", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err.strip()
    assert "allenai/openbookqa" in err and "offline" in err and "\n" not in err


def test_shipped_tasks_parse_and_have_their_data():
    from harness.plugins.dataset_tasks.data import load_split
    from harness.plugins.dataset_tasks.task import DatasetTask, shipped_configs

    for name in sorted(set(shipped_configs()) - {"openbookqa"}):
        task = DatasetTask(config=name)
        docs = load_split(task.config, task.config.eval_split)
        assert len(docs) >= 20, name
        example = task.request(docs[0], [])
        assert example.get("prompt") or example.get("text")


def test_sandboxed_templates_evaluate_nothing(tmp_path, capsys):
    yaml = write(tmp_path, "bad.yaml", CAPITALS.replace("{{country}}", "{{country.__class__.__mro__}}"), ROWS)
    assert main(["run", "--task", str(yaml), "--model", "hf:x", "--out", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err.strip()
    assert "__class__" in err and "\n" not in err  # the sandbox refuses the attribute: one line, no traceback


@pytest.mark.parametrize(
    "template, message",
    [
        ("{{ 'a' * 10**8 }}", "1048576-character cap"),  # refused before the 100 MB string is built
        ("{% for i in range(90000) %}{{ 'abcdefghijkl' }}{% endfor %}", "renders more than 1048576 characters"),
        ("{% include 'secrets.txt' %}", "no include, import or extends"),
        ("{% for i in range(10**9) %}x{% endfor %}", "OverflowError: Range too big"),
        ("{{ country / 0 }}", "TypeError"),
    ],
)
def test_a_template_that_runs_away_or_errs_is_one_line(tmp_path, capsys, template, message):
    import time

    text = CAPITALS.replace('"The capital of {{country}} is"', "'" + template.replace("'", "''") + "'")
    yaml = write(tmp_path, "bad.yaml", text, ROWS)
    began = time.perf_counter()
    assert main(["run", "--task", str(yaml), "--model", "hf:x", "--out", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err
    assert time.perf_counter() - began < 30


def test_an_empty_out_is_refused_not_read_as_the_default(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    yaml = write(tmp_path, "capitals.yaml", CAPITALS, ROWS)
    assert main(["run", "--task", str(yaml), "--model", "hf:x", "--out", ""]) == 2
    err = capsys.readouterr().err.strip()
    assert "--out ''" in err and "\n" not in err
    assert not (tmp_path / "runs").exists()


def test_a_suite_runs_each_task_against_one_loaded_model(tiny_folder, tmp_path, capsys, monkeypatch, one_thread):
    import harness.backends

    loads = []
    real_load = harness.backends.load
    monkeypatch.setattr(harness.backends, "load", lambda *a, **k: loads.append(a) or real_load(*a, **k))  # a spy
    first = write(tmp_path, "capitals.yaml", CAPITALS, ROWS)
    second = write(
        tmp_path,
        "reverse.yaml",
        CAPITALS.replace("my_capitals", "reverse").replace(
            "The capital of {{country}} is", "{{country}}'s capital city:"
        ),
    )
    (tmp_path / "presets").mkdir()
    (tmp_path / "presets" / "both.yaml").write_text(f"tasks: [{first}, {second}]\ndescription: two tasks\n")
    assert (
        main(
            [
                "run",
                "--task",
                "both",
                "--include-path",
                str(tmp_path / "presets"),
                "--model",
                f"hf:{tiny_folder}",
                "--out",
                str(tmp_path / "runs"),
                "--json",
                "--no-cache",
            ]
        )
        == 0
    )
    results = json.loads(capsys.readouterr().out)
    assert [r["task"] for r in results] == [str(first), str(second)] and len(loads) == 1
    assert {r["run_id"].split("-")[0] for r in results} == {"my_capitals", "reverse"}
    prompts = [json.loads(open(f"{r['dir']}/samples.jsonl").readline())["prompt"] for r in results]
    assert prompts == ["The capital of France is", "France's capital city:"]
    assert (
        main(
            [
                "run",
                "--task",
                f"{first},{second}",
                "--model",
                f"hf:{tiny_folder}",
                "--out",
                str(tmp_path / "runs"),
                "--no-cache",
            ]
        )
        == 0
    )  # the same runs again: resumed, nothing recomputed
    table = capsys.readouterr().out
    assert str(first) in table and str(second) in table and "acc_norm" in table
    assert len(loads) == 1  # every sample was on disk, so no engine loaded


def test_loglikelihood_targets_and_include(tiny_folder, tmp_path, capsys, one_thread):
    from harness.backends.hf import HFLM

    write(
        tmp_path,
        "base.yaml",
        "dataset_path: capitals.jsonl\ntest_split: test\noutput_type: loglikelihood\ndoc_to_target: answer\n",
        ROWS,
    )
    yaml = write(
        tmp_path,
        "ll.yaml",
        'include: base.yaml\ntask: ll\ndescription: "Capitals.\\n"\ndoc_to_text: "The capital of {{country}} is"\n',
    )
    out = run_json(capsys, "--task", yaml, "--model", f"hf:{tiny_folder}", "--out", tmp_path / "runs")
    samples = [json.loads(line) for line in open(f"{out['dir']}/samples.jsonl")]
    pairs = [(f"Capitals.\nThe capital of {r['country']} is", " " + r["answer"]) for r in ROWS]
    assert [s["prompt"] for s in samples] == [p for p, _ in pairs]
    expected = HFLM(tiny_folder).loglikelihood(pairs)
    assert [s["loglikelihood"] for s in samples] == pytest.approx([ll for ll, _ in expected], abs=1e-5)
    assert out["metrics"]["acc"] == pytest.approx(sum(greedy for _, greedy in expected) / 3)
    assert out["metrics"]["perplexity"] == pytest.approx(math.exp(-sum(ll for ll, _ in expected) / 3), rel=1e-5)


def test_each_document_draws_its_own_shots_from_the_seed(tmp_path):
    from harness.plugins.dataset_tasks.task import DatasetTask

    from harness.evaluation import RunContext
    from harness.store import Run

    rows = [{"q": f"question {i}", "a": str(i)} for i in range(33)]
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[3:]))
    write(
        tmp_path,
        "shots.yaml",
        "task: shots\ndataset_path: json\ndataset_kwargs:\n  data_files: {train: "
        "train.jsonl, test: test.jsonl}\ntraining_split: train\ntest_split: test\nnum_fewshot: 3\n"
        "doc_to_text: q\ndoc_to_target: a\n",
        rows[:3],
        "test.jsonl",
    )

    def prompts(seed: int) -> list[str]:
        run = Run.open(tmp_path / "runs", {"task": "shots", "model": ""}, {"seed": seed})
        ctx = RunContext(run=run, model=None, seed=seed)
        out = [e["prompt"] for e in DatasetTask(config=str(tmp_path / "shots.yaml")).examples(ctx)]
        run.close()
        return out

    first = prompts(0)
    shots = [p.split("\n\n")[:3] for p in first]
    assert all(
        len(set(s)) == 3 and all(x.startswith("question ") and int(x.split()[1]) >= 3 for x in s) for s in shots
    )  # three distinct solved examples from the training split
    assert len({tuple(s) for s in shots}) == 3  # each document its own examples
    assert prompts(0) == first and prompts(1) != first  # the seed decides them
