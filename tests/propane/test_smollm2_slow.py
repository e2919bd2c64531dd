"""PROPANE on the real SmolLM2-135M: about 100 steps at least halve the held-out KL from the "! " init.

Slow: run with ``HARNESS_CACHE=... pytest -m slow tests/propane/test_smollm2_slow.py``. Measured on the shared 2-core
machine (one torch thread, two other jobs running): passed in 540 s. The same settings and seed through the CLI
(``harness optimize --optimizer propane --model hf:smollm2 --target-prompt "Write a short poem about the ocean and
the stars at night." --steps 100 --topk 256 --n-docs 8 --doc-len 10 --batch-size 12 --args
n_heldout=16,eval_every=10``), with version 1 of the optimizer (all proposals scored in float32): held-out KL
17.12 +- 2.52 -> 7.43 +- 1.49 nats (2.3x lower; best prompt at step 96), train KL 13.8 -> 1.6, 0.124 steps/s.
Small documents (8 x 10 tokens) keep it affordable on CPU; the train/held-out gap shows they also overfit. PROPANE
against random search is measured over a prompt set, paired, by ``harness run --task propane_suite``
(docs/papers/propane.md).
"""

import pytest
import torch
from harness.plugins.propane import search
from harness.plugins.propane.problem import Problem, Settings


@pytest.mark.slow
def test_propane_halves_heldout_kl_on_smollm2():
    from harness.backends import load

    torch.set_num_threads(1)
    lm = load("hf:smollm2")
    settings = Settings(
        target_prompt="Write a short poem about the ocean and the stars at night.",
        steps=100,
        topk=256,
        n_docs=8,
        n_heldout=16,
        doc_len=10,
        batch_size=12,
        eval_every=10,
    )
    problem = Problem(lm, settings, seed=0)
    assert 10 <= len(problem.target_ids) <= 15
    trace = search.swap_search(problem, search.GradientProposer(problem), lambda step, record: None)
    metrics = search.summarise(problem, trace)
    assert metrics["kl_heldout_best"] <= 0.5 * metrics["kl_heldout_initial"]
