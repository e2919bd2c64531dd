"""Parity with lm-evaluation-harness 0.4.13 (tox -e lmeval): the same task YAML over local JSONL, the same tiny
Llama folder, through lm-eval's hf model and through `harness run --task FILE.yaml`. Per-sample loglikelihoods
agree to 1e-4 and accuracy exactly."""

import json

import pytest
from cli_helpers import run_harness

pytestmark = pytest.mark.lmeval


def lmeval_samples(yaml_path, folder) -> tuple[dict, list[dict]]:
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

    name = yaml_path.stem
    results = simple_evaluate(
        model="hf",
        model_args=f"pretrained={folder},dtype=float32,device=cpu",
        tasks=[name],
        task_manager=TaskManager(include_path=str(yaml_path.parent)),
        log_samples=True,
        batch_size=4,
    )
    return results["results"][name], sorted(results["samples"][name], key=lambda s: s["doc_id"])


def test_multiple_choice_scores_equal_lmeval(tiny_folder, mc_task, tmp_path, one_thread, monkeypatch):
    pytest.importorskip("lm_eval")
    import datasets

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-datasets")  # lm-eval's loads land here
    yaml_path = mc_task
    theirs, their_samples = lmeval_samples(yaml_path, tiny_folder)

    result = run_harness(
        "run", "--task", yaml_path, "--model", f"hf:{tiny_folder}", "--out", tmp_path / "runs", "--no-cache", "--json"
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    ours = [json.loads(line) for line in open(f"{out['dir']}/samples.jsonl")]
    ours.sort(key=lambda s: int(s["id"]))

    assert len(ours) == len(their_samples) == 8
    for mine, their in zip(ours, their_samples):
        their_lls = [float(resp[0]) for resp in their["filtered_resps"]]
        first = their["arguments"][0]  # (context, continuation) of the first choice
        context = first[0] if isinstance(first, list | tuple) else first["arg_0"]
        assert mine["prompt"] == context  # the same few-shot prompt
        assert mine["loglikelihoods"] == pytest.approx(their_lls, abs=1e-4)
        assert mine["acc"] == their["acc"] and mine["acc_norm"] == their["acc_norm"]
    assert out["metrics"]["acc"] == pytest.approx(theirs["acc,none"], abs=1e-12)
    assert out["metrics"]["acc_norm"] == pytest.approx(theirs["acc_norm,none"], abs=1e-12)
    assert out["metrics"]["acc_stderr"] == pytest.approx(theirs["acc_stderr,none"], abs=1e-9)


def test_generation_and_exact_match_equal_lmeval(tiny_folder, tmp_path, one_thread, monkeypatch):
    pytest.importorskip("lm_eval")
    import datasets

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-datasets")
    folder = tmp_path / "gen"
    folder.mkdir()
    rows = [{"q": f"{a} plus {b}", "a": str(a + b)} for a, b in ((1, 2), (3, 4), (5, 6), (7, 1), (2, 2), (9, 9))]
    (folder / "sums.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    yaml_path = folder / "harness_parity_gen.yaml"
    yaml_path.write_text(f"""task: harness_parity_gen
dataset_path: json
dataset_kwargs:
  data_files: {{test: {folder / "sums.jsonl"}}}
test_split: test
output_type: generate_until
doc_to_text: "Q: {{{{q}}}}\\nA:"
doc_to_target: " {{{{a}}}}"
generation_kwargs: {{until: ["\\n", "Q:"], max_gen_toks: 12}}
metric_list:
  - metric: exact_match
    ignore_case: true
    ignore_punctuation: true
""")
    theirs, their_samples = lmeval_samples(yaml_path, tiny_folder)
    result = run_harness(
        "run", "--task", yaml_path, "--model", f"hf:{tiny_folder}", "--out", tmp_path / "runs", "--no-cache", "--json"
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    ours = sorted((json.loads(line) for line in open(f"{out['dir']}/samples.jsonl")), key=lambda s: int(s["id"]))
    assert [s["completion"] for s in ours] == [s["filtered_resps"][0] for s in their_samples]
    assert [s["exact_match"] for s in ours] == [s["exact_match"] for s in their_samples]
    assert out["metrics"]["exact_match"] == pytest.approx(theirs["exact_match,none"], abs=1e-12)
