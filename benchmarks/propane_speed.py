"""PROPANE steps/s: the plugin's search step against per-proposal loops, as ratios from one run.

Every side runs the same search (same gradient proposals, same documents, same model, one thread) for a few steps,
and each step is timed whole: the gradient pass that makes the proposals, then picking the best proposal.

- plugin: the search as it ships. All proposals are ranked by a bfloat16 copy of the model, batched: each
  proposal's context runs once and its documents continue from the KV cache, and only document positions reach
  the LM head; the ranker's best 4 are rescored the same way in float32 and the float32 best is taken.
- plugin, exact: the same batched scoring of every proposal in float32 (``rank_dtype=float32``).
- loop, naive: one proposal at a time, its (context + document) token rows in one float32 forward with logits at
  every position, the way a straightforward implementation scores.
- loop + tricks: one proposal at a time, with the tricks that are not about batching: bfloat16 ranking with
  float32 rescoring of the best 4, and the LM head only on document positions (``logits_to_keep``). What it lacks
  is only batching proposals together and sharing each context's KV cache across its documents.

The ratios name what each gain is from; the picks of every side are compared (float32 ties aside they agree).
Ratios are of steps per CPU-second of this process (one thread), which other jobs on the cores barely move; steps
per wall-second are printed beside them.
Usage:

    python benchmarks/propane_speed.py --model hf:smollm2 --threads 1 [--steps 3 --batch-size 32 --n-docs 16]

Any hf white-box --model spec works (hf:smollm2, hf:/path/to/folder). Target (issue 18): plugin >= 3x the naive loop.
"""

from __future__ import annotations

import argparse
import copy
import os
import time

import torch
import torch.nn.functional as F

RESCORE = 4


def loop_losses(problem, module, proposals: torch.Tensor, doc_logits_only: bool) -> torch.Tensor:
    """Per proposal, one forward over its (context + document) rows: token-mean NLL of the training documents."""
    docs = problem.train.docs
    losses = []
    for proposal in proposals:
        context = torch.tensor(problem.context(proposal.tolist()))
        rows = torch.cat([context.expand(docs.shape[0], -1), docs], dim=1)
        with torch.no_grad():
            if doc_logits_only:
                logits = module(input_ids=rows, logits_to_keep=docs.shape[1] + 1).logits[:, :-1].float()
            else:
                logits = module(input_ids=rows).logits[:, len(context) - 1 : -1].float()
        losses.append(F.cross_entropy(logits.reshape(-1, logits.shape[-1]), docs.reshape(-1)))
    return torch.stack(losses)


def loop_pick(problem, fast_module, proposals: torch.Tensor) -> int:
    """The loop with the non-batching tricks: rank in bfloat16, rescore the best few in float32."""
    rough = loop_losses(problem, fast_module, proposals, doc_logits_only=True)
    candidates = rough.argsort()[:RESCORE].sort().values
    exact = loop_losses(problem, problem.box.module, proposals[candidates], doc_logits_only=True)
    return int(candidates[int(exact.argmin())])


def interleaved_steps(problem, proposer, sides: dict, steps: int) -> tuple[dict, dict, dict]:
    """Per side: steps per CPU-second and per wall-second of a search whose step is: gradient proposals, then
    ``pick(proposals)``; and the picks it made. Each side runs its own search (its own prompt and proposal
    generator, seeded alike), and the sides take turns step by step, so a change of load during the run falls on
    every side alike. CPU time is the process's own: with other jobs on the cores it is the steadier measure (one
    thread: CPU time is the time the work takes on an idle core). A small pick first, untimed, pays each side's
    one-time setup (the fused forward packs its weights on first use), as a search of many steps does once."""
    for pick in sides.values():  # warm-up: one-time setup, untimed
        pick(proposer(torch.tensor(problem.init_ids), torch.Generator().manual_seed(1))[: RESCORE + 1])
    state = {name: (torch.tensor(problem.init_ids), torch.Generator().manual_seed(0)) for name in sides}
    cpu, wall, picks = dict.fromkeys(sides, 0.0), dict.fromkeys(sides, 0.0), {name: [] for name in sides}
    for _ in range(steps):
        for name, pick in sides.items():
            current, generator = state[name]
            began_cpu, began_wall = time.process_time(), time.perf_counter()
            proposals = proposer(current, generator)
            picks[name].append(pick(proposals))
            cpu[name] += time.process_time() - began_cpu
            wall[name] += time.perf_counter() - began_wall
            state[name] = (proposals[picks[name][-1]], generator)
    return {n: steps / cpu[n] for n in sides}, {n: steps / wall[n] for n in sides}, picks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="hf:smollm2", help="an hf white-box model spec")
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
            rescore=RESCORE,
        ),
        seed=0,
        chat=args.chat,
    )
    objective = problem.train.objective
    if objective.ranker is None:
        raise SystemExit("the plugin built no bfloat16 ranker (a float32 hf model is needed)")
    fast_module = copy.deepcopy(problem.box.module).to(torch.bfloat16)
    proposer = search.GradientProposer(problem)
    load_before = os.getloadavg()[0]
    sides = {
        "plugin": lambda p: objective.best_of(p, 0.0)[0],
        "plugin, exact": lambda p: int(objective.search_loss(p, 0.0)[0].argmin()),
        "loop + tricks": lambda p: loop_pick(problem, fast_module, p),
        "loop, naive": lambda p: int(loop_losses(problem, problem.box.module, p, doc_logits_only=False).argmin()),
    }
    rates, walls, picks = interleaved_steps(problem, proposer, sides, args.steps)
    context = len(problem.context(problem.init_ids))
    print(
        f"{args.model}, {torch.get_num_threads()} thread(s), {args.steps} steps of {args.batch_size} proposals x "
        f"{args.n_docs} documents x {args.doc_len} tokens, {context}-token context; load average "
        f"{load_before:.2f} before, {os.getloadavg()[0]:.2f} after (other jobs share the cores); the sides take "
        "turns step by step"
    )
    for name in sides:
        same = "same picks as plugin" if picks[name] == picks["plugin"] else f"picks differ: {picks[name]}"
        print(f"  {name:14s} {rates[name]:.4f} steps/CPU-s  {walls[name]:.4f} steps/wall-s  ({same})")
    print("ratios of steps per CPU-second:")
    naive, tricks = rates["loop, naive"], rates["loop + tricks"]
    print(f"plugin / loop, naive:         {rates['plugin'] / naive:.2f}x  (target >= 3x)")
    print(f"plugin / loop + tricks:       {rates['plugin'] / tricks:.2f}x  (batching and the shared context alone)")
    print(f"plugin, exact / loop, naive:  {rates['plugin, exact'] / naive:.2f}x  (all float32, as before ranking)")
    print(f"plugin / plugin, exact:       {rates['plugin'] / rates['plugin, exact']:.2f}x  (bfloat16 ranking alone)")


if __name__ == "__main__":
    main()
