"""PROPANE steps/s: batched proposal scoring vs a plain loop that scores one proposal at a time.

Both sides run the same search (same proposals, same documents, same model) for a few steps; the plain loop
builds each proposal's full token sequences and runs the model on them one proposal at a time with full logits,
the way a straightforward implementation would. The batched side is the plugin's: each proposal's context runs
once and the documents continue from its KV cache, only document positions reach the LM head. Usage:

    python benchmarks/propane_speed.py --model hf:smollm2 --threads 1 [--steps 3 --batch-size 32 --n-docs 16]

Any white-box --model spec works (hf:smollm2, hf:/path/to/folder, scratch:DIR). Target: >= 3x.
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F


def plain_scores(problem, proposals: torch.Tensor) -> torch.Tensor:
    """The naive way: per proposal, one forward over its (prompt + document) token rows with all logits."""
    module, split = problem.box.module, problem.train
    losses = []
    for proposal in proposals:
        context = torch.tensor(problem.context(proposal.tolist()))
        rows = torch.cat([context.expand(split.docs.shape[0], -1), split.docs], dim=1)
        with torch.no_grad():
            logits = module(input_ids=rows)
            logits = getattr(logits, "logits", logits).float()  # hf output object or the scratch tensor
        start = len(context)
        nll = F.cross_entropy(logits[:, start - 1 : -1].reshape(-1, logits.shape[-1]), split.docs.reshape(-1))
        losses.append(nll)
    return torch.stack(losses)


def timed_steps(problem, proposer, score, steps: int) -> float:
    generator = torch.Generator().manual_seed(0)
    current = torch.tensor(problem.init_ids)
    started = time.perf_counter()
    for _ in range(steps):
        proposals = proposer(current, generator)
        losses = score(proposals)
        current = proposals[int(losses.argmin())]
    return steps / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="hf:smollm2", help="a white-box model spec")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--n-docs", type=int, default=16)
    parser.add_argument("--doc-len", type=int, default=16)
    parser.add_argument("--chat", action="store_true", help="the prompt inside the chat template's user turn")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from harness.plugins.propane import search
    from harness.plugins.propane.problem import Problem, Settings

    from harness.backends import load

    problem = Problem(
        load(args.model),
        Settings(
            target_prompt="Write a short poem about the ocean at night.",
            n_docs=args.n_docs,
            n_heldout=2,
            doc_len=args.doc_len,
            batch_size=args.batch_size,
            topk=256,
        ),
        seed=0,
        chat=args.chat,
    )
    proposer = search.GradientProposer(problem)
    batched = timed_steps(problem, proposer, lambda p: problem.train.objective.search_loss(p, 0.0)[0], args.steps)
    plain = timed_steps(problem, proposer, lambda p: plain_scores(problem, p), args.steps)
    print(f"batched: {batched:.3f} steps/s  plain loop: {plain:.3f} steps/s  speed-up: {batched / plain:.2f}x")


if __name__ == "__main__":
    main()
