"""Where the hf engine's generation time goes, and what harness/backends/decode.py's decode step changed, measured.

On SmolLM2 (the 16 prompts x 32 greedy tokens run_all.py times against lm-eval), with the current torch threads:
  a/b        the whole generation through the general fused forward's decode step (the path before decode.py:
             a DynamicCache with spare room, the mask and cache bookkeeping per layer) against decode.py's, taken in
             turns, best of --repeats; the share of prompts whose greedy tokens agree
  breakdown  the prefill (its runs and first logits), the 31 decode steps, and those steps' matmuls alone (the same
             packed weights at 16 rows) and attention alone (SDPA over the same caches), each in turns, best of
             --repeats, beside their matmul floors (2 x parameters FLOPs per token at the square-matmul peak
             measured now, as backends_hf_vs_lmeval.py counts them)

    python benchmarks/generation_steps.py [--dtypes float32 bfloat16] [--repeats 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's harness, not an installed copy
sys.path.insert(0, str(Path(__file__).resolve().parent))

PROMPTS, TOKENS = 16, 4 if os.environ.get("HARNESS_BENCH_SMOKE") == "1" else 32  # smoke: checks the plumbing


def best_of(repeats: int, contenders: dict) -> dict[str, tuple[float, object]]:
    """Best seconds and last result of each contender over ``repeats`` rounds, the contenders taking turns."""
    times: dict[str, list[float]] = {name: [] for name in contenders}
    results = {}
    for _ in range(repeats):
        for name, work in contenders.items():
            start = time.perf_counter()
            results[name] = work()
            times[name].append(time.perf_counter() - start)
    return {name: (min(times[name]), results[name]) for name in contenders}


def a_b(lm, prompts: list[str], repeats: int) -> dict:
    """Generation through the general forward's decode step ('before') and decode.py's ('after'), in turns."""
    import harness.backends.decode as decode
    from harness.backends import SamplingParams

    fused = decode.stepper

    def run(general: bool):
        decode.stepper = (lambda forward, *rest: fused(None, *rest)) if general else fused
        try:
            return [c[0].token_ids for c in lm.generate(prompts, SamplingParams(max_tokens=TOKENS))]
        finally:
            decode.stepper = fused

    timings = best_of(repeats, {"before": lambda: run(True), "after": lambda: run(False)})
    same = sum(a == b for a, b in zip(timings["before"][1], timings["after"][1])) / len(prompts)
    return {"before_s": timings["before"][0], "after_s": timings["after"][0], "same_tokens": same}


def breakdown(lm, prompts: list[str], repeats: int) -> dict:
    """Seconds of the prefill, of the decode steps, and of those steps' matmuls and attention alone."""
    import torch
    import torch.nn.functional as F

    from harness.backends.decode import StepCache, decode_step
    from harness.backends.fused import _linear

    encoded = sorted((lm.encode(p) for p in prompts), key=len)  # generate's batches come sorted by length
    forward, config = lm.fused_forward, lm.module.config
    heads = config.num_attention_heads
    head_dim = config.hidden_size // heads

    def prefill():
        last, past, mask = lm._prefill_in_runs(encoded)
        return lm.vocab_logprobs(last, scored=False).argmax(-1), past, mask

    with torch.inference_mode():
        first, past, mask = prefill()

        def steps():
            cache, tokens = StepCache(past, mask, TOKENS), first
            for _ in range(TOKENS - 1):
                tokens = lm.vocab_logprobs(decode_step(forward, tokens, cache), scored=False).argmax(-1)
            return cache

        cache = steps()
        layers, head = forward._weights(), forward.heads[lm.module.dtype]
        x = torch.randn(len(prompts), config.hidden_size).to(lm.module.dtype)
        inner = torch.randn(len(prompts), config.intermediate_size).to(lm.module.dtype)
        q = torch.randn(len(prompts), heads, 1, head_dim).to(cache.keys[0].dtype)
        width = mask.shape[1]

        def matmuls():
            for _ in range(TOKENS - 1):
                for w in layers:
                    _linear(x, w["qkv"]), _linear(x, w["o"]), _linear(x, w["gate_up"]), _linear(inner, w["down"])
                _linear(x, head)

        def attention():
            for step in range(TOKENS - 1):
                span = width + step + 1
                bias = cache.bias[..., :span].clamp(max=0)
                for keys, values in zip(cache.keys, cache.values):
                    F.scaled_dot_product_attention(
                        q, keys[:, :, :span], values[:, :, :span], attn_mask=bias, scale=head_dim**-0.5, enable_gqa=True
                    )

        parts = {"prefill": prefill, "decode_steps": steps, "decode_matmuls": matmuls, "decode_attention": attention}
        timings = best_of(repeats, parts)
    return {f"{name}_s": seconds for name, (seconds, _) in timings.items()} | {
        "prompt_tokens": sum(map(len, encoded)),
        "cache_width": width,
    }


def measure(dtype: str, repeats: int) -> dict:
    from backends_hf_vs_lmeval import matmul_peak, parameter_counts, workloads

    from harness.backends.hf import HFLM
    from harness.backends.weights import pull

    lm = HFLM(pull("smollm2"), dtype=dtype)
    prompts = workloads()["gen"][:PROMPTS]
    a_b(lm, prompts[:2], 1)  # warm up both paths
    row = {"dtype": dtype, "a_b": a_b(lm, prompts, repeats), "breakdown": breakdown(lm, prompts, repeats)}
    peak = max(matmul_peak(dtype) for _ in range(2))
    body, head = parameter_counts(lm.module)
    row["matmul_peak_gflops"] = peak / 1e9
    row["floor_prefill_s"] = 2 * body * row["breakdown"]["prompt_tokens"] / peak
    row["floor_decode_s"] = 2 * (body + head) * PROMPTS * (TOKENS - 1) / peak
    return row


def report(rows: list[dict]) -> None:
    for r in rows:
        a, b = r["a_b"], r["breakdown"]
        floor, prefill_floor, decode_floor = (
            r["floor_prefill_s"] + r["floor_decode_s"],
            r["floor_prefill_s"],
            r["floor_decode_s"],
        )
        rest = b["decode_steps_s"] - b["decode_matmuls_s"] - b["decode_attention_s"]
        print(f"{r['dtype']}: matmul peak {r['matmul_peak_gflops']:.1f} GFLOP/s, load {r['loadavg']}")
        print(
            f"  a/b generation: before {a['before_s']:.2f} s ({a['before_s'] / floor:.2f}x floor), after "
            f"{a['after_s']:.2f} s ({a['after_s'] / floor:.2f}x floor): before / after "
            f"{a['before_s'] / a['after_s']:.2f}x, same tokens {a['same_tokens']:.2f}"
        )
        print(
            f"  prefill {b['prefill_s']:.2f} s (floor {prefill_floor:.2f} s, {b['prefill_s'] / prefill_floor:.2f}x);"
            f" decode steps {b['decode_steps_s']:.2f} s (floor {decode_floor:.2f} s, "
            f"{b['decode_steps_s'] / decode_floor:.2f}x): their matmuls alone {b['decode_matmuls_s']:.2f} s "
            f"({b['decode_matmuls_s'] / decode_floor:.2f}x the floor), attention alone "
            f"{b['decode_attention_s']:.2f} s, the rest {rest:.2f} s"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dtypes", nargs="+", default=["float32", "bfloat16"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    rows = []
    for dtype in args.dtypes:
        start = os.getloadavg()[0]
        rows.append(measure(dtype, args.repeats) | {"loadavg": [round(start, 1), round(os.getloadavg()[0], 1)]})
    report(rows)
    if args.json:
        Path(args.json).write_text(json.dumps({"threads": args.threads, "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
