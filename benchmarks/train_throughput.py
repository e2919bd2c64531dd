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

    python benchmarks/train_throughput.py [--steps 4] [--warmup 2] [--rounds 2] [--no-compile] [--dtypes bfloat16]
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


def ours(dtype: str, steps: int, warmup: int, compile: bool) -> list[float]:
    """Seconds per step of our Trainer after ``warmup`` steps (timed between its per-step log calls)."""
    from harness.models import ModelConfig, build_model
    from harness.training import TrainConfig, Trainer

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
    model = build_model(config)
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
    Trainer(model, train, batches, log=lambda step, values: stamps.append(time.perf_counter()), progress=False).fit()
    return [b - a for a, b in zip(stamps[warmup - 1 :], stamps[warmup:])]


def hf(dtype: str, steps: int, warmup: int, keep_memory: bool = False, compile: bool = False) -> list[float]:
    """Seconds per step of MistralForCausalLM in a plain loop (AdamW, clipping, same batches).

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
    times = []
    for step in range(warmup + steps):
        began = time.perf_counter()
        batch = batches(step, torch.Generator().manual_seed(step))
        loss = step_loss(batch["input_ids"], batch["targets"])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        loss.item()
        times.append(time.perf_counter() - began)
    return times[warmup:]


def run_contender(name: str, dtype: str, steps: int, warmup: int) -> list[float]:
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4, help="timed steps per round")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps per round (compiles here)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds, interleaving the contenders")
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile variants")
    parser.add_argument("--dtypes", nargs="+", default=["float32", "bfloat16"], help="each contender at each")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; hidden {HIDDEN}, {LAYERS} layers, "
        f"{HEADS} heads, seq {SEQ}, batch {BATCH}, vocab {VOCAB}"
    )
    names = ["hf", "hf+kept-memory", "ours"] + ([] if args.no_compile else ["hf+kept-memory+compile", "ours+compile"])
    contenders = [(name, dtype) for name in names for dtype in args.dtypes]
    steps: dict[tuple, list[float]] = {key: [] for key in contenders}
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=spawn, max_tasks_per_child=1) as pool:
        for _ in range(args.rounds):  # interleaved, so load from other processes hits every contender alike
            for key in contenders:  # each in a fresh process: no allocator state or compile cache shared
                steps[key] += pool.submit(run_contender, *key, args.steps, args.warmup).result()
    rates = {}
    for key, times in steps.items():
        rates[key] = BATCH * SEQ / min(times)
        median = BATCH * SEQ / statistics.median(times)
        print(f"{key[0]:14s} {key[1]:9s} best {rates[key]:8,.0f} tokens/s   median {median:8,.0f}", flush=True)
    best_hf = max((v, k) for k, v in rates.items() if k[0].startswith("hf"))
    best_hf_plain = max(v for k, v in rates.items() if k[0] == "hf")
    best_hf_kept = max(v for k, v in rates.items() if k[0] == "hf+kept-memory")
    best_ours = max((v, k) for k, v in rates.items() if k[0].startswith("ours"))
    peak = matmul_peak(torch.float32 if best_ours[1][1] == "float32" else torch.bfloat16)
    mfu = best_ours[0] * flops_per_token() / peak
    print(
        f"best hf:   {best_hf[0]:,.0f} tokens/s ({best_hf[1][0]}, {best_hf[1][1]}); plain {best_hf_plain:,.0f}, "
        f"with kept memory {best_hf_kept:,.0f}"
    )
    print(f"best ours: {best_ours[0]:,.0f} tokens/s ({best_ours[1][0]}, {best_ours[1][1]})")
    print(
        f"matmul peak {best_ours[1][1]}: {peak / 1e9:.1f} GFLOP/s; our MFU {100 * mfu:.1f}% "
        f"({flops_per_token() / 1e6:.2f} MFLOP per token)"
    )
    print(f"ours over the plain hf loop: {best_ours[0] / best_hf_plain:.2f}")
    print(f"ratio {best_ours[0] / best_hf[0]:.2f} (ours over the best hf variant; target 1.5)")
    if args.json:
        figures = {
            "rates": {f"{name} {dtype}": rate for (name, dtype), rate in rates.items()},
            "best_hf": {"name": best_hf[1][0], "dtype": best_hf[1][1], "tokens_per_s": best_hf[0]},
            "best_ours": {"name": best_ours[1][0], "dtype": best_ours[1][1], "tokens_per_s": best_ours[0]},
            "hf_plain_tokens_per_s": best_hf_plain,
            "matmul_peak_gflops": peak / 1e9,
            "mfu": mfu,
            "ratio": best_ours[0] / best_hf[0],
            "threads": torch.get_num_threads(),
            "loadavg": os.getloadavg()[0],
        }
        Path(args.json).write_text(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
