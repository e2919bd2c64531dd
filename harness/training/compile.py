"""The trainer's ``compile=True``: torch.compile over the loss computation, its compiled code cached across runs.

Inductor compiles the forward and backward of the loss module (not the optimizer: fused AdamW is already one kernel
and takes about 1 ms of a 0.7 s step at benchmarks/train_throughput.py's shape). Compiled code goes to
``$HARNESS_CACHE/inductor`` unless ``TORCHINDUCTOR_CACHE_DIR`` names another folder, so a second run of the same
model pays tracing but not the C++ compilation; the trainer reports the first compiled step's seconds (tracing,
compiling and running it) as ``compile_s``, the cost to weigh against the steps it speeds up.

Tried and not kept: merging the projections that read the same input (q|k|v, gate|up) into one matmul in the
compiled graph (an inductor pre-grad pass). At the benchmark's shape, one thread, it gained nothing: best step
1.143 CPU-seconds against 1.147 unmerged, median 1.19 against 1.16 (two interleaved rounds of four steps on the
loaded machine), since those matmuls already run near the machine's matmul peak one by one.
"""

from __future__ import annotations

import os


def compile_loss(module) -> None:
    """Compile ``module`` (an ``nn.Module``) in place, forward and backward, its code cached under the cache."""
    from torch._inductor.runtime.cache_dir_utils import default_cache_dir

    from harness.paths import cache_dir

    # importing inductor already set the variable to its default (a temporary folder); a choice of the user's stays
    if os.environ.get("TORCHINDUCTOR_CACHE_DIR", default_cache_dir()) == default_cache_dir():
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(cache_dir() / "inductor")
    module.compile()
