"""Why harness/backends/fused.py packs weights for oneDNN and attends in float32 on a CPU, measured.

Two side-by-side timings on SmolLM2-135M's shapes (30 layers of q|k|v 576->960, o 576->576, gate|up 576->3072,
down 1536->576; every layer's weights cycled, so they come from memory as in a real forward), with the current
torch threads:
  linear     F.linear against oneDNN's packed weights (torch.ops.mkldnn._reorder_linear_weight, then
             _linear_pointwise) at 16 rows (a decode step), 512 and 2048 rows (scoring), float32 and bfloat16
  attention  scaled_dot_product_attention at one decode step (16 rows, 9 query and 3 key/value heads of 64, 150
             cached positions, a padding mask) in bfloat16 against float32

    python benchmarks/packed_linear.py [--threads 2]
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

D, FF, KV, LAYERS = 576, 1536, 192, 30
SHAPES = [(D + 2 * KV, D), (D, D), (2 * FF, D), (D, FF)]  # (out, in) per layer


def best_seconds(work, repeats: int = 5) -> float:
    work()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - start)
    return best


def linear_rates(dtype: torch.dtype, rows: int) -> tuple[float, float]:
    """GFLOP/s of one pass over every layer's weights: (F.linear, packed)."""
    weights = [torch.randn(out, inp, dtype=dtype) for _ in range(LAYERS) for out, inp in SHAPES]
    packed = [torch.ops.mkldnn._reorder_linear_weight(w, 16) for w in weights]
    inputs = {inp: torch.randn(rows, inp, dtype=dtype) for _, inp in SHAPES}
    flops = 2 * rows * sum(w.numel() for w in weights)
    with torch.inference_mode():
        plain = best_seconds(lambda: [F.linear(inputs[w.shape[1]], w) for w in weights])
        oned = best_seconds(
            lambda: [
                torch.ops.mkldnn._linear_pointwise(inputs[w.shape[1]], p, None, "none", [], "")
                for w, p in zip(weights, packed)
            ]
        )
    return flops / plain / 1e9, flops / oned / 1e9


def decode_attention_us(dtype: torch.dtype) -> float:
    """Microseconds of one decode step's attention for one layer."""
    rows, heads, kv_heads, cached, head_dim = 16, 9, 3, 150, 64
    generator = torch.Generator().manual_seed(0)
    q = torch.randn(rows, heads, 1, head_dim, generator=generator).to(dtype)
    k, v = (torch.randn(rows, kv_heads, cached, head_dim, generator=generator).to(dtype) for _ in range(2))
    mask = (torch.rand(rows, cached, generator=generator) > 0.2)[:, None, None, :]
    mask[..., -1] = True
    with torch.inference_mode():
        seconds = best_seconds(
            lambda: [F.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=True) for _ in range(100)]
        )
    return seconds / 100 * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, SmolLM2-135M shapes")
    for dtype in (torch.float32, torch.bfloat16):
        for rows in (16, 512, 2048):
            plain, packed = linear_rates(dtype, rows)
            print(
                f"linear {str(dtype)[6:]:8} {rows:5} rows: F.linear {plain:6.1f} GFLOP/s, packed {packed:6.1f} "
                f"GFLOP/s, ratio {packed / plain:.2f}x"
            )
    slow, fast = decode_attention_us(torch.bfloat16), decode_attention_us(torch.float32)
    print(f"decode attention: bfloat16 {slow:.0f} us, float32 {fast:.0f} us, ratio {slow / fast:.1f}x")


if __name__ == "__main__":
    main()
