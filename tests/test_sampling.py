"""harness.sampling: the one top-k / top-p convention, the inverse-CDF draw and the per-sample streams."""

import pytest
import torch

from harness.sampling import draw, filter_scores, sample, sample_generator, sample_generators

pytestmark = pytest.mark.usefixtures("one_thread")

# a hand-made distribution whose partial sums are exact in floating point: 0.5, 0.75, 0.875, 1
PROBS = torch.tensor([[0.125, 0.5, 0.125, 0.25]], dtype=torch.float64)  # ranked: token 1, 3, then 0 and 2


def kept(top_p: float = 1.0, top_k: int = 0) -> set[int]:
    scores = filter_scores(PROBS.log(), temperature=1.0, top_k=top_k, top_p=top_p)
    return {i for i, s in enumerate(scores[0].tolist()) if s != float("-inf")}


@pytest.mark.parametrize(
    "top_p, expected",
    [
        (0.75, {1, 3}),  # the mass reaches top_p exactly with two tokens: the third goes
        (0.7, {1, 3}),  # the token that crosses top_p stays
        (0.5, {1}),
        (0.4, {1}),
        (1e-9, {1}),  # the most likely token always stays
    ],
)
def test_top_p_keeps_the_smallest_set_whose_mass_reaches_it(top_p, expected):
    assert kept(top_p=top_p) == expected


def test_top_p_edge_keeps_exactly_the_crossing_token():
    assert kept(top_p=0.75) == {1, 3}
    assert len(kept(top_p=0.76)) == 3  # 0.5 + 0.25 < 0.76: one of the 0.125 tokens completes the set
    assert len(kept(top_p=0.875)) == 3 and len(kept(top_p=0.88)) == 4


def test_top_k_keeps_ties_and_combines_with_top_p():
    assert kept(top_k=1) == {1}
    assert kept(top_k=3) == {0, 1, 2, 3}  # the 3rd score ties with the 4th
    assert kept(top_k=2, top_p=0.6) == {1}  # top-p reads the distribution top-k left: 0.5 / 0.75 = 0.67 >= 0.6
    assert kept(top_k=2, top_p=0.7) == {1, 3}
    assert kept(top_k=1, top_p=0.99) == {1}


def test_temperature_sharpens_and_zero_is_greedy():
    logits = PROBS.log()
    hot, cold = (filter_scores(logits, t).softmax(-1)[0] for t in (2.0, 0.5))
    assert hot[1] < PROBS[0, 1] < cold[1]
    generators = sample_generators(0, ["p"], 3)
    assert sample(logits.repeat(3, 1), generators, temperature=0).tolist() == [1, 1, 1]
    assert sample(logits, [sample_generator(0, "p", 0)], temperature=0, banned=1).tolist() == [3]


def test_draws_follow_the_distribution_and_skip_zero_probability_tokens():
    probs = torch.tensor([[0.5, 0.0, 0.3, 0.2, 0.0]])
    counts = torch.zeros(5)
    one_stream = torch.Generator().manual_seed(0)
    for _ in range(40):
        tokens = draw(probs.repeat(500, 1), one_stream)
        counts += torch.bincount(tokens, minlength=5)
    frequencies = counts / counts.sum()
    assert frequencies[1] == 0 and frequencies[4] == 0
    assert frequencies.tolist() == pytest.approx(probs[0].tolist(), abs=0.01)  # 20000 draws: stderr ~0.0035


def test_a_row_draws_from_its_own_stream_whatever_the_batch():
    logits = torch.randn(4, 50, generator=torch.Generator().manual_seed(1))
    prompts = ["a", "b", "c", "d"]
    together = [sample(logits, sample_generators(7, prompts, 1)).tolist() for _ in range(2)]
    alone = [sample(logits[i : i + 1], [sample_generator(7, p, 0)]).item() for i, p in enumerate(prompts)]
    reordered = sample(logits.flip(0), sample_generators(7, prompts[::-1], 1)).flip(0).tolist()
    assert together[0] == together[1] == alone == reordered


def test_streams_are_named_by_seed_prompt_and_index():
    def first(seed, prompt, k):
        return torch.rand(4, generator=sample_generator(seed, prompt, k)).tolist()

    assert first(1, "a", 0) == first(1, "a", 0)
    assert len({tuple(first(*parts)) for parts in [(1, "a", 0), (1, "b", 0), (1, "a", 1), (2, "a", 0)]}) == 4
    rows = sample_generators(1, ["a", "b"], 2)  # prompt-major
    assert torch.rand(1, generator=rows[2]).item() == first(1, "b", 0)[0]
