"""Next-token sampling, the one sampler of every local engine (hf, scratch) and experiment (graph_cot).

Filtering, in this order, on scores tempered by ``temperature``:
- top-k keeps the k highest scores (every token tied with the k-th too);
- top-p, on the distribution top-k left (renormalised), keeps the smallest set of most likely tokens whose
  probability mass reaches ``top_p``: a token stays when the mass of the tokens ranked above it is still below
  ``top_p`` (so the token that crosses ``top_p`` stays, a token after the mass reached exactly ``top_p`` goes, and
  the most likely token always stays).
The draw is by inverse CDF: one uniform per row from that row's own generator, then one cumsum and searchsorted for
the whole batch (a multinomial call per row cost ~15x more), so a row's token never depends on the other rows.

Streams: the k-th sample of a prompt draws from ``derive_seed(seed, prompt, k)`` (:func:`sample_generators`), so
the same seed gives the same samples whatever else is in the batch, and other prompts get independent streams.
vLLM samples with its own sampler, seeded per request by the same rule (harness/backends/vllm.py).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from harness.seeding import derive_seed


def filter_scores(logits: torch.Tensor, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0) -> torch.Tensor:
    """Scores (R, V) divided by ``temperature`` (> 0), with the tokens top-k / top-p drop set to -inf."""
    scores = (logits if logits.dtype in (torch.float32, torch.float64) else logits.float()) / temperature
    if 0 < top_k < scores.shape[-1]:
        kth = scores.topk(top_k, dim=-1).values[..., -1:]
        scores = scores.masked_fill(scores < kth, float("-inf"))
    if top_p < 1.0:
        ranked, order = scores.sort(dim=-1, descending=True)
        mass = ranked.softmax(-1).cumsum(-1)
        above = torch.cat([torch.zeros_like(mass[..., :1]), mass[..., :-1]], dim=-1)  # mass ranked above each token
        drop = above >= top_p
        drop[..., 0] = False
        scores = scores.scatter(-1, order, ranked.masked_fill(drop, float("-inf")))
    return scores


def draw(probs: torch.Tensor, generators: torch.Generator | Sequence[torch.Generator]) -> torch.Tensor:
    """One token per row of ``probs`` (R, V) by inverse CDF. ``generators``: one per row (per-sample streams), or
    one shared generator whose uniforms go to the rows in order."""
    if isinstance(generators, torch.Generator):
        uniforms = torch.rand(probs.shape[0], generator=generators, device=generators.device)
    else:
        uniforms = torch.cat([torch.rand(1, generator=g, device=g.device) for g in generators])
    uniforms = uniforms.to(probs.device, probs.dtype)
    cdf = probs.cumsum(-1)  # (R, V)
    total = cdf[:, -1:]
    target = torch.minimum(uniforms[:, None] * total, total.nextafter(torch.zeros_like(total)))  # < total
    return torch.searchsorted(cdf, target, right=True)[:, 0]  # right: a zero-probability token is never hit


def sample(
    logits: torch.Tensor,
    generators,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    banned: int | None = None,
) -> torch.Tensor:
    """Next token per row of ``logits`` (R, V): argmax when ``temperature`` is 0, else a draw from the tempered,
    filtered distribution. ``banned``: a token never chosen (EOS when sampling past it)."""
    if banned is not None:
        logits = logits.clone()
        logits[:, banned] = float("-inf")
    if temperature == 0:
        return logits.argmax(-1)
    return draw(filter_scores(logits, temperature, top_k, top_p).softmax(-1), generators)


def sample_generator(seed: int | None, prompt: str, k: int, device: str | torch.device = "cpu") -> torch.Generator:
    """The generator of the k-th sample of ``prompt``: the stream ``derive_seed(seed, prompt, k)``."""
    return torch.Generator(device=device).manual_seed(derive_seed(seed, prompt, k))


def sample_generators(
    seed: int | None, prompts: Sequence[str], n: int, device: str | torch.device = "cpu"
) -> list[torch.Generator]:
    """One generator per (prompt, sample index), prompt-major (row ``p * n + k``)."""
    return [sample_generator(seed, prompt, k, device) for prompt in prompts for k in range(n)]
