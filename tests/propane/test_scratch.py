"""harness optimize --optimizer propane on a from-scratch model (``--model scratch:DIR``, word-level tokenizer)."""

import json

import pytest
from cli_helpers import harness_env, run_harness


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """An untrained 2-layer transformer over 24 words, with large weights so that outputs depend on the prompt."""
    import torch

    from harness.models import ModelConfig, WordTokenizer, build_model, save_checkpoint_dir

    torch.manual_seed(0)
    tokenizer = WordTokenizer([f"w{i}" for i in range(24)])
    model = build_model(
        ModelConfig(
            vocab_size=tokenizer.vocab_size,
            n_layer=2,
            n_head=2,
            d_model=32,
            max_seq_len=24,
            positions="rotary",
            init_scale=8.0,
        )
    )
    return save_checkpoint_dir(tmp_path_factory.mktemp("scratch") / "model", model, tokenizer, {"add_bos": True})


def optimize(checkpoint, tmp_path, options=""):
    return run_harness(
        "optimize",
        "--optimizer",
        "propane",
        "--model",
        f"scratch:{checkpoint}",
        "--args",
        f"target_prompt=w3 w7 w11 w5,{options}".rstrip(","),
        "--out",
        tmp_path / "runs",
        "--json",
        env=harness_env(HARNESS_CACHE=str(tmp_path / "cache")),
    )


def test_propane_on_a_scratch_checkpoint(checkpoint, tmp_path):
    result = optimize(checkpoint, tmp_path, "steps=6,n_docs=16,doc_len=8,topk=8,batch_size=16,prompt_len=4")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    metrics = report["metrics"]
    assert metrics["kl_heldout_best"] < 0.5 * metrics["kl_heldout_initial"]
    best = json.loads(open(f"{report['dir']}/best_prompt.json").read())
    assert best["init"] == "w0 w0 w0 w0"  # no "!" among the words: the first allowed word fills the init
    assert best["roundtrip_ok"] and all(word.startswith("w") for word in best["text"].split())
    documents = [json.loads(line) for line in open(f"{report['dir']}/documents.jsonl")]
    eos = 2  # <pad>, <bos>, <eos> come first in a WordTokenizer
    assert len(documents) == 32 and all(len(d["token_ids"]) == 8 and eos not in d["token_ids"] for d in documents)


def test_prompt_and_documents_must_fit_the_model(checkpoint, tmp_path):
    result = optimize(checkpoint, tmp_path, "doc_len=30")
    assert result.returncode == 2 and "doc_len" in result.stderr
