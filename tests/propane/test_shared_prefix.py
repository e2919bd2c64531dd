"""Shared-prefix attention (issue 33): documents that continue one cached context read its keys once, and score as
they did when the cache was copied per document, on the real SmolLM2-135M (float32 and its bfloat16 ranker)."""

import copy

import pytest
import torch
import torch.nn.functional as F
from harness.plugins.propane import search
from harness.plugins.propane.problem import Problem, Settings
from harness.plugins.propane.whitebox import token_nll

from harness.backends.fused import FusedForward

CONTEXTS, DOCS, CONTEXT_LEN, DOC_LEN = 3, 4, 12, 9


def copied_cache_hidden(forward: FusedForward, contexts, rows, mask) -> torch.Tensor:
    """The path before shared-prefix attention: the contexts' cache repeated per document, then the documents."""
    cache = forward.new_cache()
    forward(contexts, torch.ones(contexts.shape[:2], dtype=torch.long), cache=cache)
    cache.batch_repeat_interleave(DOCS)
    return forward(rows, mask, cache=cache)


def shared_prefix_hidden(forward: FusedForward, contexts, rows, mask) -> torch.Tensor:
    cache = forward.new_cache()
    forward(contexts, torch.ones(contexts.shape[:2], dtype=torch.long), cache=cache)
    hidden = forward(rows, mask, shared=cache)
    assert cache.get_seq_length() == CONTEXT_LEN  # nothing added to the shared cache
    return hidden


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_shared_prefix_hidden_states_equal_the_copied_cache(smollm2, dtype, one_thread):
    module = smollm2.module if dtype == torch.float32 else copy.deepcopy(smollm2.module).to(dtype)
    forward = FusedForward(module)
    generator = torch.Generator().manual_seed(0)
    contexts = torch.randint(100, 40000, (CONTEXTS, CONTEXT_LEN), generator=generator)
    documents = torch.randint(100, 40000, (DOCS, DOC_LEN), generator=generator)
    rows = documents.repeat(CONTEXTS, 1)  # context-major: row b continues context b // DOCS
    mask = torch.ones(len(rows), CONTEXT_LEN + DOC_LEN, dtype=torch.long)
    mask[1, CONTEXT_LEN : CONTEXT_LEN + 3] = 0  # one document left-padded by 3: its padding is seen by no query
    with torch.inference_mode():
        before = copied_cache_hidden(forward, contexts, rows, mask)
        after = shared_prefix_hidden(forward, contexts, rows, mask)
    real = mask[:, CONTEXT_LEN:].bool()
    if dtype == torch.float32:
        torch.testing.assert_close(after[real], before[real], atol=1e-4, rtol=1e-4)
    else:  # bfloat16 layers between the float32 attentions: a rounding flip may carry, never more
        error = (after[real].float() - before[real].float()).abs().max() / before[real].float().abs().max()
        assert error < 0.02
    assert not torch.equal(after[0], after[DOCS])  # the same document after different contexts differs


def copied_cache_doc_nll(objective, proposals: torch.Tensor) -> torch.Tensor:
    """Summed document NLL (P, n) the way the ranking computed it before: cache copied per document, all float32
    logits at once, one F.cross_entropy."""
    box = objective.box
    contexts = objective._contexts(objective.prompt_embeds(proposals))
    count, context_len = contexts.shape[:2]
    n, doc_len = objective.docs.shape
    cache = box._fused.new_cache()
    mask = torch.ones(count, context_len, dtype=torch.long)
    first = box._fused.logits(box._fused(contexts, mask, cache=cache)[:, -1:], box.dtype).float()
    cache.batch_repeat_interleave(n)
    rows = objective.doc_embeds[:, :-1].repeat(count, 1, 1)
    hidden = box._fused(rows, torch.ones(count * n, context_len + doc_len - 1, dtype=torch.long), cache=cache)
    logits = torch.cat([first.repeat_interleave(n, dim=0), box._fused.logits(hidden, box.dtype).float()], dim=1)
    targets = objective.docs.repeat(count, 1)
    nll = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), reduction="none")
    return (nll.view(targets.shape) * objective.mask.repeat(count, 1)).sum(1).view(count, n)


def test_ranking_scores_equal_the_copied_cache_path(smollm2, one_thread):
    settings = Settings(
        target_prompt="Write a short poem about the ocean at night.", n_docs=DOCS, n_heldout=1, doc_len=DOC_LEN
    )
    problem = Problem(smollm2, settings, seed=0)
    proposals = search.RandomProposer(problem)(torch.tensor(problem.init_ids), torch.Generator().manual_seed(1))[:6]
    # bfloat16's noise: the copied-cache path itself moves by up to 0.43 nats (of ~50 per 9-token document) when its
    # float32 attention runs torch's math kernel instead of the flash one (measured here; this change: 0.31)
    for objective, atol in ((problem.train.objective, 1e-3), (problem.train.objective.ranker, 0.5)):
        assert objective.box._fused is not None
        with torch.no_grad():
            before = copied_cache_doc_nll(objective, proposals)
        after = objective.doc_nll(proposals)
        torch.testing.assert_close(after, before, atol=atol, rtol=0)  # summed over 9 tokens, in nats
        if objective is problem.train.objective:  # float32: the proposals in the same order
            assert after.sum(1).argsort().tolist() == before.sum(1).argsort().tolist()


def test_token_nll_equals_cross_entropy_at_once():
    generator = torch.Generator().manual_seed(0)
    logits = (torch.randn(5, 7, 300, generator=generator) * 4).bfloat16()  # 35 positions: two full blocks and a part
    targets = torch.randint(0, 300, (5, 7), generator=generator)
    at_once = F.cross_entropy(logits.float().reshape(-1, 300), targets.reshape(-1), reduction="none").view(5, 7)
    assert torch.equal(token_nll(logits, targets), at_once)
