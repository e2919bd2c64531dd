"""How close to the machine a run ran: tokens/s per request shape and the fraction of a roofline floor it reached.

While a run's task runs (:func:`metering`), every call that reaches an engine loaded through ``ctx.load_model``
(after the response cache: hits cost nothing and count nothing) and every ``ctx.trainer(...).fit()`` is timed and
its shape counted: requests, tokens, the matmul FLOPs any engine needs for them and the weight bytes it must read.
The run's record gets ``efficiency.json`` (``harness show RUN`` prints it) with, per shape (loglikelihood,
loglikelihood_rolling, generation, training):

- ``tokens_per_s``: tokens / engine seconds. Tokens: context + continuation of each request (loglikelihood), the
  text's tokens (rolling), generated tokens (generation; ``prompt_tokens`` beside them), trained tokens (training).
- ``fraction_of_peak``: floor seconds / engine seconds, where the floor of each call is the larger of
    * compute: the forward's matmul FLOPs at its shapes / the matmul peak at the engine's dtype. FLOPs count 2 per
      weight per token through the body (every 2-D weight but the embeddings and the head) and 2 per head weight
      at each position that meets the vocabulary: each distinct context once, each continuation token but the
      last (loglikelihood); every token (rolling); each prompt token once and every generated token but the last,
      the head at each prompt's last position and every decode step (generation); 3x the forward per trained
      token (training, forward + backward). Attention's own FLOPs are left out, so the floor stays a floor;
    * memory: the decode steps any engine must take one after another (the longest completion: a prefill, then a
      step per further token; one pass for a scoring call) x the bytes of the weights / the copy bandwidth. Only
      weights larger than the bandwidth probe's buffer count: smaller ones may be served from cache, faster.

The peaks (a square matmul at float32 and bfloat16, best over a few sizes) and the copy bandwidth are measured once
per machine, a few hundred ms, and cached in ``$HARNESS_CACHE/machine/`` keyed by the CPU (model name, capability),
the torch thread count and the torch version (a GPU: its name and torch's version); delete that folder to measure
again. Engines without a torch module in process (openai servers, vllm) get requests/s and a note instead of
inventing shapes. Engine work done in worker processes (``ctx.map``) is not seen.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import platform
import sys
import time
from pathlib import Path

from harness.paths import cache_dir
from harness.store import write_json_atomic

SHAPES = ("loglikelihood", "loglikelihood_rolling", "generate")
CPU_BUFFER = 64 * 2**20  # bytes copied by the CPU bandwidth probe (beyond most caches)
NO_WORK = "no engine work in this run: every response came from the cache or the task loads no engine"
NO_SHAPES = (
    "engine '{}' gives no shapes (its model runs outside this process): tokens/s and fraction_of_peak are not measured"
)
TOO_FAST = "a fraction above 1: the cached peak was measured low (on a busy machine?); delete {} to measure again"
_active: Meter | None = None


# the machine -------------------------------------------------------------------------------------------------------
def machine_key(device: str = "cpu") -> dict:
    """What a peak depends on: the processor (a GPU: its name), the torch threads and the torch version."""
    import torch

    if device == "cuda":
        return {"device": "cuda", "gpu": torch.cuda.get_device_name(0), "torch": torch.__version__}
    return {
        "device": "cpu",
        "cpu": cpu_model(),
        "capability": torch.backends.cpu.get_cpu_capability(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def profile_path(key: dict) -> Path:
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]
    return cache_dir() / "machine" / f"{key['device']}-{digest}.json"


def machine_profile(device: str = "cpu", dtypes: tuple[str, ...] = ("float32", "bfloat16")) -> dict:
    """This machine's matmul peaks (FLOP/s per dtype) and copy bandwidth (bytes/s), measured once per key and
    cached; a dtype not measured yet (float16) is measured and added."""
    key = machine_key(device)
    path = profile_path(key)
    profile = read_profile(path, key)
    missing = [d for d in dict.fromkeys(("float32", "bfloat16", *dtypes)) if d not in profile["matmul_peak_flops"]]
    if missing or "copy_bytes_per_s" not in profile:
        for dtype in missing:
            profile["matmul_peak_flops"][dtype] = matmul_peak(dtype, device)
        profile.setdefault("copy_bytes_per_s", copy_bandwidth(device))
        profile["measured"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        profile["load_average"] = os.getloadavg()[0] if hasattr(os, "getloadavg") else None  # busy: a low peak
        write_json_atomic(path, profile)
    return {**profile, "cache": str(path)}


def read_profile(path: Path, key: dict) -> dict:
    """The cached profile for ``key``; an empty one when absent, damaged or for another key."""
    try:
        profile = json.loads(path.read_text())
        if profile.get("key") == key and isinstance(profile.get("matmul_peak_flops"), dict):
            return profile
    except (OSError, ValueError):
        pass
    return {"key": key, "matmul_peak_flops": {}}


def _best_rate(work, amount: float, device: str, budget: float) -> float:
    """The best amount/s over repeats of ``work`` within ``budget`` seconds (at least 3 repeats)."""
    import torch

    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    work()
    sync()
    best, spent, repeats = 0.0, 0.0, 0
    while repeats < 3 or (spent < budget and repeats < 50):
        start = time.perf_counter()
        work()
        sync()
        seconds = time.perf_counter() - start
        best, spent, repeats = max(best, amount / max(seconds, 1e-12)), spent + seconds, repeats + 1
    return best


def matmul_peak(dtype: str, device: str = "cpu", budget: float = 0.08) -> float:
    """Best FLOP/s of a square matmul at ``dtype``: sizes double from 256 until the fastest matmul takes 20 ms (big
    enough to reach the peak) or 8192, each size repeated for up to ``budget`` seconds."""
    import torch

    best, size = 0.0, 256
    with torch.inference_mode():
        while size <= 8192:
            a = torch.randn(size, size, device=device).to(getattr(torch, dtype))
            b, out = torch.randn_like(a), torch.empty_like(a)
            rate = _best_rate(lambda a=a, b=b, out=out: torch.mm(a, b, out=out), 2 * size**3, device, budget)
            best = max(best, rate)
            if 2 * size**3 / rate > 0.02:
                break
            size *= 2
    return best


def copy_bandwidth(device: str = "cpu") -> float:
    """Best bytes/s (read plus written) of copying a buffer larger than the caches."""
    import torch

    nbytes = CPU_BUFFER if device == "cpu" else 4 * CPU_BUFFER
    src = torch.ones(nbytes // 4, device=device)
    dst = torch.empty_like(src)
    return _best_rate(lambda: dst.copy_(src), 2 * nbytes, device, 0.1)


# shapes ------------------------------------------------------------------------------------------------------------
def matmul_weights(module) -> tuple[int, int, int]:
    """(body weights: every 2-D parameter but the embeddings and the head; head weights; bytes of both)."""
    import torch

    params = {id(p): p for p in module.parameters()}
    embeddings = {id(m.weight) for m in module.modules() if isinstance(m, torch.nn.Embedding)}
    head = output_head(module)
    skip = embeddings | ({id(head)} if head is not None else set())
    body = [p for i, p in params.items() if p.dim() >= 2 and i not in skip]
    head_count = head.numel() if head is not None else 0
    size = body[0].element_size() if body else (head.element_size() if head is not None else 4)
    return sum(p.numel() for p in body), head_count, (sum(p.numel() for p in body) + head_count) * size


def output_head(module):
    """The vocabulary projection's weight: a transformers model names it; otherwise the last Linear whose outputs
    are as many as an embedding's rows (tied or not), else None."""
    import torch

    if hasattr(module, "get_output_embeddings") and module.get_output_embeddings() is not None:
        return module.get_output_embeddings().weight
    vocab = {m.num_embeddings for m in module.modules() if isinstance(m, torch.nn.Embedding)}
    linears = [m for m in module.modules() if isinstance(m, torch.nn.Linear) and m.out_features in vocab]
    return linears[-1].weight if linears else None


def engine_info(lm) -> dict | None:
    """What the shapes of an engine's calls need: its weights, dtype and device; None without a torch module."""
    module = getattr(lm, "module", None)
    if module is None or not hasattr(module, "parameters") or getattr(lm, "dtype", None) is None:
        return None
    import torch

    body, head, nbytes = matmul_weights(module)
    device = torch.device(str(getattr(lm, "device", "cpu"))).type
    return {"body": body, "head": head, "bytes": nbytes, "dtype": str(lm.dtype), "device": device}


def token_counter(lm):
    """Tokens of a (context, continuation) pair as the engine scores them: hf's split where it has one."""
    if hasattr(lm, "tokenizer") and hasattr(lm, "prefix_token_id"):
        from harness.backends.tokens import encode_pair

        return lambda c, x: tuple(map(len, encode_pair(lm.tokenizer, lm.prefix_token_id, c, x)))

    def split(context: str, continuation: str) -> tuple[int, int]:
        ctx = len(lm.encode(context))
        return ctx, max(1, len(lm.encode(context + continuation)) - ctx)

    return split


def text_tokens(lm, text: str) -> int:
    """A text's own tokens, without the special tokens a prompt gets (what a rolling loglikelihood scores)."""
    try:
        return len(lm.tokenizer(text, add_special_tokens=False)["input_ids"])
    except (AttributeError, TypeError, KeyError):
        return len(lm.encode(text))


def count(lm, info: dict, shape: str, args: tuple, kwargs: dict, result) -> dict:
    """Tokens, matmul FLOPs and decode steps of one engine call (see the module docstring)."""
    body, head = info["body"], info["head"]
    request = args[0] if args else next(iter(kwargs.values()))
    window = getattr(lm, "max_length", None) or getattr(lm, "max_len", None) or 2**62  # what the engine keeps
    if shape == "loglikelihood":
        split = token_counter(lm)
        sizes, contexts = [], {}  # (context, continuation) tokens per request; each distinct context's tokens
        for context, continuation in request:
            ctx, cont = split(context, continuation)
            ctx = min(ctx, max(window + 1 - cont, 1))  # a long context is cut to the window, as the engine does
            sizes.append((ctx, cont))
            contexts[context] = min(ctx, contexts.get(context, ctx))
        continuation = sum(x for _, x in sizes)
        flops = 2 * body * (sum(contexts.values()) + continuation - len(sizes)) + 2 * head * continuation
        return {"tokens": sum(c + x for c, x in sizes), "flops": flops, "steps": 1}
    if shape == "loglikelihood_rolling":
        tokens = sum(text_tokens(lm, t) for t in request)
        return {"tokens": tokens, "flops": 2 * (body + head) * tokens, "steps": 1}
    lengths = [len(c.token_ids) for completions in result for c in completions]
    params = args[1] if len(args) > 1 else kwargs.get("params")
    keep = max(window - getattr(params, "max_tokens", 0), 1)
    prompt_tokens = sum(min(len(lm.encode(p)), keep) for p in request)
    decoded = sum(max(n - 1, 0) for n in lengths)
    flops = 2 * body * prompt_tokens + 2 * head * len(request) + 2 * (body + head) * decoded
    return {"tokens": sum(lengths), "prompt_tokens": prompt_tokens, "flops": flops, "steps": max(lengths, default=1)}


# metering ----------------------------------------------------------------------------------------------------------
class Meter:
    """The engine calls and training loops of one run attempt, as records of seconds and shapes."""

    def __init__(self):
        self.calls: list[dict] = []
        self.depth = 0  # an engine method calling another one is counted once, as the outer call

    def add(self, lm, info: dict | None, shape: str, seconds: float, args: tuple, kwargs: dict, result) -> None:
        name = "generation" if shape == "generate" else shape
        request = args[0] if args else next(iter(kwargs.values()), [])
        call = {"shape": name, "engine": str(getattr(lm, "name", type(lm).__name__)), "seconds": seconds}
        call["requests"] = len(request)
        if info is not None:
            call.update(count(lm, info, shape, args, kwargs, result), **info)
        self.calls.append(call)

    def add_training(self, model, config, result: dict) -> None:
        """A finished ``Trainer.fit``: its loop's seconds and tokens, 6 FLOPs per weight per token."""
        seconds = float(result.get("train_time_s") or 0.0)
        tokens = float(result.get("tokens_per_s") or 0.0) * seconds
        body, head, nbytes = matmul_weights(model)
        call = {"shape": "training", "engine": "trainer", "seconds": seconds, "requests": int(result.get("steps", 0))}
        call.update(tokens=tokens, flops=6 * (body + head) * tokens, steps=0, body=body, head=head, bytes=nbytes)
        device = str(getattr(config, "device", "cpu")).split(":")[0]
        call.update(dtype=str(getattr(config, "dtype", "float32")), device=device)
        self.calls.append(call)

    def block(self) -> dict:
        """The run's efficiency block (see the module docstring); the machine is measured here, once."""
        if not self.calls:
            return {"note": NO_WORK, "shapes": {}}
        shaped = [c for c in self.calls if "flops" in c]
        needed: dict[str, set] = {}
        for call in shaped:
            needed.setdefault(call["device"], set()).add(call["dtype"])
        machines = {device: machine_profile(device, tuple(sorted(dtypes))) for device, dtypes in needed.items()}
        shapes: dict[str, dict] = {}
        for call in self.calls:
            add_call(shapes.setdefault(call["shape"], {}), call, machines.get(call.get("device")))
        block = {"engines": sorted({c["engine"] for c in self.calls}), "shapes": finish_shapes(shapes)}
        block["dtypes"] = sorted({c["dtype"] for c in shaped})
        block["machine"] = {device: summary(profile) for device, profile in machines.items()}
        unshaped = sorted({c["engine"] for c in self.calls if "flops" not in c})
        notes = [NO_SHAPES.format(", ".join(unshaped))] if unshaped else []
        if any((row.get("fraction_of_peak") or 0) > 1 for row in block["shapes"].values()):
            notes.append(TOO_FAST.format(", ".join(m["cache"] for m in machines.values())))
        return block | ({"note": "; ".join(notes)} if notes else {})


def add_call(total: dict, call: dict, machine: dict | None) -> None:
    """Add one call's seconds, tokens and floor (the larger of its compute and memory floors) to its shape."""
    for name in ("seconds", "requests"):
        total[name] = total.get(name, 0) + call[name]
    total["calls"] = total.get("calls", 0) + 1
    if machine is None:
        total["unshaped"] = True
        return
    compute = call["flops"] / machine["matmul_peak_flops"][call["dtype"]]
    weights = call["bytes"] if call["device"] != "cpu" or call["bytes"] > CPU_BUFFER else 0
    memory = call["steps"] * weights / machine["copy_bytes_per_s"]
    for name, value in (("tokens", call["tokens"]), ("prompt_tokens", call.get("prompt_tokens"))):
        if value is not None:
            total[name] = total.get(name, 0) + value
    total["floor_compute_s"] = total.get("floor_compute_s", 0.0) + (compute if compute >= memory else 0.0)
    total["floor_memory_s"] = total.get("floor_memory_s", 0.0) + (memory if memory > compute else 0.0)


def finish_shapes(shapes: dict) -> dict:
    """Per shape: requests/s always; tokens/s, the floor, its bound and fraction_of_peak where every call had
    shapes."""
    out = {}
    for name, total in shapes.items():
        seconds = total["seconds"]
        row = {"calls": total["calls"], "requests": total["requests"], "seconds": seconds}
        row["requests_per_s"] = total["requests"] / seconds if seconds > 0 else None
        if not total.get("unshaped"):
            floor = total["floor_compute_s"] + total["floor_memory_s"]
            row.update(tokens=int(total["tokens"]), floor_s=floor)
            if "prompt_tokens" in total:
                row["prompt_tokens"] = int(total["prompt_tokens"])
            row["tokens_per_s"] = total["tokens"] / seconds if seconds > 0 else None
            row["bound"] = "memory" if total["floor_memory_s"] > total["floor_compute_s"] else "compute"
            row["fraction_of_peak"] = floor / seconds if seconds > 0 else None
        out[name] = row
    return out


def summary(profile: dict) -> dict:
    """A machine profile as the block keeps it: GFLOP/s and GB/s, the key and where the cache lies."""
    peaks = {d: round(v / 1e9, 3) for d, v in profile["matmul_peak_flops"].items()}
    copy = round(profile["copy_bytes_per_s"] / 1e9, 3)
    out = {"matmul_peak_gflops": peaks, "copy_gb_per_s": copy, "key": profile["key"], "cache": profile["cache"]}
    return out | {name: profile.get(name) for name in ("measured", "load_average")}


def metered(lm, shape: str, original):
    """``original`` (a bound engine method), timed into the active meter when there is one."""
    info: dict = {}

    @functools.wraps(original)
    def call(*args, **kwargs):
        meter = _active
        if meter is None or meter.depth:
            return original(*args, **kwargs)
        meter.depth += 1
        start = time.perf_counter()
        try:
            result = original(*args, **kwargs)
        finally:
            meter.depth -= 1
        seconds = time.perf_counter() - start
        if "value" not in info:
            info["value"] = engine_info(lm)
        meter.add(lm, info["value"], shape, seconds, args, kwargs, result)
        return result

    return call


def watch(lm):
    """Time ``lm``'s request methods into the run's meter (instance attributes: its type stays the same)."""
    if getattr(lm, "_efficiency_watched", False):
        return lm
    try:
        for shape in SHAPES:
            setattr(lm, shape, metered(lm, shape, getattr(lm, shape)))
        lm._efficiency_watched = True
    except AttributeError:  # an engine with slots: not measured
        pass
    return lm


def watch_trainer(trainer):
    """Time ``trainer.fit`` into the run's meter."""
    original = trainer.fit

    @functools.wraps(original)
    def fit(*args, **kwargs):
        result = original(*args, **kwargs)
        if _active is not None and isinstance(result, dict):
            _active.add_training(trainer.model, trainer.config, result)
        return result

    trainer.fit = fit
    return trainer


class metering:  # noqa: N801 - used as a context manager, like contextlib's
    """``with metering() as meter:`` engine calls and training loops of this process go to ``meter``."""

    def __enter__(self) -> Meter:
        global _active
        self.previous, _active = _active, Meter()
        return _active

    def __exit__(self, *exc) -> None:
        global _active
        _active = self.previous


# the record --------------------------------------------------------------------------------------------------------
def record(run_dir: Path, meter: Meter) -> dict | None:
    """Write ``efficiency.json`` for this attempt; an attempt without engine work (a resume that read every
    sample back) keeps an earlier attempt's block. Measuring never fails a run: a failure is the block's note."""
    path = Path(run_dir) / "efficiency.json"
    if not meter.calls and path.exists():
        return read(run_dir)
    try:
        block = meter.block()
    except Exception as exc:  # noqa: BLE001 - the run's results matter more than its timing
        block = {"note": f"not measured: {type(exc).__name__}: {exc}", "shapes": {}}
        print(f"harness: warning: efficiency {block['note']}", file=sys.stderr)
    write_json_atomic(path, block)
    return block


def read(run_dir: Path) -> dict | None:
    """A run's efficiency block, None when it has none (a run made before this was recorded) or it is damaged."""
    try:
        return json.loads((Path(run_dir) / "efficiency.json").read_text())
    except (OSError, ValueError):
        return None


def show_lines(block: dict, fmt: str = "table") -> list[str]:
    """The block as ``harness show`` prints it: the machine, a row per shape, the note."""
    from harness import report

    lines = []
    for device, machine in block.get("machine", {}).items():
        peaks = ", ".join(f"{d} {v:,.1f} GFLOP/s" for d, v in machine["matmul_peak_gflops"].items())
        threads = f", {machine['key']['threads']} threads" if "threads" in machine["key"] else ""
        load = f" at load {machine['load_average']:.1f}" if machine.get("load_average") is not None else ""
        lines.append(
            f"machine ({device}{threads}): matmul peak {peaks}; copy {machine['copy_gb_per_s']:,.1f} GB/s "
            f"(measured {machine.get('measured') or '?'}{load}; {machine['cache']})"
        )
    columns = ["shape", "requests", "tokens", "seconds", "tokens_per_s", "floor_s", "bound", "fraction_of_peak"]
    rows = [{"shape": name, **row} for name, row in block.get("shapes", {}).items()]
    if rows:
        lines.append(report.render(rows, columns, fmt))
    if block.get("note"):
        lines.append(f"({block['note']})")
    return lines
