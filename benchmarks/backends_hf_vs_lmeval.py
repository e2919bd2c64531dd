"""The hf engine against lm-evaluation-harness 0.4.13's hf backend, on SmolLM2-135M-Instruct, same machine, same
process, same dtype, same threads (2 by default: the machine's cores).

Workloads (issue 18):
  ll   256 loglikelihoods with 256 distinct contexts of 8-80 words and one-word continuations (LAMBADA, perplexity)
  mc   256 loglikelihoods, 64 contexts x 4 continuations of 1-8 words (multiple choice)
  gen  64 prompts of 15-120 words x 32 greedy tokens (--gen-prompts: the first N of them)
  n    one prompt, n=32 samples of 64 tokens, against 32 separate calls of n=1 (ours only; lm-eval has no n)

lm-eval runs at each batch size in --lmeval-batch-sizes and its best time counts. Each time is the best of --repeats
runs, ours and lm-eval's interleaved so that background load hits both alike. Every line also gives the fraction of
the matmul floor each side reaches: the seconds the workload's unavoidable matmuls need at the matmul peak measured
now (same threads, same dtype), divided by the measured time. The floor counts 2 x parameters FLOPs per token through
the body (each distinct context once, each continuation token but the last) and 2 x head parameters per scored or
generated token; attention and everything elementwise are left out, so no engine reaches 1.

Targets: ll >= 1.5x lm-eval, mc >= 2x; gen at <= 1.25x the floor in float32 and <= 1.5x in bfloat16; n <= 1/4.

Run with the lm-eval tox env's python (the working tree's harness is put first on sys.path):
    tox -e lmeval --notest && .tox/lmeval/bin/python benchmarks/backends_hf_vs_lmeval.py [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's harness, not an installed copy

WORDS = (
    "the model reads a long document about rivers mountains cities and people then answers questions on "
    "history science music and sport with care while the reader waits for a short clear reply"
).split()
TARGETS = {"ll": 1.5, "mc": 2.0}  # lm-eval time / ours
SMOKE = os.environ.get("HARNESS_BENCH_SMOKE") == "1"  # run_all.py --smoke: tiny workloads, checks the plumbing only
GEN_TOKENS = 4 if SMOKE else 32
FLOOR_TARGETS = {"float32": 1.25, "bfloat16": 1.5}  # generation: ours / floor


def make_prompts(count: int, rng: random.Random) -> list[str]:
    """Prompts of 15 to 120 words, so that length sorting and padding matter."""
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(15, 120))).capitalize() + "." for _ in range(count)]


def make_distinct(rng: random.Random, count: int = 256) -> list[tuple[str, str]]:
    """``count`` distinct contexts of 8-80 words, each with one one-word continuation."""
    pairs: dict[str, str] = {}
    while len(pairs) < count:
        context = " ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 80))).capitalize()
        pairs.setdefault(context, " " + rng.choice(WORDS))
    return list(pairs.items())


def make_choices(rng: random.Random) -> list[tuple[str, str]]:
    """64 contexts x 4 continuations of 1 to 8 words."""
    contexts = make_prompts(64, rng)
    return [
        (c + " Answer:", " " + " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 8))))
        for c in contexts
        for _ in range(4)
    ]


def workloads(gen_prompts: int = 64) -> dict:
    """gen (its first ``gen_prompts`` prompts), mc and ll, drawn in this order from one seeded stream (vllm_anchor.py
    uses the same)."""
    rng = random.Random(0)
    data = {"gen": make_prompts(64, rng)[:gen_prompts], "mc": make_choices(rng), "ll": make_distinct(rng)}
    return {"gen": data["gen"][:4], "mc": data["mc"][:8], "ll": data["ll"][:8]} if SMOKE else data


class Ours:
    def __init__(self, folder, dtype: str):
        from harness.backends.hf import HFLM

        self.lm = HFLM(folder, dtype=dtype)

    def generate(self, prompts: list[str], max_tokens: int) -> list[list[int]]:
        from harness.backends import SamplingParams

        return [c[0].token_ids for c in self.lm.generate(prompts, SamplingParams(max_tokens=max_tokens))]

    def loglikelihood(self, pairs):
        return self.lm.loglikelihood(pairs)

    def n_samples(self, prompt: str, n: int, max_tokens: int):
        from harness.backends import SamplingParams

        params = SamplingParams(n=n, temperature=1.0, max_tokens=max_tokens, seed=0, ignore_eos=True)
        return self.lm.generate([prompt], params)

    def separate_calls(self, prompt: str, n: int, max_tokens: int):
        from harness.backends import SamplingParams

        return [
            self.lm.generate([prompt], SamplingParams(temperature=1.0, max_tokens=max_tokens, seed=k, ignore_eos=True))
            for k in range(n)
        ]


class LMEval:
    def __init__(self, folder, dtype: str, batch_size: int):
        from lm_eval.models.huggingface import HFLM

        self.lm = HFLM(pretrained=str(folder), dtype=dtype, batch_size=batch_size, device="cpu")
        self.tokenizer = self.lm.tokenizer

    def generate(self, prompts: list[str], max_tokens: int) -> list[list[int]]:
        from lm_eval.api.instance import Instance

        requests = [
            Instance("generate_until", {}, (p, {"until": [], "max_gen_toks": max_tokens, "do_sample": False}), i)
            for i, p in enumerate(prompts)
        ]
        texts = self.lm.generate_until(requests, disable_tqdm=True)
        return [self.tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]

    def loglikelihood(self, pairs):
        from lm_eval.api.instance import Instance

        requests = [Instance("loglikelihood", {}, pair, i) for i, pair in enumerate(pairs)]
        return self.lm.loglikelihood(requests, disable_tqdm=True)


def timed(work) -> tuple[float, object]:
    start = time.perf_counter()
    result = work()
    return time.perf_counter() - start, result


def interleaved(repeats: int, contenders: dict, label: str) -> dict[str, tuple[float, object]]:
    """Best time of each contender over ``repeats`` rounds, the contenders taking turns within a round."""
    times: dict[str, list[float]] = {name: [] for name in contenders}
    results = {}
    for _ in range(repeats):
        for name, work in contenders.items():
            seconds, results[name] = timed(work)
            times[name].append(seconds)
    for name, seconds in times.items():
        print(f"  {label} {name}: {', '.join(f'{t:.2f}' for t in seconds)} s", file=sys.stderr, flush=True)
    return {name: (min(times[name]), results[name]) for name in contenders}


def matmul_peak(dtype: str, sizes: tuple[int, ...] = (1024, 2048), repeats: int = 5) -> float:
    """Best FLOP/s of a square matmul at ``dtype`` with the current threads (the best over a few sizes)."""
    import torch

    best = 0.0
    for size in sizes:
        a, b = torch.randn(size, size).to(getattr(torch, dtype)), torch.randn(size, size).to(getattr(torch, dtype))
        a @ b
        for _ in range(repeats):
            seconds, _ = timed(lambda a=a, b=b: a @ b)
            best = max(best, 2 * size**3 / seconds)
    return best


def parameter_counts(module) -> tuple[int, int]:
    """(body parameters: every matmul weight between the embedding and the head, head parameters)."""
    embedding = module.get_input_embeddings().weight.numel()
    body = sum(p.numel() for p in module.base_model.parameters()) - embedding
    return body, module.get_output_embeddings().weight.numel()


def scoring_flops(lm, pairs: list[tuple[str, str]]) -> float:
    """The matmul FLOPs any engine needs for these loglikelihoods: each distinct context once and every continuation
    token but the last through the body, the head at every continuation token."""
    from harness.backends.tokens import encode_pair

    body, head = parameter_counts(lm.module)
    encoded = [encode_pair(lm.tokenizer, lm.prefix_token_id, c, x) for c, x in pairs]
    context_tokens = sum(len(c) for c in {tuple(c) for c, _ in encoded})
    continuation_tokens = sum(len(x) for _, x in encoded)
    return 2 * body * (context_tokens + continuation_tokens - len(encoded)) + 2 * head * continuation_tokens


def generation_flops(lm, prompts: list[str], max_tokens: int) -> float:
    """2 x body parameters FLOPs per prompt token (only the last position meets the vocabulary) and 2 x (body +
    head) per generated token."""
    body, head = parameter_counts(lm.module)
    prompt_tokens = sum(len(lm.encode(p)) for p in prompts)
    return 2 * body * prompt_tokens + 2 * (body + head) * len(prompts) * max_tokens


def copy_bandwidth(megabytes: int = 256, repeats: int = 5) -> float:
    """Best bytes/s of a large tensor copy with the current threads (bytes read plus bytes written)."""
    import torch

    src = torch.ones(megabytes * 2**18)  # float32: 4 bytes each
    dst = torch.empty_like(src)
    dst.copy_(src)
    return max(2 * src.numel() * 4 / timed(lambda: dst.copy_(src))[0] for _ in range(repeats))


def decoding_floor(lm, prompts: list[str], max_tokens: int, peak: float, bandwidth: float, dtype: str) -> float:
    """A roofline floor for generation, which at a few rows a step reads every weight per token: prefill at the
    matmul peak, then each of the max_tokens - 1 decode steps of one batch holding every prompt at the slower of
    reading all weights once (at the copy bandwidth) and its matmuls at the peak."""
    body, head = parameter_counts(lm.module)
    prompt_tokens = sum(len(lm.encode(p)) for p in prompts)
    weight_bytes = (body + head) * (2 if dtype == "bfloat16" else 4)
    step = max(weight_bytes / bandwidth, 2 * (body + head) * len(prompts) / peak)
    return 2 * body * prompt_tokens / peak + (max_tokens - 1) * step


def max_abs_diff(ours: list, theirs: list) -> float:
    return max(abs(a[0] - b[0]) for a, b in zip(ours, theirs))


def share_equal(a: list[list[int]], b: list[list[int]]) -> float:
    """Share of prompts whose greedy tokens agree (lm-eval re-tokenizes its text, so a few may differ)."""
    return sum(x == y for x, y in zip(a, b)) / len(a)


def measure(dtype: str, args, data: dict) -> dict:
    """Every chosen workload at one dtype: ours against lm-eval at each batch size, interleaved."""
    from harness.backends.weights import pull

    folder = pull("smollm2")
    ours = Ours(folder, dtype)
    theirs = {b: LMEval(folder, dtype, b) for b in args.lmeval_batch_sizes}
    ours.generate(data["gen"][:2], 4)  # warm up both
    for lm in theirs.values():
        lm.generate(data["gen"][:2], 4)
    peak = max(matmul_peak(dtype) for _ in range(2))
    bandwidth = copy_bandwidth()
    row: dict = {"dtype": dtype, "matmul_peak_gflops": peak / 1e9, "copy_gb_per_s": bandwidth / 1e9}
    for workload in ("ll", "mc", "gen"):
        if workload not in args.workloads:
            continue
        if workload == "gen":
            work = {"ours": lambda: ours.generate(data["gen"], GEN_TOKENS)}
            work |= {
                f"lm-eval bs={b}": (lambda lm=lm: lm.generate(data["gen"], GEN_TOKENS)) for b, lm in theirs.items()
            }
            flops = generation_flops(ours.lm, data["gen"], GEN_TOKENS)
        else:
            work = {"ours": lambda w=workload: ours.loglikelihood(data[w])}
            work |= {
                f"lm-eval bs={b}": (lambda lm=lm, w=workload: lm.loglikelihood(data[w])) for b, lm in theirs.items()
            }
            flops = scoring_flops(ours.lm, data[workload])
        repeats = args.gen_repeats if workload == "gen" and args.gen_repeats else args.repeats
        timings = interleaved(repeats, work, f"{dtype} {workload}")
        best = min((name for name in timings if name != "ours"), key=lambda name: timings[name][0])
        row[workload] = {
            "ours_s": timings["ours"][0],
            "lmeval_s": timings[best][0],
            "lmeval_batch_size": int(best.split("=")[1]),
            "floor_s": flops / peak,
            "gflop": flops / 1e9,
        }
        if workload == "gen":
            row[workload]["same_tokens"] = share_equal(timings["ours"][1], timings[best][1])
            row[workload]["roofline_s"] = decoding_floor(ours.lm, data["gen"], GEN_TOKENS, peak, bandwidth, dtype)
        else:
            row[workload]["max_abs_diff"] = max_abs_diff(timings["ours"][1], timings[best][1])
    if "gen" in args.workloads and args.profile_gen:
        row["gen"]["profile"] = profile(lambda: ours.generate(data["gen"], GEN_TOKENS))
    if "n" in args.workloads:
        prompt = data["gen"][0]
        timings = interleaved(
            args.repeats,
            {"n=32": lambda: ours.n_samples(prompt, 32, 64), "32 calls": lambda: ours.separate_calls(prompt, 32, 64)},
            f"{dtype} n",
        )
        row["n"] = {"n32_s": timings["n=32"][0], "separate_s": timings["32 calls"][0]}
    return row


MATMULS = ("aten::mm", "aten::addmm", "aten::bmm", "mkldnn::_linear_pointwise")  # the last: oneDNN-packed weights


def profile(work, top: int = 8) -> dict:
    """Where one run of ``work`` spends its time: the matmuls' share, the first ``top`` operators by own time, and
    the share outside every operator (Python, the tokenizer, the sampler's bookkeeping)."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
        wall, _ = timed(work)
    events = [e for e in prof.key_averages() if e.key.startswith(("aten::", "mkldnn::"))]
    own = {e.key: e.self_cpu_time_total / 1e6 for e in events}
    matmuls = sum(seconds for name, seconds in own.items() if name in MATMULS)
    ranked = sorted(own.items(), key=lambda item: -item[1])[:top]
    return {
        "wall_s": wall,
        "matmul_share": matmuls / wall,
        "outside_operators_share": max(0.0, 1 - sum(own.values()) / wall),
        "top": [[name, seconds / wall] for name, seconds in ranked],
    }


def report(rows: list[dict]) -> None:
    """One line per workload and dtype: both times, the ratio with its target, each side's fraction of the floor."""
    for r in rows:
        dtype = r["dtype"]
        print(f"{dtype}: matmul peak {r['matmul_peak_gflops']:.1f} GFLOP/s at {r['threads']} threads")
        for workload in ("ll", "mc", "gen"):
            if workload not in r:
                continue
            w = r[workload]
            ratio = w["lmeval_s"] / w["ours_s"]
            target = (
                f"target {TARGETS[workload]}x: {'met' if ratio >= TARGETS[workload] else 'NOT met'}"
                if workload in TARGETS
                else f"ours / floor {w['ours_s'] / w['floor_s']:.2f} (target <= {FLOOR_TARGETS[dtype]}: "
                f"{'met' if w['ours_s'] / w['floor_s'] <= FLOOR_TARGETS[dtype] else 'NOT met'})"
            )
            agree = (
                f"same tokens {w['same_tokens']:.2f}" if workload == "gen" else f"max|dlogp| {w['max_abs_diff']:.1e}"
            )
            print(
                f"  {workload:3} ours {w['ours_s']:6.2f} s ({w['floor_s'] / w['ours_s']:.2f} of floor)  "
                f"lm-eval {w['lmeval_s']:6.2f} s bs={w['lmeval_batch_size']} ({w['floor_s'] / w['lmeval_s']:.2f} of "
                f"floor)  floor {w['floor_s']:.2f} s  ratio {ratio:.2f}x  {target}  {agree}"
            )
        if "roofline_s" in r.get("gen", {}):
            g = r["gen"]
            print(
                f"  gen roofline floor (weights read once a decode step at {r['copy_gb_per_s']:.1f} GB/s copy "
                f"bandwidth): {g['roofline_s']:.2f} s; ours / roofline {g['ours_s'] / g['roofline_s']:.2f}, lm-eval / "
                f"roofline {g['lmeval_s'] / g['roofline_s']:.2f}"
            )
        if "profile" in r.get("gen", {}):
            p = r["gen"]["profile"]
            print(
                f"  gen profile of ours ({p['wall_s']:.2f} s profiled): matmuls {100 * p['matmul_share']:.0f}%, "
                f"outside operators (Python) {100 * p['outside_operators_share']:.0f}%; top: "
                + ", ".join(f"{name.split('::')[1]} {100 * share:.0f}%" for name, share in p["top"])
            )
        if "n" in r:
            share = r["n"]["n32_s"] / r["n"]["separate_s"]
            print(
                f"  n   n=32 {r['n']['n32_s']:.2f} s, 32 calls {r['n']['separate_s']:.2f} s: share {share:.3f} "
                f"(target <= 0.25: {'met' if share <= 0.25 else 'NOT met'})"
            )
    print(f"load average {os.getloadavg()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dtypes", nargs="+", default=["float32", "bfloat16"])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--workloads", nargs="+", choices=["ll", "mc", "gen", "n"], default=["ll", "mc", "gen"])
    parser.add_argument("--lmeval-batch-sizes", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--gen-repeats", type=int, default=0, help="gen's repeats (0: --repeats)")
    parser.add_argument("--gen-prompts", type=int, default=64, help="gen: the first N of the 64 prompts")
    parser.add_argument("--no-profile-gen", dest="profile_gen", action="store_false", help="skip gen's profile")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    data = workloads(args.gen_prompts)
    rows = []
    for dtype in args.dtypes:
        loads = [os.getloadavg()[0]]
        row = measure(dtype, args, data)
        rows.append({**row, "threads": torch.get_num_threads(), "loadavg": loads + [os.getloadavg()[0]]})
    report(rows)
    if args.json:
        sizes = {"ll_pairs": len(data["ll"]), "mc_pairs": len(data["mc"]), "gen_prompts": len(data["gen"])}
        Path(args.json).write_text(json.dumps({"threads": args.threads, "sizes": sizes, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
