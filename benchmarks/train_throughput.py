"""Training throughput: our Trainer vs a Hugging Face MistralForCausalLM in a plain PyTorch loop, same shape.

Configuration (the issue's): hidden 128, 4 layers, 4 heads, sequence 256, batch 64, CPU; vocabulary 512 (the
size of our synthetic word languages; the issue leaves it open) and FFN 512. Both models are the same
architecture: rotary positions, RMSNorm, SwiGLU FFN, no biases, untied head. Each side runs at each dtype
(float32, bfloat16 autocast) and keeps its best; our MFU is model FLOPs (6 N + 12 L d T per token, PaLM's
convention) over the matmul peak measured here at the dtype we won with. Every run has a fresh process. Our
Trainer keeps freed memory in the process (harness.training.keep_freed_memory); the HF loop is run plain, once more
with that same setting (what jemalloc or tcmalloc, PyTorch's CPU tuning advice, give a HF user), and once more with
that setting and torch.compile over its forward + loss (as ours compiles its loss computation): the best HF variant
is the peer. Last line: ``ratio R`` (our best tokens/s over the best HF variant's; target 1.5).

Also reported: each compiled contender's first step (tracing + compiling + running it: the first-call cost; our
Trainer caches compiled code under $HARNESS_CACHE/inductor, so rounds after the first pay tracing only), the
process CPU seconds per step beside the wall seconds (on a loaded machine, run with ``--threads 1``: the CPU-time
ratio then moves less with the load than the wall-time one, where at 2 threads CPU time also counts OpenMP threads
spinning while they wait for one another, which the load stretches), and with ``--profile`` where our best
variant's step goes (torch.profiler over one step: linear matmuls, attention, the compiled elementwise kernels, the
optimizer, the rest).

    python benchmarks/train_throughput.py [--steps 4] [--warmup 2] [--rounds 2] [--no-compile] [--dtypes bfloat16]
        [--contenders ours+compile hf+kept-memory+compile] [--profile] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import torch

HIDDEN, LAYERS, HEADS, SEQ, BATCH, VOCAB, FFN = 128, 4, 4, 256, 64, 512, 512


def batches(step: int, generator: torch.Generator) -> dict:
    x = torch.randint(0, VOCAB, (BATCH, SEQ + 1), generator=generator)
    return {"input_ids": x[:, :-1], "targets": x[:, 1:]}


def our_model():
    """Our transformer at the benchmark's shape (seeded)."""
    from harness.models import ModelConfig, build_model

    torch.manual_seed(0)
    config = ModelConfig(
        vocab_size=VOCAB,
        n_layer=LAYERS,
        n_head=HEADS,
        d_model=HIDDEN,
        d_ff=FFN,
        max_seq_len=SEQ,
        positions="rotary",
        ffn="swiglu",
        norm="rmsnorm",
        bias=False,
    )
    return build_model(config)


def ours(dtype: str, steps: int, warmup: int, compile: bool) -> dict:
    """Wall and CPU seconds per step of our Trainer after ``warmup`` steps (timed between its per-step log calls),
    and the first step's seconds (``compile_s`` when compiled)."""
    from harness.training import TrainConfig, Trainer

    model = our_model()
    stamps = []
    train = TrainConfig(
        steps=warmup + steps,
        batch_size=BATCH,
        lr=3e-4,
        weight_decay=0.1,
        dtype=dtype,
        log_every=1,
        compile=compile,
    )
    stamp = lambda step, values: stamps.append((time.perf_counter(), time.process_time()))  # noqa: E731
    result = Trainer(model, train, batches, log=stamp, progress=False).fit()
    timed = stamps[warmup - 1 :]
    return {
        "wall": [b[0] - a[0] for a, b in zip(timed, timed[1:])],
        "cpu": [b[1] - a[1] for a, b in zip(timed, timed[1:])],
        "first_s": result.get("compile_s"),
    }


def hf(dtype: str, steps: int, warmup: int, keep_memory: bool = False, compile: bool = False) -> dict:
    """Wall and CPU seconds per step of MistralForCausalLM in a plain loop (AdamW, clipping, same batches), and the
    first step's seconds when compiled.

    ``keep_memory`` applies our Trainer's allocator setting (harness.training.keep_freed_memory) first; ``compile``
    runs forward + loss through torch.compile (compiled during the warmup steps).
    """
    from transformers import MistralConfig, MistralForCausalLM

    if keep_memory:
        from harness.training import keep_freed_memory

        keep_freed_memory()

    torch.manual_seed(0)
    config = MistralConfig(
        vocab_size=VOCAB,
        hidden_size=HIDDEN,
        intermediate_size=FFN,
        num_hidden_layers=LAYERS,
        num_attention_heads=HEADS,
        num_key_value_heads=HEADS,
        max_position_embeddings=SEQ,
        tie_word_embeddings=False,
        attn_implementation="sdpa",
    )
    model = MistralForCausalLM(config).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-4, weight_decay=0.1)

    def loss_of(input_ids: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == "bfloat16"):
            logits = model(input_ids=input_ids).logits
        return torch.nn.functional.cross_entropy(logits.float().flatten(0, 1), targets.flatten())

    step_loss = torch.compile(loss_of) if compile else loss_of
    times, cpu = [], []
    for step in range(warmup + steps):
        began, cpu_began = time.perf_counter(), time.process_time()
        batch = batches(step, torch.Generator().manual_seed(step))
        loss = step_loss(batch["input_ids"], batch["targets"])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        loss.item()
        times.append(time.perf_counter() - began)
        cpu.append(time.process_time() - cpu_began)
    return {"wall": times[warmup:], "cpu": cpu[warmup:], "first_s": times[0] if compile else None}


NAMES = ("hf", "hf+kept-memory", "ours", "hf+kept-memory+compile", "ours+compile")


def rate_of(runs: list[dict], clock: str) -> float:
    """Tokens per second of the fastest step over all rounds, by the wall or the process CPU clock."""
    return BATCH * SEQ / min(t for run in runs for t in run[clock])


def run_contender(name: str, dtype: str, steps: int, warmup: int, threads: int | None = None) -> dict:
    if threads:
        torch.set_num_threads(threads)
    if name.startswith("hf"):
        return hf(dtype, steps, warmup, keep_memory=name != "hf", compile=name == "hf+kept-memory+compile")
    return ours(dtype, steps, warmup, compile=name == "ours+compile")


def matmul_peak(dtype: torch.dtype, size: int = 2048, repeats: int = 5) -> float:
    """Best FLOP/s of a square matmul at ``dtype`` on this machine, now."""
    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best


def flops_per_token() -> float:
    per_layer = 4 * HIDDEN * HIDDEN + 3 * HIDDEN * FFN  # q, k, v, o; gate, up, down
    matmul_params = LAYERS * per_layer + HIDDEN * VOCAB  # + lm head
    return 6 * matmul_params + 12 * LAYERS * HIDDEN * SEQ


ATTENTION = ("GroupedAttention", "GroupedAttentionBackward", "aten::_scaled_dot_product_flash_attention_for_cpu")


def profile_ours(dtype: str, compile: bool, threads: int | None = None) -> dict:
    """Where one step of our Trainer goes (torch.profiler over its 4th step): seconds by part of the step.

    Linear matmuls: the self time of aten::mm/addmm (the projections and the head, forward and backward);
    attention: all of the attention op, forward and backward (its bmm, softmax and copies included); compiled
    elementwise: the self time of inductor's compiled graphs (the fused norms, rotary, SwiGLU, residuals, loss);
    optimizer: AdamW's step and zeroing; other: the rest (clipping, autograd bookkeeping, Python).
    """
    from torch.profiler import ProfilerActivity, profile, schedule

    from harness.training import TrainConfig, Trainer

    if threads:
        torch.set_num_threads(threads)
    config = TrainConfig(
        steps=4, batch_size=BATCH, lr=3e-4, weight_decay=0.1, dtype=dtype, log_every=1, compile=compile
    )
    prof = profile(activities=[ProfilerActivity.CPU], schedule=schedule(wait=2, warmup=1, active=1, repeat=1))
    with prof:
        Trainer(our_model(), config, batches, log=lambda step, values: prof.step(), progress=False).fit()
    events = prof.key_averages()

    def part(match, own: bool = True) -> float:
        return sum((e.self_cpu_time_total if own else e.cpu_time_total) for e in events if match(e.key)) / 1e6

    total = part(lambda key: True)
    parts = {
        "linear matmuls": part(lambda key: key in ("aten::mm", "aten::addmm")),
        "attention": part(lambda key: key.startswith(ATTENTION), own=False),
        "compiled elementwise": part(lambda key: key.startswith("## Call CompiledFxGraph")),
        "optimizer": part(lambda key: key.startswith("Optimizer."), own=False),
    }
    parts["other"] = total - sum(parts.values())
    return {"step_s": total, "seconds": parts, "fractions": {k: v / total for k, v in parts.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4, help="timed steps per round")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps per round (compiles here)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds, interleaving the contenders")
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile variants")
    parser.add_argument("--dtypes", nargs="+", default=["float32", "bfloat16"], help="each contender at each")
    parser.add_argument("--contenders", nargs="+", choices=NAMES, help="only these (at least one ours and one hf)")
    parser.add_argument("--profile", action="store_true", help="also profile one step of our best variant")
    parser.add_argument("--threads", type=int, help="torch threads per contender (default: torch's own)")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; hidden {HIDDEN}, {LAYERS} layers, "
        f"{HEADS} heads, seq {SEQ}, batch {BATCH}, vocab {VOCAB}; load average {os.getloadavg()[0]:.1f}"
    )
    names = args.contenders or [n for n in NAMES if not (args.no_compile and n.endswith("compile"))]
    if not any(n.startswith("ours") for n in names) or not any(n.startswith("hf") for n in names):
        parser.error("--contenders needs at least one of ours and one of hf")
    contenders = [(name, dtype) for name in names for dtype in args.dtypes]
    runs: dict[tuple, list[dict]] = {key: [] for key in contenders}
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=spawn, max_tasks_per_child=1) as pool:
        for _ in range(args.rounds):  # interleaved, so load from other processes hits every contender alike
            for key in contenders:  # each in a fresh process (on-disk compile caches are shared, both sides)
                runs[key].append(pool.submit(run_contender, *key, args.steps, args.warmup, args.threads).result())
        profile = None
        if args.profile:
            best = max((k for k in contenders if k[0].startswith("ours")), key=lambda k: rate_of(runs[k], "wall"))
            profile = pool.submit(profile_ours, best[1], best[0] == "ours+compile", args.threads).result()
            profile["contender"] = " ".join(best)
    figures = report(runs, profile)
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1))


def report(runs: dict[tuple, list[dict]], profile: dict | None) -> dict:
    """Print each contender's rates, the best of each side, MFU, the profile and the ratios; the figures."""
    rates = {key: rate_of(r, "wall") for key, r in runs.items()}
    cpu_rates = {key: rate_of(r, "cpu") for key, r in runs.items()}
    first = {f"{k[0]} {k[1]}": [round(x["first_s"], 2) for x in r] for k, r in runs.items() if r[0]["first_s"]}
    for key, r in runs.items():
        median = BATCH * SEQ / statistics.median(t for x in r for t in x["wall"])
        print(
            f"{key[0]:22s} {key[1]:9s} best {rates[key]:8,.0f} tokens/s   median {median:8,.0f}   "
            f"best {cpu_rates[key]:8,.0f} tokens/CPU-s"
            + (
                f"   first step {', '.join(f'{x:.1f}' for x in first[' '.join(key)])} s"
                if " ".join(key) in first
                else ""
            ),
            flush=True,
        )
    best_hf = max((v, k) for k, v in rates.items() if k[0].startswith("hf"))
    best_hf_plain = max((v for k, v in rates.items() if k[0] == "hf"), default=None)
    best_hf_kept = max((v for k, v in rates.items() if k[0] == "hf+kept-memory"), default=None)
    best_ours = max((v, k) for k, v in rates.items() if k[0].startswith("ours"))
    cpu_ratio = max(v for k, v in cpu_rates.items() if k[0].startswith("ours")) / max(
        v for k, v in cpu_rates.items() if k[0].startswith("hf")
    )
    peak = matmul_peak(torch.float32 if best_ours[1][1] == "float32" else torch.bfloat16)
    mfu = best_ours[0] * flops_per_token() / peak
    hf_peak = peak if best_hf[1][1] == best_ours[1][1] else matmul_peak(getattr(torch, best_hf[1][1]))
    hf_mfu = best_hf[0] * flops_per_token() / hf_peak
    others = [
        f"{name} {rate:,.0f}" for name, rate in (("plain", best_hf_plain), ("with kept memory", best_hf_kept)) if rate
    ]
    print(
        f"best hf:   {best_hf[0]:,.0f} tokens/s ({best_hf[1][0]}, {best_hf[1][1]})"
        + "; " * bool(others)
        + ", ".join(others)
    )
    print(f"best ours: {best_ours[0]:,.0f} tokens/s ({best_ours[1][0]}, {best_ours[1][1]})")
    print(
        f"matmul peak {best_ours[1][1]}: {peak / 1e9:.1f} GFLOP/s; our MFU {100 * mfu:.1f}%, the best hf variant's "
        f"{100 * hf_mfu:.1f}% ({flops_per_token() / 1e6:.2f} MFLOP per token)"
    )
    if profile:
        shares = ", ".join(f"{k} {100 * v:.0f}%" for k, v in profile["fractions"].items())
        print(f"profile of {profile['contender']}: one step {profile['step_s']:.3f} s: {shares}")
    if best_hf_plain:
        print(f"ours over the plain hf loop: {best_ours[0] / best_hf_plain:.2f}")
    print(f"ratio in CPU time {cpu_ratio:.2f} (ours over the best hf variant, tokens per process CPU-second)")
    print(f"ratio {best_ours[0] / best_hf[0]:.2f} (ours over the best hf variant; target 1.5)")
    return {
        "rates": {f"{name} {dtype}": rate for (name, dtype), rate in rates.items()},
        "cpu_rates": {f"{name} {dtype}": rate for (name, dtype), rate in cpu_rates.items()},
        "first_step_s": first,
        "best_hf": {"name": best_hf[1][0], "dtype": best_hf[1][1], "tokens_per_s": best_hf[0]},
        "best_ours": {"name": best_ours[1][0], "dtype": best_ours[1][1], "tokens_per_s": best_ours[0]},
        "hf_plain_tokens_per_s": best_hf_plain,
        "matmul_peak_gflops": peak / 1e9,
        "mfu": mfu,
        "hf_mfu": hf_mfu,
        "ratio": best_ours[0] / best_hf[0],
        "cpu_ratio": cpu_ratio,
        "profile": profile,
        "threads": torch.get_num_threads(),
        "loadavg": os.getloadavg()[0],
    }


if __name__ == "__main__":
    main()
