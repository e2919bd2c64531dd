"""Helpers shared by the tests: the CLI in a subprocess (test plugins importable) and reference scores."""

import contextlib
import os
import subprocess
import sys
from pathlib import Path

SUPPORT = Path(__file__).resolve().parent


def harness_env(**extra) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(SUPPORT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.update(extra)
    return env


def run_harness(*args, timeout: float = 900, env: dict | None = None, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "harness.cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env or harness_env(),
        cwd=cwd,
    )


def echo_loglikelihood(lm, context: str, continuation: str) -> float:
    """What an OpenAI server's echo scores: the prompt as its tokenizer encodes it (no prefix token), one
    plain forward pass, the logprobs of the tokens that start inside the continuation."""
    import torch

    encoded = lm.tokenizer(context + continuation, return_offsets_mapping=True)
    ids = encoded["input_ids"]
    with torch.no_grad():
        logprobs = lm.module(torch.tensor([ids])).logits.float().log_softmax(-1)[0]
    return sum(
        logprobs[j - 1, ids[j]].item()
        for j, (start, _) in enumerate(encoded["offset_mapping"])
        if j > 0 and start >= len(context)
    )


@contextlib.contextmanager
def serving(*args):
    """``harness serve ARGS --port 0`` in a subprocess: yields the base URL it announces, stops it afterwards."""
    command = [sys.executable, "-m", "harness.cli", "serve", *map(str, args), "--port", "0"]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=harness_env())
    try:
        line = proc.stdout.readline()
        assert line.startswith("serving"), line
        yield line.split(" at ")[1].split()[0]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
