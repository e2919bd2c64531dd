"""The built-in engines, registered through the same hook a third-party backend uses.

Each factory imports its engine only when called, so listing backends never imports torch or vllm; each engine's
``from_spec`` checks the model args against its signature before it loads anything.
"""

from __future__ import annotations

from harness.hookspecs import hookimpl


def _hf(target: str, **model_args):
    from harness.backends.hf import HFLM

    return HFLM.from_spec(target, **model_args)


def _pull(target: str, echo=None):  # echo(line): what it fetched and did
    from harness.backends.weights import pull

    return pull(target, echo)


def _vllm(target: str, **model_args):
    from harness.backends.vllm import VLLM

    return VLLM.from_spec(target, **model_args)


def _openai(target: str, **model_args):
    from harness.backends.openai import OpenAILM

    return OpenAILM.from_spec(target, **model_args)


def _scratch(target: str, **model_args):
    from harness.backends.scratch import ScratchLM

    return ScratchLM.from_spec(target, **model_args)


@hookimpl
def harness_register_backends(register):
    register("hf", _hf, description="transformers in process (hf:smollm2, hf:gemma3-270m, hf:/path)", pull=_pull)
    register("vllm", _vllm, description="vLLM offline engine (vllm:smollm2, vllm:/path)", pull=_pull)
    register("openai", _openai, description="any OpenAI-compatible server (openai:http://host:port/v1)")
    register("scratch", _scratch, description="a from-scratch model trained by the harness (scratch:RUN_DIR)")
